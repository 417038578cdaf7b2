//! fail2ban's `datepattern`: where the date is in a line, so it can be cut
//! out before the filter's regexes run (fail2ban matches the line without
//! its date).
//!
//! banset reads the time of a failure only from syslog and ISO 8601 dates
//! (see [`crate::logtime`]); for other formats the date is found and
//! removed, and the failure counts at the time banset reads the line, which
//! for a followed log is the time it was written.

use crate::shared::Shared;

/// One compiled template.
///
/// fail2ban's templates are Python regexes run by a backtracking engine
/// over the whole line (`DateTemplate.matchDate` is a `re.search`; there is
/// no cap on the bytes searched). A line without a date makes every
/// template fail at every position: with the fancy-regex VM that took about
/// 110 ms per 16 KiB line for the default templates, so a few long
/// requests a second stalled a log. Cutting the search off after some bytes
/// would change which date is found (and so what a filter sees), so banset
/// keeps fail2ban's reading and changes the engine instead: every template
/// that can be written for the linear-time `regex` crate runs there (the
/// stock ones all can, once the word-bound look-aheads and the `_sep`
/// back-reference banset itself writes are rewritten); only a template a
/// filter writes with other look-arounds or back-references runs on the
/// backtracking engine, under a backtracking limit, past which it finds no
/// date.
#[derive(Debug, Clone)]
enum Template {
    Linear {
        re: regex::Regex,
        /// The date is the first group that took part in the match, not
        /// group 1 (the free-standing EPOCH, written as alternatives).
        any_group: bool,
    },
    Backtracking(fancy_regex::Regex),
    /// One of fail2ban's default templates, compiled the first time a line
    /// is tried against it: with Unicode classes (`\d` is any digit, as in
    /// Python) the 31 of them took 180M instructions to compile, most of
    /// `regex-test sshd.conf`'s start-up, while a log whose lines start
    /// with a syslog or ISO date never needs one (see
    /// `DateFinder::reaches_defaults`). The same regex, compiled later:
    /// every line gets the date it got.
    Default(std::sync::Arc<LazyTemplate>),
}

/// Backtracking steps a template that needs fancy-regex may take on one
/// line before it counts as not matching (the same bound the filters' own
/// patterns have).
const BACKTRACK_LIMIT: usize = 100_000;

impl Template {
    fn span(&self, line: &str) -> Option<DateSpan> {
        let m = match self {
            Template::Default(lazy) => return lazy.get().span(line),
            Template::Linear { re, any_group } => {
                let caps = re.captures(line)?;
                if *any_group {
                    caps.iter().skip(1).flatten().next()?.range()
                } else {
                    caps.get(1)?.range()
                }
            }
            Template::Backtracking(re) => re.captures(line).ok()??.get(1)?.range(),
        };
        Some(DateSpan {
            start: m.start,
            end: m.end,
        })
    }
}

/// A default template: its regex, and that regex compiled once a line
/// needs it.
#[derive(Debug)]
struct LazyTemplate {
    regex: TemplateRegex,
    compiled: std::sync::OnceLock<Template>,
}

