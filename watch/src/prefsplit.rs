//! A prefregex's capture without its content group.
//!
//! Most of fail2ban's prefregexes end in `<F-CONTENT>.+</F-CONTENT>$`:
//! the content is whatever the line has left after the prefix. Capturing
//! the whole pattern makes the regex crate's capture engines walk every
//! byte of the content (for sshd's `__prefix_line`, about half the cost of
//! a line). The head alone (the pattern before the content group) finds
//! the same groups, and the content is then the rest of the line:
//!
//! The pattern's paths are the head's paths, each followed by the one way
//! `.+$` can match (all the rest). A leftmost-first search takes the
//! highest-priority path that succeeds, so when the head's own
//! leftmost-first match leaves at least one byte and no line end, that is
//! the pattern's match too, with the same groups. Otherwise (the head took
//! the whole line, or the rest holds a `\n`) the caller runs the whole
//! pattern; where the head does not match, neither does the pattern.
//!
//! This holds for the `regex` crate over bytes with `unicode(false)`,
//! where `.` is any byte but `\n` and `$` the end of the text: a pattern
//! that changes those meanings with inline flags is not split.

/// The content groups the tag expansions write (fail2ban's, banset's).
const TAILS: [&str; 2] = [r"(?P<f_content>.+)$", r"(?P<content>.+)$"];

/// The head of an expanded prefregex that ends in a content group taking
/// the rest of the line, if it can be split (see the module docs).
pub(crate) fn content_head(expanded: &str) -> Option<&str> {
    let head = TAILS.iter().find_map(|t| expanded.strip_suffix(t))?;
    (top_level_plain(head) && !changes_dot_or_end(expanded)).then_some(head)
}

/// The content-start search of a head `^(?P<mlfid>A)B` whose `B` matches
/// the empty text wherever it is tried (it can match nothing and holds no
/// assertion): `(^(?:A), ^(?:B))`, for the lazy DFA instead of the capture
/// engines (issue 16: sshd's `__prefix_line` under the bounded backtracker
/// was most of a connection-ending line's cost).
///
/// A leftmost-first search takes the path a backtracking engine would:
/// it tries `A`'s paths in their order, and the first that ends goes on
/// into `B`, which cannot fail. So the head's match is `^A`'s own match
/// (the `<F-MLFID>` group, from the line's start) followed by `B`'s
/// leftmost-first match where that ends; and since `B` asserts nothing,
/// it matches the same on the rest of the line cut off there. The head
/// matches exactly where `^A` does. `None` for any other head.
pub(crate) fn mlfid_split(head: &str) -> Option<(String, String)> {
    let open = ["^(?P<f_mlfid>", "^(?P<mlfid>"]
        .iter()
        .find(|o| head.starts_with(**o))?;
    let end = group_end(head.as_bytes(), 1)?;
    let a = &head[open.len()..end - 1];
    let b = &head[end..];
    // `B` must not repeat or make the group optional: a quantifier right
    // after the group belongs to it.
    if b.starts_with(['?', '*', '+', '{']) {
        return None;
    }
    let hir = plain_hir(b)?;
    let props = hir.properties();
    (props.minimum_len() == Some(0) && props.look_set().is_empty())
        .then(|| (format!("^(?:{a})"), format!("^(?:{b})")))
}

/// `pattern` read as the plain engine reads it (ASCII classes, any bytes:
/// `crate::filter::plain_regex`), if it is plain regex syntax.
pub(crate) fn plain_hir(pattern: &str) -> Option<regex_syntax::hir::Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

