//! Filters: the failregex / ignoreregex lists that recognise a failure in a
//! log line, in fail2ban's dialect.

use crate::tags::{
    expand_counting, expand_fail2ban, expand_failregex, expand_ignoreregex, TagError, HOST_GROUPS,
    SKIPLINES_GROUP,
};

/// One failregex (or ignoreregex), as written, with an optional gate.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One pattern ready to run.
#[derive(Debug)]
pub(crate) enum Compiled {
    Plain(regex::bytes::Regex),
    Fancy(fancy_regex::Regex),
    /// A pattern and its twin ([`Pattern::twin`]): a match counts when
    /// both match with the address at the same place.
    Twin(Box<Compiled>, Box<Compiled>),
}

/// What a match captured that the matcher needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Captured {
    /// The address tag's capture (byte range).
    pub(crate) host: Option<std::ops::Range<usize>>,
    /// `<F-CONTENT>` (prefregex).
    pub(crate) content: Option<std::ops::Range<usize>>,
    /// The match went through `<F-NOFAIL>`: fail2ban reads such a line as
    /// "not a failure" (on its own; see [`crate::matcher`] for lines of one
    /// connection).
    pub(crate) nofail: bool,
    /// Through `<F-MLFGAINED>`: the connection logged in.
    pub(crate) gained: bool,
    /// Through `<F-MLFFORGET>`: the connection ended.
    pub(crate) forget: bool,
    /// `<F-MLFID>`: what identifies the connection (prefregex).
    pub(crate) mlfid: Option<std::ops::Range<usize>>,
    /// `<F-USER>` (else `<F-ALT_USER>`), when not empty: the user name a
    /// failure was for. fail2ban reads a connection that tried several
    /// users as failing, even through lines marked `<F-NOFAIL>`.
    pub(crate) user: Option<std::ops::Range<usize>>,
}

/// The groups banset's and fail2ban's expansions give these markers.
const NOFAIL_GROUPS: [&str; 2] = ["f_nofail", "nofail"];
const GAINED_GROUPS: [&str; 2] = ["f_mlfgained", "mlfgained"];
const FORGET_GROUPS: [&str; 2] = ["f_mlfforget", "mlfforget"];
const MLFID_GROUPS: [&str; 2] = ["f_mlfid", "mlfid"];
const CONTENT_GROUPS: [&str; 2] = ["f_content", "content"];
const USER_GROUPS: [&str; 2] = ["user", "f_user"];
const ALT_USER_GROUPS: [&str; 4] = ["alt_user", "alt_user_1", "alt_user_2", "f_alt_user"];

impl Captured {
    /// Reads the groups banset knows (under fail2ban's and banset's names)
    /// through `group`, which gives a named group's byte range, if it took
    /// part in the match; the same for either regex engine.
    fn from_groups(group: impl Fn(&str) -> Option<std::ops::Range<usize>>) -> Captured {
        let first = |names: &[&str]| names.iter().find_map(|g| group(g));
        let any = |names: &[&str]| names.iter().any(|g| group(g).is_some());
        let filled = |names: &[&str]| {
            names
                .iter()
                .find_map(|g| group(g).filter(|r| !r.is_empty()))
        };
        Captured {
            host: first(&HOST_GROUPS),
            content: first(&CONTENT_GROUPS),
            nofail: any(&NOFAIL_GROUPS),
            gained: any(&GAINED_GROUPS),
            forget: any(&FORGET_GROUPS),
            mlfid: first(&MLFID_GROUPS),
            user: filled(&USER_GROUPS).or_else(|| filled(&ALT_USER_GROUPS)),
        }
    }
}

impl Compiled {
    /// The captures of a match, if the line matches.
    pub(crate) fn capture(&self, line: &[u8]) -> Option<Captured> {
        match self {
            Compiled::Plain(re) => {
                let c = re.captures(line)?;
                Some(Captured::from_groups(|g| c.name(g).map(|m| m.range())))
            }
            Compiled::Fancy(re) => {
                let text = FancyText::new(line);
                // A backtracking limit hit is no match: hostile input must
                // not stall the watcher.
                let c = re.captures(text.as_str()).ok()??;
                Some(Captured::from_groups(|g| {
                    c.name(g).map(|m| text.original(m.range()))
                }))
            }
            Compiled::Twin(first, other) => {
                let c = first.capture(line)?;
                let o = other.capture(line)?;
                (c.host == o.host).then_some(c)
            }
        }
    }

