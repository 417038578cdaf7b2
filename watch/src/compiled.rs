//! Compiled filters: each pattern of a [`FilterDef`] expanded and built
//! for the engine it needs, with what the matcher's combined scan needs of
//! it, and the per-filter state ([`crate::state`]) it carries.

use crate::filter::{
    plain_regex, DateRule, FilterDef, FilterError, Pattern, MAX_MAXLINES, REGEX_SIZE_LIMIT,
};
use crate::shared::Shared;
use crate::tags::{
    expand_counting, expand_fail2ban, expand_failregex, expand_ignoreregex, TagError, HOST_GROUPS,
    SKIPLINES_GROUP,
};

/// One pattern ready to run.
#[derive(Debug)]
pub(crate) enum Compiled {
    /// With the groups of [`KNOWN_GROUPS`] it has, by index: looking a
    /// group up by name on every match cost more than the match.
    Plain(regex::bytes::Regex, Box<[(&'static str, usize)]>),
    Fancy(fancy_regex::Regex),
    /// A stock failregex with conditionals as the plain patterns the
    /// backtracking engine would try in turn ([`crate::cases`]), each with
    /// its groups of [`KNOWN_GROUPS`]: the first that matches the line
    /// (read as Unicode text) gives the match.
    Cases(Box<[Case]>),
    /// A backtracking pattern behind a plain regex that matches wherever it
    /// does ([`crate::state::lookahead_gate`]): a line the gate misses
    /// does not reach the backtracking engine.
    Gated(regex::bytes::Regex, Box<Compiled>),
    /// A backtracking pattern `^AB` whose `A` is plain
    /// ([`crate::state::plain_lead`]): on an ASCII line the plain engine
    /// matches `^A`, the backtracking engine `B` after it alone, and the
    /// whole pattern runs only when `B` does not match there.
    PlainLead {
        lead: Lead,
        /// `^(?s:.)(?:B)`, run from the character before `B`'s start, so
        /// that `B`'s `\b` and `^` read what they read in the line.
        rest: LazyFancy,
        /// For a prefregex whose content group takes the rest of the line
        /// ([`crate::prefsplit`]): `B` is the head's part without that
        /// group, whose `.+` the backtracking engine would walk a
        /// character at a time; the content is then the rest of the line.
        content_rest: bool,
        whole: Box<Compiled>,
    },
    /// A pattern and its twin ([`Pattern::twin`]): a match counts when
    /// both match with the address at the same place.
    Twin(Box<Compiled>, Box<Compiled>),
    /// A prefregex whose content group takes the rest of the line, with
    /// its head (the pattern before that group): see [`crate::prefsplit`].
    Headed {
        head: regex::bytes::Regex,
        groups: Box<[(&'static str, usize)]>,
        /// How the head's match is found.
        find: HeadFind,
        whole: Box<Compiled>,
    },
}

/// A backtracking pattern built the first time a line needs it: most of
/// the ninety stock jails' look-around patterns never see a line their
/// lead matches, and built at start-up they held 2.3 MB.
#[derive(Debug)]
pub(crate) struct LazyFancy {
    pattern: String,
    built: std::sync::OnceLock<Option<fancy_regex::Regex>>,
}

impl LazyFancy {
    fn new(pattern: String) -> LazyFancy {
        LazyFancy {
            pattern,
            built: std::sync::OnceLock::new(),
        }
    }

    /// The pattern, `None` if it does not build (the caller then runs
    /// what it stands for).
    fn get(&self) -> Option<&fancy_regex::Regex> {
        self.built
            .get_or_init(|| {
                fancy_regex::RegexBuilder::new(&self.pattern)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// The plain lead of a [`Compiled::PlainLead`].
#[derive(Debug)]
pub(crate) enum Lead {
    /// A lead with no group the matcher reads: its end is all that is
    /// needed.
    End(crate::lazyfind::AnchoredEnd),
    /// With its groups of [`KNOWN_GROUPS`], by index.
    Captures(regex::bytes::Regex, Box<[(&'static str, usize)]>),
}

/// How [`Compiled::Headed`] finds its head's match: the captures only
/// where a group the matcher reads needs them.
#[derive(Debug)]
pub(crate) enum HeadFind {
    /// The capture engines, for the head's groups.
    Captures,
    /// A head with no group the matcher reads: only its end, which the
    /// lazy DFA finds.
    End,
    /// A head `^(?P<mlfid>A)B` whose `B` always matches
    /// ([`crate::prefsplit::mlfid_split`]): `^A`'s end, then `^B`'s on the
    /// rest, both found by the lazy DFA.
    Mlfid {
        mlfid: crate::lazyfind::AnchoredEnd,
        rest: crate::lazyfind::AnchoredEnd,
        /// For a `B` that is one optional part (sshd's `__pref`,
        /// `(?:(?:error|fatal): (?:PAM: )?)?`): the bytes its part can
        /// start with. Any other byte there makes `B`'s match empty
        /// without a search (issue 16: most lines).
        rest_starts: Option<ByteSet>,
    },
}

/// A set of byte values, a bit each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    fn has(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }
}

/// For `b` = `(?:X)?` or `^(?:X)?` (greedy, its first bytes known): the
/// bytes a match of X can start with. A text starting with any other byte
/// has only the empty match of `b`.
fn optional_part_starts(b: &str) -> Option<ByteSet> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::HirKind;
    let hir = crate::prefsplit::plain_hir(b)?;
    // `mlfid_split` gives `B` as `^(?:B)`.
    let part = match hir.kind() {
        HirKind::Concat(items) => match &items[..] {
            [start, part] if *start.kind() == HirKind::Look(regex_syntax::hir::Look::Start) => part,
            _ => return None,
        },
        _ => &hir,
    };
    let HirKind::Repetition(rep) = part.kind() else {
        return None;
    };
    if rep.min != 0 || rep.max != Some(1) || !rep.greedy {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&rep.sub);
    let mut set = ByteSet([0; 4]);
    for literal in seq.literals()? {
        set.insert(*literal.as_bytes().first()?);
    }
    Some(set)
}

/// One plain case of [`Compiled::Cases`].
#[derive(Debug)]
pub(crate) struct Case {
    /// The case with Unicode classes, on the line as Unicode text (what
    /// the backtracking engine reads).
    unicode: regex::Regex,
    /// The same text with ASCII classes on the line's bytes, for a line
    /// that is all ASCII. There every character is one byte and every
    /// class, `.`, `\b` and case folding reads an ASCII character alike in
    /// both modes, so the two find the same match and groups; the ASCII
    /// automata are a fraction of the size (Unicode's `\S`, `\d` and `.`
    /// are thousands of states), which is most of a failure line's cost.
    ascii: regex::bytes::Regex,
    /// The groups of [`KNOWN_GROUPS`] it has, by index (the same in both).
    groups: Box<[(&'static str, usize)]>,
    /// Text every match of the case ends with (sshd's `: ` cases), so a
    /// line without it cannot match: a look for two bytes instead of a
    /// lazy DFA's pass over the line, on cold states (issue 16).
    ends_with: Option<memchr::memmem::Finder<'static>>,
}

impl Case {
    /// Whether the case may match `text` (false: it surely does not).
    fn may_match(&self, text: &[u8]) -> bool {
        let may = self
            .ends_with
            .as_ref()
            .is_none_or(|f| f.find(text).is_some());
        #[cfg(test)]
        CASE_RUNS.with(|c| c.set(c.get() + u64::from(may)));
        may
    }
}

/// The longest text every match of `pattern` ends with, if it is at least
/// two bytes long and the pattern parses as regex syntax.
fn common_ending(pattern: &str) -> Option<Vec<u8>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new().kind(ExtractKind::Suffix).extract(&hir);
    let mut literals = seq.literals()?.iter().map(|l| l.as_bytes());
    let mut common = literals.next()?.to_vec();
    for l in literals {
        let shared = common
            .iter()
            .rev()
            .zip(l.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        common.drain(..common.len() - shared);
    }
    (common.len() >= 2).then_some(common)
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

/// Every group name [`Captured::from_groups`] reads.
const KNOWN_GROUPS: [&[&str]; 8] = [
    &HOST_GROUPS,
    &NOFAIL_GROUPS,
    &GAINED_GROUPS,
    &FORGET_GROUPS,
    &MLFID_GROUPS,
    &CONTENT_GROUPS,
    &USER_GROUPS,
    &ALT_USER_GROUPS,
];

/// The groups of [`KNOWN_GROUPS`] that `re` has, with their indexes.
fn known_groups(re: &regex::bytes::Regex) -> Box<[(&'static str, usize)]> {
    known_group_indexes(re.capture_names().collect())
}

/// The groups of [`KNOWN_GROUPS`] among a pattern's group `names`.
fn known_group_indexes(names: Vec<Option<&str>>) -> Box<[(&'static str, usize)]> {
    KNOWN_GROUPS
        .iter()
        .flat_map(|g| g.iter())
        .filter_map(|g| Some((*g, names.iter().position(|n| *n == Some(*g))?)))
        .collect()
}

impl Captured {
    /// [`Self::from_groups`] for a match whose groups are read by index:
    /// `groups` are the known groups' (name, index), `span` a group's byte
    /// range by index.
    fn by_index(
        groups: &[(&'static str, usize)],
        span: impl Fn(usize) -> Option<std::ops::Range<usize>>,
    ) -> Captured {
        Captured::from_groups(|g| {
            let (_, i) = groups.iter().find(|(n, _)| *n == g)?;
            span(*i)
        })
    }

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

#[cfg(test)]
thread_local! {
    /// Searches of the backtracking engine on this thread (tests count
    /// work with it, never time).
    pub(crate) static FANCY_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Searches of the backtracking engine on this thread that reached
    /// [`BACKTRACK_LIMIT`] and were cut off.
    pub(crate) static FANCY_LIMITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Captures asked of any pattern on this thread.
    pub(crate) static CAPTURES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Scans of a two-stage filter's content on this thread.
    pub(crate) static CONTENT_SCANS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Prefregex heads captured by the capture engines on this thread.
    pub(crate) static HEAD_CAPTURES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Matches (without captures) asked of any pattern on this thread.
    pub(crate) static MATCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Plain cases captured on their ASCII twins on this thread.
    pub(crate) static ASCII_CASES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Cases run (their regexes tried on a line), for tests.
    pub(crate) static CASE_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Backtracks one search of the backtracking engine may take before it
/// gives up (and counts as no match): hostile input must not stall the
/// watcher.
pub(crate) const BACKTRACK_LIMIT: usize = 100_000;

/// Counts one search of the backtracking engine (tests only).
fn count_fancy_run() {
    #[cfg(test)]
    FANCY_RUNS.with(|c| c.set(c.get() + 1));
}

/// A search's outcome, with a search cut off at [`BACKTRACK_LIMIT`]
/// counted (tests only) and read as no match.
fn within_limit<T>(r: Result<T, fancy_regex::Error>) -> Option<T> {
    #[cfg(test)]
    if r.is_err() {
        FANCY_LIMITS.with(|c| c.set(c.get() + 1));
    }
    r.ok()
}

impl Compiled {
    /// The captures of a match, if the line matches.
    pub(crate) fn capture(&self, line: &[u8]) -> Option<Captured> {
        #[cfg(test)]
        CAPTURES.with(|c| c.set(c.get() + 1));
        match self {
            Compiled::Plain(re, groups) => {
                let c = re.captures(line)?;
                Some(Captured::by_index(groups, |i| c.get(i).map(|m| m.range())))
            }
            Compiled::Fancy(re) => {
                count_fancy_run();
                let text = FancyText::new(line);
                let c = within_limit(re.captures(text.as_str()))??;
                Some(Captured::from_groups(|g| {
                    c.name(g).map(|m| text.original(m.range()))
                }))
            }
            Compiled::Cases(cases) if line.is_ascii() => {
                #[cfg(test)]
                ASCII_CASES.with(|c| c.set(c.get() + 1));
                cases.iter().find_map(|case| {
                    if !case.may_match(line) {
                        return None;
                    }
                    let c = case.ascii.captures(line)?;
                    Some(Captured::by_index(&case.groups, |i| {
                        c.get(i).map(|m| m.range())
                    }))
                })
            }
            Compiled::Cases(cases) => {
                let text = FancyText::new(line);
                cases.iter().find_map(|case| {
                    if !case.may_match(text.as_str().as_bytes()) {
                        return None;
                    }
                    let c = case.unicode.captures(text.as_str())?;
                    Some(Captured::by_index(&case.groups, |i| {
                        c.get(i).map(|m| text.original(m.range()))
                    }))
                })
            }
            Compiled::Gated(gate, exact) => {
                if !gate.is_match(line) {
                    return None;
                }
                exact.capture(line)
            }
            Compiled::PlainLead {
                lead,
                rest,
                content_rest,
                whole,
            } => match lead_capture(lead, rest, *content_rest, line) {
                Some(answer) => answer,
                None => whole.capture(line),
            },
            Compiled::Twin(first, other) => {
                let c = first.capture(line)?;
                let o = other.capture(line)?;
                (c.host == o.host).then_some(c)
            }
            Compiled::Headed {
                head,
                groups,
                find,
                whole,
            } => {
                let (end, mut captured) = match find {
                    HeadFind::End => (head.find(line)?.end(), Captured::default()),
                    HeadFind::Mlfid {
                        mlfid,
                        rest,
                        rest_starts,
                    } => {
                        let id = mlfid.end(line)?;
                        let skip = rest_starts
                            .as_ref()
                            .is_some_and(|s| line.get(id).is_none_or(|&b| !s.has(b)));
                        let end = if skip {
                            id
                        } else {
                            id + rest.end(&line[id..])?
                        };
                        let captured = Captured {
                            mlfid: Some(0..id),
                            ..Captured::default()
                        };
                        (end, captured)
                    }
                    HeadFind::Captures => {
                        #[cfg(test)]
                        HEAD_CAPTURES.with(|c| c.set(c.get() + 1));
                        let c = head.captures(line)?;
                        let captured = Captured::by_index(groups, |i| c.get(i).map(|m| m.range()));
                        (c.get(0)?.end(), captured)
                    }
                };
                if !takes_the_rest(line, end) {
                    return whole.capture(line);
                }
                captured.content = Some(end..line.len());
                Some(captured)
            }
        }
    }

    /// For a prefregex found through its head's `<F-MLFID>`
    /// ([`HeadFind::Mlfid`]): that group's span on the line, found alone,
    /// as [`Self::capture`] would give it when the whole pattern matches;
    /// `Some(None)` when the head cannot start the line (nor can the
    /// pattern match). `None` for any other pattern.
    pub(crate) fn mlfid_alone(&self, line: &[u8]) -> Option<Option<std::ops::Range<usize>>> {
        match self {
            Compiled::Headed {
                find: HeadFind::Mlfid { mlfid, .. },
                ..
            } => Some(mlfid.end(line).map(|end| 0..end)),
            _ => None,
        }
    }

    /// For a buffer of lines: the captures, the span of the whole match and
    /// the spans of its `skiplinesN` groups (`skips` of them).
    pub(crate) fn capture_spans(&self, text: &[u8], skips: usize) -> Option<Spans> {
        let skip_names: Vec<String> = (0..skips)
            .map(|n| format!("{SKIPLINES_GROUP}{n}"))
            .collect();
        match self {
            Compiled::Plain(re, _) => {
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
                count_fancy_run();
                let text = FancyText::new(text);
                let c = within_limit(re.captures(text.as_str()))??;
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
            Compiled::Cases(cases) => {
                let text = FancyText::new(text);
                cases.iter().find_map(|case| {
                    let c = case.unicode.captures(text.as_str())?;
                    let at = |m: regex::Match<'_>| text.original(m.range());
                    Some(Spans {
                        captured: Captured::from_groups(|g| c.name(g).map(at)),
                        whole: at(c.get(0)?),
                        skipped: skip_names
                            .iter()
                            .filter_map(|g| c.name(g).map(at))
                            .collect(),
                    })
                })
            }
            Compiled::Twin(first, other) => {
                let c = first.capture_spans(text, skips)?;
                let o = other.capture_spans(text, skips)?;
                (c.captured.host == o.captured.host).then_some(c)
            }
            Compiled::Headed { whole, .. }
            | Compiled::Gated(_, whole)
            | Compiled::PlainLead { whole, .. } => whole.capture_spans(text, skips),
        }
    }

    pub(crate) fn is_match(&self, line: &[u8]) -> bool {
        #[cfg(test)]
        MATCHES.with(|c| c.set(c.get() + 1));
        match self {
            Compiled::Plain(re, _) => re.is_match(line),
            Compiled::Fancy(re) => {
                count_fancy_run();
                within_limit(re.is_match(FancyText::new(line).as_str())).unwrap_or(false)
            }
            Compiled::Twin(first, other) => first.is_match(line) && other.is_match(line),
            Compiled::Gated(gate, exact) => gate.is_match(line) && exact.is_match(line),
            Compiled::Cases(cases) if line.is_ascii() => {
                cases.iter().any(|case| case.ascii.is_match(line))
            }
            Compiled::Cases(cases) => {
                let text = FancyText::new(line);
                cases
                    .iter()
                    .any(|case| case.unicode.is_match(text.as_str()))
            }
            Compiled::Headed { whole, .. } => whole.is_match(line),
            Compiled::PlainLead {
                lead,
                rest,
                content_rest,
                whole,
            } => match lead_capture(lead, rest, *content_rest, line) {
                Some(answer) => answer.is_some(),
                None => whole.is_match(line),
            },
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
    /// The marks every match of the pattern carries.
    pub(crate) fixed: FixedMarks,
}

/// The marks a pattern's every match carries, whatever else it captures:
/// where they decide the outcome, the matcher needs no captures
/// (`matcher::quiet`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FixedMarks {
    /// `<F-NOFAIL>` or `<F-MLFGAINED>`.
    pub(crate) nofail: bool,
    /// `<F-MLFFORGET>`.
    pub(crate) forget: bool,
}

impl FixedMarks {
    /// The marks of `expanded` whose groups take part in every match
    /// ([`crate::state::always_groups`]).
    fn of(expanded: &str) -> FixedMarks {
        let always = crate::state::always_groups(expanded).unwrap_or_default();
        let has = |names: &[&str]| always.iter().any(|g| names.contains(&g.as_str()));
        FixedMarks {
            nofail: has(&NOFAIL_GROUPS) || has(&GAINED_GROUPS),
            forget: has(&FORGET_GROUPS),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Filters compiled on this thread, shared or not (tests count
    /// start-up's compiles with it).
    pub(crate) static FILTER_COMPILES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl FilterDef {
    /// Compiles the filter's patterns (what [`FilterDef::compile_shared`]
    /// shares).
    fn compile_patterns(&self) -> Result<FilterPatterns, FilterError> {
        #[cfg(test)]
        FILTER_COMPILES.with(|c| c.set(c.get() + 1));
        let fail2ban = matches!(self.date, DateRule::Fail2ban(_));
        let any: fn(&str) -> Result<String, TagError> = if fail2ban {
            f2b_any
        } else {
            expand_ignoreregex
        };
        let pref = match &self.prefregex {
            Some(p) => Some(headed(self.compile_one("prefregex", 0, p, any)?)),
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
            Some(_) if !multi_line => self.content_set(&fail)?,
            _ => None,
        };
        let mut pref = pref;
        let mut pref_scans = None;
        if let (Some(p), Some(set)) = (&mut pref, &content_set) {
            // The combined scan then skips the prefregex's captures on
            // lines none of the failregexes could match.
            let fails: Option<Vec<&str>> = fail.iter().map(|f| f.scan.as_deref()).collect();
            if let (true, Some(scan), Some(fails)) = (set.always.is_empty(), &p.scan, fails) {
                // One entry per failregex where the prefregex's content
                // is the rest of the line after its head: the scan's
                // match then says which failregexes to run.
                pref_scans = match p.exact {
                    Compiled::Headed { .. } => crate::prefsplit::content_head(scan)
                        .and_then(|head| crate::state::with_each_content(head, &fails))
                        .filter(|each| each.iter().all(|e| parses(e))),
                    _ => None,
                };
                if pref_scans.is_none() {
                    if let Some(combined) =
                        crate::state::with_content(scan, &fails).filter(|c| plain_regex(c).is_ok())
                    {
                        p.scan = Some(combined);
                    }
                }
            }
        }
        Ok(FilterPatterns {
            fail,
            ignore,
            pref,
            content_set,
            pref_scans,
        })
    }

    /// The filter compiled anew, its patterns shared with no one: a
    /// compile that only checks a pattern, and tests that change them.
    pub(crate) fn compile(&self) -> Result<CompiledFilter, FilterError> {
        Ok(self.with_state(std::sync::Arc::new(self.compile_patterns()?)))
    }

    /// The filter for one more source: its patterns shared with every
    /// source whose jails use the same filter (the same definition), its
    /// state its own.
    pub(crate) fn compile_shared(&self) -> Result<CompiledFilter, FilterError> {
        static PATTERNS: Shared<FilterDef, FilterPatterns> = Shared::new();
        let patterns = PATTERNS.get_or_build(self, || self.compile_patterns())?;
        Ok(self.with_state(patterns))
    }

    /// `patterns` with the fresh state a source keeps between its lines.
    fn with_state(&self, patterns: std::sync::Arc<FilterPatterns>) -> CompiledFilter {
        let connections = self
            .prefregex
            .as_ref()
            .filter(|p| p.regex.contains("<F-MLFID>"))
            .map(|_| Default::default());
        CompiledFilter {
            patterns,
            connections,
            lines: (self.maxlines > 1)
                .then(|| std::sync::Mutex::new(crate::state::LineBuffer::new(self.maxlines))),
        }
    }

    /// The failregexes of a two-stage filter that run on the fast engine,
    /// as one set over the prefregex's content.
    fn content_set(&self, fail: &[CompiledPattern]) -> Result<Option<ContentSet>, FilterError> {
        let (texts, map): (Vec<&str>, Vec<usize>) = fail
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((p.scan.as_deref()?, i)))
            .unzip();
        if texts.is_empty() {
            return Ok(None);
        }
        let set = regex::bytes::RegexSetBuilder::new(&texts)
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
            })?;
        let always = (0..fail.len()).filter(|i| !map.contains(i)).collect();
        Ok(Some(ContentSet { set, map, always }))
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
            // A twin's match also needs both addresses in one place.
            c.fixed = FixedMarks::default();
            return Ok(c);
        }
        match plain_regex(&expanded) {
            Ok(re) => Ok(CompiledPattern {
                fixed: FixedMarks::of(&expanded),
                scan: Some(expanded),
                exact: {
                    let groups = known_groups(&re);
                    Compiled::Plain(re, groups)
                },
                skips,
                skeleton: None,
            }),
            Err(plain_err) => {
                // Without a gate, the pattern joins the combined scan as
                // its skeleton (look-arounds dropped, back-references
                // "anything"), which matches wherever it does: the
                // backtracking engine then runs only on the lines the
                // linear-time scan let through.
                let scan = gate
                    .or_else(|| crate::state::loosen(&expanded).filter(|l| plain_regex(l).is_ok()));
                // A stock failregex with conditionals banset knows as
                // plain cases runs as those, and needs no backtracking
                // engine (nor its memory).
                if let Some(cases) = stock_cases(&pattern.regex, expand) {
                    return Ok(CompiledPattern {
                        scan,
                        exact: Compiled::Cases(cases),
                        skips,
                        skeleton: None,
                        fixed: FixedMarks::of(&expanded),
                    });
                }
                // Look-around and back-references need the backtracking
                // engine; anything else it also refuses is a real error.
                let re = fancy_regex::RegexBuilder::new(&expanded)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .build()
                    .map_err(|e| {
                        fail(format!(
                            "{} ({})",
                            first_line(&e.to_string()),
                            first_line(&plain_err.to_string())
                        ))
                    })?;
                let exact = plain_lead(&expanded, Compiled::Fancy(re));
                let exact = match crate::state::lookahead_gate(&expanded)
                    .and_then(|g| plain_regex(&g).ok())
                {
                    Some(gate) => Compiled::Gated(gate, Box::new(exact)),
                    None => exact,
                };
                Ok(CompiledPattern {
                    scan,
                    exact,
                    skips,
                    skeleton: None,
                    fixed: FixedMarks::of(&expanded),
                })
            }
        }
    }
}

/// A prefregex that ends in a content group taking the rest of the line,
/// captured through its head ([`crate::prefsplit`]); any other pattern as
/// it is.
fn headed(p: CompiledPattern) -> CompiledPattern {
    let head = match (&p.exact, p.scan.as_deref()) {
        (Compiled::Plain(..), Some(text)) => crate::prefsplit::content_head(text),
        _ => None,
    };
    let Some((text, head)) = head.and_then(|h| Some((h, plain_regex(h).ok()?))) else {
        return p;
    };
    let groups = known_groups(&head);
    let find = match &*groups {
        [] => HeadFind::End,
        [(g, _)] if MLFID_GROUPS.contains(g) => crate::prefsplit::mlfid_split(text)
            .and_then(|(a, b)| {
                Some(HeadFind::Mlfid {
                    mlfid: crate::lazyfind::AnchoredEnd::new(&a)?,
                    rest: crate::lazyfind::AnchoredEnd::new(&b)?,
                    rest_starts: optional_part_starts(&b),
                })
            })
            .unwrap_or(HeadFind::Captures),
        _ => HeadFind::Captures,
    };
    CompiledPattern {
        exact: Compiled::Headed {
            groups,
            head,
            find,
            whole: Box::new(p.exact),
        },
        ..p
    }
}

/// [`crate::cases`]' plain cases of a stock failregex, expanded and
/// compiled; `None` for any other pattern (or if one does not compile).
fn stock_cases(pattern: &str, expand: fn(&str) -> Result<String, TagError>) -> Option<Box<[Case]>> {
    crate::cases::cases(pattern)?
        .iter()
        .map(|c| {
            let expanded = expand(c).ok()?;
            let unicode = crate::cases::compile(&expanded).ok()?;
            let ascii = plain_regex(&expanded).ok()?;
            let groups = known_group_indexes(unicode.capture_names().collect());
            debug_assert_eq!(groups, known_groups(&ascii));
            let ends_with =
                common_ending(&expanded).map(|e| memchr::memmem::Finder::new(&e).into_owned());
            Some(Case {
                unicode,
                ascii,
                groups,
                ends_with,
            })
        })
        .collect()
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

/// [`Compiled::PlainLead`]'s own answer on `line`: the captures, or
/// `Some(None)` when the lead does not match (nor can the pattern);
/// `None` when the whole pattern must answer (a line not ASCII, a rest
/// that does not match after the lead's first end, or does not build).
fn lead_capture(
    lead: &Lead,
    rest: &LazyFancy,
    content_rest: bool,
    line: &[u8],
) -> Option<Option<Captured>> {
    if !line.is_ascii() {
        return None;
    }
    let (end, lead_captures) = match lead {
        Lead::End(lead) => match lead.end(line) {
            Some(end) => (end, None),
            None => return Some(None),
        },
        Lead::Captures(lead, groups) => match lead.captures(line) {
            Some(c) => (c.get(0)?.end(), Some((c, groups))),
            None => return Some(None),
        },
    };
    // From the character before `B` (ASCII: one byte, and UTF-8 at every
    // offset).
    let from = end.checked_sub(1)?;
    let after = std::str::from_utf8(&line[from..]).ok()?;
    let rest = rest.get()?;
    count_fancy_run();
    let c = within_limit(rest.captures(after)).flatten()?;
    let content = if content_rest {
        let head_end = from + c.get(0)?.end();
        if !takes_the_rest(line, head_end) {
            return None;
        }
        Some(head_end..line.len())
    } else {
        None
    };
    let mut captured = Captured::from_groups(|g| {
        let in_lead = lead_captures
            .as_ref()
            .and_then(|(c, groups)| Some((c, groups.iter().find(|(n, _)| *n == g)?)));
        match in_lead {
            Some((lc, (_, i))) => lc.get(*i).map(|m| m.range()),
            None => c.name(g).map(|m| m.start() + from..m.end() + from),
        }
    });
    captured.content = captured.content.or(content);
    Some(Some(captured))
}

/// Whether a prefregex's head that ends at `end` leaves its content group
/// (`.+$`) the rest of the line: at least one byte, and no line end.
fn takes_the_rest(line: &[u8], end: usize) -> bool {
    end < line.len() && memchr::memchr(b'\n', &line[end..]).is_none()
}

/// `whole`, the backtracking pattern `expanded` built, behind its plain
/// lead when it has one ([`Compiled::PlainLead`]): for a prefregex whose
/// content group takes the rest of the line, its head's.
fn plain_lead(expanded: &str, whole: Compiled) -> Compiled {
    let head = crate::prefsplit::content_head(expanded);
    let Some((lead, rest)) = crate::state::plain_lead(head.unwrap_or(expanded)) else {
        return whole;
    };
    let lead = plain_regex(&lead).ok().and_then(|re| {
        let groups = known_groups(&re);
        if groups.is_empty() {
            crate::lazyfind::AnchoredEnd::new(&lead).map(Lead::End)
        } else {
            Some(Lead::Captures(re, groups))
        }
    });
    let Some(lead) = lead else {
        return whole;
    };
    Compiled::PlainLead {
        lead,
        rest: LazyFancy::new(format!("^(?s:.)(?:{rest})")),
        content_rest: head.is_some(),
        whole: Box::new(whole),
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

/// Whether `pattern` is plain regex syntax as [`plain_regex`] reads it,
/// without compiling it: the matcher's scan compiles it, with the rest.
fn parses(pattern: &str) -> bool {
    crate::prefsplit::plain_hir(pattern).is_some()
}

/// A filter compiled for one source: its patterns, shared by every
/// source whose jails use the same filter, and the state this source keeps
/// between lines. The patterns are read through it (`Deref`).
#[derive(Debug)]
pub(crate) struct CompiledFilter {
    pub(crate) patterns: std::sync::Arc<FilterPatterns>,
    /// For a prefregex with `<F-MLFID>`: what each open connection has
    /// shown so far (see [`crate::matcher`]).
    pub(crate) connections: Option<std::sync::Mutex<crate::state::Connections>>,
    /// For a multi-line filter (`maxlines` > 1): the latest lines.
    pub(crate) lines: Option<std::sync::Mutex<crate::state::LineBuffer>>,
}

impl std::ops::Deref for CompiledFilter {
    type Target = FilterPatterns;
    fn deref(&self) -> &FilterPatterns {
        &self.patterns
    }
}

/// A filter's compiled patterns: no state, so sources share them.
#[derive(Debug)]
pub(crate) struct FilterPatterns {
    pub(crate) fail: Vec<CompiledPattern>,
    pub(crate) ignore: Vec<CompiledPattern>,
    /// The prefregex of a two-stage filter.
    pub(crate) pref: Option<CompiledPattern>,
    /// The failregexes (or their skeletons) that run on the fast engine,
    /// as one set run on the prefregex's content.
    pub(crate) content_set: Option<ContentSet>,
    /// The prefregex's scan as one entry per failregex
    /// ([`crate::state::with_each_content`]): where the matcher's scan
    /// runs these, its match names the failregexes to try, and the content
    /// is not scanned again.
    pub(crate) pref_scans: Option<Vec<String>>,
}

/// A two-stage filter's failregexes as one scan of the prefregex's content.
#[derive(Debug)]
pub(crate) struct ContentSet {
    set: regex::bytes::RegexSet,
    /// Failregex index of each pattern of `set`.
    map: Vec<usize>,
    /// Failregexes not in `set`: tried on every content.
    always: Vec<usize>,
}

impl ContentSet {
    /// The failregexes that may match `content`, in order.
    pub(crate) fn candidates(&self, content: &[u8]) -> Vec<usize> {
        #[cfg(test)]
        CONTENT_SCANS.with(|c| c.set(c.get() + 1));
        let mut out: Vec<usize> = self
            .set
            .matches(content)
            .iter()
            .map(|i| self.map[i])
            .collect();
        if !self.always.is_empty() {
            out.extend_from_slice(&self.always);
            out.sort_unstable();
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::filter::DateRule;
    use crate::matcher::{Matcher, Scan};

    fn f2b(name: &str, pref: Option<&str>, fail: &[&str]) -> FilterDef {
        FilterDef {
            name: name.into(),
            failregex: fail.iter().map(|p| Pattern::new(*p)).collect(),
            ignoreregex: Vec::new(),
            prefregex: pref.map(Pattern::new),
            date: DateRule::Fail2ban(Some("{NONE}".into())),
            maxlines: 1,
        }
    }

    fn found(m: &Matcher, line: &str) -> Option<String> {
        let mut hits = Vec::new();
        match m.scan(line.as_bytes(), &mut hits) {
            Scan::Hit => Some(hits[0].target.to_string()),
            _ => None,
        }
    }

    fn fancy_runs() -> u64 {
        FANCY_RUNS.with(|c| c.get())
    }

    /// Issue 16: sshd's look-ahead and conditional failregexes ran on the
    /// backtracking engine for every line the prefregex took, whatever the
    /// line said; now only lines their skeleton lets through reach it.
    #[test]
    fn look_around_failregexes_run_the_backtracking_engine_only_where_their_skeleton_matches() {
        let two_stage = f2b(
            "sshdlike",
            Some(r"^<F-MLFID>\S+ sshd\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$"),
            &[
                r"^Failed \S+ for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: port \d+)?(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
                r"^Invalid user \S+ from <HOST>",
            ],
        );
        let one_stage = f2b(
            "lookahead",
            None,
            &[r"^\S+ app\[\d+\]: denied (?!root\b)\S+ from <HOST>$"],
        );
        let m = Matcher::new(&[two_stage, one_stage]).unwrap();
        let before = fancy_runs();
        for i in 0..1000 {
            let line = match i % 3 {
                0 => format!(
                    "h sshd[{i}]: Accepted publickey for deploy from 10.0.0.{} port 22 ssh2",
                    i % 250
                ),
                1 => format!("h sshd[{i}]: pam_unix(sshd:session): session opened for user deploy"),
                _ => format!("h app[{i}]: allowed user{i} from 192.0.2.{}", i % 250),
            };
            assert_eq!(found(&m, &line), None, "{line}");
        }
        assert_eq!(
            fancy_runs() - before,
            0,
            "backtracking searches on 1000 other lines"
        );
        let before = fancy_runs();
        assert_eq!(
            found(
                &m,
                "h sshd[7]: Failed password for invalid user admin from 192.0.2.7 port 2 ssh2"
            )
            .as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            found(&m, "h app[1]: denied bob from 192.0.2.8").as_deref(),
            Some("192.0.2.8")
        );
        assert_eq!(found(&m, "h app[1]: denied root from 192.0.2.8"), None);
        // At most one search a line, but two on the `root` line: its part
        // after the plain lead fails, so the whole pattern runs too
        // ([`Compiled::PlainLead`]).
        assert!(fancy_runs() - before <= 4);
    }

    /// Issue 16: the prefregex capture walked the whole content; through
    /// its head it must find exactly what the whole pattern finds, on
    /// lines where the head alone would take everything, lines with a line
    /// end or invalid bytes in the content, and lines it misses.
    #[test]
    fn a_prefregex_captured_through_its_head_finds_what_the_whole_pattern_finds() {
        let prefs = [
            r"^<F-MLFID>\s*(?:\S+\s+)?(?:sshd(?:\[\d+\])?:?\s+)?</F-MLFID>(?:(?:error|fatal): (?:PAM: )?)?<F-CONTENT>.+</F-CONTENT>$",
            r"^(?:\S+ )?dovecot: (?:\w+-login: )?(?:Info: )?<F-CONTENT>.+</F-CONTENT>$",
            r"^x\[<HOST>\]: <F-NOFAIL>(?:nofail )?</F-NOFAIL><F-CONTENT>.+</F-CONTENT>$",
        ];
        let lines: &[&[u8]] = &[
            b"h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
            b"h sshd[1]: error: PAM: x",
            b"h sshd[1]: error: PAM: ",
            b"h sshd[1]: error: ",
            b"h sshd[1]: e",
            b"h sshd[1]: ",
            b"h sshd[1]:",
            b"sshd: ",
            b" ",
            b"",
            b"h sshd[1]: a\nb",
            b"h sshd[1]: error: \n",
            b"h sshd[1]: \xff\xfe user",
            b"mx dovecot: imap-login: Info: Aborted login",
            b"mx dovecot: imap-login: Info: ",
            b"mx dovecot: imap-login: ",
            b"x[192.0.2.1]: nofail ",
            b"x[192.0.2.1]: nofail",
            b"x[192.0.2.1]: nofail x",
            b"x[192.0.2.1]: \n",
        ];
        for p in prefs {
            let f = f2b("p", Some(p), &[r"^.*<HOST>"]);
            let compiled = f.compile().unwrap();
            let headed = &compiled.pref.as_ref().unwrap().exact;
            assert!(matches!(headed, Compiled::Headed { .. }), "{p}");
            let text = f2b_any(p).unwrap();
            let re = plain_regex(&text).unwrap();
            let whole = Compiled::Plain(re.clone(), known_groups(&re));
            for line in lines {
                assert_eq!(
                    format!("{:?}", headed.capture(line)),
                    format!("{:?}", whole.capture(line)),
                    "{p} on {:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    /// fail2ban's sshd prefregex as filter.d/sshd.conf writes it, with
    /// common.conf's `__prefix_line` (logtype `file`) and `__pref`.
    pub(crate) const SSHD_PREF: &str = concat!(
        r"^<F-MLFID>(?:\[\])?\s*(?:<[^.]+\.[^.]+>\s+)?(?:\S+\s+)?",
        r"(?:kernel:\s?\[ *\d+\.\d+\]:?\s+)?(?:@vserver_\S+\s+)?",
        r"(?:(?:(?:\[\d+\])?:\s+[\[\(]?sshd(?:\(\S+\))?[\]\)]?:?|[\[\(]?sshd(?:\(\S+\))?[\]\)]?:?(?:\[\d+\])?:?)\s+)?",
        r"(?:\[ID \d+ \S+\]\s+)?</F-MLFID>(?:(?:error|fatal): (?:PAM: )?)?<F-CONTENT>.+</F-CONTENT>$"
    );

    /// Issue 16: the capture engines found sshd's prefregex head (the
    /// `<F-MLFID>` and where the content starts) on every line the scan
    /// let through, mostly the bounded backtracker over `__prefix_line`'s
    /// optional parts. The lazy DFA's two searches (`^A`, then the
    /// optional `__pref` on the rest) must give exactly what the captures
    /// give, and what the whole pattern gives, on real and hostile lines:
    /// no date or host, kernel and `[ID ...]` prefixes, `error: PAM: `,
    /// NBSP, invalid UTF-8, ` from ` and `sshd[` in user names, 16 KiB
    /// fills; and sshd.conf's prefregex must take that path.
    #[test]
    fn the_sshd_prefregex_head_found_by_the_lazy_dfa_captures_what_the_capture_engines_do() {
        let def = f2b(
            "sshd",
            Some(SSHD_PREF),
            &[r"^Failed \S+ for .* from <HOST>"],
        );
        let compiled = def.compile().unwrap();
        let fast = &compiled.pref.as_ref().unwrap().exact;
        let Compiled::Headed {
            head, whole, find, ..
        } = fast
        else {
            panic!("{fast:?}")
        };
        assert!(matches!(find, HeadFind::Mlfid { .. }), "{find:?}");
        let slow = Compiled::Headed {
            head: head.clone(),
            groups: known_groups(head),
            find: HeadFind::Captures,
            whole: Box::new(match &**whole {
                Compiled::Plain(re, g) => Compiled::Plain(re.clone(), g.clone()),
                w => panic!("{w:?}"),
            }),
        };
        let mut lines: Vec<Vec<u8>> = [
            "mx sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2",
            "mx sshd[1]: error: PAM: Authentication failure for root from 192.0.2.1",
            "mx sshd[1]: fatal: Timeout before authentication for 192.0.2.1",
            "mx sshd[1]: error: maximum authentication attempts exceeded",
            "mx sshd[1]: error: PAM: ",
            "mx sshd[1]: error: ",
            "mx sshd[1]: error:",
            "mx sshd[1]: ",
            "mx sshd[1]:",
            "mx sshd:  Connection closed by 192.0.2.1",
            "mx sshd Connection closed by 192.0.2.1",
            "sshd[1]: Invalid user a from 192.0.2.1",
            "[] <auth.info> mx kernel: [ 12.5]: @vserver_a sshd[1]: [ID 800047 auth.info] x",
            "<4.3> mx [sshd](pam)[1]: x",
            "mx [1]: sshd: x",
            "mx CRON[7]: pam_unix(cron:session): session opened for user root",
            "mx systemd[1]: Started session-3.scope - Session 3 of User deploy.",
            "  mx   sshd[1]:   error: PAM:   x",
            "mx\u{a0}sshd[1]:\u{a0}Failed password for a\u{a0}from 192.0.2.1",
            "mx sshd[1]: Failed password for invalid user a from b sshd[2]: from 192.0.2.1",
            "mx sshd[1]: error: fatal: x",
            "x",
            " ",
            "",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        lines.push(b"mx sshd[1]: Failed password for \xff\xfe from 192.0.2.1".to_vec());
        lines.push(b"\xff sshd[1]: error: \xfe".to_vec());
        lines.push(b"mx sshd[1]: error: PAM: \n".to_vec());
        lines.push(b"mx sshd[1]: a\nb".to_vec());
        for fill in [" ", "sshd[1]: ", "error: ", " from ", "\u{a0}", "x "] {
            let long = fill.repeat(16 * 1024 / fill.len());
            lines.push(format!("mx sshd[1]: {long}").into_bytes());
            lines.push(format!("{long}sshd[1]: x").into_bytes());
            lines.push(format!("mx {long}").into_bytes());
        }
        let head_captures = || HEAD_CAPTURES.with(|c| c.get());
        let mut matched = 0;
        for line in &lines {
            let want = format!("{:?}", whole.capture(line));
            assert_eq!(
                format!("{:?}", slow.capture(line)),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
            let before = head_captures();
            let got = fast.capture(line);
            assert_eq!(head_captures(), before, "captured the head");
            matched += usize::from(got.as_ref().is_some_and(|c| c.mlfid.is_some()));
            assert_eq!(
                format!("{got:?}"),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(matched > 30, "{matched}");
        // Through the matcher too: no sshd line's head is captured.
        let m = Matcher::new(&[def]).unwrap();
        let before = head_captures();
        assert_eq!(
            found(&m, "mx sshd[1]: Failed password for root from 192.0.2.1").as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(head_captures(), before);
    }

    /// The skeleton runs on bytes with ASCII classes, the failregex on
    /// Unicode text: non-ASCII letters, digits and spaces, invalid bytes,
    /// and the characters that fold to `k` and `s` must not make the
    /// skeleton miss a line the failregex matches.
    #[test]
    fn a_skeleton_matches_wherever_its_failregex_does_on_non_ascii_text() {
        let patterns = [
            r"^user (?!root)\w+ from (?P<host>\d+)\b x$",
            r"^(?i)sasl (?!lost)\w{4} failed(?P<x>\s)at (?P<host>[^ ]{2}) .{3}$",
            r"^(?P<a>\S+) (?P=a) \D\W\S [a-z]{2} (?P<host>\d{2})$",
        ];
        let lines: &[&[u8]] = &[
            "user jösé from 12 x".as_bytes(),
            "user ü from ١٢ x".as_bytes(),
            "\u{17f}ASL \u{212a}\u{17f}ab failed\u{a0}at é\u{fffd} ééé".as_bytes(),
            b"sasl ab\xff\xfe failed at \xff\xfe abc",
            "é\u{300} é\u{300} é\u{1f600}ü ab ٣٤".as_bytes(),
            b"\xff \xff \xff\xfe\xfd ab 12",
        ];
        for p in patterns {
            let exact = fancy_regex::Regex::new(p).unwrap();
            let loose = crate::state::loosen(p).unwrap();
            let skeleton = plain_regex(&loose).unwrap_or_else(|e| panic!("{loose}: {e}"));
            for line in lines {
                let text = FancyText::new(line);
                if exact.is_match(text.as_str()).unwrap() {
                    assert!(
                        skeleton.is_match(line),
                        "{p} matches {:?}, its skeleton {loose} does not",
                        String::from_utf8_lossy(line)
                    );
                }
            }
        }
        // Each pattern matches at least one of the lines (the test tests).
        for p in patterns {
            let exact = fancy_regex::Regex::new(p).unwrap();
            assert!(
                lines
                    .iter()
                    .any(|l| exact.is_match(FancyText::new(l).as_str()).unwrap()),
                "{p}"
            );
        }
    }

    /// postfix's `mode = aggressive` (and `ddos`) prefregex, as fail2ban
    /// 1.0.2 writes it (`mdpr-aggressive` of filter.d/postfix.conf, after
    /// a shortened `__prefix_line`).
    const POSTFIX_AGGRESSIVE_PREF: &str = r"^\S+ postfix(-\w+)?/\w+(?:/smtp[ds])?\[\d+\]: (?:warning:|(?:\w+: (?:milter-)?reject:|(?:improper command pipelining|too many errors) after \S+)|(?:lost connection after(?! DATA) [A-Z]+|disconnect(?= from \S+(?: \S+=\d+)* auth=0/(?:[1-9]|\d\d+))|(?:PREGREET \d+|HANGUP) after \S+|COMMAND (?:TIME|COUNT|LENGTH) LIMIT)) <F-CONTENT>.+</F-CONTENT>$";

    /// Issue 16: postfix's aggressive prefregex sent every `disconnect`
    /// line to the backtracking engine (its skeleton drops the look-ahead
    /// that asks for `auth=0/N`): 3,800 wasted searches of 43k
    /// instructions each per 20,000 lines. Behind its look-ahead gate the
    /// pattern captures the same on every line, and a `disconnect` line
    /// without a failed authentication never reaches the backtracking
    /// engine.
    #[test]
    fn a_gated_look_ahead_prefregex_captures_what_it_did_and_skips_lines_its_gate_rules_out() {
        let expanded = f2b_any(POSTFIX_AGGRESSIVE_PREF).unwrap();
        let fancy = Compiled::Fancy(fancy_regex::Regex::new(&expanded).unwrap());
        let def = f2b(
            "postfix",
            Some(POSTFIX_AGGRESSIVE_PREF),
            &[r"^from [^\[]*\[<HOST>\](?::\d+)?:?"],
        );
        let gated = def.compile().unwrap();
        let gated = &gated.pref.as_ref().unwrap().exact;
        assert!(matches!(gated, Compiled::Gated(..)), "{gated:?}");
        let pre = "mx postfix/smtpd[7]: ";
        let mut lines: Vec<Vec<u8>> = [
            "disconnect from x[192.0.2.1] ehlo=1 auth=0/1 quit=1 commands=2/3",
            "disconnect from x[192.0.2.1] ehlo=1 auth=0/12 commands=1/13",
            "disconnect from x[192.0.2.1] ehlo=1 auth=0/0 commands=1",
            "disconnect from x[192.0.2.1] ehlo=1 auth=1/1 quit=1 commands=3",
            "disconnect from x[192.0.2.1] ehlo=1 quit=1 commands=2",
            "disconnect from x[192.0.2.1] ehlo=1 auth=0/1",
            "disconnect from x[192.0.2.1]  auth=0/1",
            "disconnect from é[192.0.2.1] ehlo=١ auth=0/1",
            "disconnect from x[192.0.2.1]\u{a0}auth=0/1",
            "disconnect  from x[192.0.2.1] auth=0/1",
            "disconnect",
            "disconnect from",
            "lost connection after DATA from x[192.0.2.1]",
            "lost connection after DATAX from x[192.0.2.1]",
            "lost connection after DAT from x[192.0.2.1]",
            "lost connection after AUTH from x[192.0.2.1]",
            "PREGREET 11 after 0.1 from [192.0.2.1]:4: EHLO x",
            "HANGUP after 0.1 from [192.0.2.1]:4 in tests before 220",
            "COMMAND COUNT LIMIT from x[192.0.2.1]",
            "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x",
            "NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 y",
            "too many errors after RCPT from x[192.0.2.1]",
            "connect from x[192.0.2.1]",
        ]
        .iter()
        .map(|l| format!("{pre}{l}").into_bytes())
        .collect();
        // Invalid UTF-8, and long hostile runs.
        lines.push([pre.as_bytes(), b"disconnect from \xff[192.0.2.1] auth=0/1"].concat());
        lines.push([pre.as_bytes(), b"disconnect from x\xff auth=0/\xff1"].concat());
        for fill in [" a=1", " auth=0/", " auth=0/0", "é"] {
            let l = format!("{pre}disconnect from x{}", fill.repeat(2000));
            lines.push(l.clone().into_bytes());
            lines.push(format!("{l} auth=0/1").into_bytes());
        }
        let mut skipped = 0;
        for line in &lines {
            let want = format!("{:?}", fancy.capture(line));
            let before = fancy_runs();
            let got = format!("{:?}", gated.capture(line));
            if fancy_runs() == before {
                skipped += 1;
            }
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
            assert_eq!(gated.is_match(line), fancy.is_match(line));
        }
        // The lines without auth=0/N after `disconnect from`: five of the
        // short ones, and every fill without the end.
        assert!(skipped >= 9, "{skipped}");
        // The first line matches, its gate let it through.
        assert!(gated.capture(&lines[0]).is_some());
    }

    /// Issue 16: postfix's aggressive prefregex and `mdre-auth2` ran whole
    /// in the backtracking engine, 20,000 instructions a line: its plain
    /// `__prefix_line` and its content's `.+` a character at a time.
    /// Behind a plain lead, the backtracking engine runs only the part
    /// after it, and must capture what the whole pattern does: where that
    /// part fails after the lead's first match (the whole pattern then
    /// backtracks into the lead), where it could read the character
    /// before it (`\b`, `^`), on non-ASCII lines and where the content
    /// would be empty or hold a line end.
    #[test]
    fn a_backtracking_pattern_behind_a_plain_lead_captures_what_the_whole_pattern_does() {
        let auth2 = r"^[^\[]*\[<HOST>\](?::\d+)?: SASL ((?i)LOGIN|PLAIN|(?:CRAM|DIGEST)-MD5) authentication failed:(?! Connection lost to authentication server)";
        let patterns = [
            f2b_any(POSTFIX_AGGRESSIVE_PREF).unwrap(),
            f2b_any(auth2).unwrap(),
            // The part after the lead fails where the lead first ends.
            r"^(?P<user>x+)(?=x)y?(?P<host>\w)".to_string(),
            // It reads the character before it.
            r"^a(?!z)\bb?".to_string(),
            r"^a(?!z)(?:^|b)".to_string(),
            r"^\w+ (?!root\b)(?P<user>\S+) from (?P<host>\S+)".to_string(),
            r"^(?P<mlfid>\S+ )(?=x|y)(?P<content>.+)$".to_string(),
        ];
        let pre = "mx postfix/smtpd[7]: ";
        let mut lines: Vec<Vec<u8>> = [
            "disconnect from x[192.0.2.1] ehlo=1 auth=0/1 quit=1 commands=2/3",
            "disconnect from x[192.0.2.1] ehlo=1 auth=1/1 quit=1 commands=3",
            "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFz",
            "warning: unknown[192.0.2.1]: SASL login authentication failed: Connection lost to authentication server",
            "warning: x[192.0.2.1]:25: SASL CRAM-MD5 authentication failed:",
            "NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 y",
            "lost connection after DATA from x[192.0.2.1]",
            "lost connection after AUTH from x[192.0.2.1]",
            "lost connection after AUTH ",
            "lost connection after AUTH \nfrom x",
        ]
        .iter()
        .map(|l| format!("{pre}{l}").into_bytes())
        .collect();
        for l in [
            "xxxz", "xx", "x", "xyz", "ab", "a", "az", "a b", "bob root from 192.0.2.1",
            "bob rooty from 192.0.2.1", "bob bob from 192.0.2.1", "m x", "m y", "m z", "m ",
            "m x\n", "m xé", "ab é", "bob jösé from 192.0.2.1",
            "unknown[192.0.2.1]: SASL LOGIN authentication failed: UGFz",
            "unknown[192.0.2.1]: SASL Plain authentication failed:",
            "x[192.0.2.1]:587: SASL login authentication failed: Connection lost to authentication server",
            "x[192.0.2.1]: SASL LOGIN authentication failed: Connection lost",
        ] {
            lines.push(l.as_bytes().to_vec());
        }
        lines.push(
            [
                pre.as_bytes(),
                b"warning: \xff[192.0.2.1]: SASL LOGIN authentication failed: x",
            ]
            .concat(),
        );
        lines.push(b"bob b\xffb from 192.0.2.1".to_vec());
        let mut rest_alone = 0;
        for p in &patterns {
            let whole = Compiled::Fancy(fancy_regex::Regex::new(p).unwrap());
            let led = plain_lead(p, Compiled::Fancy(fancy_regex::Regex::new(p).unwrap()));
            assert!(matches!(led, Compiled::PlainLead { .. }), "{p}: {led:?}");
            let mut matched = 0;
            for line in &lines {
                let want = whole.capture(line);
                matched += usize::from(want.is_some());
                let before = fancy_runs();
                let got = led.capture(line);
                rest_alone += usize::from(got.is_some() && fancy_runs() - before == 1);
                assert_eq!(
                    format!("{got:?}"),
                    format!("{want:?}"),
                    "{p}\n{}",
                    String::from_utf8_lossy(line)
                );
                assert_eq!(led.is_match(line), want.is_some(), "{p}");
            }
            assert!(matched > 0, "{p}");
        }
        // The postfix lines that match took the part after the lead alone.
        assert!(rest_alone >= 8, "{rest_alone}");
    }

    #[test]
    fn a_plain_lead_stops_before_the_first_part_that_needs_backtracking() {
        use crate::state::plain_lead;
        let split = |p| plain_lead(p).map(|(a, b)| format!("{a}|{b}"));
        assert_eq!(
            split(r"^a[(]\((?:b)(?=c)d").as_deref(),
            Some(r"^a[(]\((?:b)|(?=c)d")
        );
        assert_eq!(
            split(r"^a (?:x|y(?!z))+ d").as_deref(),
            Some(r"^a |(?:x|y(?!z))+ d")
        );
        assert_eq!(split(r"^a\b(?!b)\bc^").as_deref(), Some(r"^a\b|(?!b)\bc^"));
        for p in [
            // Not anchored, or nothing plain before the look-around.
            r"a(?=b)",
            r"^(?=b)a",
            // No concatenation.
            r"^a(?=b)|c",
            // Flags for what follows the lead.
            r"^(?i)a(?=b)",
            // The rest reads further back than one character.
            r"^ab(?<=ab)c",
            r"^(?P<a>\w) (?=x)(?P=a)",
            r"^(?P<a>\w) (?=x)\1",
            // The rest asks whether a group of the lead matched.
            r"^(?P<a>x)?y(?(a)z|w)",
            r"^(?P<a>x)?y(?=.)(?(a)z|w)",
            // Nothing needs backtracking.
            r"^ab",
        ] {
            assert_eq!(split(p), None, "{p}");
        }
    }

    /// The gate of a pattern matches wherever the pattern does; patterns
    /// whose look-ahead cannot be kept get none.
    #[test]
    fn a_look_ahead_gate_matches_wherever_its_pattern_does() {
        use crate::state::lookahead_gate;
        let patterns = [
            r"^a (?:b(?= c\d)|d) (?P<rest>.+)$",
            r"^(?:x|y(?=z+(?!q)))z",
            r"^(?P<g>k(?=(?:[\]a)]|\w)+ end))\w",
        ];
        let lines: &[&[u8]] = &[
            b"a b c1 more",
            b"a b c more",
            b"a d c1",
            "a b c\u{663} x".as_bytes(),
            b"yzzz",
            b"yzzq",
            b"xz",
            b"k]]a end",
            "kéé end".as_bytes(),
            b"k\xff end",
        ];
        for p in patterns {
            let exact = fancy_regex::Regex::new(p).unwrap();
            let gate = lookahead_gate(p).unwrap_or_else(|| panic!("{p}: no gate"));
            let gate = plain_regex(&gate).unwrap_or_else(|e| panic!("{gate}: {e}"));
            let mut rejected = 0;
            for line in lines {
                let m = exact.is_match(FancyText::new(line).as_str()).unwrap();
                assert!(
                    !m || gate.is_match(line),
                    "{p} matches {:?}",
                    String::from_utf8_lossy(line)
                );
                rejected += usize::from(!gate.is_match(line));
            }
            assert!(rejected > 0, "{p}: its gate rules nothing out");
        }
        for p in [
            r"^a(?= b)|c",
            r"^(?:a(?= b))? c",
            r"^(?:a(?= b)c|d)",
            r"^a(?= b)",
        ] {
            assert_eq!(lookahead_gate(p), None, "{p}");
        }
    }

    /// Issue 16: sshd's `Failed ...` failregexes ran on the backtracking
    /// engine, about 80k instructions a failure line. As the plain cases of
    /// `crate::cases` they capture exactly what the backtracking engine
    /// does (groups, address, user, nofail) on every line of a corpus of
    /// real and hostile lines: user names and tails holding ` from ` and
    /// its prefixes, colons, non-ASCII spaces and digits, invalid UTF-8.
    /// All-ASCII lines run on the cases' ASCII twins, the others on their
    /// Unicode form: both capture what the backtracking engine does.
    #[test]
    fn stock_conditional_failregexes_as_plain_cases_capture_what_the_backtracking_engine_does() {
        let stock: Vec<&str> = crate::cases::KNOWN_STOCK.to_vec();
        assert_eq!(stock.len(), 3);
        let tokens = [
            "password",
            "publickey",
            "keyboard-interactive/pam",
            "publickeyx",
        ];
        let users: [&[u8]; 9] = [
            b"bob",
            b"a from b",
            b"x fro",
            b"a from",
            b"",
            b"a:b c",
            "\u{e9}\u{a0}b".as_bytes(),
            b"\xff from",
            b"from  fro from",
        ];
        let hosts = ["192.0.2.1", "2001:db8::1", "from"];
        let ports = ["", " port 22", " port 22 on eth0 port 2"];
        let ssh = ["", " ssh2"];
        let ends: [&[u8]; 7] = [
            b"",
            b": ",
            b": x from 192.0.2.9",
            b" [preauth]",
            b" from 192.0.2.9 port 1",
            b" fro",
            "\u{a0}\u{663}".as_bytes(),
        ];
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for t in tokens {
            for inv in ["", "invalid user "] {
                for u in users {
                    for h in hosts {
                        for p in ports {
                            for s in ssh {
                                for e in ends {
                                    lines.push(
                                        [
                                            format!("Failed {t} for {inv}").as_bytes(),
                                            u,
                                            format!(" from {h}{p}{s}").as_bytes(),
                                            e,
                                        ]
                                        .concat(),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        for fill in [" from", " fro", " from x", "é", ":"] {
            let long = fill.repeat(16 * 1024 / fill.len());
            lines.push(
                format!("Failed password for invalid user {long} from 192.0.2.1").into_bytes(),
            );
            lines.push(
                format!("Failed password for {long} from 192.0.2.1 port 2 ssh2{long}").into_bytes(),
            );
        }
        for p in stock {
            let expanded = f2b_any(p).unwrap();
            let fancy = Compiled::Fancy(fancy_regex::Regex::new(&expanded).unwrap());
            let cases = Compiled::Cases(stock_cases(p, f2b_any).unwrap());
            let mut matched = 0;
            let ascii_cases = || ASCII_CASES.with(|c| c.get());
            let before = ascii_cases();
            for line in &lines {
                let want = fancy.capture(line);
                matched += usize::from(want.is_some());
                assert_eq!(
                    format!("{:?}", cases.capture(line)),
                    format!("{want:?}"),
                    "{p}\n{}",
                    String::from_utf8_lossy(line)
                );
                assert_eq!(cases.is_match(line), want.is_some());
            }
            assert!(matched > 500, "{p}: {matched}");
            // Every all-ASCII line took the ASCII twins, and only those.
            let ascii = lines.iter().filter(|l| l.is_ascii()).count() as u64;
            assert!(ascii > 1000 && ascii < lines.len() as u64);
            assert_eq!(ascii_cases() - before, ascii, "{p}");
        }
    }

    /// A case whose every match ends in text the line lacks is not run:
    /// sshd's `: ` cases on a line that ends in `ssh2` (they were a lazy
    /// DFA's pass over the line each, on cold states).
    #[test]
    fn a_case_whose_ending_the_line_lacks_is_not_run() {
        let runs = || CASE_RUNS.with(|c| c.get());
        let line = b"Failed password for invalid user git from 192.0.2.1 port 22 ssh2";
        for (p, endings) in crate::cases::KNOWN_STOCK.iter().zip([
            &[Some(&b": "[..]), None][..],
            &[Some(b": "), None, Some(b": "), None],
            &[Some(b": "), None, Some(b": "), None],
        ]) {
            let cases = stock_cases(p, f2b_any).unwrap();
            let found: Vec<Option<&[u8]>> = cases
                .iter()
                .map(|c| c.ends_with.as_ref().map(|f| f.needle()))
                .collect();
            assert_eq!(found, endings, "{p}");
            let cases = Compiled::Cases(cases);
            let before = runs();
            let got = cases.capture(line);
            // `publickey` cases stop at the first word; the others match
            // in their second case, the first one skipped.
            let want = if p.contains("Failed publickey") {
                (None, 1)
            } else {
                (Some(33..36), 1)
            };
            assert_eq!((got.and_then(|c| c.user), runs() - before), want, "{p}");
            let before = runs();
            let with_colon = [&line[..], b": x"].concat();
            assert!(cases.capture(&with_colon).is_some() || p.contains("Failed publickey"));
            assert!(runs() - before >= 1);
        }
    }

    /// sshd's `__pref` after its `<F-MLFID>`: a line whose text there
    /// starts with neither `e` nor `f` needs no search for it.
    #[test]
    fn an_optional_head_part_is_skipped_by_its_first_bytes() {
        let starts = |b: &str| {
            optional_part_starts(b).map(|s| (0..=255u8).filter(|&c| s.has(c)).collect::<Vec<u8>>())
        };
        assert_eq!(
            starts(r"^(?:(?:(?:error|fatal): (?:PAM: )?)?)"),
            Some(b"ef".to_vec())
        );
        assert_eq!(starts(r"(?i:x|Y)?"), Some(b"XYxy".to_vec()));
        // Not one optional part, lazy, or a part whose start is open.
        for b in [
            r"^(?:a)?(?:b)?",
            r"(?:ab)??",
            r"\s*",
            r"(?:.*x)?",
            r"(?:a|)?",
        ] {
            assert_eq!(starts(b), None, "{b}");
        }
    }
}
