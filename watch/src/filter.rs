//! Filters: the failregex / ignoreregex lists that recognise a failure in a
//! log line, in fail2ban's dialect.

use crate::tags::{expand_failregex, expand_ignoreregex, TagError};

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
}

impl Pattern {
    /// A pattern without a gate.
    pub fn new(regex: impl Into<String>) -> Pattern {
        Pattern {
            regex: regex.into(),
            gate: None,
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
}

impl Compiled {
    /// The `host` capture of a match, if the line matches.
    pub(crate) fn host<'l>(&self, line: &'l [u8]) -> Option<&'l [u8]> {
        match self {
            Compiled::Plain(re) => re
                .captures(line)
                .and_then(|c| c.name(crate::tags::HOST_GROUP))
                .map(|m| m.as_bytes()),
            Compiled::Fancy(re) => {
                let text = std::str::from_utf8(line).ok()?;
                // A backtracking limit hit is no match: hostile input must
                // not stall the watcher.
                let caps = re.captures(text).ok()??;
                let m = caps.name(crate::tags::HOST_GROUP)?;
                Some(&line[m.start()..m.end()])
            }
        }
    }

    pub(crate) fn is_match(&self, line: &[u8]) -> bool {
        match self {
            Compiled::Plain(re) => re.is_match(line),
            Compiled::Fancy(re) => std::str::from_utf8(line)
                .ok()
                .is_some_and(|t| re.is_match(t).unwrap_or(false)),
        }
    }
}

/// A compiled pattern with what the combined scan needs of it.
#[derive(Debug)]
pub(crate) struct CompiledPattern {
    /// Expanded regex text for the combined scan: the pattern itself, or its
    /// gate, or `None` when neither runs on the fast engine.
    pub(crate) scan: Option<String>,
    pub(crate) exact: Compiled,
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
        let fail = self
            .failregex
            .iter()
            .enumerate()
            .map(|(i, p)| self.compile_one("failregex", i, p, expand_failregex))
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
        Ok(CompiledFilter { fail, ignore })
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
        match plain_regex(&expanded) {
            Ok(re) => Ok(CompiledPattern {
                scan: Some(expanded),
                exact: Compiled::Plain(re),
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
                })
            }
        }
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
}