    /// For a buffer of lines: the captures, the span of the whole match and
    /// the spans of its `skiplinesN` groups (`skips` of them).
    pub(crate) fn capture_spans(&self, text: &[u8], skips: usize) -> Option<Spans> {
        let skip_names: Vec<String> = (0..skips)
            .map(|n| format!("{SKIPLINES_GROUP}{n}"))
            .collect();
        match self {
            Compiled::Plain(re) => {
                let c = re.captures(text)?;
                Some(Spans {
                    captured: Captured::from_groups(|g| c.name(g).map(|m| m.range())),
                    whole: c.get(0)?.range(),
                    skipped: skip_names
                        .iter()
                        .filter_map(|g| c.name(g).map(|m| m.range()))
                        .collect(),
                })
            }
            Compiled::Fancy(re) => {
                let text = FancyText::new(text);
                let c = re.captures(text.as_str()).ok()??;
                let at = |m: fancy_regex::Match<'_>| text.original(m.range());
                Some(Spans {
                    captured: Captured::from_groups(|g| c.name(g).map(at)),
                    whole: at(c.get(0)?),
                    skipped: skip_names
                        .iter()
                        .filter_map(|g| c.name(g).map(at))
                        .collect(),
                })
            }
            Compiled::Twin(first, other) => {
                let c = first.capture_spans(text, skips)?;
                let o = other.capture_spans(text, skips)?;
                (c.captured.host == o.captured.host).then_some(c)
            }
        }
    }

    pub(crate) fn is_match(&self, line: &[u8]) -> bool {
        match self {
            Compiled::Plain(re) => re.is_match(line),
            Compiled::Fancy(re) => re.is_match(FancyText::new(line).as_str()).unwrap_or(false),
            Compiled::Twin(first, other) => first.is_match(line) && other.is_match(line),
        }
    }
}

/// A line as the backtracking engine (which reads `&str`) sees it.
///
/// Log lines are bytes and need not be UTF-8: a client picks its user name,
/// and a single `\xff` in it must not hide the line from a filter, or the
/// client could fail logins for ever without being counted. Invalid
/// sequences become U+FFFD, which is what fail2ban does (it decodes with
/// `errors='strict'` and, when that fails, again with `errors='replace'`;
/// `FileContainer.decode_line`), so its filters see the same text. The
/// plain engine reads the bytes as they are. Capture ranges are mapped back
/// to the line's own bytes, so what a filter captured (the address above
/// all) is read from the line, never from the replacement.
pub(crate) struct FancyText<'l> {
    text: std::borrow::Cow<'l, str>,
    /// For a converted line: the line's byte offset of each byte offset of
    /// `text` (and of its end). `None` when the line was valid UTF-8.
    map: Option<Vec<usize>>,
}

