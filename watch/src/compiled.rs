//! Compiled filters: each pattern of a [`FilterDef`] expanded and built
//! for the engine it needs, with what the matcher's combined scan needs of
//! it, and the per-filter state ([`crate::state`]) it carries.

use crate::filter::{
    plain_regex, DateRule, FilterDef, FilterError, Pattern, MAX_MAXLINES, REGEX_SIZE_LIMIT,
};
use crate::tags::{
    expand_counting, expand_fail2ban, expand_failregex, expand_ignoreregex, TagError, HOST_GROUPS,
    SKIPLINES_GROUP,
};

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
    pub(crate) skeleton: Option<crate::state::Skeleton>,
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
                        .and_then(|e| crate::state::skeleton(&e));
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
                .then(|| std::sync::Mutex::new(crate::state::LineBuffer::new(self.maxlines))),
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
    pub(crate) connections: Option<std::sync::Mutex<crate::state::Connections>>,
    /// For a multi-line filter (`maxlines` > 1): the latest lines.
    pub(crate) lines: Option<std::sync::Mutex<crate::state::LineBuffer>>,
}
