//! The state a compiled filter keeps between lines: a multi-line filter's
//! latest lines and its failregexes' linear-time skeletons, and the open
//! connections of a filter whose prefregex marks them (`<F-MLFID>`). Data
//! only; the steps that read and change it are in [`crate::multiline`].

use std::collections::VecDeque;

use banset_core::Target;

use crate::filter::plain_regex;

/// The latest lines of a multi-line filter, with the date cut out of each.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    pub(crate) lines: VecDeque<Vec<u8>>,
    pub(crate) max: usize,
    /// The last search of these lines found no match (so a new match must
    /// end in the next line).
    pub(crate) settled: bool,
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

/// A multi-line failregex loosened for the linear-time engine: it matches
/// wherever the failregex matches (and more).
#[derive(Debug)]
pub(crate) struct Skeleton {
    /// Somewhere in the buffer.
    pub(crate) anywhere: regex::bytes::Regex,
    /// A match that ends in the buffer's last line (or at its start).
    pub(crate) ending_last: regex::bytes::Regex,
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

/// Any run of non-ASCII bytes: what one character of the backtracking
/// engine's Unicode text may be on the plain engine's ASCII bytes.
const NON_ASCII: &str = r"[\x80-\xff]+";

/// Rewrites an expanded pattern into plain regex syntax that matches at
/// least what it matches: see [`skeleton`].
///
/// The exact pattern runs on fancy-regex over Unicode text (invalid bytes
/// read as U+FFFD), the loosened one on the `regex` crate over bytes with
/// ASCII classes. So that the loosened one still matches wherever the
/// exact one does, whatever the line holds, every construct that matches
/// one character may also match one run of non-ASCII bytes (`\d`, `\w`,
/// `\s` and their negations, `.`, classes), word boundaries (Unicode
/// ones differ) are dropped, and a case-insensitive pattern's `k` and `s`
/// may be any non-ASCII run (the Kelvin sign and the long s fold to them).
pub(crate) fn loosen(p: &str) -> Option<String> {
    loosen_with(p, folds_case(p))
}

/// Whether a group header of `p` turns case-insensitive matching on.
fn folds_case(p: &str) -> bool {
    p.match_indices("(?").any(|(at, _)| {
        p[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .take_while(|c| *c != '-')
            .any(|c| c == 'i')
    })
}

fn loosen_with(p: &str, folds: bool) -> Option<String> {
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() * 2);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = false;
    while i < c.len() {
        if c[i] == '\\' {
            let n = *c.get(i + 1)?;
            if !in_class && n.is_ascii_digit() && n != '0' {
                out.push_str("(?s:.*?)");
            } else if !in_class && matches!(n, 'b' | 'B') {
                // Dropped: an assertion less matches more.
            } else if !in_class && matches!(n, 'd' | 'w' | 's' | 'D' | 'W' | 'S') {
                out.push_str(&format!("(?:\\{n}|{NON_ASCII})"));
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
                out.push_str(&format!("]|{NON_ASCII})"));
                i += 1;
                continue;
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
            out.push_str("(?:[");
            i += 1;
        } else if c[i] == '.' {
            out.push_str(&format!("(?:.|{NON_ASCII})"));
            i += 1;
        } else if folds && matches!(c[i], 'k' | 'K' | 's' | 'S') {
            out.push_str(&format!("(?:{}|{NON_ASCII})", c[i]));
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
            out.push_str(&loosen_with(&inner, folds)?);
            out.push_str("|)");
            i = end;
        } else if rest.starts_with("(?>") {
            out.push_str("(?:");
            i += 3;
        } else if rest.starts_with("(?") {
            // A group's header (`(?P<name>`, flags): copied as it is.
            let end = i + c[i..].iter().position(|&x| matches!(x, ':' | ')' | '>'))?;
            out.extend(&c[i..=end]);
            i = end + 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A plain-regex gate for a pattern with a positive look-ahead that ends
/// an alternative of a top-level group, as postfix's `ddos` prefregex
/// has (`disconnect(?= from \S+(?: \S+=\d+)* auth=0/...)`): the pattern cut
/// after that group, each such look-ahead made to consume what it looks
/// at, then loosened as [`loosen`] does. [`loosen`] drops a look-ahead,
/// so the skeleton takes every `disconnect` line; the gate keeps it.
///
/// It matches wherever the pattern does: a match of the pattern goes
/// through the group by one alternative; if that alternative ends in
/// `(?=B)`, `B` matched the text right after it, so the cut pattern with
/// `B` consumed matches that text too, and what followed the group is no
/// longer asked for. `None` when there is no such look-ahead, when the
/// pattern has a top-level `|` (cutting one branch would lose the other),
/// or when the group is quantified (it may match no text at all).
pub(crate) fn lookahead_gate(p: &str) -> Option<String> {
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    // The last top-level group with such look-aheads: (end, their opens).
    let mut found: Option<(usize, Vec<usize>)> = None;
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '[' => i = class_end(&c, i)?,
            '|' => return None,
            '(' => {
                let end = group_end(&c, i)?;
                let looks = ending_lookaheads(&c, i, end)?;
                let quantified = matches!(c.get(end), Some('?' | '*' | '+' | '{'));
                if !looks.is_empty() && !quantified {
                    found = Some((end, looks));
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    let (end, looks) = found?;
    let mut cut: Vec<char> = c[..end].to_vec();
    for at in looks {
        // `(?=` becomes `(?:`: same length, so the other positions hold.
        cut[at + 2] = ':';
    }
    loosen(&cut.iter().collect::<String>())
}

/// A backtracking pattern `^AB` cut before its first top-level part that
/// needs the backtracking engine (a group with a look-around, a
/// back-reference or a conditional): the plain `^A` and the rest `B`, as
/// `(A, B)`. Issue 16: postfix's aggressive prefregex spent 20,000
/// instructions a line in the backtracking engine, most of them walking
/// its `__prefix_line`, which needs no backtracking.
///
/// The backtracking engine tries `A`'s ways of matching in their order
/// and `B` after each; the first is the one the plain engine's
/// leftmost-first match of `^A` takes. So when `B` matches at that end,
/// the two matches make the pattern's own, and [`crate::compiled`] asks
/// the whole pattern only when `B` does not match there.
///
/// `None` when `A` would be `^` alone or is not plain syntax, when a
/// top-level `|` makes the pattern no concatenation, when a top-level
/// group sets flags for what follows it, or when `B` may read more than
/// the one character before its start (a look-behind, a back-reference,
/// a conditional on a group `A` may hold): `B` runs on the rest of the
/// line and that character (for `\b`, `^`).
pub(crate) fn plain_lead(p: &str) -> Option<(String, String)> {
    let c: Vec<char> = p.chars().collect();
    if c.first() != Some(&'^') || !crate::prefsplit::top_level_plain(p) {
        return None;
    }
    let needs_backtracking = |part: &[char]| {
        let s: String = part.iter().collect();
        ["(?=", "(?!", "(?<=", "(?<!", "(?(", "(?P="]
            .iter()
            .any(|a| s.contains(a))
            || part
                .windows(2)
                .any(|w| w[0] == '\\' && matches!(w[1], '1'..='9'))
    };
    let mut i = 1;
    let cut = loop {
        match *c.get(i)? {
            '\\' if matches!(c.get(i + 1), Some('1'..='9')) => break i,
            '\\' => i += 2,
            '[' => i = class_end(&c, i)?,
            '(' => {
                let end = group_end(&c, i)?;
                let flags_only = c[i + 1] == '?'
                    && end - i > 3
                    && c[i + 2..end - 1]
                        .iter()
                        .all(|x| x.is_ascii_alphabetic() || *x == '-');
                if flags_only {
                    // Its flags hold for the rest of the pattern.
                    return None;
                }
                if needs_backtracking(&c[i..end]) {
                    break i;
                }
                i = end;
            }
            _ => i += 1,
        }
    };
    let (lead, rest) = c.split_at(cut);
    if lead.len() < 2 || reads_far_back(rest)? {
        return None;
    }
    let lead: String = lead.iter().collect();
    plain_regex(&lead).ok()?;
    Some((lead, rest.iter().collect()))
}

/// Whether pattern text `c` may read more than one character before
/// where its match starts: a look-behind, a back-reference or a
/// conditional, which asks whether a group matched (outside classes).
/// `None` when it cannot be read.
fn reads_far_back(c: &[char]) -> Option<bool> {
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => {
                if matches!(c.get(i + 1), Some('k' | '1'..='9')) {
                    return Some(true);
                }
                i += 2;
            }
            '[' => i = class_end(c, i)?,
            '(' if ["(?<=", "(?<!", "(?P=", "(?("]
                .iter()
                .any(|a| c[i..].starts_with(&a.chars().collect::<Vec<_>>())) =>
            {
                return Some(true)
            }
            _ => i += 1,
        }
    }
    Some(false)
}

/// The index just after the class opening at `open` (`[]...]` and
/// `[^]...]` start with a literal `]`).
fn class_end(c: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if c.get(i) == Some(&'^') {
        i += 1;
    }
    if c.get(i) == Some(&']') {
        i += 1;
    }
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            ']' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The opens of the positive look-aheads inside the group `c[open..end]`
/// that end one of its alternatives (followed by its `|` or its closing
/// parenthesis), or end an alternative of an unquantified group that does
/// so, and so on down. `Some(empty)` for a look-around group itself: it is
/// no alternative of its own.
fn ending_lookaheads(c: &[char], open: usize, end: usize) -> Option<Vec<usize>> {
    let header: String = c[open..end.min(open + 4)].iter().collect();
    if ["(?=", "(?!", "(?<=", "(?<!"]
        .iter()
        .any(|a| header.starts_with(a))
    {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut i = open + 1;
    while i < end - 1 {
        match c[i] {
            '\\' => i += 2,
            '[' => i = class_end(c, i)?,
            '(' => {
                let inner = group_end(c, i)?;
                if matches!(c.get(inner), Some('|' | ')')) {
                    if c[i + 1..].starts_with(&['?', '=']) {
                        out.push(i);
                    } else {
                        // A group that ends the alternative: its own
                        // alternatives end this one's.
                        out.extend(ending_lookaheads(c, i, inner)?);
                    }
                }
                i = inner;
            }
            _ => i += 1,
        }
    }
    Some(out)
}

/// The named groups of `p` that take part in every match of it: those not
/// inside an alternation, an optional or repeated-from-zero group, a
/// look-around or a conditional. `None` when `p` cannot be read.
pub(crate) fn always_groups(p: &str) -> Option<Vec<String>> {
    let c: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    always_in(&c, 0, c.len(), &mut out)?;
    Some(out)
}

/// [`always_groups`] of the region `c[from..to]`, which takes part in
/// every match.
fn always_in(c: &[char], from: usize, to: usize, out: &mut Vec<String>) -> Option<()> {
    // First: a `|` directly in the region makes nothing in it certain.
    let mut i = from;
    let mut children = Vec::new();
    while i < to {
        match c[i] {
            '\\' => i += 2,
            '[' => i = class_end(c, i)?,
            '|' => return Some(()),
            '(' => {
                let end = group_end(c, i)?;
                children.push((i, end));
                i = end;
            }
            _ => i += 1,
        }
    }
    for (open, end) in children {
        let zero = match c.get(end) {
            Some('?' | '*') => true,
            Some('{') => c.get(end + 1) == Some(&'0') || c.get(end + 1) == Some(&','),
            _ => false,
        };
        let header: String = c[open..end.min(open + 4)].iter().collect();
        let special = header.starts_with("(?=")
            || header.starts_with("(?!")
            || header.starts_with("(?<=")
            || header.starts_with("(?<!")
            || header.starts_with("(?(");
        if zero || special {
            continue;
        }
        let name_at = ["(?P<", "(?<"]
            .iter()
            .find(|h| header.starts_with(**h))
            .map(|h| open + h.len());
        let body = match name_at {
            Some(at) => {
                let close = at + c[at..end].iter().position(|&x| x == '>')?;
                out.push(c[at..close].iter().collect());
                close + 1
            }
            // `(?:`, `(?i:`, `(?i)` (flags only: an empty body), `(`.
            None if c[open + 1] == '?' => {
                open + 2
                    + c[open + 2..end]
                        .iter()
                        .position(|&x| matches!(x, ':' | ')'))?
                    + 1
            }
            None => open + 1,
        };
        if body < end {
            always_in(c, body, end - 1, out)?;
        }
    }
    Some(())
}

/// The scan of a two-stage filter's prefregex with its content group
/// replaced by "some failregex matches in here": the failregexes' scans
/// (each matching wherever its failregex does), with their anchors and
/// group names dropped, anywhere in the content. It matches every line
/// where the prefregex matches and a failregex then matches its content,
/// so a line it rejects needs neither (most lines of a two-stage filter's
/// daemon, whose prefregex takes them all). `None` when the prefregex
/// scan has no content group.
pub(crate) fn with_content(pref: &str, fail: &[&str]) -> Option<String> {
    let open = ["(?P<content>", "(?P<f_content>"]
        .iter()
        .find_map(|g| pref.find(g))?;
    let c: Vec<char> = pref[open..].chars().collect();
    let end: usize = c[..group_end(&c, 0)?].iter().map(|ch| ch.len_utf8()).sum();
    let any: Vec<String> = fail
        .iter()
        .map(|f| unanchored(f).map(|f| format!("(?:{f})")))
        .collect::<Option<_>>()?;
    Some(format!(
        "{}(?:.*?(?:{}).*){}",
        &pref[..open],
        any.join("|"),
        &pref[open + end..]
    ))
}

/// The scan of a two-stage filter split per failregex: for each failregex,
/// the prefregex's head (`head`, [`crate::prefsplit::content_head`]) then
/// that failregex's scan where the content starts (or anywhere in the
/// content, for one not anchored there). Entry `i` matches every line
/// where the prefregex matches and failregex `i`'s scan matches its
/// content, so one pass of the set over the line says which failregexes
/// to run: no second scan of the content (issue 16).
///
/// The content is the rest of the line after the head's match (no line
/// end in it), so the scan's `$` and `\z` mean the same in the line as in
/// the content; what means "the content's start" (`^`, `\A`) or looks at
/// the byte before it (`\b`, `\B`) is dropped, which only loosens. `None`
/// when a pattern cannot be read, or when the head sets flags (`(?x)`
/// would change how the failregex reads).
pub(crate) fn with_each_content(head: &str, fail: &[&str]) -> Option<Vec<String>> {
    if head.contains("(?")
        && head.match_indices("(?").any(|(at, _)| {
            head[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
                .any(|c| c == 'x')
        })
    {
        return None;
    }
    fail.iter()
        .map(|f| {
            let anchored = f.starts_with('^') && crate::prefsplit::top_level_plain(f);
            let placed = placed(f)?;
            Some(if anchored {
                format!("{head}(?:{placed})")
            } else {
                format!("{head}.*?(?:{placed})")
            })
        })
        .collect()
}

/// `p` with what reads the text before it (`^`, `\A`, `\b`, `\B`) dropped
/// and its named groups unnamed, to follow another pattern's text: it
/// matches there wherever `p` matches from the start of a text of its
/// own that ends where the line does.
fn placed(p: &str) -> Option<String> {
    loosened(p, &['A', 'b', 'B'], &['^'])
}

/// `p` without its anchors (`^`, `$`, `\A`, `\z`) and with its named
/// groups unnamed, to sit inside another pattern: it matches at least
/// where `p` does.
fn unanchored(p: &str) -> Option<String> {
    loosened(p, &['A', 'z', 'Z'], &['^', '$'])
}

/// `p` without the assertions given (escapes `\X` for X in `escapes`,
/// bare characters in `bare`, outside classes) and with its named groups
/// unnamed. An assertion less matches more, so the result matches at
/// least where `p` does; `None` for a pattern that ends inside an escape
/// or a group name.
fn loosened(p: &str, escapes: &[char], bare: &[char]) -> Option<String> {
    let c: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = false;
    while i < c.len() {
        let ch = c[i];
        if ch == '\\' {
            let n = *c.get(i + 1)?;
            if in_class || !escapes.contains(&n) {
                out.push(ch);
                out.push(n);
            }
            i += 2;
            class_start = false;
            continue;
        }
        if in_class {
            if ch == ']' && !class_start {
                in_class = false;
            }
            class_start = class_start && ch == '^';
            out.push(ch);
            i += 1;
            continue;
        }
        let rest: String = c[i..c.len().min(i + 4)].iter().collect();
        if ch == '[' {
            in_class = true;
            class_start = true;
            out.push(ch);
        } else if bare.contains(&ch) {
            // Dropped: an assertion less matches more.
        } else if rest.starts_with("(?P<")
            || (rest.starts_with("(?<") && !rest.starts_with("(?<=") && !rest.starts_with("(?<!"))
        {
            i += c[i..].iter().position(|&x| x == '>')?;
            out.push_str("(?:");
        } else {
            out.push(ch);
        }
        i += 1;
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

/// What one connection (one `<F-MLFID>`, e.g. sshd's `host sshd[PID]: `)
/// has shown so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Connection {
    /// The address an earlier line of the connection gave.
    pub(crate) addr: Option<Target>,
    /// A failure was seen before its address was known.
    pub(crate) pending: bool,
    /// Keyed hash of the first user name the connection tried.
    pub(crate) first_user: Option<u64>,
    /// It tried another user name since.
    pub(crate) several_users: bool,
}

/// Open connections of a filter, by their `<F-MLFID>` text.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    pub(crate) open: rustc_hash::FxHashMap<Vec<u8>, Connection>,
    /// User names are the client's text: they are compared by a hash with
    /// a secret key, so no one can pick two names that collide.
    pub(crate) user_hasher: std::collections::hash_map::RandomState,
}

/// Connections remembered per filter; beyond this the memory starts over
/// (a flood of connections that never end must not grow it without bound).
pub(crate) const MAX_CONNECTIONS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::always_groups;

    #[test]
    fn groups_in_every_match_are_those_outside_branches_options_and_look_arounds() {
        let g = |p: &str| always_groups(p).unwrap();
        assert_eq!(
            g(r"^(?P<a>(?P<b>x)) (?P<c>y)+ (?:(?P<d>z))"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(g(r"^(?P<a>x)|(?P<b>y)"), Vec::<String>::new());
        assert_eq!(
            g(r"^(?:(?P<a>x)|y)(?P<b>z)?(?P<c>z)*(?P<d>z){0,2}(?=(?P<e>q))(?(a)(?P<f>r))(?P<g>s)"),
            ["g"]
        );
        assert_eq!(g(r"^(?P<a>(?P<b>x)|y)(?i)(?P<c>[)(])"), ["a", "c"]);
    }
}
