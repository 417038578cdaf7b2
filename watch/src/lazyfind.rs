//! Where an anchored pattern's leftmost-first match ends, found by one
//! walk of its lazy DFA.
//!
//! Issue 16: fail2ban's sshd prefregex finds its `<F-MLFID>` (the
//! connection's `host sshd[pid]: `) on most lines, and
//! `regex::bytes::Regex::find` took about 620 instructions for those 15
//! bytes: the meta engine's set-up, its search's start and end, then the
//! lazy DFA. Here a find is the walk itself ([`crate::lazywalk::untagged_run`]
//! for the common steps), and the PikeVM of the same NFA answers where the
//! lazy DFA gives up.

use crate::filter::REGEX_SIZE_LIMIT;
use crate::lazywalk::{untagged_run, CacheFn};
use regex_automata::{
    hybrid::{self, LazyStateID},
    nfa::thompson::{self, pikevm::PikeVM, WhichCaptures},
    util::{pool::Pool, syntax},
    Anchored, Input, MatchError, MatchKind,
};

pub(crate) struct AnchoredEnd {
    dfa: std::sync::Arc<hybrid::dfa::DFA>,
    /// Each thread's cache of the lazy DFA's states.
    caches: Pool<hybrid::dfa::Cache, CacheFn>,
    /// Where the lazy DFA gives up: the PikeVM of the same NFA.
    fallback: PikeVM,
}

impl std::fmt::Debug for AnchoredEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchoredEnd").finish_non_exhaustive()
    }
}

impl AnchoredEnd {
    /// `pattern` (regex syntax, read as [`crate::filter::plain_regex`]
    /// reads it), matched from the start of the text only. `None` if it is
    /// not plain syntax or too large.
    pub(crate) fn new(pattern: &str) -> Option<AnchoredEnd> {
        Self::with_cache_capacity(pattern, REGEX_SIZE_LIMIT)
    }

