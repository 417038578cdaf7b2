//! The matcher's combined scan: which of many patterns match a line, found
//! in one pass of the lazy DFA, into a set the caller keeps from one line
//! to the next.
//!
//! It is `regex::bytes::RegexSet` as the matcher built it (ASCII classes,
//! the filters' size limits, every match of every pattern), on the engines
//! under it, with its own walk of the lazy DFA (issue 16):
//! - `RegexSet::matches` allocated its answer on every line;
//! - the library's overlapping search leaves its loop at every match state
//!   to report one pattern, and a failregex whose scan ends in an open tail
//!   (`.*`, `[^:]+`, an optional suffix) puts the DFA in a match state at
//!   every byte to the line's end: sshd's failure lines paid about 40
//!   instructions a byte. Here a match state adds its patterns to the set
//!   once (the same state names the same patterns) and the walk goes on.
//!
//! Where the lazy DFA gives up (its cache cleared again and again by a
//! hostile line) the PikeVM of the same NFA answers, as in the library.

use crate::filter::REGEX_SIZE_LIMIT;
use crate::lazywalk::{untagged_run, CacheFn};
use regex_automata::{
    hybrid::{self, LazyStateID},
    nfa::thompson::{self, pikevm::PikeVM, WhichCaptures},
    util::{pool::Pool, syntax},
    Input, MatchError, MatchKind,
};

pub(crate) use regex_automata::PatternSet;

/// Why a scan set could not be built (its patterns are checked one by one
/// before, so in practice: too large).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScanSetError {
    #[error(transparent)]
    Nfa(Box<thompson::BuildError>),
    #[error(transparent)]
    LazyDfa(Box<hybrid::BuildError>),
}

impl From<thompson::BuildError> for ScanSetError {
    fn from(e: thompson::BuildError) -> ScanSetError {
        ScanSetError::Nfa(Box::new(e))
    }
}

impl From<hybrid::BuildError> for ScanSetError {
    fn from(e: hybrid::BuildError) -> ScanSetError {
        ScanSetError::LazyDfa(Box::new(e))
    }
}

pub(crate) struct ScanSet {
    dfa: std::sync::Arc<hybrid::dfa::DFA>,
    /// Each thread's cache of the lazy DFA's states.
    caches: Pool<hybrid::dfa::Cache, CacheFn>,
    /// Where the lazy DFA gives up.
    fallback: PikeVM,
}

impl std::fmt::Debug for ScanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanSet")
            .field("patterns", &self.dfa.pattern_len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
thread_local! {
    /// Scans the PikeVM answered, for tests.
    pub(crate) static FALLBACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl ScanSet {
    /// The set of `patterns` (regex syntax, read as
    /// [`crate::filter::plain_regex`] reads one pattern).
    pub(crate) fn new(patterns: &[&str]) -> Result<ScanSet, ScanSetError> {
        Self::with_cache_capacity(patterns, REGEX_SIZE_LIMIT)
    }

    fn with_cache_capacity(
        patterns: &[&str],
        cache_capacity: usize,
    ) -> Result<ScanSet, ScanSetError> {
        let nfa = thompson::Compiler::new()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    .which_captures(WhichCaptures::None)
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT)),
            )
            .build_many(patterns)?;
        // The lazy DFA as regex's meta engine configures it for a set:
        // every match of every pattern, and a give-up rule (a cache
        // cleared three times at under 10 bytes a state) that hands a
        // hostile line to the PikeVM instead of building states forever.
        let config = hybrid::dfa::Config::new()
            .match_kind(MatchKind::All)
            .unicode_word_boundary(true)
            .cache_capacity(cache_capacity)
            .skip_cache_capacity_check(true)
            .minimum_cache_clear_count(Some(3))
            .minimum_bytes_per_state(Some(10));
        let dfa = hybrid::dfa::Builder::new()
            .configure(config)
            .build_from_nfa(nfa.clone())?;
        let fallback = PikeVM::new_from_nfa(nfa)?;
        let dfa = std::sync::Arc::new(dfa);
        let for_caches = dfa.clone();
        let create: CacheFn = Box::new(move || for_caches.create_cache());
        Ok(ScanSet {
            dfa,
            caches: Pool::new(create),
            fallback,
        })
    }

    /// Puts the patterns that match `line` into `found`, which it empties
    /// first (and grows, the first time, to hold every pattern).
    pub(crate) fn matches(&self, line: &[u8], found: &mut PatternSet) {
        let len = self.dfa.pattern_len();
        if found.capacity() < len {
            *found = PatternSet::new(len);
        } else {
            found.clear();
        }
        let walked = {
            let mut cache = self.caches.get();
            walk(&self.dfa, &mut cache, line, found)
        };
        if walked.is_err() {
            #[cfg(test)]
            FALLBACKS.with(|c| c.set(c.get() + 1));
            found.clear();
            let mut cache = self.fallback.create_cache();
            self.fallback
                .which_overlapping_matches(&mut cache, &Input::new(line), found);
        }
    }
}

