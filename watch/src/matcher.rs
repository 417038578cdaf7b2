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

use crate::filter::{plain_regex, CompiledFilter, FilterDef, FilterError, MAX_LINE_LEN};
use crate::tags::parse_host;

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

/// See the module documentation.
#[derive(Debug)]
pub struct Matcher {
    names: Vec<String>,
    filters: Vec<CompiledFilter>,
    set: Option<regex::bytes::RegexSet>,
    /// (filter, failregex) of each pattern of `set`, in `set`'s order.
    set_map: Vec<(usize, usize)>,
    /// (filter, failregex) of patterns that are not in `set`: tried always.
    unscanned: Vec<(usize, usize)>,
}

impl Matcher {
    /// Compiles the filters into one matcher.
    pub fn new(filters: &[FilterDef]) -> Result<Matcher, FilterError> {
        let compiled = filters
            .iter()
            .map(FilterDef::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let mut scan = Vec::new();
        let mut set_map = Vec::new();
        let mut unscanned = Vec::new();
        for (f, filter) in compiled.iter().enumerate() {
            for (r, pattern) in filter.fail.iter().enumerate() {
                match &pattern.scan {
                    Some(text) => {
                        scan.push(text.as_str());
                        set_map.push((f, r));
                    }
                    None => unscanned.push((f, r)),
                }
            }
        }
        let set = if scan.is_empty() {
            None
        } else {
            Some(
                regex::bytes::RegexSetBuilder::new(&scan)
                    .unicode(false)
                    .size_limit(crate::filter::REGEX_SIZE_LIMIT)
                    .dfa_size_limit(crate::filter::REGEX_SIZE_LIMIT)
                    .build()
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
        // Each pattern compiled alone has already been checked; make sure the
        // scan texts compile alone too (they are what the set was built of).
        debug_assert!(scan.iter().all(|s| plain_regex(s).is_ok()));
        Ok(Matcher {
            names: filters.iter().map(|f| f.name.clone()).collect(),
            filters: compiled,
            set,
            set_map,
            unscanned,
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

    /// Scans one line (without its date), appending at most one hit per
    /// filter to `hits`.
    pub fn scan(&self, line: &[u8], hits: &mut Vec<Hit>) -> Scan {
        if line.len() > MAX_LINE_LEN {
            return Scan::TooLong;
        }
        let before = hits.len();
        let matched = self.set.as_ref().map(|s| s.matches(line));
        let any = matched.as_ref().is_some_and(|m| m.matched_any());
        if !any && self.unscanned.is_empty() {
            return Scan::Missed;
        }
        // Candidates in (filter, failregex) order: the set's order is that
        // order already; merge in the unscanned patterns.
        let mut candidates: Vec<(usize, usize)> = matched
            .iter()
            .flat_map(|m| m.iter())
            .map(|i| self.set_map[i])
            .collect();
        if !self.unscanned.is_empty() {
            candidates.extend_from_slice(&self.unscanned);
            candidates.sort_unstable();
        }
        let mut done_filter = usize::MAX;
        for (f, r) in candidates {
            if f == done_filter {
                continue;
            }
            let filter = &self.filters[f];
            let Some(target) = filter.fail[r].exact.host(line).and_then(parse_host) else {
                continue;
            };
            let ignored = filter.ignore.iter().any(|p| p.exact.is_match(line));
            hits.push(Hit {
                filter: f,
                regex: r,
                target,
                ignored,
            });
            done_filter = f;
        }
        if hits.len() > before {
            Scan::Hit
        } else {
            Scan::Missed
        }
    }
}
