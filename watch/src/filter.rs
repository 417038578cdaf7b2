//! Filters: the failregex / ignoreregex lists that recognise a failure in a
//! log line, in fail2ban's dialect.

/// One failregex (or ignoreregex), as written, with an optional gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// The regex with fail2ban tags (`<HOST>`, `<F-USER>`...).
    pub regex: String,
    /// For a pattern that needs fancy-regex (look-around, back-references):
    /// a plain regex that every line the pattern matches also matches. Lines
    /// that fail the gate are rejected by the fast combined scan, so the
    /// backtracking engine only sees candidates.
    pub gate: Option<String>,
    /// For a pattern with a field of free text the client writes (a user
    /// name, a header) that the address may sit before or after: the same
    /// pattern with that field read the other way (greedy where `regex`
    /// is lazy). A line counts only when both readings take the address
    /// from the same place. A line that can be read two ways holds a
    /// forged address in the free text, and which one is forged cannot be
    /// told from the text: fail2ban counts whichever its regex finds
    /// first, which lets a client choose whom it bans; banset counts
    /// neither (see `fail2ban::steer`).
    pub twin: Option<String>,
}

impl Pattern {
    /// A pattern without a gate.
    pub fn new(regex: impl Into<String>) -> Pattern {
        Pattern {
            regex: regex.into(),
            gate: None,
            twin: None,
        }
    }
}

/// A named filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterDef {
    /// `sshd`, `postfix`, or the jail's name for an inline filter.
    pub name: String,
    /// A line that matches one of these (and no ignoreregex) is a failure of
    /// the address the pattern's `<HOST>` captured. Order matters: the first
    /// that matches with a valid address wins, as in fail2ban.
    pub failregex: Vec<Pattern>,
    /// Lines that match one of these are never failures.
    pub ignoreregex: Vec<Pattern>,
    /// fail2ban's `prefregex`: a line must match it first, and the
    /// failregexes then run on what its `<F-CONTENT>` captured (the whole
    /// line when it has none). `None` for the one-stage fast path.
    pub prefregex: Option<Pattern>,
    /// How the date is cut off the line before matching.
    pub date: DateRule,
    /// fail2ban's `maxlines`: how many of the latest lines the failregexes
    /// see at once, joined by newlines (1: each line alone, the fast path).
    /// A match takes the lines it spans out of the buffer.
    pub maxlines: usize,
}

/// The largest `maxlines` banset buffers: each line is searched with the
/// whole buffer, so the cost of a line grows with it.
pub const MAX_MAXLINES: usize = 1000;

/// How a filter finds the date it cuts off a line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DateRule {
    /// A syslog or ISO 8601 date at the start ([`crate::logtime`]): the
    /// caller splits it off once for every filter of the source.
    #[default]
    Leading,
    /// fail2ban's `datepattern` (`None`: its default templates). A leading
    /// syslog or ISO date is still split off the fast way when the pattern
    /// would find it too (`{^LN-BEG}` and the defaults).
    Fail2ban(Option<String>),
}

impl FilterDef {
    /// A one-stage filter with banset's date handling.
    pub fn new(
        name: impl Into<String>,
        failregex: Vec<Pattern>,
        ignoreregex: Vec<Pattern>,
    ) -> Self {
        FilterDef {
            name: name.into(),
            failregex,
            ignoreregex,
            prefregex: None,
            date: DateRule::Leading,
            maxlines: 1,
        }
    }
}

/// Why a filter does not compile. Names the filter and the pattern.
#[derive(Debug, thiserror::Error)]
#[error("filter {filter}: {kind} {index} `{pattern}`: {reason}")]
pub struct FilterError {
    /// The filter's name.
    pub filter: String,
    /// `failregex` or `ignoreregex`.
    pub kind: &'static str,
    /// 1-based position in its list.
    pub index: usize,
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong, on one line.
    pub reason: String,
}