impl<'l> FancyText<'l> {
    pub(crate) fn new(line: &'l [u8]) -> FancyText<'l> {
        if let Ok(text) = std::str::from_utf8(line) {
            return FancyText {
                text: text.into(),
                map: None,
            };
        }
        let mut text = String::with_capacity(line.len() + 16);
        let mut map = Vec::with_capacity(line.len() + 17);
        let mut at = 0;
        for chunk in line.utf8_chunks() {
            let valid = chunk.valid();
            map.extend(at..at + valid.len());
            text.push_str(valid);
            at += valid.len();
            let invalid = chunk.invalid();
            if !invalid.is_empty() {
                text.push(char::REPLACEMENT_CHARACTER);
                // A match starts or ends only at a character boundary, so
                // only the first of the three bytes is ever looked up.
                map.extend([at; 3]);
                at += invalid.len();
            }
        }
        map.push(at);
        FancyText {
            text: text.into(),
            map: Some(map),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The line's bytes of `range` (a range of [`Self::as_str`]).
    pub(crate) fn original(&self, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
        match &self.map {
            None => range,
            Some(map) => map[range.start]..map[range.end],
        }
    }
}

/// A match in a buffer of lines ([`Compiled::capture_spans`]).
#[derive(Debug, Clone)]
pub(crate) struct Spans {
    pub(crate) captured: Captured,
    /// The whole match.
    pub(crate) whole: std::ops::Range<usize>,
    /// What each `<SKIPLINES>` took.
    pub(crate) skipped: Vec<std::ops::Range<usize>>,
}

/// A compiled pattern with what the combined scan needs of it.
#[derive(Debug)]
pub(crate) struct CompiledPattern {
    /// Expanded regex text for the combined scan: the pattern itself, or its
    /// gate, or `None` when neither runs on the fast engine.
    pub(crate) scan: Option<String>,
    pub(crate) exact: Compiled,
    /// How many `<SKIPLINES>` the pattern has.
    pub(crate) skips: usize,
    /// For a multi-line filter's failregex: its fast stand-in.
    pub(crate) skeleton: Option<crate::multiline::Skeleton>,
}

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

impl FilterDef {
    pub(crate) fn compile(&self) -> Result<CompiledFilter, FilterError> {
        let fail2ban = matches!(self.date, DateRule::Fail2ban(_));
        let any: fn(&str) -> Result<String, TagError> = if fail2ban {
            f2b_any
        } else {
            expand_ignoreregex
        };
        let pref = match &self.prefregex {
            Some(p) => Some(self.compile_one("prefregex", 0, p, any)?),
            None => None,
        };
        // With a prefregex that captures the address, or one that marks
        // the connection (whose earlier or later lines give it),
        // failregexes need not.
        let pref_has_host = self.prefregex.as_ref().is_some_and(|p| {
            if fail2ban {
                p.regex.contains("<F-MLFID>")
                    || expand_fail2ban(&p.regex).is_ok_and(|(_, n)| n >= 1)
            } else {
                expand_counting(&p.regex).is_ok_and(|(_, n)| n == 1)
            }
        });
        let fail_expand: fn(&str) -> Result<String, TagError> = match (pref_has_host, fail2ban) {
            (true, _) => any,
            (false, true) => f2b_with_host,
            (false, false) => expand_failregex,
        };
        if self.maxlines == 0 || self.maxlines > MAX_MAXLINES {
            return Err(FilterError {
                filter: self.name.clone(),
                kind: "failregex",
                index: 0,
                pattern: String::new(),
                reason: format!(
                    "maxlines = {}: it must be 1 to {MAX_MAXLINES}",
                    self.maxlines
                ),
            });
        }
        let multi_line = self.maxlines > 1;
        let fail = self
            .failregex
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if multi_line {
                    // fail2ban compiles a multi-line filter's failregexes
                    // with MULTILINE: `^` and `$` also at each line.
                    let p = Pattern {
                        regex: format!("(?m){}", p.regex),
                        gate: None,
                        twin: p.twin.as_ref().map(|t| format!("(?m){t}")),
                    };
                    let mut c = self.compile_one("failregex", i, &p, fail_expand)?;
                    c.scan = None;
                    c.skeleton = fail_expand(&p.regex)
                        .ok()
                        .and_then(|e| crate::multiline::skeleton(&e));
                    Ok(c)
                } else {
                    self.compile_one("failregex", i, p, fail_expand)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if fail.is_empty() {
            return Err(FilterError {
                filter: self.name.clone(),
                kind: "failregex",
                index: 0,
                pattern: String::new(),
                reason: "the filter has no failregex".into(),
            });
        }
        let ignore = self
            .ignoreregex
            .iter()
            .enumerate()
            .map(|(i, p)| self.compile_one("ignoreregex", i, p, expand_ignoreregex))
            .collect::<Result<Vec<_>, _>>()?;
        let content_set = match &pref {
            None => None,
            Some(_) if multi_line => None,
            Some(_) => {
                let texts: Vec<&str> = fail.iter().filter_map(|p| p.scan.as_deref()).collect();
                if texts.len() == fail.len() {
                    Some(
                        regex::bytes::RegexSetBuilder::new(&texts)
                            .unicode(false)
                            .size_limit(REGEX_SIZE_LIMIT)
                            .dfa_size_limit(REGEX_SIZE_LIMIT)
                            .build()
                            .map_err(|e| FilterError {
                                filter: self.name.clone(),
                                kind: "failregex",
                                index: 0,
                                pattern: String::new(),
                                reason: first_line(&e.to_string()),
                            })?,
                    )
                } else {
                    None
                }
            }
        };
        let connections = self
            .prefregex
            .as_ref()
            .filter(|p| p.regex.contains("<F-MLFID>"))
            .map(|_| Default::default());
        Ok(CompiledFilter {
            fail,
            ignore,
            pref,
            content_set,
            connections,
            lines: multi_line
                .then(|| std::sync::Mutex::new(crate::multiline::LineBuffer::new(self.maxlines))),
        })
    }

    fn compile_one(
        &self,
        kind: &'static str,
        index: usize,
        pattern: &Pattern,
        expand: fn(&str) -> Result<String, TagError>,
    ) -> Result<CompiledPattern, FilterError> {
        let fail = |reason: String| FilterError {
            filter: self.name.clone(),
            kind,
            index: index + 1,
            pattern: pattern.regex.clone(),
            reason: reason.replace('\n', " "),
        };
        let expanded = expand(&pattern.regex).map_err(|e| fail(e.to_string()))?;
        let gate = match &pattern.gate {
            Some(g) => Some(
                expand_ignoreregex(g)
                    .map_err(|e| fail(format!("gate: {e}")))
                    .and_then(|g| {
                        plain_regex(&g)
                            .map(|_| g)
                            .map_err(|e| fail(format!("gate: {}", first_line(&e.to_string()))))
                    })?,
            ),
            None => None,
        };
        let skips = expanded.matches(&format!("(?P<{SKIPLINES_GROUP}")).count();
        if let Some(twin) = &pattern.twin {
            let first = Pattern {
                twin: None,
                ..pattern.clone()
            };
            let mut c = self.compile_one(kind, index, &first, expand)?;
            let other = self.compile_one(kind, index, &Pattern::new(twin.clone()), expand)?;
            c.exact = Compiled::Twin(Box::new(c.exact), Box::new(other.exact));
            return Ok(c);
        }
        match plain_regex(&expanded) {
            Ok(re) => Ok(CompiledPattern {
                scan: Some(expanded),
                exact: Compiled::Plain(re),
                skips,
                skeleton: None,
            }),
            Err(plain_err) => {
                // Look-around and back-references need the backtracking
                // engine; anything else it also refuses is a real error.
                let re = fancy_regex::RegexBuilder::new(&expanded)
                    .backtrack_limit(100_000)
                    .build()
                    .map_err(|e| {
                        fail(format!(
                            "{} ({})",
                            first_line(&e.to_string()),
                            first_line(&plain_err.to_string())
                        ))
                    })?;
                Ok(CompiledPattern {
                    scan: gate,
                    exact: Compiled::Fancy(re),
                    skips,
                    skeleton: None,
                })
            }
        }
    }
}

/// A fail2ban pattern that need not capture an address.
fn f2b_any(p: &str) -> Result<String, TagError> {
    expand_fail2ban(p).map(|(e, _)| e)
}

/// A fail2ban failregex: at least one address tag.
fn f2b_with_host(p: &str) -> Result<String, TagError> {
    match expand_fail2ban(p)? {
        (_, 0) => Err(TagError::NoHost),
        (e, _) => Ok(e),
    }
}

fn first_line(s: &str) -> String {
    // The regex crate's messages draw the pattern over several lines; the
    // last line holds the actual complaint.
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('^'))
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// A filter's compiled patterns.
#[derive(Debug)]
pub(crate) struct CompiledFilter {
    pub(crate) fail: Vec<CompiledPattern>,
    pub(crate) ignore: Vec<CompiledPattern>,
    /// The prefregex of a two-stage filter.
    pub(crate) pref: Option<CompiledPattern>,
    /// The failregexes as one set, run on the prefregex's content (when
    /// all of them run on the fast engine).
    pub(crate) content_set: Option<regex::bytes::RegexSet>,
    /// For a prefregex with `<F-MLFID>`: what each open connection has
    /// shown so far (see [`crate::matcher`]).
    pub(crate) connections: Option<std::sync::Mutex<crate::matcher::Connections>>,
    /// For a multi-line filter (`maxlines` > 1): the latest lines.
    pub(crate) lines: Option<std::sync::Mutex<crate::multiline::LineBuffer>>,
}

#[cfg(test)]
mod tests {
    use super::*;
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
            Compiled::Fancy(_)
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
