//! The combined matcher of one log source: every failregex of every filter
//! that reads the source, scanned in one pass over each line.
//!
//! Most log lines are not failures. They are rejected by a single lazy-DFA
//! pass of one `RegexSet` over all patterns; only lines that something
//! matched are run again through the matching pattern to capture the
//! address. Patterns that need the backtracking engine join the scan through
//! their gate, or, without one, are tried on every line (slow, and the only
//! case that is).

use banset_core::Target;

use crate::compiled::{Captured, CompiledFilter};
use crate::datefind::DateFinder;
use crate::filter::{plain_regex, DateRule, FilterDef, FilterError, MAX_LINE_LEN};
use crate::multiline::{connection_step, offender, Offender};
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
}

/// The filters that cut the date off a line the same way, scanned together.
#[derive(Debug)]
struct DateGroup {
    /// `None`: the caller's split ([`crate::logtime::split_date`]).
    finder: Option<std::sync::Arc<DateFinder>>,
    /// The finder would find a leading syslog/ISO date too: split that off
    /// the fast way and use the finder only for other lines.
    leading_first: bool,
    set: Option<std::sync::Arc<regex::bytes::RegexSet>>,
    /// (filter, slot) of each pattern of `set`, in `set`'s order.
    set_map: Vec<(usize, Slot)>,
    /// (filter, slot) of patterns that are not in `set`: tried always.
    unscanned: Vec<(usize, Slot)>,
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
                let slots: Vec<(Slot, &Option<String>)> = match &filter.pref {
                    Some(p) => vec![(Slot::Pref, &p.scan)],
                    None => filter
                        .fail
                        .iter()
                        .enumerate()
                        .map(|(r, p)| (Slot::Fail(r), &p.scan))
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
                static SETS: Shared<Vec<String>, regex::bytes::RegexSet> = Shared::new();
                let key: Vec<String> = scan.iter().map(|s| s.to_string()).collect();
                Some(
                    SETS.get_or_build(&key, || {
                        regex::bytes::RegexSetBuilder::new(&scan)
                            .unicode(false)
                            .size_limit(crate::filter::REGEX_SIZE_LIMIT)
                            .dfa_size_limit(crate::filter::REGEX_SIZE_LIMIT)
                            .build()
                    })
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
                    let leading = p
                        .as_deref()
                        .is_none_or(|p| matches!(p.trim(), "{^LN-BEG}" | "{DEFAULT}"));
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
                Some(_) if group.leading_first && leading_date_ends_cleanly(full, rest) => {
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
        let matched = group.set.as_ref().map(|s| s.matches(line));
        let any = matched.as_ref().is_some_and(|m| m.matched_any());
        if !any && group.unscanned.is_empty() {
            return;
        }
        // Candidates in (filter, slot) order: the set's order is that order
        // already; merge in the unscanned patterns.
        let mut candidates: Vec<(usize, Slot)> = matched
            .iter()
            .flat_map(|m| m.iter())
            .map(|i| group.set_map[i])
            .collect();
        if !group.unscanned.is_empty() {
            candidates.extend_from_slice(&group.unscanned);
            candidates.sort_unstable();
        }
        let mut done_filter = usize::MAX;
        for (f, slot) in candidates {
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
                Slot::Pref => two_stage(filter, line),
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
/// prefregex (else, for a connection, from an earlier line). Returns
/// (failregex, address, nofail).
fn two_stage(filter: &CompiledFilter, line: &[u8]) -> Option<(usize, Option<Target>, bool)> {
    let pref = filter.pref.as_ref()?.exact.capture(line)?;
    let content = match &pref.content {
        Some(r) => &line[r.clone()],
        None => line,
    };
    let order: Vec<usize> = match &filter.content_set {
        Some(set) => set.candidates(content),
        None => (0..filter.fail.len()).collect(),
    };
    for r in order {
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
            Offender::NotAnAddress => return Some((r, None, true)),
        };
        let marks = Captured {
            nofail: c.nofail || pref.nofail,
            gained: c.gained || pref.gained,
            forget: c.forget || pref.forget,
            ..Captured::default()
        };
        let Some(id) = pref.mlfid.clone().filter(|_| filter.connections.is_some()) else {
            return Some((r, target, marks.nofail || marks.gained));
        };
        let user = c
            .user
            .clone()
            .map(|u| &content[u])
            .or_else(|| pref.user.clone().map(|u| &line[u]));
        let counted = connection_step(filter, &line[id], target, &marks, user);
        return Some((r, counted, counted.is_none()));
    }
    None
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
}
