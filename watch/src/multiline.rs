//! fail2ban's multi-line filters (`maxlines` > 1): the latest lines are
//! searched together, `^` and `$` at every line, and a match takes the
//! lines it spans out of the buffer.
//!
//! Searching the whole buffer with the backtracking engine for every line
//! is slow (slapd's filter buffers 20 lines and refers back to earlier
//! groups), so each failregex has a [`Skeleton`]: the same regex loosened
//! into plain syntax (back-references become "anything", look-arounds are
//! dropped), which matches wherever the failregex does and runs on the
//! linear-time engine. The backtracking search runs only where the skeleton
//! matches. And when the previous search found nothing, a match now must end
//! in the newest line (the older lines were all in the previous buffer), so
//! the skeleton must too.

use std::collections::VecDeque;

use banset_core::Target;

use crate::filter::{plain_regex, Captured, CompiledFilter, Spans};
use crate::matcher::{connection_step, offender, Offender};

/// The latest lines of a multi-line filter, with the date cut out of each.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    lines: VecDeque<Vec<u8>>,
    max: usize,
    /// The last search of these lines found no match (so a new match must
    /// end in the next line).
    settled: bool,
}

impl LineBuffer {
    pub(crate) fn new(max: usize) -> LineBuffer {
        LineBuffer {
            lines: VecDeque::new(),
            max,
            settled: true,
        }
    }
}

/// Joins lines as fail2ban does for a search: each ends with a newline.
fn joined<'a>(lines: impl Iterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l);
        buf.push(b'\n');
    }
    buf
}

/// One line of a multi-line filter: `line` joins the buffer, and the
/// failregexes search the whole buffer, as fail2ban does. The lines a match
/// spans leave the buffer, except those a `<SKIPLINES>` took, which stay
/// for later matches. An ignoreregex is searched in the matched lines.
/// Returns (failregex, address, nofail, ignored).
pub(crate) fn step(
    filter: &CompiledFilter,
    line: &[u8],
) -> Option<(usize, Option<Target>, bool, bool)> {
    let lines = filter.lines.as_ref()?;
    let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
    lines.lines.push_back(line.to_vec());
    while lines.lines.len() > lines.max {
        lines.lines.pop_front();
    }
    let buf = joined(lines.lines.iter());
    // Without MULTILINE, fail2ban's `$` also matches before the last
    // newline: search such patterns without it.
    let whole = &buf[..buf.len() - 1];
    // What the failregexes search: the buffer, or a prefregex's content.
    let (text, pref): (std::borrow::Cow<'_, [u8]>, _) = match &filter.pref {
        Some(p) => {
            let pref = p.exact.capture(whole)?;
            let text = match &pref.content {
                Some(r) => {
                    let mut t = whole[r.clone()].to_vec();
                    t.push(b'\n');
                    t.into()
                }
                None => buf.as_slice().into(),
            };
            (text, Some(pref))
        }
        None => (buf.as_slice().into(), None),
    };
    let from_content = pref.as_ref().is_some_and(|p| p.content.is_some());
    // Through a prefregex the failregexes see new text every time.
    let settled = lines.settled && pref.is_none();
    for (r, pattern) in filter.fail.iter().enumerate() {
        let possible = match &pattern.skeleton {
            Some(s) if settled => s.ending_last.is_match(&text),
            Some(s) => s.anywhere.is_match(&text),
            None => true,
        };
        if !possible {
            continue;
        }
        let Some(m) = pattern.exact.capture_spans(&text, pattern.skips) else {
            continue;
        };
        // Which lines the match spans, and which of them a <SKIPLINES> took.
        let (matched, unmatched) = if from_content {
            // The content stands for the whole buffer (fail2ban's filters
            // do not combine a prefregex's content with maxlines).
            (lines.lines.drain(..).collect::<Vec<_>>(), Vec::new())
        } else {
            split_match(&mut lines.lines, &text, &m)
        };
        lines.lines = unmatched.into();
        // Other matches may be left in what remains.
        lines.settled = false;
        let matched_text = joined(matched.iter());
        let matched_text = &matched_text[..matched_text.len().saturating_sub(1)];
        let ignored = filter.ignore.iter().any(|p| p.exact.is_match(matched_text));
        let c = &m.captured;
        let target = match offender(
            c.host.clone().map(|h| &text[h]),
            pref.as_ref()
                .and_then(|p| p.host.clone())
                .map(|h| &whole[h]),
        ) {
            Offender::Address(t) => Some(t),
            Offender::None => None,
            // A host name: no failure, nothing for the connection.
            Offender::NotAnAddress => return Some((r, None, true, ignored)),
        };
        let marks = Captured {
            nofail: c.nofail || pref.as_ref().is_some_and(|p| p.nofail),
            gained: c.gained || pref.as_ref().is_some_and(|p| p.gained),
            forget: c.forget || pref.as_ref().is_some_and(|p| p.forget),
            ..Captured::default()
        };
        let id = pref
            .as_ref()
            .and_then(|p| p.mlfid.clone())
            .filter(|_| filter.connections.is_some());
        let Some(id) = id else {
            return Some((r, target, marks.nofail || marks.gained, ignored));
        };
        let user = c
            .user
            .clone()
            .map(|u| &text[u])
            .or_else(|| pref.as_ref()?.user.clone().map(|u| &whole[u]));
        let counted = connection_step(filter, &whole[id], target, &marks, user);
        return Some((r, counted, counted.is_none(), ignored));
    }
    lines.settled = true;
    None
}

