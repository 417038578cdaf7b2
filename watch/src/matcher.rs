//! The combined matcher of one log source: every failregex of every filter
//! that reads the source, scanned in one pass over each line.
//!
//! Most log lines are not failures. They are rejected by a single lazy-DFA
//! pass of one set of all patterns (`crate::scanset`); only lines that something
//! matched are run again through the matching pattern to capture the
//! address. Patterns that need the backtracking engine join the scan through
//! their gate, or, without one, are tried on every line (slow, and the only
//! case that is).

use banset_core::Target;

use crate::compiled::{Captured, CompiledFilter, CompiledPattern};
use crate::datefind::DateFinder;
use crate::filter::{plain_regex, DateRule, FilterDef, FilterError, MAX_LINE_LEN};
use crate::multiline::{connection_step, offender, Offender};
use crate::scanset::{PatternSet, ScanSet};
use crate::shared::Shared;

/// A failure found in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the filter in the list the matcher was built from.
    pub filter: usize,
    /// Index of the failregex in that filter (0-based).
    pub regex: usize,
    /// The offender.
    pub target: Target,
    /// An ignoreregex of the filter matched the line too: not a failure.
    pub ignored: bool,
}

/// What one scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// No failregex matched (with a valid address).
    Missed,
    /// At least one filter found a failure (see the hits).
    Hit,
    /// The line is longer than [`MAX_LINE_LEN`] and was not looked at.
    TooLong,
}

/// Which pattern of a filter a combined scan entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    /// A failregex of a one-stage filter.
    Fail(usize),
    /// The prefregex of a two-stage filter.
    Pref,
    /// A multi-line filter: every line goes to its buffer.
    Lines,
    /// The prefregex of a two-stage filter with failregex `r` on its
    /// content ([`crate::compiled::FilterPatterns::pref_scans`]).
    PrefWith(usize),
}

/// The filters that cut the date off a line the same way, scanned together.
#[derive(Debug)]
struct DateGroup {
    /// `None`: the caller's split ([`crate::logtime::split_date`]).
    finder: Option<std::sync::Arc<DateFinder>>,
    /// The finder holds fail2ban's anchored default templates, so it would
    /// find a leading syslog/ISO date too: split that off the fast way
    /// (where the templates before the defaults miss the line) and use the
    /// finder only for other lines.
    leading_first: bool,
    set: Option<std::sync::Arc<ScanSet>>,
    /// (filter, slot) of each pattern of `set`, in `set`'s order.
    set_map: Vec<(usize, Slot)>,
    /// (filter, slot) of patterns that are not in `set`: tried always.
    unscanned: Vec<(usize, Slot)>,
}

