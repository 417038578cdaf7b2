//! The matcher's combined scan: which of many patterns match a line, found
//! in one pass of the lazy DFA, into a set the caller keeps from one line
//! to the next.
//!
//! It is `regex::bytes::RegexSet` as the matcher built it (ASCII classes,
//! the filters' size limits, every match of every pattern), on the engine
//! under it: `RegexSet::matches` allocated its answer on every line, about
//! a tenth of a line's work for sshd's fail2ban filter (issue 16).

use crate::filter::REGEX_SIZE_LIMIT;
use regex_automata::{meta, nfa::thompson::WhichCaptures, util::syntax, Input, MatchKind};

pub(crate) use regex_automata::PatternSet;

#[derive(Debug)]
pub(crate) struct ScanSet {
    meta: meta::Regex,
}

impl ScanSet {
    /// The set of `patterns` (regex syntax, read as
    /// [`crate::filter::plain_regex`] reads one pattern).
    pub(crate) fn new(patterns: &[&str]) -> Result<ScanSet, Box<meta::BuildError>> {
        let config = meta::Config::new()
            .match_kind(MatchKind::All)
            .utf8_empty(false)
            .which_captures(WhichCaptures::None)
            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
            .hybrid_cache_capacity(REGEX_SIZE_LIMIT);
        let syntax = syntax::Config::new().unicode(false).utf8(false);
        meta::Builder::new()
            .configure(config)
            .syntax(syntax)
            .build_many(patterns)
            .map(|meta| ScanSet { meta })
            .map_err(Box::new)
    }

    /// Puts the patterns that match `line` into `found`, which it empties
    /// first (and grows, the first time, to hold every pattern).
    pub(crate) fn matches(&self, line: &[u8], found: &mut PatternSet) {
        let len = self.meta.pattern_len();
        if found.capacity() < len {
            *found = PatternSet::new(len);
        } else {
            found.clear();
        }
        self.meta
            .which_overlapping_matches(&Input::new(line), found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set finds what `regex::bytes::RegexSet` built as the matcher
    /// built it found, line after line with one `PatternSet` (smaller and
    /// larger sets in turn), on ASCII, non-ASCII and invalid bytes.
    #[test]
    fn a_scan_set_finds_what_the_regex_crates_set_finds() {
        let patterns = [
            r"^\S+ sshd\[\d+\]: Failed \S+ for .* from \d+\.\d+\.\d+\.\d+",
            r"^\S+ sshd\[\d+\]: (?:error: )?Invalid user \S+ from",
            r"from [0-9.]+ port \d+$",
            r"\bauth\b.*=\s*$",
            r"(?i)ACCEPTED",
            r"[\x80-\xff]+ from",
        ];
        let small = [patterns[2], patterns[4]];
        let lines: [&[u8]; 9] = [
            b"mx sshd[1]: Failed password for root from 192.0.2.1 port 22",
            b"mx sshd[1]: error: Invalid user x from 192.0.2.1 port 22",
            b"mx sshd[1]: Accepted publickey for a from 192.0.2.1 port 22",
            b"auth x=",
            b"",
            "mx sshd[1]: Failed password for \u{e9} from 192.0.2.1".as_bytes(),
            b"mx sshd[1]: Failed password for \xff\xfe from 192.0.2.1 port 2",
            b"\n from 1.2.3.4 port 5",
            b"accepted\nauth =",
        ];
        let mut found = PatternSet::new(0);
        for _ in 0..2 {
            for pats in [&patterns[..], &small[..]] {
                let ours = ScanSet::new(pats).unwrap();
                let theirs = regex::bytes::RegexSetBuilder::new(pats)
                    .unicode(false)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .unwrap();
                let mut matched = 0;
                for line in lines {
                    ours.matches(line, &mut found);
                    let got: Vec<usize> = found.iter().map(|p| p.as_usize()).collect();
                    let want: Vec<usize> = theirs.matches(line).iter().collect();
                    assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
                    matched += got.len();
                }
                assert!(matched >= 4, "{matched}");
            }
        }
    }
}
