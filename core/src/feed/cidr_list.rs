//! CIDR lists: one address or prefix per line, as published for
//! allow-lists and block-lists. Blank lines are skipped, and so is
//! everything from a `#` or `;` on (Spamhaus' DROP list writes
//! `1.10.16.0/20 ; SBL256894`).

use std::io::BufRead;

use super::bounds::MAX_FEED_ENTRIES;
use super::error::quote;
use super::error::FeedError;
use super::lines::Lines;
use super::ranges;
use crate::Target;

/// The merged prefixes of the list `reader` holds (see [`ranges::merge`]).
/// The first malformed line fails the whole list.
pub fn parse(reader: impl BufRead, source_name: &str) -> Result<Vec<Target>, FeedError> {
    let targets = read(reader, source_name)?;
    ranges::merge(&targets).map_err(|e| FeedError::file(source_name, e))
}

/// The entries of the list `reader` holds, as written (not merged), for a
/// set that holds single addresses only. The first malformed line fails
/// the whole list.
pub fn read(reader: impl BufRead, source_name: &str) -> Result<Vec<Target>, FeedError> {
    let mut lines = Lines::new(reader, source_name);
    let mut out = Vec::new();
    while let Some(line) = lines.next_line()? {
        let text = line.split(['#', ';']).next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let target = match Target::parse(text) {
            Ok(t) => t,
            Err(e) => {
                let reason = format!("{}: {}", quote(text), e.reason);
                return Err(lines.error(reason));
            }
        };
        if out.len() == MAX_FEED_ENTRIES {
            return Err(lines.error(format!("more than {MAX_FEED_ENTRIES} entries")));
        }
        out.push(target);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(input: &str) -> Result<Vec<String>, String> {
        parse(input.as_bytes(), "home.txt")
            .map(|ts| ts.iter().map(ToString::to_string).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn golden_list_with_comments_blank_lines_and_merges() {
        let list = "# home networks\n\
                    \n\
                    192.0.2.0/25   # office\n\
                    192.0.2.128/25\r\n\
                    1.10.16.0/20 ; SBL256894\n\
                    198.51.100.7\n\
                    \t2001:db8::/48\n\
                    2001:db8:1::/48\n\
                    ::ffff:203.0.113.9\n";
        assert_eq!(
            shown(list).unwrap(),
            [
                "1.10.16.0/20",
                "192.0.2.0/24",
                "198.51.100.7",
                "203.0.113.9",
                "2001:db8::/47"
            ]
        );
    }

    #[test]
    fn a_malformed_line_fails_the_list_naming_file_and_line() {
        let e = shown("192.0.2.0/24\n# fine\n192.0.2.300/32\n").unwrap_err();
        assert!(
            e.starts_with("home.txt: line 3: \"192.0.2.300/32\": "),
            "{e}"
        );
        let e = shown("10.0.0.0/8 extra\n").unwrap_err();
        assert!(e.starts_with("home.txt: line 1: "), "{e}");
        let e = shown("2001:db8::/129\n").unwrap_err();
        assert!(e.starts_with("home.txt: line 1: "), "{e}");
    }

    #[test]
    fn an_empty_list_is_empty() {
        assert_eq!(shown("# nothing yet\n\n").unwrap(), Vec::<String>::new());
    }
}