/// What [`Matcher::scan`] works in on a line: the scan's matches and the
/// candidates they name, kept from one line to the next on each thread so
/// a line costs no allocation (issue 16).
struct Scratch {
    found: PatternSet,
    candidates: Vec<(usize, Slot)>,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            found: PatternSet::new(0),
            candidates: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// See the module documentation.
#[derive(Debug)]
pub struct Matcher {
    names: Vec<String>,
    filters: Vec<CompiledFilter>,
    groups: Vec<DateGroup>,
}

impl Matcher {
    /// Compiles the filters into one matcher.
    pub fn new(filters: &[FilterDef]) -> Result<Matcher, FilterError> {
        let compiled = filters
            .iter()
            .map(FilterDef::compile_shared)
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules: Vec<&DateRule> = filters.iter().map(|f| &f.date).collect();
        rules.sort();
        rules.dedup();
        let mut groups = Vec::new();
        for rule in rules {
            let mut scan = Vec::new();
            let mut set_map = Vec::new();
            let mut unscanned = Vec::new();
            for (f, filter) in compiled.iter().enumerate() {
                if filters[f].date != *rule {
                    continue;
                }
                if filter.lines.is_some() {
                    unscanned.push((f, Slot::Lines));
                    continue;
                }
                let slots: Vec<(Slot, Option<&String>)> = match (&filter.pref, &filter.pref_scans) {
                    (Some(_), Some(each)) => each
                        .iter()
                        .enumerate()
                        .map(|(r, text)| (Slot::PrefWith(r), Some(text)))
                        .collect(),
                    (Some(p), None) => vec![(Slot::Pref, p.scan.as_ref())],
                    (None, _) => filter
                        .fail
                        .iter()
                        .enumerate()
                        .map(|(r, p)| (Slot::Fail(r), p.scan.as_ref()))
                        .collect(),
                };
                for (slot, text) in slots {
                    match text {
                        Some(text) => {
                            scan.push(text.as_str());
                            set_map.push((f, slot));
                        }
                        None => unscanned.push((f, slot)),
                    }
                }
            }
            let set = if scan.is_empty() {
                None
            } else {
                // Sources whose jails use the same filters share the scan.
                static SETS: Shared<Vec<String>, ScanSet> = Shared::new();
                let key: Vec<String> = scan.iter().map(|s| s.to_string()).collect();
                Some(
                    SETS.get_or_build(&key, || ScanSet::new(&scan))
                        .map_err(|e| FilterError {
                            filter: filters
                                .iter()
                                .map(|f| f.name.as_str())
                                .collect::<Vec<_>>()
                                .join("+"),
                            kind: "failregex",
                            index: 0,
                            pattern: String::new(),
                            reason: format!("combined scan: {}", e.to_string().replace('\n', " ")),
                        })?,
                )
            };
            debug_assert!(scan.iter().all(|s| plain_regex(s).is_ok()));
            let (finder, leading_first) = match rule {
                DateRule::Leading => (None, false),
                DateRule::Fail2ban(p) => {
                    let finder =
                        DateFinder::shared(p.as_deref()).map_err(|reason| FilterError {
                            filter: filters
                                .iter()
                                .filter(|f| f.date == *rule)
                                .map(|f| f.name.as_str())
                                .collect::<Vec<_>>()
                                .join("+"),
                            kind: "datepattern",
                            index: 1,
                            pattern: p.clone().unwrap_or_default(),
                            reason: reason.to_string(),
                        })?;
                    // A datepattern that puts the default templates first
                    // (`{^LN-BEG}`, `{DEFAULT}`), or after templates that
                    // are checked to miss the line first (dovecot's
                    // `{^LN-BEG}TAI64N`): see `DateFinder::reaches_defaults`.
                    let leading = finder.has_leading_defaults();
                    (Some(finder), leading)
                }
            };
            groups.push(DateGroup {
                finder,
                leading_first,
                set,
                set_map,
                unscanned,
            });
        }
        Ok(Matcher {
            names: filters.iter().map(|f| f.name.clone()).collect(),
            filters: compiled,
            groups,
        })
    }

    /// The filters' names, by index.
    pub fn filter_names(&self) -> &[String] {
        &self.names
    }

    /// Number of failregexes of filter `filter`.
    pub fn failregex_count(&self, filter: usize) -> usize {
        self.filters[filter].fail.len()
    }

    /// Scans one line whose date has already been split off (`line` is
    /// what follows the date), appending at most one hit per filter. Tests
    /// only: the daemon once scanned lines this way and lost the space
    /// fail2ban keeps after the date; callers go through
    /// [`crate::pipeline::LinePipeline`].
    #[cfg(test)]
    pub(crate) fn scan(&self, line: &[u8], hits: &mut Vec<Hit>) -> Scan {
        self.scan_line(line, line, hits)
    }

    /// Scans a line that has no date to cut: a journal entry, whose time is
    /// the entry's own. Every filter sees the line whole, as fail2ban's
    /// journal backend hands an entry to its filters, so a date inside the
    /// message (exim writes one) stays text the failregex may expect.
    pub fn scan_undated(&self, line: &[u8], hits: &mut Vec<Hit>) -> Scan {
        if line.len() > MAX_LINE_LEN {
            return Scan::TooLong;
        }
        let before = hits.len();
        for group in &self.groups {
            self.scan_group(group, line, hits);
        }
        if hits.len() > before {
            Scan::Hit
        } else {
            Scan::Missed
        }
    }

    /// Scans one line: `full` as read, `rest` what follows its leading
    /// syslog/ISO date ([`crate::logtime::split_date`]; `full` itself when
    /// it has none). Filters with a fail2ban `datepattern` cut their own
    /// date out of `full`.
    pub fn scan_line(&self, full: &[u8], rest: &[u8], hits: &mut Vec<Hit>) -> Scan {
        if full.len() > MAX_LINE_LEN {
            return Scan::TooLong;
        }
        let before = hits.len();
        for group in &self.groups {
            let text: std::borrow::Cow<'_, [u8]> = match &group.finder {
                None => rest.into(),
                Some(f)
                    if group.leading_first
                        && leading_date_ends_cleanly(full, rest)
                        && f.reaches_defaults(full) =>
                {
                    // fail2ban cuts the date only, keeping the space after it.
                    let cut = full.len() - rest.len();
                    let keep_space = full[cut - 1] == b' ';
                    full[cut - usize::from(keep_space)..].into()
                }
                Some(f) => f.strip(full),
            };
            self.scan_group(group, &text, hits);
        }
        if hits.len() > before {
            Scan::Hit
        } else {
            Scan::Missed
        }
    }