impl LazyTemplate {
    fn new(regex: TemplateRegex) -> LazyTemplate {
        LazyTemplate {
            regex,
            compiled: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> &Template {
        self.compiled.get_or_init(|| {
            // fail2ban's templates are constants, each compiled by
            // `every_default_template_compiles`: a failure here is a bug
            // of that table, not of a configuration.
            self.regex
                .compile()
                .unwrap_or_else(|e| panic!("default date template: {e}"))
        })
    }
}

/// A template's regex, ready to compile.
#[derive(Debug)]
enum TemplateRegex {
    /// fail2ban's free-standing `EPOCH`: alternatives, the date in
    /// whichever group took part.
    Epoch {
        /// The template as written (for errors).
        pattern: String,
        re: String,
    },
    /// Any other template: `fancy` as fail2ban's Python engine reads it,
    /// run on the linear-time engine once its word bounds and `_sep`
    /// back-reference are rewritten, else on the backtracking one.
    Dated {
        /// The template as written (for errors).
        pattern: String,
        fancy: String,
    },
}

impl TemplateRegex {
    fn compile(&self) -> Result<Template, DatePatternError> {
        let regex_error = |pattern: &str, e: &dyn std::fmt::Display| DatePatternError {
            pattern: pattern.to_string(),
            problem: DateProblem::Regex(e.to_string()),
        };
        match self {
            TemplateRegex::Epoch { pattern, re } => Ok(Template::Linear {
                re: linear(re).map_err(|e| regex_error(pattern, &e))?,
                any_group: true,
            }),
            TemplateRegex::Dated { pattern, fancy } => Ok(
                match linear(&unfold_separator(
                    &fancy
                        .replace(WORD_BEGIN, WORD_BOUND)
                        .replace(WORD_END, WORD_BOUND),
                )) {
                    Ok(re) => Template::Linear {
                        re,
                        any_group: false,
                    },
                    Err(_) => Template::Backtracking(
                        fancy_regex::RegexBuilder::new(fancy)
                            .backtrack_limit(BACKTRACK_LIMIT)
                            .build()
                            .map_err(|e| regex_error(pattern, &e))?,
                    ),
                },
            ),
        }
    }
}

/// fail2ban's default templates (the order it tries them in), as written in
/// its `datedetector.py`.
const DEFAULT_TEMPLATES: &[&str] = &[
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    r"EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"TAI64N",
];

/// Finds the date of a line.
#[derive(Debug)]
pub struct DateFinder {
    /// Tried in order; the first that matches wins. Group 1 is the date.
    templates: Vec<Template>,
    /// Later templates (unanchored) compete by position: the leftmost wins.
    leftmost_from: usize,
    /// Where fail2ban's anchored default templates start, when a line of
    /// the datepattern (`{^LN-BEG}`, `{DEFAULT}`) put them in `templates`:
    /// the templates before them are tried first.
    defaults_from: Option<usize>,
}

/// How a line is split around its date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSpan {
    /// Byte range of the date.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
}

impl DateFinder {
    /// The finder for a filter's `datepattern` (`None`: fail2ban's
    /// defaults, anywhere in the line).
    pub fn new(datepattern: Option<&str>) -> Result<DateFinder, DatePatternError> {
        let mut anchored = Vec::new();
        let mut free = Vec::new();
        let patterns: Vec<&str> = match datepattern {
            None => vec!["{DEFAULT}"],
            Some(p) => p.lines().map(str::trim).filter(|l| !l.is_empty()).collect(),
        };
        let mut defaults_from = None;
        for p in patterns {
            let upper = p.to_uppercase();
            match upper.as_str() {
                "{DEFAULT}" | "{^LN-BEG}" => {
                    let (a, f) = defaults()?;
                    defaults_from.get_or_insert(anchored.len());
                    anchored.extend(a.iter().cloned());
                    if upper == "{DEFAULT}" {
                        free.extend(f.iter().cloned());
                    }
                }
                "{NONE}" => {}
                _ if upper.contains("{DATE}") => {
                    for t in DEFAULT_TEMPLATES {
                        if t.starts_with('^')
                            || t.starts_with('{')
                            || t.contains("EPOCH")
                            || *t == "TAI64N"
                        {
                            continue;
                        }
                        // fail2ban cuts what the whole pattern matched,
                        // the text around {DATE} included.
                        let body = p.replacen("{DATE}", t, 1).replacen("{date}", t, 1);
                        anchored.push(template(&body, true)?.0);
                    }
                }
                _ => anchored.push(template(p, false)?.0),
            }
        }
        let leftmost_from = anchored.len();
        anchored.extend(free);
        Ok(DateFinder {
            templates: anchored,
            leftmost_from,
            defaults_from,
        })
    }

    /// [`DateFinder::new`], compiled once for every source whose filters
    /// have the same `datepattern`: each compiled copy of the templates
    /// grows lazy-DFA caches of its own.
    pub fn shared(
        datepattern: Option<&str>,
    ) -> Result<std::sync::Arc<DateFinder>, DatePatternError> {
        static FINDERS: Shared<Option<String>, DateFinder> = Shared::new();
        FINDERS.get_or_build(&datepattern.map(str::to_string), || {
            DateFinder::new(datepattern)
        })
    }

    /// Where the date of `line` is, if it has one.
    pub fn find(&self, line: &str) -> Option<DateSpan> {
        for t in &self.templates[..self.leftmost_from] {
            if let Some(s) = t.span(line) {
                return Some(s);
            }
        }
        self.templates[self.leftmost_from..]
            .iter()
            .filter_map(|t| t.span(line))
            .min_by_key(|s| s.start)
    }

