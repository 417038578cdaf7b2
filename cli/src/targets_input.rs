//! Targets from the command line or from a file (`--file PATH|-`).
//!
//! Bulk files come from scripts and other tools, so a bad line fails the
//! whole command with its line number before anything is changed.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use banset_core::Target;

use crate::args::TargetInput;
use crate::errors::usage;

pub fn read_targets(input: &TargetInput) -> Result<Vec<Target>> {
    match &input.file {
        Some(path) => read_file(path),
        None => {
            if input.targets.is_empty() {
                usage!("no targets given (name addresses, or use --file PATH|-)");
            }
            input
                .targets
                .iter()
                .map(|t| Target::parse(t).map_err(Into::into))
                .collect()
        }
    }
}

/// One target per line; blank lines and `#` comments are skipped, and
/// surrounding white space is trimmed.
pub fn read_file(path: &Path) -> Result<Vec<Target>> {
    let shown = if path == Path::new("-") {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => return Err(crate::errors::input_file_error("file", path, e)),
        }
    };
    parse_lines(BufReader::with_capacity(1 << 16, reader), &shown)
}

/// The longest line `--file` takes, newline excluded. A line holds one
/// address (at most 64 bytes) and an optional `# comment`; 4 KiB leaves
/// comments room. Without a bound, `--file /dev/zero` grew to 3 GB in 20 s
/// looking for the end of its first line.
const MAX_LINE_LEN: usize = 4096;

fn parse_lines(mut reader: impl BufRead, shown: &str) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    let mut line = Vec::with_capacity(64);
    for number in 1.. {
        line.clear();
        // One byte past the bound tells a line that is too long from one
        // that is exactly as long as allowed.
        let read = (&mut reader)
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| shown.to_string())?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.len() > MAX_LINE_LEN {
            usage!(
                "{shown}: line {number}: longer than {MAX_LINE_LEN} bytes (a line holds one address and an optional # comment)"
            );
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            usage!("{shown}: line {number}: not UTF-8 text");
        };
        let text = text.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        match Target::parse(text) {
            Ok(t) => out.push(t),
            Err(e) => usage!("{shown}: line {number}: {e}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_and_names_bad_lines() {
        let ok = parse_lines(
            &b"# header\n1.2.3.4\n\n  10.0.0.0/8  # lan\r\n2001:db8::1"[..],
            "f",
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        let e = parse_lines(&b"1.2.3.4\n1.2.3.999\n"[..], "bans.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("bans.txt: line 2: ") && e.contains("1.2.3.999"),
            "{e}"
        );
    }

    #[test]
    fn an_endless_line_is_refused_naming_file_and_line() {
        // An endless source with no newline (`--file /dev/zero`): refused
        // after one bounded read instead of growing without end.
        let endless = std::io::BufReader::new(std::io::repeat(b'0'));
        let e = parse_lines(endless, "/dev/zero").unwrap_err().to_string();
        assert_eq!(
            e,
            "/dev/zero: line 1: longer than 4096 bytes (a line holds one address and an optional # comment)"
        );
        let mut huge = b"192.0.2.1\n".to_vec();
        huge.resize(huge.len() + (10 << 20), b'#');
        let e = parse_lines(&huge[..], "bans.txt").unwrap_err().to_string();
        assert!(e.starts_with("bans.txt: line 2: longer than 4096"), "{e}");
        // Exactly at the bound is fine, with or without a final newline.
        let mut at_bound = b"192.0.2.1 #".to_vec();
        at_bound.resize(MAX_LINE_LEN, b'x');
        assert_eq!(parse_lines(&at_bound[..], "f").unwrap().len(), 1);
        at_bound.push(b'\n');
        at_bound.extend_from_slice(b"192.0.2.2");
        assert_eq!(parse_lines(&at_bound[..], "f").unwrap().len(), 2);
    }
}