    fn scan_group(&self, group: &DateGroup, line: &[u8], hits: &mut Vec<Hit>) {
        // Taken out for the line, so nothing holds the thread's copy while
        // the patterns run.
        let mut scratch = SCRATCH.take();
        self.scan_group_with(group, line, hits, &mut scratch);
        SCRATCH.set(scratch);
    }

    fn scan_group_with(
        &self,
        group: &DateGroup,
        line: &[u8],
        hits: &mut Vec<Hit>,
        scratch: &mut Scratch,
    ) {
        let any = group.set.as_ref().is_some_and(|set| {
            set.matches(line, &mut scratch.found);
            !scratch.found.is_empty()
        });
        if !any && group.unscanned.is_empty() {
            return;
        }
        // Candidates in (filter, slot) order: the set's order is that order
        // already; merge in the unscanned patterns.
        let candidates = &mut scratch.candidates;
        candidates.clear();
        if any {
            candidates.extend(scratch.found.iter().map(|p| group.set_map[p.as_usize()]));
        }
        if !group.unscanned.is_empty() {
            candidates.extend_from_slice(&group.unscanned);
            candidates.sort_unstable();
        }
        let mut done_filter = usize::MAX;
        let mut next = 0;
        while next < candidates.len() {
            let (f, slot) = candidates[next];
            next += 1;
            if f == done_filter {
                continue;
            }
            let filter = &self.filters[f];
            let mut ignored = None;
            let found = match slot {
                Slot::Fail(r) => filter.fail[r].exact.capture(line).map(|c| {
                    match offender(c.host.map(|h| &line[h]), None) {
                        Offender::Address(t) => (r, Some(t), c.nofail || c.gained),
                        Offender::None => (r, None, c.nofail || c.gained),
                        // Matched, naming no address: the filter is done
                        // with this line (no later failregex gets a say).
                        Offender::NotAnAddress => (r, None, true),
                    }
                }),
                Slot::Pref => two_stage(filter, line, None).map(|(r, t)| (r, Some(t), false)),
                Slot::PrefWith(_) => {
                    // This filter's entries: the failregexes to try.
                    let from = next - 1;
                    while candidates.get(next).is_some_and(|c| c.0 == f) {
                        next += 1;
                    }
                    two_stage(filter, line, Some(&candidates[from..next]))
                        .map(|(r, t)| (r, Some(t), false))
                }
                Slot::Lines => {
                    crate::multiline::step(filter, line).map(|(r, target, nofail, ign)| {
                        ignored = Some(ign);
                        (r, target, nofail)
                    })
                }
            };
            let Some((r, target, nofail)) = found else {
                continue;
            };
            if nofail {
                // fail2ban stops at the first matching failregex; a match
                // through F-NOFAIL says "no failure here".
                done_filter = f;
                continue;
            }
            let Some(target) = target else {
                continue;
            };
            let ignored =
                ignored.unwrap_or_else(|| filter.ignore.iter().any(|p| p.exact.is_match(line)));
            hits.push(Hit {
                filter: f,
                regex: r,
                target,
                ignored,
            });
            done_filter = f;
        }
    }
}

/// Whether the caller's split found a leading date that ends where a
/// fail2ban template would end it too (a digit or a zone, then a space).
fn leading_date_ends_cleanly(full: &[u8], rest: &[u8]) -> bool {
    if rest.len() >= full.len() {
        return false;
    }
    let cut = full.len() - rest.len();
    let date_end = if full[cut - 1] == b' ' { cut - 1 } else { cut };
    date_end > 0
        && (full[date_end - 1].is_ascii_digit() || full[date_end - 1] == b'Z')
        && full.get(date_end).is_none_or(|&b| b == b' ')
}

