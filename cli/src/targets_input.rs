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

fn parse_lines(reader: impl BufRead, shown: &str) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.with_context(|| shown.to_string())?;
        let Ok(line) = std::str::from_utf8(&line) else {
            usage!("{shown}: line {}: not UTF-8 text", i + 1);
        };
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        match Target::parse(text) {
            Ok(t) => out.push(t),
            Err(e) => usage!("{shown}: line {}: {e}", i + 1),
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
}
