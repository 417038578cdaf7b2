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

use crate::compiled::{Captured, CompiledFilter, Spans};
use crate::state::MAX_CONNECTIONS;
use crate::tags::parse_host;

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

/// Whom a match names.
pub(crate) enum Offender {
    /// An address.
    Address(Target),
    /// No address tag took part in the match (a connection's line that
    /// gets its address from another line).
    None,
    /// The tag matched text that is not an address: a host name (never
    /// resolved: the name is the attacker's to choose) or a malformed
    /// address. Such a line counts against no one.
    NotAnAddress,
}

/// The offender of a match: the failregex's address capture, else the
/// prefregex's.
pub(crate) fn offender(fail: Option<&[u8]>, pref: Option<&[u8]>) -> Offender {
    match fail.or(pref) {
        None => Offender::None,
        Some(text) => parse_host(text).map_or(Offender::NotAnAddress, Offender::Address),
    }
}

/// fail2ban's reading of one connection's lines, for filters whose
/// prefregex marks the connection (`<F-MLFID>`): a failure line without an
/// address (`Disconnecting: Too many authentication failures`) takes the
/// address an earlier line of the same connection gave, or waits for a
/// later one; a line marked `<F-NOFAIL>` (`Connection closed by ADDR`) is a
/// failure only when it completes such a waiting failure; `<F-MLFGAINED>`
/// (a login) clears it; `<F-MLFFORGET>` ends the connection. A connection
/// that tried more than one user name fails even on `<F-NOFAIL>` and
/// `<F-MLFGAINED>` lines, so a login after guessing other users' passwords
/// does not wipe the guesses. The connection's id is text the daemon writes
/// (host name, program, pid) before anything a client sends.
/// Returns the address to count a failure of, if the line is one.
pub(crate) fn connection_step(
    filter: &CompiledFilter,
    id: &[u8],
    here: Option<Target>,
    c: &Captured,
    user: Option<&[u8]>,
) -> Option<Target> {
    let Some(cache) = &filter.connections else {
        return if c.nofail || c.gained { None } else { here };
    };
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    let known = cache.open.get(id).copied();
    let user = user.map(|u| {
        use std::hash::BuildHasher;
        cache.user_hasher.hash_one(u)
    });
    let mut state = known.unwrap_or_default();
    if known.is_some() || !c.forget {
        match (state.first_user, user) {
            (None, Some(u)) => state.first_user = Some(u),
            (Some(first), Some(u)) if first != u => state.several_users = true,
            _ => {}
        }
    }
    let addr = here.or(state.addr);
    // A login clears a waiting failure; a waiting failure or several
    // users make this line a failure whatever its marks say.
    let waiting = state.pending && !c.gained;
    let nofail = (c.nofail || c.gained) && !waiting && !state.several_users;
    let (fail, pending) = if nofail {
        (false, false)
    } else {
        (addr.is_some(), addr.is_none())
    };
    if c.forget {
        cache.open.remove(id);
    } else {
        if cache.open.len() >= MAX_CONNECTIONS && known.is_none() {
            cache.open.clear();
        }
        state.addr = addr;
        state.pending = pending;
        cache.open.insert(id.to_vec(), state);
    }
    addr.filter(|_| fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{loosen, skeleton, Skeleton};
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
        for p in &mut std::sync::Arc::get_mut(&mut slow.patterns).unwrap().fail {
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
        assert_eq!(
            loosen(r"[(?=x)]\(?!y\)(?=z)a").unwrap(),
            r"(?:[(?=x)]|[\x80-\xff]+)\(?!y\)a"
        );
        assert_eq!(
            loosen(r"(?P<n>a)(?P=n)\1(?>b)").unwrap(),
            "(?P<n>a)(?s:.*?)(?s:.*?)(?:b)"
        );
        assert_eq!(loosen(r"(?(<n>)y|z)").unwrap(), "(?:y|z|)");
        assert_eq!(loosen(r"(?(n)(?=a)y)x").unwrap(), "(?:y|)x");
    }
}