/// Longest line (bytes) a filter looks at. Longer lines are skipped whole,
/// never cut: a cut line would end inside attacker-written text, where a
/// pattern anchored at the end could find a forged address.
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// Size limits for compiled regexes: fail2ban filters with many
/// alternatives exceed the regex crate's defaults.
pub(crate) const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// Patterns run on bytes with ASCII classes: `\d`, `\w`, `\s` mean what
/// they mean in a syslog line, `.` matches any byte (a user name need not be
/// UTF-8), and the automata stay small: Unicode classes made every capture
/// run several times slower.
pub(crate) fn plain_regex(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::{Compiled, FancyText};
    use crate::matcher::{Matcher, Scan};

    fn found(f: &FilterDef, line: &[u8]) -> Option<String> {
        let m = Matcher::new(std::slice::from_ref(f)).unwrap();
        let mut hits = Vec::new();
        match m.scan(line, &mut hits) {
            Scan::Hit => Some(hits[0].target.to_string()),
            _ => None,
        }
    }

    #[test]
    fn invalid_utf8_in_a_user_name_does_not_hide_the_line_from_a_look_around_filter() {
        // A negative look-ahead needs the backtracking engine.
        let f = FilterDef::new(
            "lookaround",
            vec![Pattern::new(
                r"^h sshd\[\d+\]: Failed password for (?!root\b)\S+ from <HOST> port \d+ ssh2$",
            )],
            Vec::new(),
        );
        assert!(matches!(
            f.compile().unwrap().fail[0].exact,
            Compiled::Fancy(_) | Compiled::PlainLead { .. }
        ));
        let clean = b"h sshd[1]: Failed password for bob from 192.0.2.7 port 22 ssh2";
        assert_eq!(found(&f, clean).as_deref(), Some("192.0.2.7"));
        // `\xff` alone, a truncated sequence, and several: the address is
        // read from the line's own bytes after them.
        for user in [&b"b\xffb"[..], b"\xe2\x82", b"\xff\xfe\xc0\xafx"] {
            let mut line = b"h sshd[1]: Failed password for ".to_vec();
            line.extend_from_slice(user);
            line.extend_from_slice(b" from 192.0.2.8 port 22 ssh2");
            assert_eq!(
                found(&f, &line).as_deref(),
                Some("192.0.2.8"),
                "{}",
                String::from_utf8_lossy(&line)
            );
        }
        let root = b"h sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2";
        assert_eq!(found(&f, root), None);
    }

    #[test]
    fn invalid_utf8_in_a_user_name_does_not_hide_the_line_from_a_back_reference_filter() {
        let f = crate::builtin::builtin_filter("qpopper").unwrap();
        let line = b"pop qpopper[1]: a\xffz at client (192.0.2.60): -ERR [AUTH] Password supplied for \"a\xffz\" is incorrect.";
        assert_eq!(found(&f, line).as_deref(), Some("192.0.2.60"));
    }

    /// The user name sits before the address and the Referer after it:
    /// a forged copy in either leaves two readings, and the line is not
    /// counted; a line with one reading is.
    #[test]
    fn a_pattern_read_two_ways_counts_only_when_both_readings_agree() {
        let f = FilterDef::new(
            "twin",
            vec![Pattern {
                regex: r#"^user "(?:.*?)" client <HOST> ref ".*"$"#.into(),
                gate: None,
                twin: Some(r#"^user "(?:.*)" client <HOST> ref ".*"$"#.into()),
            }],
            Vec::new(),
        );
        let honest = br#"user "bob" client 192.0.2.1 ref "a b""#;
        assert_eq!(found(&f, honest).as_deref(), Some("192.0.2.1"));
        let in_user = br#"user "x" client 6.6.6.6 ref "" client 192.0.2.1 ref "a""#;
        assert_eq!(found(&f, in_user), None);
        let in_ref = br#"user "bob" client 192.0.2.1 ref "x" client 6.6.6.6 ref "a""#;
        assert_eq!(found(&f, in_ref), None);
    }

    #[test]
    fn fancy_text_maps_ranges_back_to_the_lines_bytes() {
        let line = b"a\xffb\xe2\x82c\xc3\xa9d";
        let t = FancyText::new(line);
        assert_eq!(t.as_str(), "a\u{FFFD}b\u{FFFD}c\u{e9}d");
        let s = t.as_str();
        let c = s.find('c').unwrap();
        assert_eq!(t.original(c..c + 1), 5..6);
        assert_eq!(t.original(0..s.len()), 0..line.len());
        let b = s.find('b').unwrap();
        assert_eq!(&line[t.original(b..s.len())], b"b\xe2\x82c\xc3\xa9d");
    }
}