/// One pass of the lazy DFA over `line`, adding the patterns of every
/// match state to `found`. The DFA reports a match one byte late, so the
/// state after the line's last byte is stepped on the end of input too.
fn walk(
    dfa: &hybrid::dfa::DFA,
    cache: &mut hybrid::dfa::Cache,
    line: &[u8],
    found: &mut PatternSet,
) -> Result<(), MatchError> {
    let input = Input::new(line);
    let mut sid = dfa.start_state_forward(cache, &input)?;
    // The match state whose patterns are in `found` already; a state's
    // id names the same state only until the cache is cleared.
    let mut added: Option<(LazyStateID, usize)> = None;
    cache.search_start(0);
    let mut at = 0;
    while at < line.len() {
        // SAFETY: `sid` is the start state or the last step's, from
        // this cache.
        (sid, at) = unsafe { untagged_run(dfa, cache, sid, line, at) };
        if at == line.len() {
            break;
        }
        // The cache may have to make room for a new state here: it needs
        // to know how far the search got.
        cache.search_update(at);
        sid = dfa
            .next_state(cache, sid, line[at])
            .map_err(|_| MatchError::gave_up(at))?;
        if sid.is_tagged() {
            if sid.is_match() {
                if added != Some((sid, cache.clear_count())) {
                    add_patterns(dfa, cache, sid, found);
                    if found.is_full() {
                        cache.search_finish(at);
                        return Ok(());
                    }
                    added = Some((sid, cache.clear_count()));
                }
            } else if sid.is_dead() {
                cache.search_finish(at);
                return Ok(());
            } else if sid.is_quit() {
                cache.search_finish(at);
                return Err(MatchError::quit(line[at], at));
            }
        }
        at += 1;
    }
    cache.search_update(at);
    sid = dfa
        .next_eoi_state(cache, sid)
        .map_err(|_| MatchError::gave_up(at))?;
    if sid.is_match() {
        add_patterns(dfa, cache, sid, found);
    }
    cache.search_finish(at);
    Ok(())
}

fn add_patterns(
    dfa: &hybrid::dfa::DFA,
    cache: &hybrid::dfa::Cache,
    sid: LazyStateID,
    found: &mut PatternSet,
) {
    for i in 0..dfa.match_len(cache, sid) {
        found.insert(dfa.match_pattern(cache, sid, i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set finds what `regex::bytes::RegexSet` built as the matcher
    /// built it found, line after line with one `PatternSet` (smaller and
    /// larger sets in turn), on ASCII, non-ASCII and invalid bytes.
    #[test]
    fn a_scan_set_finds_what_the_regex_crates_set_finds() {
        let patterns = [
            r"^\S+ sshd\[\d+\]: Failed \S+ for .* from \d+\.\d+\.\d+\.\d+",
            r"^\S+ sshd\[\d+\]: (?:error: )?Invalid user \S+ from",
            r"from [0-9.]+ port \d+$",
            r"\bauth\b.*=\s*$",
            r"(?i)ACCEPTED",
            r"[\x80-\xff]+ from",
        ];
        let small = [patterns[2], patterns[4]];
        let lines: [&[u8]; 9] = [
            b"mx sshd[1]: Failed password for root from 192.0.2.1 port 22",
            b"mx sshd[1]: error: Invalid user x from 192.0.2.1 port 22",
            b"mx sshd[1]: Accepted publickey for a from 192.0.2.1 port 22",
            b"auth x=",
            b"",
            "mx sshd[1]: Failed password for \u{e9} from 192.0.2.1".as_bytes(),
            b"mx sshd[1]: Failed password for \xff\xfe from 192.0.2.1 port 2",
            b"\n from 1.2.3.4 port 5",
            b"accepted\nauth =",
        ];
        let mut found = PatternSet::new(0);
        for _ in 0..2 {
            for pats in [&patterns[..], &small[..]] {
                let ours = ScanSet::new(pats).unwrap();
                let theirs = regex::bytes::RegexSetBuilder::new(pats)
                    .unicode(false)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .unwrap();
                let mut matched = 0;
                for line in lines {
                    ours.matches(line, &mut found);
                    let got: Vec<usize> = found.iter().map(|p| p.as_usize()).collect();
                    let want: Vec<usize> = theirs.matches(line).iter().collect();
                    assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
                    matched += got.len();
                }
                assert!(matched >= 4, "{matched}");
            }
        }
    }

    /// A line that makes the lazy DFA clear its cache again and again (a
    /// pattern whose states blow up, a cache of a few states) is answered
    /// by the PikeVM, with what the regex crate's set answers.
    #[test]
    fn a_scan_set_whose_lazy_dfa_gives_up_answers_through_the_pikevm() {
        let patterns = [r"[ab]*a[ab]{12}c", r"b{3}", r"^x"];
        let theirs = regex::bytes::RegexSet::new(patterns).unwrap();
        let ours = ScanSet::with_cache_capacity(&patterns, 1 << 10).unwrap();
        let mut found = PatternSet::new(0);
        // A pseudo-random walk over a and b visits a new DFA state at
        // almost every byte.
        let mut x: u32 = 12345;
        let mut line: Vec<u8> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if x >> 16 & 1 == 0 {
                    b'a'
                } else {
                    b'b'
                }
            })
            .collect();
        let before = FALLBACKS.with(|c| c.get());
        for tail in [&b"c"[..], b"", b"\n"] {
            line.truncate(20_000);
            line.extend_from_slice(tail);
            ours.matches(&line, &mut found);
            let got: Vec<usize> = found.iter().map(|p| p.as_usize()).collect();
            let want: Vec<usize> = theirs.matches(&line).iter().collect();
            assert_eq!(got, want);
        }
        assert!(
            FALLBACKS.with(|c| c.get()) > before,
            "the lazy DFA never gave up"
        );
        // The same set with room for its states never falls back.
        let roomy = ScanSet::new(&patterns).unwrap();
        let before = FALLBACKS.with(|c| c.get());
        roomy.matches(b"xbbb", &mut found);
        let got: Vec<usize> = found.iter().map(|p| p.as_usize()).collect();
        assert_eq!(got, [1, 2]);
        assert_eq!(FALLBACKS.with(|c| c.get()), before);
    }
}