    /// Whether the anchored default templates are in this finder's list.
    pub(crate) fn has_leading_defaults(&self) -> bool {
        self.defaults_from.is_some()
    }

    /// Whether [`DateFinder::find`] reaches the anchored default templates
    /// on `line` in its first, in-order pass: every template before them
    /// misses it. Then a line whose leading syslog/ISO date a default
    /// template finds has that date cut, whatever the datepattern's first
    /// lines say (dovecot's `{^LN-BEG}TAI64N` then `{^LN-BEG}`): the caller
    /// may split that date off the fast way instead of running the
    /// templates.
    pub(crate) fn reaches_defaults(&self, line: &[u8]) -> bool {
        let Some(n) = self.defaults_from else {
            return false;
        };
        if n == 0 {
            return true;
        }
        let text = crate::compiled::FancyText::new(line);
        self.templates[..n]
            .iter()
            .all(|t| t.span(text.as_str()).is_none())
    }

    /// `line` without its date (the text around it joined), as fail2ban
    /// hands it to the filter; the line itself when it has no date.
    pub fn strip<'l>(&self, line: &'l [u8]) -> std::borrow::Cow<'l, [u8]> {
        // A line that is not UTF-8 still has its date cut (see FancyText).
        let text = crate::compiled::FancyText::new(line);
        match self.find(text.as_str()) {
            Some(s) => {
                let s = text.original(s.start..s.end);
                let mut v = Vec::with_capacity(line.len());
                v.extend_from_slice(&line[..s.start]);
                v.extend_from_slice(&line[s.end..]);
                v.into()
            }
            None => line.into(),
        }
    }
}

/// A `datepattern` (or one of its lines) that cannot be used: the text as
/// banset read it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("datepattern {pattern:?}: {problem}")]
pub struct DatePatternError {
    /// The pattern line, or the part of it being read.
    pub pattern: String,
    /// What is wrong.
    pub problem: DateProblem,
}

/// What is wrong in a `datepattern`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateProblem {
    /// The regex it becomes does not compile.
    #[error("{0}")]
    Regex(String),
    /// A lone `%` at the end.
    #[error("ends in %")]
    EndsInPercent,
    /// `%Ex` at the end.
    #[error("ends in %Ex")]
    EndsInPercentEx,
    /// A strptime directive fail2ban's templates do not use (`%c`).
    #[error("%{0} is not supported")]
    Unsupported(char),
}

/// Templates anchored at the line's start, and the others.
type Templates = (Vec<Template>, Vec<Template>);