/// A two-stage filter: the prefregex on the line, then the failregexes on
/// its `<F-CONTENT>`. The address comes from the failregex, else from the
/// prefregex (else, for a connection, from an earlier line). Returns the
/// failure the line gives, as (failregex, address): a line that gives none
/// (no match, or a match that says "no failure") is `None`, which is all
/// the matcher needs, since a two-stage filter's failregexes are all tried
/// here. `chosen`: the filter's entries of the matcher's scan that matched
/// the line, which name the failregexes to try (`Slot::PrefWith`); without
/// them, the content set picks them from the content.
fn two_stage(
    filter: &CompiledFilter,
    line: &[u8],
    chosen: Option<&[(usize, Slot)]>,
) -> Option<(usize, Target)> {
    let prefregex = &filter.pref.as_ref()?.exact;
    if let Some([(_, Slot::PrefWith(r))]) = chosen {
        if says_nothing_alone(filter, &filter.fail[*r], prefregex, line) {
            return None;
        }
    }
    let pref = prefregex.capture(line)?;
    let content = match &pref.content {
        Some(r) => &line[r.clone()],
        None => line,
    };
    let named = chosen
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, s)| match s {
            Slot::PrefWith(r) => Some(*r),
            _ => None,
        });
    let picked: Vec<usize> = match (chosen, &filter.content_set) {
        (Some(_), _) => Vec::new(),
        (None, Some(set)) => set.candidates(content),
        (None, None) => (0..filter.fail.len()).collect(),
    };
    let mut tries = named.chain(picked).peekable();
    while let Some(r) = tries.next() {
        if quiet(
            filter,
            &filter.fail[r],
            pref.mlfid.clone().map(|id| &line[id]),
        ) {
            // fail2ban stops at the first failregex that matches, and this
            // one says "nothing" if it does: the last one to try need not
            // run at all (issue 16: sshd's logins and closes).
            if tries.peek().is_none() || filter.fail[r].exact.is_match(content) {
                return None;
            }
            continue;
        }
        let Some(c) = filter.fail[r].exact.capture(content) else {
            continue;
        };
        let target = match offender(
            c.host.clone().map(|h| &content[h]),
            pref.host.clone().map(|h| &line[h]),
        ) {
            Offender::Address(t) => Some(t),
            Offender::None => None,
            // A name: no failure, and nothing the connection remembers
            // (a later line's address must not complete it).
            Offender::NotAnAddress => return None,
        };
        let marks = Captured {
            nofail: c.nofail || pref.nofail,
            gained: c.gained || pref.gained,
            forget: c.forget || pref.forget,
            ..Captured::default()
        };
        let Some(id) = pref.mlfid.clone().filter(|_| filter.connections.is_some()) else {
            return target
                .filter(|_| !(marks.nofail || marks.gained))
                .map(|t| (r, t));
        };
        let user = c
            .user
            .clone()
            .map(|u| &content[u])
            .or_else(|| pref.user.clone().map(|u| &line[u]));
        return connection_step(filter, &line[id], target, &marks, user).map(|t| (r, t));
    }
    None
}

/// Whether a match of failregex `fail` on this line of a two-stage filter
/// says "no failure, nothing to remember" whatever it captures, so a match
/// is enough and its captures are not needed (issue 16: sshd's logins,
/// disconnects and closes are failregexes that mark the connection; their
/// captures were 70% of sshd.conf's capture work). That holds for a match
/// marked `<F-NOFAIL>` or `<F-MLFGAINED>` in every match of the pattern
/// (`FixedMarks`), of a filter that follows no connection or whose
/// prefregex marked none on this line; and, for a filter that follows
/// connections, when the pattern also always ends the connection
/// (`<F-MLFFORGET>`) and the connection is not open: `connection_step`
/// then neither counts the line nor remembers anything of it.
fn quiet(filter: &CompiledFilter, fail: &CompiledPattern, mlfid: Option<&[u8]>) -> bool {
    if !fail.fixed.nofail {
        return false;
    }
    let (Some(cache), Some(id)) = (&filter.connections, mlfid) else {
        return true;
    };
    fail.fixed.forget && !is_open(cache, id)
}

/// Whether the line gives nothing when `fail` is the only failregex to
/// try and [`quiet`]: then neither its match nor the prefregex's content
/// matters, only the connection's id, which a prefregex found through
/// its `<F-MLFID>` ([`crate::compiled::HeadFind::Mlfid`]) gives without
/// the rest of its head (issue 16: a third of sshd's lines are logins and
/// closes of connections with no failure). `false` when it takes more to
/// tell: the caller then runs the whole two-stage match.
fn says_nothing_alone(
    filter: &CompiledFilter,
    fail: &CompiledPattern,
    prefregex: &crate::compiled::Compiled,
    line: &[u8],
) -> bool {
    // Only a pattern marked so can be quiet: no search for the others.
    fail.fixed.nofail
        && match prefregex.mlfid_alone(line) {
            // `None` inside: the head does not start here, so nor does
            // the prefregex match, and there is no connection to look up.
            Some(id) => quiet(filter, fail, id.map(|id| &line[id])),
            // A filter that follows no connection needs no id.
            None => filter.connections.is_none(),
        }
}