    fn with_cache_capacity(pattern: &str, cache_capacity: usize) -> Option<AnchoredEnd> {
        let nfa = thompson::Compiler::new()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    // The PikeVM reports a match's offsets only through
                    // its implicit group.
                    .which_captures(WhichCaptures::Implicit)
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT)),
            )
            .build(pattern)
            .ok()?;
        // As regex's meta engine configures its lazy DFA, give-up rule
        // included (see `crate::scanset`).
        let config = hybrid::dfa::Config::new()
            .match_kind(MatchKind::LeftmostFirst)
            .unicode_word_boundary(true)
            .cache_capacity(cache_capacity)
            .skip_cache_capacity_check(true)
            .minimum_cache_clear_count(Some(3))
            .minimum_bytes_per_state(Some(10));
        let dfa = hybrid::dfa::Builder::new()
            .configure(config)
            .build_from_nfa(nfa.clone())
            .ok()?;
        let fallback = PikeVM::new_from_nfa(nfa).ok()?;
        let dfa = std::sync::Arc::new(dfa);
        let for_caches = dfa.clone();
        let create: CacheFn = Box::new(move || for_caches.create_cache());
        Some(AnchoredEnd {
            dfa,
            caches: Pool::new(create),
            fallback,
        })
    }

    /// Where the pattern's leftmost-first match that starts at the start
    /// of `text` ends, if it matches there.
    pub(crate) fn end(&self, text: &[u8]) -> Option<usize> {
        let walked = {
            let mut cache = self.caches.get();
            walk(&self.dfa, &mut cache, text)
        };
        match walked {
            Ok(end) => end,
            Err(_) => {
                #[cfg(test)]
                FALLBACKS.with(|c| c.set(c.get() + 1));
                let input = Input::new(text).anchored(Anchored::Yes);
                let mut cache = self.fallback.create_cache();
                self.fallback.find(&mut cache, input).map(|m| m.end())
            }
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Finds the PikeVM answered, for tests.
    static FALLBACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The walk: a match state says a match ended one byte back (the lazy
/// DFA reports them late), the last one before the DFA dies is the
/// leftmost-first match's end.
fn walk(
    dfa: &hybrid::dfa::DFA,
    cache: &mut hybrid::dfa::Cache,
    text: &[u8],
) -> Result<Option<usize>, MatchError> {
    let input = Input::new(text).anchored(Anchored::Yes);
    let mut sid: LazyStateID = dfa.start_state_forward(cache, &input)?;
    let mut end = None;
    cache.search_start(0);
    let mut at = 0;
    while at < text.len() {
        // SAFETY: `sid` is the start state or the last step's, from
        // this cache.
        (sid, at) = unsafe { untagged_run(dfa, cache, sid, text, at) };
        if at == text.len() {
            break;
        }
        // The cache may have to make room for a new state here: it needs
        // to know how far the search got.
        cache.search_update(at);
        sid = dfa
            .next_state(cache, sid, text[at])
            .map_err(|_| MatchError::gave_up(at))?;
        if sid.is_match() {
            end = Some(at);
        } else if sid.is_dead() {
            cache.search_finish(at);
            return Ok(end);
        } else if sid.is_quit() {
            cache.search_finish(at);
            return Err(MatchError::quit(text[at], at));
        }
        at += 1;
    }
    cache.search_update(at);
    sid = dfa
        .next_eoi_state(cache, sid)
        .map_err(|_| MatchError::gave_up(at))?;
    if sid.is_match() {
        end = Some(at);
    }
    cache.search_finish(at);
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::plain_regex;

    /// The end is the `regex` crate's leftmost-first match's, where that
    /// match starts the text, on patterns whose first, longest and
    /// shortest matches differ, lazy repeats, look-arounds the lazy DFA
    /// has (`$`, `\b`) and bytes outside ASCII.
    #[test]
    fn an_anchored_end_is_where_the_regex_crates_match_ends() {
        let patterns = [
            r"^(?:\s*(?:\S+ )?(?:kernel: \[ *\d+\.\d+\] )?(?:\[\d+\]:\s+[\[(]?sshd[\])]?:?|sshd(?:\[\d+\])?:?)\s+)?",
            r"^(?:a|ab|abc)",
            r"^a+?b?",
            r"^(?:x*)(?:y|$)",
            r"^\w+\b",
            r"^[^\x00-\x7f]+",
            r"^(?:error: |fatal: )?",
            r"a",
        ];
        let texts: &[&[u8]] = &[
            b"mx sshd[1005]: Accepted publickey",
            b"  sshd: x",
            b"mx kernel: [ 1.5] [12]: sshd: y",
            b"abcd",
            b"ab",
            b"aab",
            b"xxxy",
            b"xxx",
            b"xxxz",
            b"word rest",
            b"\xff\xfe\xc3\xa9x",
            b"error: PAM: x",
            b"",
            b"ba",
        ];
        for p in patterns {
            let found = AnchoredEnd::new(p).unwrap();
            let regex = plain_regex(p).unwrap();
            for t in texts {
                let want = regex.find(t).filter(|m| m.start() == 0).map(|m| m.end());
                assert_eq!(
                    found.end(t),
                    want,
                    "{p} on {:?}",
                    String::from_utf8_lossy(t)
                );
            }
        }
    }

    /// A text that makes the lazy DFA clear its cache again and again
    /// (a pattern whose states blow up, a cache of a few states) gets its
    /// answer from the PikeVM. It gave `None`: the PikeVM of an NFA built
    /// without capture states can say whether a text matches, not where.
    #[test]
    fn an_anchored_end_whose_lazy_dfa_gives_up_answers_through_the_pikevm() {
        let p = r"^[ab]*a[ab]{12}c";
        let found = AnchoredEnd::new(p).unwrap();
        let small = AnchoredEnd::with_cache_capacity(p, 1 << 10).unwrap();
        // A pseudo-random walk over a and b visits a new DFA state at
        // almost every byte.
        let mut x: u32 = 12345;
        let mut text: Vec<u8> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if x >> 16 & 1 == 0 {
                    b'a'
                } else {
                    b'b'
                }
            })
            .collect();
        text.extend_from_slice(b"aaaaaaaaaaaaac");
        let mut cache = small.dfa.create_cache();
        assert!(walk(&small.dfa, &mut cache, &text).is_err());
        let before = FALLBACKS.with(|c| c.get());
        assert_eq!(small.end(&text), found.end(&text));
        assert_eq!(FALLBACKS.with(|c| c.get()) - before, 1);
        assert!(found.end(&text).is_some());
    }
}