/// fail2ban's default templates, read once: those anchored at the line's
/// start (fail2ban tries them first), and the others; each compiles when
/// a line first needs it ([`Template::Default`]).
fn defaults() -> Result<&'static Templates, DatePatternError> {
    static DEFAULTS: std::sync::OnceLock<Result<Templates, DatePatternError>> =
        std::sync::OnceLock::new();
    DEFAULTS
        .get_or_init(|| {
            let lazy = |t: &str| -> Result<(Template, bool), DatePatternError> {
                let (regex, line_begin) = template_regex(t, false)?;
                // Every finder's copy of a template is this one, compiled
                // once.
                let lazy = std::sync::Arc::new(LazyTemplate::new(regex));
                Ok((Template::Default(lazy), line_begin))
            };
            let mut anchored = Vec::new();
            let mut free = Vec::new();
            for t in DEFAULT_TEMPLATES {
                let (re, line_begin) = lazy(t)?;
                if line_begin {
                    anchored.push(re);
                } else {
                    anchored.push(lazy(&format!("{{^LN-BEG}}{t}"))?.0);
                    free.push(re);
                }
            }
            Ok((anchored, free))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Compiles one template; returns it and whether it is anchored at the
/// line's start.
fn template(pattern: &str, unbound: bool) -> Result<(Template, bool), DatePatternError> {
    let (regex, line_begin) = template_regex(pattern, unbound)?;
    Ok((regex.compile()?, line_begin))
}

/// One template's regex, not compiled yet; and whether it is anchored at
/// the line's start.
fn template_regex(pattern: &str, unbound: bool) -> Result<(TemplateRegex, bool), DatePatternError> {
    let mut p = pattern.trim().to_string();
    let mut word_begin = !unbound;
    let mut line_begin = false;
    if let Some(rest) = p.strip_prefix("{^LN-BEG}") {
        p = rest.to_string();
        line_begin = true;
    } else if let Some(rest) = p.strip_prefix("{UNB}") {
        p = rest.to_string();
        word_begin = false;
    }
    let mut word_end = word_begin;
    if !line_begin && p.eq_ignore_ascii_case("EPOCH") {
        // fail2ban's free-standing epoch: at the line's start, in `[...]`
        // there, or in an audit record's `audit(EPOCH:SERIAL)`; never a
        // run of digits elsewhere in the line (a pid, a session number).
        // As fail2ban writes it, with look-behinds:
        // (?:^|(?<=^\[)(?=E\])|(?<=\baudit\()(?=E:\d+\)))(E)
        // and here as alternatives whose context is matched, not looked
        // at; the date is whichever group took part.
        let epoch = r"\d{10,11}\b(?:\.\d{3,6})?";
        let re = format!(r"^({epoch})|^\[({epoch})\]|\baudit\(({epoch}):\d+\)");
        return Ok((
            TemplateRegex::Epoch {
                pattern: pattern.to_string(),
                re,
            },
            false,
        ));
    }
    let core = match p.to_uppercase().as_str() {
        "EPOCH" => r"\d{10,11}(?:\.\d{3,6})?".to_string(),
        "LEPOCH" => r"\d{13}(?:\.\d{3,6})?".to_string(),
        "TAI64N" => r"@[0-9a-f]{24}".to_string(),
        _ => directives(&p)?,
    };
    let mut core = core;
    if let Some(c) = core.strip_prefix("**") {
        core = c.to_string();
        word_begin = false;
    }
    if let Some(c) = core.strip_suffix("**") {
        core = c.to_string();
        word_end = false;
    }
    let (anchor, body) = match core.strip_prefix('^') {
        Some(b) => ("^", b.to_string()),
        None => ("", core.clone()),
    };
    if !anchor.is_empty() {
        line_begin = true;
    }
    let body_has_group = has_plain_group(&body);
    let mut re = String::new();
    if line_begin && anchor.is_empty() {
        re.push_str(r"^(?:\W{0,2})?");
    } else {
        re.push_str(anchor);
        if word_begin && anchor.is_empty() {
            re.push_str(r"(?=^|\b|\W)");
        }
    }
    if body_has_group {
        re.push_str(&body);
    } else {
        re.push('(');
        re.push_str(&body);
        re.push(')');
    }
    let ends_bound = body.ends_with('$') || body.ends_with(r"\b") || body.ends_with(r"\s");
    if word_end && !ends_bound {
        re.push_str(r"(?=\b|\W|$)");
    }
    let fancy = crate::pyregex::translate(&re);
    Ok((
        TemplateRegex::Dated {
            pattern: pattern.to_string(),
            fancy,
        },
        line_begin,
    ))
}

/// fail2ban's word bounds around a date: `(?=^|\b|\W)` before it and
/// `(?=\b|\W|$)` after it. Around a non-empty date both fail only between
/// two word characters, which the `regex` crate says without a
/// look-ahead: a non-word character (or the text's edge) on one side.
/// Word characters are ASCII here, Unicode in Python; a date glued to a
/// non-ASCII letter is the only difference, and not a date either way in
/// any log banset knows.
const WORD_BEGIN: &str = r"(?=^|\b|\W)";
const WORD_END: &str = r"(?=\b|\W|$)";
const WORD_BOUND: &str = r"(?-u:\b{start-half}|\b{end-half})";

fn linear(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(crate::filter::REGEX_SIZE_LIMIT)
        .dfa_size_limit(crate::filter::REGEX_SIZE_LIMIT)
        .build()
}

/// fail2ban's templates repeat a separator by back-reference:
/// `Y(?P<_sep>[-/.])m(?P=_sep)d`. A back-reference needs the backtracking
/// engine; with a class of a few literal characters it is the same as one
/// alternative per character: `Y(?:-m-|/m/|\.m\.)d`. Anything less plain
/// is left as it is (and runs on the backtracking engine).
fn unfold_separator(re: &str) -> String {
    const OPEN: &str = "(?P<_sep>[";
    const BACK: &str = "(?P=_sep)";
    let mut out = re.to_string();
    while let (Some(def), Some(back)) = (out.find(OPEN), out.find(BACK)) {
        let class_start = def + OPEN.len();
        let Some(class_len) = out[class_start..].find("])") else {
            break;
        };
        let class = &out[class_start..class_start + class_len];
        let between_start = class_start + class_len + 2;
        if back < between_start
            || class.is_empty()
            || class.contains('\\')
            || class.starts_with('^')
            || class.trim_matches('-').contains('-')
        {
            break;
        }
        let between = &out[between_start..back];
        // The text between must be whole groups, or the alternatives would
        // cut one in half; and it must not capture, or copies would.
        let mut depth = 0i32;
        let mut escaped = false;
        for c in between.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                break;
            }
        }
        if depth != 0 || between.contains("(?P<") || has_plain_group(between) {
            break;
        }
        let alternatives: Vec<String> = class
            .chars()
            .map(|c| {
                let c = regex::escape(&c.to_string());
                format!("{c}{between}{c}")
            })
            .collect();
        out = format!(
            "{}(?:{}){}",
            &out[..def],
            alternatives.join("|"),
            &out[back + BACK.len()..]
        );
    }
    out
}