/// Whether the filter follows the connection with this id.
fn is_open(cache: &std::sync::Mutex<crate::state::Connections>, id: &[u8]) -> bool {
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .open
        .contains_key(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Pattern;
    use std::sync::Arc;

    fn first(m: &Matcher, line: &str) -> Option<String> {
        let mut hits = Vec::new();
        m.scan(line.as_bytes(), &mut hits);
        hits.first().map(|h| h.target.to_string())
    }

    /// Issue 16: every source compiled its filters and date templates
    /// anew, so ninety jails using a few filters held ninety copies, each
    /// growing its own lazy-DFA caches. Two sources whose jails use the same
    /// filter now share one compiled copy, and still keep their own state
    /// (a multi-line filter's buffer): a line of one log never completes a
    /// failure with a line of the other.
    #[test]
    fn two_sources_with_the_same_filter_share_its_compiled_patterns_but_not_its_state() {
        let def = FilterDef {
            name: "twolines".into(),
            failregex: vec![Pattern::new(r"^h a: from <HOST>\nh a: denied$")],
            ignoreregex: Vec::new(),
            prefregex: None,
            date: DateRule::Fail2ban(Some("{NONE}".into())),
            maxlines: 2,
        };
        let a = Matcher::new(std::slice::from_ref(&def)).unwrap();
        let b = Matcher::new(std::slice::from_ref(&def)).unwrap();
        assert!(Arc::ptr_eq(&a.filters[0].patterns, &b.filters[0].patterns));
        let finder = |m: &Matcher| m.groups[0].finder.clone().unwrap();
        assert!(Arc::ptr_eq(&finder(&a), &finder(&b)));
        assert_eq!(first(&a, "h a: from 192.0.2.9"), None);
        assert_eq!(first(&b, "h a: denied"), None, "b completed a's line");
        assert_eq!(first(&a, "h a: denied").as_deref(), Some("192.0.2.9"));
        // Another filter is another copy; the combined scans of sources
        // with the same filters are one too.
        let other = FilterDef {
            name: "other".into(),
            failregex: vec![Pattern::new(r"^h b: from <HOST>$")],
            maxlines: 1,
            ..def
        };
        let c = Matcher::new(std::slice::from_ref(&other)).unwrap();
        assert!(!Arc::ptr_eq(&a.filters[0].patterns, &c.filters[0].patterns));
        let d = Matcher::new(&[other]).unwrap();
        let set = |m: &Matcher| m.groups[0].set.clone().unwrap();
        assert!(Arc::ptr_eq(&set(&c), &set(&d)));
        assert_eq!(
            first(&d, "h b: from 192.0.2.10").as_deref(),
            Some("192.0.2.10")
        );
    }

    fn scanned(m: &Matcher, full: &str) -> Option<String> {
        let (_, rest) = crate::logtime::split_date(full.as_bytes());
        let mut hits = Vec::new();
        m.scan_line(full.as_bytes(), rest, &mut hits);
        hits.first().map(|h| h.target.to_string())
    }

    /// Issue 16: dovecot's `datepattern = {^LN-BEG}TAI64N` then
    /// `{^LN-BEG}` ran every anchored date template on each line (5.9k of
    /// its 13.5k instructions a line), because only a datepattern of
    /// exactly `{^LN-BEG}` or `{DEFAULT}` split a leading syslog date the
    /// fast way. Any datepattern holding the defaults now does, where the
    /// templates before them miss the line; where one of them matches, it
    /// still cuts the date, as in fail2ban.
    #[test]
    fn templates_before_the_default_ones_still_cut_the_date_when_they_match() {
        let def = |datepattern: &str, failregex: &str| FilterDef {
            name: "dated".into(),
            failregex: vec![Pattern::new(failregex)],
            ignoreregex: Vec::new(),
            prefregex: None,
            date: DateRule::Fail2ban(Some(datepattern.into())),
            maxlines: 1,
        };
        let line = "Nov 21 00:00:00 mx d[1]: bad 192.0.2.1";
        // `%b %d` first: it cuts "Nov 21" only, so the time stays text.
        let short = Matcher::new(&[def(
            "{^LN-BEG}%b %d\n{^LN-BEG}",
            r"^ 00:00:00 mx d\[1\]: bad <HOST>$",
        )])
        .unwrap();
        assert!(short.groups[0].leading_first);
        assert_eq!(scanned(&short, line).as_deref(), Some("192.0.2.1"));
        // dovecot's: TAI64N misses a syslog-dated line, the defaults cut
        // the whole date (the space after it kept, as fail2ban keeps it).
        let dovecot = Matcher::new(&[def(
            "{^LN-BEG}TAI64N\n{^LN-BEG}",
            r"^ mx d\[1\]: bad <HOST>$",
        )])
        .unwrap();
        assert!(dovecot.groups[0].leading_first);
        for l in [
            line,
            "2026-11-21T00:00:00.123456+00:00 mx d[1]: bad 192.0.2.1",
            "@4000000068f0a1b2c3d4e5f6 mx d[1]: bad 192.0.2.1",
        ] {
            assert_eq!(scanned(&dovecot, l).as_deref(), Some("192.0.2.1"), "{l}");
            let finder = dovecot.groups[0].finder.as_ref().unwrap();
            let cut = finder.strip(l.as_bytes());
            let mut hits = Vec::new();
            dovecot.scan_group(&dovecot.groups[0], &cut, &mut hits);
            assert_eq!(hits.len(), 1, "the finder's own cut of {l}");
        }
    }

    /// Issue 16: sshd's logins, closes and disconnects are failregexes
    /// marked `<F-NOFAIL>`/`<F-MLFGAINED>` and `<F-MLFFORGET>`, and each was
    /// captured (about 4k instructions) only for `connection_step` to do
    /// nothing with it. Where the connection is not open, a match is now
    /// enough; where it is, the captures still decide (a login after
    /// failures for other users counts). And where such a failregex is the
    /// only one the scan named, not even its match is needed: whether it
    /// matches or not, the line gives nothing, so only the prefregex's
    /// `<F-MLFID>` runs, to look the connection up.
    #[test]
    fn a_connection_ending_line_of_an_unopened_connection_needs_no_captures() {
        let def = FilterDef {
            name: "conn".into(),
            failregex: vec![
                Pattern::new(r"^Failed password for <F-USER>\S+</F-USER> from <HOST>$"),
                Pattern::new(
                    r"^<F-NOFAIL><F-MLFFORGET>Connection closed</F-MLFFORGET></F-NOFAIL> by <HOST>$",
                ),
                Pattern::new(
                    r"^<F-MLFFORGET><F-MLFGAINED>Accepted \w+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>$",
                ),
                // Named by the scan beside the login on c's logins, so
                // the login is not alone there and must match.
                Pattern::new(r"^Accepted \w+ for c from <HOST>$"),
            ],
            ignoreregex: Vec::new(),
            prefregex: Some(Pattern::new(
                r"^<F-MLFID>h sshd\[\d+\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$",
            )),
            date: DateRule::Fail2ban(Some("{NONE}".into())),
            maxlines: 1,
        };
        let m = Matcher::new(&[def]).unwrap();
        let count = || {
            (
                crate::compiled::CAPTURES.with(|c| c.get()),
                crate::compiled::MATCHES.with(|c| c.get()),
            )
        };
        // (the hit, captures, matches) for a line.
        let run = |line: &str| {
            let before = count();
            let hit = first(&m, line);
            let after = count();
            (hit, after.0 - before.0, after.1 - before.1)
        };
        // Alone: nothing runs but the connection's id.
        assert_eq!(
            run("h sshd[1]: Connection closed by 192.0.2.1"),
            (None, 0, 0)
        );
        assert_eq!(
            run("h sshd[3]: Accepted password for d from 192.0.2.3"),
            (None, 0, 0)
        );
        // Not alone: the prefregex's capture, and the login's match, which
        // (being the first to match) ends the line before the failregex
        // that would count it.
        assert_eq!(
            run("h sshd[3]: Accepted password for c from 192.0.2.3"),
            (None, 1, 1)
        );
        // A connection that failed for two users: its login counts.
        assert_eq!(
            run("h sshd[2]: Failed password for a from 192.0.2.2")
                .0
                .as_deref(),
            Some("192.0.2.2")
        );
        assert_eq!(
            run("h sshd[2]: Failed password for b from 192.0.2.2")
                .0
                .as_deref(),
            Some("192.0.2.2")
        );
        let (hit, captures, _) = run("h sshd[2]: Accepted password for b from 192.0.2.2");
        assert_eq!((hit.as_deref(), captures), (Some("192.0.2.2"), 2));
        // It ended: the next login of that id is quiet again.
        assert_eq!(
            run("h sshd[2]: Accepted password for b from 192.0.2.2"),
            (None, 0, 0)
        );
    }

    /// The failregexes two-stage `filter` tries on `line` by each path:
    /// the matcher's one scan (the entries of `pref_scans` that match the
    /// line name them; no content scan), and the prefregex's capture then
    /// the content set; with what each found. `fast` and `slow` are the
    /// same filter compiled twice, each with its own connections.
    fn both_paths(
        set: &regex::bytes::RegexSet,
        fast: &CompiledFilter,
        slow: &CompiledFilter,
        line: &[u8],
    ) {
        let text = String::from_utf8_lossy(line);
        let chosen: Vec<(usize, Slot)> = set
            .matches(line)
            .iter()
            .map(|r| (0, Slot::PrefWith(r)))
            .collect();
        let scans = || crate::compiled::CONTENT_SCANS.with(|c| c.get());
        let before = scans();
        let got = if chosen.is_empty() {
            None
        } else {
            two_stage(fast, line, Some(&chosen))
        };
        assert_eq!(scans(), before, "the content was scanned: {text}");
        // The content set's candidates are among the scan's.
        if let Some(pref) = slow.pref.as_ref().unwrap().exact.capture(line) {
            let content = &line[pref.content.unwrap()];
            for r in slow.content_set.as_ref().unwrap().candidates(content) {
                assert!(
                    chosen.contains(&(0, Slot::PrefWith(r))),
                    "failregex {r} missed by the scan: {text}"
                );
            }
        }
        assert_eq!(got, two_stage(slow, line, None), "{text}");
    }

    /// Lines of sshd's kinds, real and hostile, after their date.
    fn sshd_corpus() -> Vec<Vec<u8>> {
        let heads = [
            "mx sshd[7]: ",
            "mx sshd[7]: error: PAM: ",
            "mx sshd[7]: fatal: ",
            "sshd[7]: ",
            "",
            "mx\u{a0}sshd[7]:\u{a0}",
            "mx CRON[7]: ",
            "[] <auth.info> mx kernel: [ 1.5]: sshd[7]: [ID 1 auth.info] ",
        ];
        let users: [&[u8]; 6] = [
            b"root",
            b"a from b",
            b"x fro",
            b"\xff\xfe",
            "é\u{a0}b".as_bytes(),
            b"",
        ];
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for u in users {
            for body in [
                &b"Failed password for invalid user %u from 192.0.2.1 port 22 ssh2"[..],
                b"Failed password for %u from 192.0.2.1 port 22 ssh2",
                b"Failed publickey for %u from 192.0.2.1 port 22 ssh2: RSA SHA256:x",
                b"Failed keyboard-interactive/pam for invalid user %u from 192.0.2.1 port 22 ssh2",
                b"Invalid user %u from 192.0.2.1 port 22",
                b"Accepted publickey for %u from 10.0.0.7 port 22 ssh2: ED25519 SHA256:x",
                b"Connection closed by authenticating user %u 192.0.2.1 port 22 [preauth]",
                b"Disconnected from invalid user %u 192.0.2.1 port 22 [preauth]",
                b"User %u from 192.0.2.1 not allowed because not listed in AllowUsers",
                b"Authentication failure for %u from 192.0.2.1",
                b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=%u",
                b"Disconnecting invalid user %u 192.0.2.1 port 22: Change of username or service not allowed: (a,b) -> (c,d) [preauth]",
            ] {
                let at = body.windows(2).position(|w| w == b"%u").unwrap();
                bodies.push([&body[..at], u, &body[at + 2..]].concat());
            }
        }
        for body in [
            "Connection closed by 192.0.2.1 port 22 [preauth]",
            "Connection reset by 192.0.2.1 port 22",
            "Received disconnect from 10.0.0.7 port 22:11: disconnected by user",
            "Received disconnect from 192.0.2.1 port 22:3: x: Auth fail [preauth]",
            "Received disconnect from 192.0.2.1 port 22:14: No supported authentication methods available [preauth]",
            "Disconnected from user deploy 10.0.0.7 port 22",
            "Did not receive identification string from 192.0.2.1 port 22",
            "Unable to negotiate with 192.0.2.1 port 22: no matching key exchange method found. x",
            "kex_exchange_identification: Connection closed by remote host",
            "Bad protocol version identification 'x' from 192.0.2.1 port 22",
            "banner exchange: Connection from 192.0.2.1 port 22: invalid format",
            "Connection from 192.0.2.1 port 22 on 10.0.0.1 port 22",
            "ROOT LOGIN REFUSED FROM 192.0.2.1",
            "refused connect from x (192.0.2.1)",
            "maximum authentication attempts exceeded for root from 192.0.2.1 port 22 ssh2 [preauth]",
            "Disconnecting: Too many authentication failures for root [preauth]",
            "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
            "pam_unix(sshd:session): session closed for user deploy",
            "Started session-3.scope - Session 3 of User deploy.",
            "Bad from 192.0.2.1",
            "WORSE 192.0.2.1",
            "x word 192.0.2.1",
            "xword 192.0.2.1",
            "ILLEGAL user x from 192.0.2.1",
            "see refused from 192.0.2.1 here",
            "\u{a0}Connection closed by 192.0.2.1",
        ] {
            bodies.push(body.as_bytes().to_vec());
        }
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for h in heads {
            for b in &bodies {
                lines.push([h.as_bytes(), b].concat());
            }
        }
        for fill in [" from", " ", "error: ", "sshd[1]: ", "é", "\u{a0}"] {
            let long = fill.repeat(16 * 1024 / fill.len());
            lines.push(
                format!("mx sshd[7]: Failed password for {long} from 192.0.2.1").into_bytes(),
            );
            lines.push(format!("mx sshd[7]: Connection closed by{long} 192.0.2.1").into_bytes());
            lines.push(format!("{long}Connection closed by 192.0.2.1").into_bytes());
            lines.push(format!("mx sshd[7]: {long}").into_bytes());
        }
        lines.push(b"mx sshd[7]: Connection closed by 192.0.2.1\nx".to_vec());
        lines.push(b"mx sshd[7]: Connection closed by 192.0.2.1\n".to_vec());
        lines
    }

    /// Issue 16: a two-stage filter scanned each line twice, the prefregex
    /// with every failregex inside it, then the failregexes' set again
    /// over the content. With one scan entry per failregex, the scan's
    /// match names the failregexes to try: on every line of sshd's kinds,
    /// real and hostile (` from ` in user names, invalid UTF-8, NBSP,
    /// 16 KiB fills, line ends), they are at least those the content set
    /// names, the outcome is the content set's, and the content is never
    /// scanned. Failregexes not anchored at the content's start, with a
    /// top-level `|`, a `\b` at the start or case folding are among them.
    #[test]
    fn one_scan_entry_per_failregex_tries_what_the_content_set_would() {
        use crate::compiled::tests::SSHD_PREF;
        let own = FilterDef {
            name: "sshdlike".into(),
            failregex: [
                r"^Failed \S+ for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
                r"^<F-NOFAIL><F-MLFFORGET>(Connection (?:closed|reset)|Disconnected)</F-MLFFORGET></F-NOFAIL> (?:by|from)(?: (?:invalid|authenticating) user <F-USER>\S+|.*?</F-USER>)? <HOST>(?:(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*|\s*)$",
                r"^<F-MLFFORGET><F-MLFGAINED>Accepted \w+</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>(?:\s|$)",
                r"refused from <HOST>",
                r"^Bad from <HOST>$|^(?i)worse <HOST>",
                r"\bword <HOST>$",
                r"^(?i)illegal user \S+ from <HOST>",
                r"^ROOT LOGIN REFUSED FROM <HOST>$",
            ]
            .iter()
            .map(|p| Pattern::new(*p))
            .collect(),
            ignoreregex: Vec::new(),
            prefregex: Some(Pattern::new(SSHD_PREF)),
            date: DateRule::Fail2ban(Some("{NONE}".into())),
            maxlines: 1,
        };
        let mut defs = vec![own];
        // fail2ban's own, where it is installed (CI installs it).
        for mode in ["", "[mode=aggressive]"] {
            let path = format!("/etc/fail2ban/filter.d/sshd.conf{mode}");
            if std::path::Path::new("/etc/fail2ban/filter.d/sshd.conf").is_file() {
                defs.push(
                    crate::fail2ban::load_filter_file(&path, false, &[])
                        .unwrap()
                        .0
                        .def,
                );
            }
        }
        let lines = sshd_corpus();
        for def in &defs {
            let fast = def.compile().unwrap();
            let slow = def.compile().unwrap();
            let each = fast
                .pref_scans
                .as_ref()
                .expect("one scan entry per failregex");
            assert_eq!(each.len(), fast.fail.len());
            let set = regex::bytes::RegexSetBuilder::new(each)
                .unicode(false)
                .size_limit(crate::filter::REGEX_SIZE_LIMIT)
                .dfa_size_limit(crate::filter::REGEX_SIZE_LIMIT)
                .build()
                .unwrap();
            let mut hits = 0;
            for line in &lines {
                both_paths(&set, &fast, &slow, line);
                hits += usize::from(two_stage(&slow, line, None).is_some());
            }
            assert!(hits > 100, "{}: {hits}", def.name);
            // Through the matcher: the content is never scanned.
            let m = Matcher::new(std::slice::from_ref(def)).unwrap();
            let scans = || crate::compiled::CONTENT_SCANS.with(|c| c.get());
            let before = scans();
            let mut found = 0;
            for line in &lines {
                let mut hits = Vec::new();
                m.scan(line, &mut hits);
                found += hits.len();
            }
            assert_eq!(scans(), before, "{}: the content was scanned", def.name);
            assert!(found > 100, "{}: {found}", def.name);
        }
    }
}