/// fail2ban's split of a buffer at a match: the lines the match spans,
/// less those a `<SKIPLINES>` took (matched), and all others, in the order
/// fail2ban keeps them: the lines before, the skipped ones, the lines after.
fn split_match(
    lines: &mut VecDeque<Vec<u8>>,
    text: &[u8],
    m: &Spans,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let newlines = |upto: usize| text[..upto].iter().filter(|&&b| b == b'\n').count();
    // The match's first line starts after the newline before its start;
    // its last line ends at the newline at or after its last byte.
    let first = newlines(m.whole.start);
    let last_end = m.whole.end.max(m.whole.start + 1).min(text.len());
    let last = newlines(last_end - 1) + 1;
    let all: Vec<Vec<u8>> = lines.drain(..).collect();
    let last = last.min(all.len());
    let first = first.min(last);
    let mut unmatched: Vec<Vec<u8>> = all[..first].to_vec();
    let mut matched: Vec<Vec<u8>> = all[first..last].to_vec();
    let mut from = 0;
    for range in &m.skipped {
        let gap = &text[range.clone()];
        let gap = gap.strip_suffix(b"\n").unwrap_or(gap);
        if range.is_empty() {
            continue;
        }
        for skipped in gap.split(|&b| b == b'\n') {
            if let Some(at) = matched[from..].iter().position(|l| l == skipped) {
                unmatched.push(matched.remove(from + at));
                from += at;
            }
        }
    }
    unmatched.extend_from_slice(&all[last..]);
    (matched, unmatched)
}

/// A multi-line failregex loosened for the linear-time engine: it matches
/// wherever the failregex matches (and more).
#[derive(Debug)]
pub(crate) struct Skeleton {
    /// Somewhere in the buffer.
    anywhere: regex::bytes::Regex,
    /// A match that ends in the buffer's last line (or at its start).
    ending_last: regex::bytes::Regex,
}

/// The skeleton of an expanded failregex; `None` when its loosened form
/// is not plain regex syntax either (the failregex is then always run).
pub(crate) fn skeleton(expanded: &str) -> Option<Skeleton> {
    let loose = loosen(expanded)?;
    Some(Skeleton {
        anywhere: plain_regex(&loose).ok()?,
        // What the match leaves of its last line, then the buffer's end.
        ending_last: plain_regex(&format!("(?:{loose})[^\\n]*\\n?\\z")).ok()?,
    })
}