/// The index just after the group opening at `open` (classes and escapes
/// skipped).
fn group_end(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_class = false;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                i = class_first(b, i);
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => {
                depth = depth.checked_sub(1)?;
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

/// Where the scan goes on inside a class opened at `open`: past a `^`
/// and past a `]` first, which is a literal there (`[]...]`, `[^]...]`),
/// not the class's end.
fn class_first(b: &[u8], open: usize) -> usize {
    let mut i = open;
    if b.get(i + 1) == Some(&b'^') {
        i += 1;
    }
    if b.get(i + 1) == Some(&b']') {
        i += 1;
    }
    i
}

/// Whether `head` closes every group it opens and has no `|` outside of
/// them: a branch or an open group would take the content into it.
pub(crate) fn top_level_plain(head: &str) -> bool {
    let b = head.as_bytes();
    let mut depth = 0usize;
    let mut in_class = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                i = class_first(b, i);
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            b'|' if !in_class && depth == 0 => return false,
            _ => {}
        }
        i += 1;
    }
    depth == 0 && !in_class
}

/// Whether an inline flag group (`(?s)`, `(?m:`, `(?u)`, `(?R)`...)
/// could change what `.` or `$` match. Read loosely: a literal `(?`
/// that only looks like one refuses the split, which costs speed, never
/// a result.
fn changes_dot_or_end(p: &str) -> bool {
    p.match_indices("(?").any(|(at, _)| {
        p[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .any(|c| matches!(c, 's' | 'm' | 'R' | 'u' | 'U'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_prefregex_ending_in_the_rest_of_the_line() {
        assert_eq!(
            content_head(r"^(?P<f_mlfid>\S+ sshd\[\d+\]: )(?:error: )?(?P<f_content>.+)$"),
            Some(r"^(?P<f_mlfid>\S+ sshd\[\d+\]: )(?:error: )?")
        );
        assert_eq!(content_head(r"^x (?P<content>.+)$"), Some("^x "));
    }

    #[test]
    fn splits_a_head_into_its_mlfid_and_a_part_that_always_matches() {
        assert_eq!(
            mlfid_split(r"^(?P<f_mlfid>\S+ (?:x[)]\))?\s+)(?:(?:error|fatal): (?:PAM: )?)?"),
            Some((
                r"^(?:\S+ (?:x[)]\))?\s+)".to_string(),
                r"^(?:(?:(?:error|fatal): (?:PAM: )?)?)".to_string()
            ))
        );
        assert_eq!(
            mlfid_split(r"^(?P<mlfid>a)"),
            Some(("^(?:a)".to_string(), "^(?:)".to_string()))
        );
        for h in [
            // What follows the group may fail, or asserts something.
            r"^(?P<f_mlfid>a)b",
            r"^(?P<f_mlfid>a)(?:b|$)",
            r"^(?P<f_mlfid>a)(?:\b)?",
            r"^(?P<f_mlfid>a)(?:x+)*\B",
            // The group is quantified, or not first.
            r"^(?P<f_mlfid>a)?",
            r"^(?P<f_mlfid>a){0,2}",
            r"^x(?P<f_mlfid>a)",
            r"(?P<f_mlfid>a)",
        ] {
            assert_eq!(mlfid_split(h), None, "{h}");
        }
    }

    #[test]
    fn refuses_what_the_split_would_change() {
        for p in [
            // Content not the rest of the line.
            r"^x (?P<f_content>.+) y$",
            r"^x (?P<f_content>.*)$",
            // A branch or an open group would take the content.
            r"^x|y (?P<f_content>.+)$",
            r"^(?:x (?P<f_content>.+)$",
            r"^[(]x) (?P<f_content>.+)$",
            // Flags that change `.` or `$`.
            r"(?s)^x (?P<f_content>.+)$",
            r"(?m)^x (?P<f_content>.+)$",
            r"(?u)^x (?P<f_content>.+)$",
            r"(?U)^x (?P<f_content>.+)$",
        ] {
            assert_eq!(content_head(p), None, "{p}");
        }
        // Classes and escapes are not groups or branches.
        assert_eq!(
            content_head(r"^[|(\]] \( (?i:x) (?P<f_content>.+)$"),
            Some(r"^[|(\]] \( (?i:x) ")
        );
    }
}
