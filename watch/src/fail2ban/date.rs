//! fail2ban's `datepattern`: where the date is in a line, so it can be cut
//! out before the filter's regexes run (fail2ban matches the line without
//! its date).
//!
//! banset reads the time of a failure only from syslog and ISO 8601 dates
//! (see [`crate::logtime`]); for other formats the date is found and
//! removed, and the failure counts at the time banset reads the line, which
//! for a followed log is the time it was written.

use fancy_regex::Regex;

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
    templates: Vec<Regex>,
    /// Later templates (unanchored) compete by position: the leftmost wins.
    leftmost_from: usize,
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
    pub fn new(datepattern: Option<&str>) -> Result<DateFinder, String> {
        let mut anchored = Vec::new();
        let mut free = Vec::new();
        let patterns: Vec<&str> = match datepattern {
            None => vec!["{DEFAULT}"],
            Some(p) => p.lines().map(str::trim).filter(|l| !l.is_empty()).collect(),
        };
        for p in patterns {
            let upper = p.to_uppercase();
            match upper.as_str() {
                "{DEFAULT}" | "{^LN-BEG}" => {
                    let (a, f) = defaults()?;
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
        })
    }

    /// Where the date of `line` is, if it has one.
    pub fn find(&self, line: &str) -> Option<DateSpan> {
        let span = |re: &Regex| -> Option<DateSpan> {
            let caps = re.captures(line).ok()??;
            let m = caps.get(1)?;
            Some(DateSpan {
                start: m.start(),
                end: m.end(),
            })
        };
        for re in &self.templates[..self.leftmost_from] {
            if let Some(s) = span(re) {
                return Some(s);
            }
        }
        self.templates[self.leftmost_from..]
            .iter()
            .filter_map(span)
            .min_by_key(|s| s.start)
    }

    /// `line` without its date (the text around it joined), as fail2ban
    /// hands it to the filter; the line itself when it has no date.
    pub fn strip<'l>(&self, line: &'l [u8]) -> std::borrow::Cow<'l, [u8]> {
        // A line that is not UTF-8 still has its date cut (see FancyText).
        let text = crate::filter::FancyText::new(line);
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

/// Templates anchored at the line's start, and the others.
type Templates = (Vec<Regex>, Vec<Regex>);

/// fail2ban's default templates, compiled once: those anchored at the
/// line's start (fail2ban tries them first), and the others.
fn defaults() -> Result<&'static Templates, String> {
    static DEFAULTS: std::sync::OnceLock<Result<Templates, String>> = std::sync::OnceLock::new();
    DEFAULTS
        .get_or_init(|| {
            let mut anchored = Vec::new();
            let mut free = Vec::new();
            for t in DEFAULT_TEMPLATES {
                let (re, line_begin) = template(t, false)?;
                if line_begin {
                    anchored.push(re);
                } else {
                    anchored.push(template(&format!("{{^LN-BEG}}{t}"), false)?.0);
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
fn template(pattern: &str, unbound: bool) -> Result<(Regex, bool), String> {
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
        let epoch = r"\d{10,11}\b(?:\.\d{3,6})?";
        let re = format!(r"(?:^|(?<=^\[)(?={epoch}\])|(?<=\baudit\()(?={epoch}:\d+\)))({epoch})");
        let re = Regex::new(&re).map_err(|e| format!("datepattern {pattern:?}: {e}"))?;
        return Ok((re, false));
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
    let re = Regex::new(&super::pyregex::translate(&re))
        .map_err(|e| format!("datepattern {pattern:?}: {e}"))?;
    Ok((re, line_begin))
}

fn has_plain_group(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len())
        .any(|i| b[i] == b'(' && (i == 0 || b[i - 1] != b'\\') && b.get(i + 1) != Some(&b'?'))
}

/// Replaces strptime directives (`%Y`, `%b`, `%ExY`...) with regexes.
fn directives(p: &str) -> Result<String, String> {
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
            .ok_or_else(|| format!("datepattern {p:?}: ends in %"))?;
        let ex = d == 'E' && chars.peek() == Some(&'x');
        if ex {
            chars.next();
            d = chars
                .next()
                .ok_or_else(|| format!("datepattern {p:?}: ends in %Ex"))?;
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
            ('b', _) | ('B', _) | ('h', _) => MONTHS,
            ('a', _) | ('A', _) => DAYS,
            ('j', _) => r"(?:36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
            ('w', _) => r"[0-6]",
            ('U', _) | ('W', _) => r"(?:5[0-3]|[0-4]\d|\d)",
            ('z', _) => r"(?:Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
            ('Z', _) => r"(?:Z|[A-Z]{3,5})",
            ('s', _) => r"\d{10,11}",
            _ => return Err(format!("datepattern {p:?}: %{d} is not supported")),
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