/// Rewrites an expanded pattern into plain regex syntax that matches at
/// least what it matches: see [`skeleton`].
fn loosen(p: &str) -> Option<String> {
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = false;
    while i < c.len() {
        if c[i] == '\\' {
            let n = *c.get(i + 1)?;
            if !in_class && n.is_ascii_digit() && n != '0' {
                out.push_str("(?s:.*?)");
            } else {
                out.push('\\');
                out.push(n);
            }
            i += 2;
            class_start = false;
            continue;
        }
        if in_class {
            if c[i] == ']' && !class_start {
                in_class = false;
            }
            class_start = class_start && c[i] == '^';
            out.push(c[i]);
            i += 1;
            continue;
        }
        let rest: String = c[i..c.len().min(i + 4)].iter().collect();
        if c[i] == '[' {
            in_class = true;
            class_start = true;
            out.push('[');
            i += 1;
        } else if rest.starts_with("(?P=") {
            // A back-reference: any text.
            let end = c[i..].iter().position(|&x| x == ')')?;
            out.push_str("(?s:.*?)");
            i += end + 1;
        } else if ["(?=", "(?!", "(?<=", "(?<!"]
            .iter()
            .any(|a| rest.starts_with(a))
        {
            // A look-around: dropped, with its contents.
            i = group_end(&c, i)?;
        } else if rest.starts_with("(?(") {
            // A conditional `(?(name)yes|no)`: either branch, or nothing
            // (`(?(name)yes)` matches nothing when the group did not).
            let end = group_end(&c, i)?;
            let body = i + 3 + c[i + 3..].iter().position(|&x| x == ')')? + 1;
            let inner: String = c[body..end - 1].iter().collect();
            out.push_str("(?:");
            out.push_str(&loosen(&inner)?);
            out.push_str("|)");
            i = end;
        } else if rest.starts_with("(?>") {
            out.push_str("(?:");
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The index just after the group opening at `open`.
fn group_end(c: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_class = false;
    let mut i = open;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::expand_fail2ban;

    fn skel(p: &str) -> Skeleton {
        let (e, _) = expand_fail2ban(&format!("(?m){p}")).unwrap();
        skeleton(&e).unwrap_or_else(|| panic!("no skeleton for {e}"))
    }

    #[test]
    fn a_skeleton_matches_wherever_its_failregex_does() {
        // slapd: back-references and a look-ahead.
        let s = skel(
            r"^(?P<__prefix>\S+ )conn=(?P<_c>\d+) ACCEPT from IP=<HOST>\s*<SKIPLINES>(?P=__prefix)conn=(?P=_c) op=\d+ RESULT(?:\s(?!err)\S+=\S*)* err=49 text=$",
        );
        let accept = "h conn=7 ACCEPT from IP=192.0.2.1\n";
        let fail = "h conn=7 op=1 RESULT tag=97 err=49 text=\n";
        let other = "h conn=8 op=1 SRCH\n";
        let buf = |lines: &[&str]| lines.concat().into_bytes();
        assert!(s.anywhere.is_match(&buf(&[accept, other, fail])));
        assert!(s.ending_last.is_match(&buf(&[accept, other, fail])));
        // The failure is not on the last line: not a new match.
        assert!(s.anywhere.is_match(&buf(&[accept, fail, other])));
        assert!(!s.ending_last.is_match(&buf(&[accept, fail, other])));
        assert!(!s.anywhere.is_match(&buf(&[other, fail])));
        // guacamole: `^.*\n` before the line with the address.
        let s =
            skel(r#"^.*\nWARNING: Authentication attempt from <HOST> for user "[^"]*" failed\.$"#);
        assert!(s.ending_last.is_match(
            b"x\nWARNING: Authentication attempt from 192.0.2.1 for user \"u\" failed.\n"
        ));
        assert!(!s.anywhere.is_match(b"x\nWARNING: something else\n"));
        // Conditionals become alternatives, flags stay.
        let s = skel(r"(?i)^(?P<u>a)?(?(u)b|c) <HOST>\nEND$");
        assert!(s.anywhere.is_match(b"C 192.0.2.1\nend\n"));
    }

    /// The skeletons only skip searches that could not match: with and
    /// without them, a multi-line filter finds the same failures.
    #[test]
    fn skeletons_change_no_result() {
        use crate::filter::{DateRule, FilterDef, Pattern};
        let def = FilterDef {
            name: "ml".into(),
            failregex: vec![
                Pattern::new(
                    r"^(?P<__p>\S+ )conn=(?P<_c>\d+) ACCEPT from IP=<HOST>\s*<SKIPLINES>(?P=__p)conn=(?P=_c) op=\d+ RESULT(?:\s(?!err)\S+=\S*)* err=49 text=$",
                ),
                Pattern::new(r"^(?P<__p>\S+ )conn=(?P<_c>\d+) probe <HOST>$"),
            ],
            ignoreregex: vec![Pattern::new(r"IP=192\.0\.2\.13\b")],
            prefregex: None,
            date: DateRule::Fail2ban(Some("{NONE}".into())),
            maxlines: 8,
        };
        let fast = def.compile().unwrap();
        let mut slow = def.compile().unwrap();
        assert!(fast.fail.iter().all(|p| p.skeleton.is_some()));
        for p in &mut slow.fail {
            p.skeleton = None;
        }
        let mut seed = 12345u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut found = 0;
        for i in 0..5_000 {
            let c = next(12);
            let line = match next(10) {
                0 | 1 => format!("h conn={c} ACCEPT from IP=192.0.2.{}", next(20)),
                2 => format!("h conn={c} op=1 RESULT tag=97 err=49 text="),
                3 => format!("h conn={c} op=1 RESULT tag=97 err=0 text="),
                4 => format!("h conn={c} probe 198.51.100.{}", next(9)),
                _ => format!("h conn={c} op=2 SRCH line {i}"),
            };
            let a = step(&fast, line.as_bytes());
            let b = step(&slow, line.as_bytes());
            assert_eq!(a, b, "line {i}: {line}");
            found += usize::from(a.is_some());
        }
        assert!(found > 250, "{found}");
    }

    #[test]
    fn loosening_keeps_classes_and_escapes() {
        assert_eq!(loosen(r"[(?=x)]\(?!y\)(?=z)a").unwrap(), r"[(?=x)]\(?!y\)a");
        assert_eq!(
            loosen(r"(?P<n>a)(?P=n)\1(?>b)").unwrap(),
            "(?P<n>a)(?s:.*?)(?s:.*?)(?:b)"
        );
        assert_eq!(loosen(r"(?(<n>)y|z)").unwrap(), "(?:y|z|)");
        assert_eq!(loosen(r"(?(n)(?=a)y)x").unwrap(), "(?:y|)x");
    }
}