fn has_plain_group(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len())
        .any(|i| b[i] == b'(' && (i == 0 || b[i - 1] != b'\\') && b.get(i + 1) != Some(&b'?'))
}

/// Replaces strptime directives (`%Y`, `%b`, `%ExY`...) with regexes.
fn directives(p: &str) -> Result<String, DatePatternError> {
    let err = |problem| DatePatternError {
        pattern: p.to_string(),
        problem,
    };
    const MONTHS: &str = r"(?i:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";
    const DAYS: &str = r"(?i:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut d = chars
            .next()
            .ok_or_else(|| err(DateProblem::EndsInPercent))?;
        let ex = d == 'E' && chars.peek() == Some(&'x');
        if ex {
            chars.next();
            d = chars
                .next()
                .ok_or_else(|| err(DateProblem::EndsInPercentEx))?;
        }
        let r = match (d, ex) {
            ('%', false) => "%",
            ('Y', false) => r"\d{4}",
            ('Y', true) => r"(?:19|20)\d\d",
            ('y', _) => r"\d\d",
            ('m', false) => r"(?:0?[1-9]|1[0-2])",
            ('m', true) => r"(?:0[1-9]|1[0-2])",
            ('d', false) => r"(?:[1-2]\d|[0 ]?[1-9]|3[0-1])",
            ('d', true) => r"(?:[1-2]\d|0[1-9]|3[0-1])",
            ('e', _) => r"(?:[1-2]\d| ?[1-9]|3[0-1])",
            ('H', false) => r"(?:[0-1]?\d|2[0-3])",
            ('H', true) => r"(?:[0-1]\d|2[0-3])",
            ('k', false) => r" ?[0-2]?\d",
            ('k', true) => r" ?(?:[0-1]?\d|2[0-3])",
            ('I', _) => r"(?:1[0-2]|0?[1-9])",
            ('l', false) => r" ?1?\d",
            ('l', true) => r" ?(?:1[0-2]|\d)",
            ('M', false) => r"[0-5]?\d",
            ('M', true) => r"[0-5]\d",
            ('S', false) => r"(?:[0-5]?\d|6[0-1])",
            ('S', true) => r"(?:[0-5]\d|6[0-1])",
            ('f', _) => r"\d+",
            ('p', _) => r"(?i:AM|PM)",
            ('b' | 'B' | 'h', _) => MONTHS,
            ('a' | 'A', _) => DAYS,
            ('j', _) => r"(?:36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
            ('w', _) => r"[0-6]",
            ('U' | 'W', _) => r"(?:5[0-3]|[0-4]\d|\d)",
            ('z', _) => r"(?:Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
            ('Z', _) => r"(?:Z|[A-Z]{3,5})",
            ('s', _) => r"\d{10,11}",
            _ => return Err(err(DateProblem::Unsupported(d))),
        };
        out.push_str(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(f: &DateFinder, line: &str) -> String {
        String::from_utf8(f.strip(line.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn default_templates_find_common_formats() {
        let f = DateFinder::new(None).unwrap();
        assert_eq!(
            cut(&f, "Nov 21 12:00:00 host sshd[1]: x"),
            " host sshd[1]: x"
        );
        assert_eq!(
            cut(&f, "[Sat Jun 01 11:23:08 2013] [error] [client 1.2.3.4] x"),
            "[] [error] [client 1.2.3.4] x"
        );
        assert_eq!(
            cut(
                &f,
                "1.2.3.4 - - [21/Nov/2026:12:00:00 +0000] \"GET / HTTP/1.1\""
            ),
            "1.2.3.4 - - [] \"GET / HTTP/1.1\""
        );
        assert_eq!(
            cut(&f, "2026-11-21 12:00:00,123 WARN login failed 1.2.3.4"),
            " WARN login failed 1.2.3.4"
        );
        assert_eq!(cut(&f, "no date 1.2.3.4"), "no date 1.2.3.4");
    }

    #[test]
    fn an_epoch_is_found_where_fail2ban_looks_for_one() {
        let f = DateFinder::new(None).unwrap();
        assert_eq!(cut(&f, "1234567890 x"), " x");
        assert_eq!(cut(&f, "[1234567890.123] x"), "[] x");
        assert_eq!(
            cut(&f, "type=USER audit(1234567890.123:55): x"),
            "type=USER audit(:55): x"
        );
        // Digits in the middle of a line are not a date.
        assert_eq!(cut(&f, "x 1234567890 y"), "x 1234567890 y");
        let f = DateFinder::new(Some("EPOCH")).unwrap();
        assert_eq!(
            cut(&f, "[28325:00010-3735542592] x"),
            "[28325:00010-3735542592] x"
        );
    }

    fn backtracking(f: &DateFinder) -> usize {
        f.templates
            .iter()
            .filter(|t| match t {
                Template::Default(lazy) => matches!(lazy.get(), Template::Backtracking(_)),
                t => matches!(t, Template::Backtracking(_)),
            })
            .count()
    }

    /// The default templates, and every `datepattern` of fail2ban's own
    /// filters (when fail2ban is installed), run on the linear-time
    /// engine: a long line without a date costs one pass per template, not
    /// a backtracking search from every position (about 110 ms per 16 KiB
    /// line before; `bench/date-worst` measures it).
    #[test]
    fn date_templates_of_long_lines_without_a_date_run_in_linear_time() {
        let mut patterns = vec![
            None,
            Some("{^LN-BEG}".to_string()),
            Some(r"^[^\[]*\[({DATE})".to_string()),
            Some("EPOCH".to_string()),
        ];
        let stock = std::path::Path::new("/etc/fail2ban");
        if let Ok(dir) = std::fs::read_dir(stock.join("filter.d")) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(name) = name.strip_suffix(".conf") else {
                    continue;
                };
                let Ok(f) =
                    crate::fail2ban::load_filter(stock, name, &[], &Default::default(), None)
                else {
                    continue;
                };
                if let crate::DateRule::Fail2ban(p) = f.def.date {
                    patterns.push(p);
                }
            }
        }
        for p in patterns {
            let f = DateFinder::new(p.as_deref()).unwrap();
            assert_eq!(backtracking(&f), 0, "datepattern {p:?}");
        }
        // A template banset cannot rewrite still works, on the bounded
        // backtracking engine.
        let f = DateFinder::new(Some(r"^(?<=^)%H:%M:%S")).unwrap();
        assert_eq!(backtracking(&f), 1);
        assert_eq!(cut(&f, "12:00:00 x"), " x");
    }

    /// The default templates compile when a line first needs one
    /// (`Template::Default`), where nothing can report an error: each must
    /// compile, and as the eager compile did, on the linear-time engine.
    #[test]
    fn every_default_template_compiles() {
        let (anchored, free) = defaults().unwrap();
        assert_eq!((anchored.len(), free.len()), (17, 14));
        for t in anchored.iter().chain(free) {
            let Template::Default(lazy) = t else {
                panic!("{t:?} is not a default template");
            };
            let compiled = lazy.regex.compile().unwrap();
            assert!(
                matches!(compiled, Template::Linear { .. }),
                "{:?}",
                lazy.regex
            );
        }
    }

    /// Compiled later, a default template finds what it found compiled at
    /// start-up, Python's Unicode digits included.
    #[test]
    fn a_default_template_compiled_on_first_use_finds_the_same_dates() {
        let eager = |p: Option<&str>| {
            let mut f = DateFinder::new(p).unwrap();
            for t in &mut f.templates {
                if let Template::Default(lazy) = t {
                    *t = lazy.regex.compile().unwrap();
                }
            }
            f
        };
        let lines = [
            "Nov 21 12:00:00 h sshd[1]: x",
            "x Nov 21 12:00:00 h",
            "2026-11-21 12:00:00,123 WARN 1.2.3.4",
            "[Sat Jun 01 11:23:08 2013] [error] x",
            "1.2.3.4 - - [21/Nov/2026:12:00:00 +0000] \"GET /\"",
            "1795262400 x",
            "type=USER_AUTH msg=audit(1795262400.123:42): x",
            "@4000000063b5f0f01a2b3c4d x",
            // Arabic-Indic and fullwidth digits are `\d` to Python too.
            "2026-11-21 1\u{662}:00:00 x",
            "x Nov 2\u{ff11} 12:00:00 x",
            "no date 1.2.3.4",
        ];
        let defaults = DateFinder::new(None).unwrap();
        assert!(defaults.find(lines[8]).is_some() && defaults.find(lines[9]).is_some());
        for p in [None, Some("{^LN-BEG}"), Some("{^LN-BEG}TAI64N\n{^LN-BEG}")] {
            let (lazy, eager) = (DateFinder::new(p).unwrap(), eager(p));
            for line in lines {
                assert_eq!(lazy.find(line), eager.find(line), "{p:?} {line:?}");
                assert_eq!(
                    lazy.reaches_defaults(line.as_bytes()),
                    eager.reaches_defaults(line.as_bytes()),
                    "{p:?} {line:?}"
                );
            }
        }
    }

    #[test]
    fn a_separator_repeated_by_back_reference_must_repeat() {
        let f = DateFinder::new(None).unwrap();
        assert_eq!(cut(&f, "2026-11-21 12:00:00 x"), " x");
        assert_eq!(cut(&f, "2026/11/21 12:00:00 x"), " x");
        assert_eq!(cut(&f, "2026.11.21 12:00:00 x"), " x");
        assert_eq!(cut(&f, "2026-11/21 12:00:00 x"), "2026-11/21 12:00:00 x");
        assert_eq!(
            unfold_separator(r"(\d(?P<_sep>[-/.])\d(?P=_sep)\d)"),
            r"(\d(?:\-\d\-|/\d/|\.\d\.)\d)"
        );
        // Not plain enough: left to the backtracking engine.
        let odd = r"(\d(?P<_sep>[a-z])(\d)(?P=_sep)\d)";
        assert_eq!(unfold_separator(odd), odd);
    }

    #[test]
    fn dates_glued_to_words_are_not_dates() {
        let f = DateFinder::new(None).unwrap();
        assert_eq!(cut(&f, "x2026-11-21 12:00:00 y"), "x2026-11-21 12:00:00 y");
        assert_eq!(cut(&f, "x 2026-11-21 12:00:00y"), "x 2026-11-21 12:00:00y");
        assert_eq!(cut(&f, "x [2026-11-21 12:00:00] y"), "x [] y");
    }

    #[test]
    fn a_line_that_is_not_utf8_still_has_its_date_cut() {
        let f = DateFinder::new(None).unwrap();
        let line = b"x\xff [21/Nov/2026:12:00:00 +0000] y\xfe 1.2.3.4";
        assert_eq!(&f.strip(line)[..], b"x\xff [] y\xfe 1.2.3.4");
    }

    #[test]
    fn line_begin_only_and_custom_patterns() {
        let f = DateFinder::new(Some("{^LN-BEG}")).unwrap();
        assert_eq!(cut(&f, "Nov 21 12:00:00 h x"), " h x");
        assert_eq!(cut(&f, "x Nov 21 12:00:00 h"), "x Nov 21 12:00:00 h");
        let f = DateFinder::new(Some(r"^%Y/%m/%d %H:%M:%S")).unwrap();
        assert_eq!(cut(&f, "2026/11/21 12:00:00 [error] x"), " [error] x");
        // Around {DATE}, fail2ban cuts the pattern's whole match.
        let f = DateFinder::new(Some(r"^\[{DATE}\]")).unwrap();
        assert_eq!(cut(&f, "[2026-11-21 12:00:00] x"), " x");
        let f = DateFinder::new(Some(r"^<\d+>\d+\s+{DATE}")).unwrap();
        assert_eq!(
            cut(&f, "<38>1 2019-07-08T17:40:16.954167-04:00 h sshd 5 - - x"),
            " h sshd 5 - - x"
        );
        let f = DateFinder::new(Some("{NONE}")).unwrap();
        assert_eq!(cut(&f, "Nov 21 12:00:00 h"), "Nov 21 12:00:00 h");
        assert!(DateFinder::new(Some("%c")).is_err());
    }
}
