//! The lazy DFA's common step, shared by the matcher's combined scan
//! ([`crate::scanset`]) and anchored finds ([`crate::lazyfind`]), which
//! walk the DFA themselves.

use regex_automata::hybrid::{self, LazyStateID};

/// How a pool makes a thread's cache of a lazy DFA's states.
pub(crate) type CacheFn = Box<
    dyn Fn() -> hybrid::dfa::Cache
        + Send
        + Sync
        + std::panic::RefUnwindSafe
        + std::panic::UnwindSafe,
>;

/// The common steps of a walk from `sid` at `at`: transitions the cache
/// holds, between states that are neither match, dead nor unknown; a
/// table read a byte. Returns the state and position where the next step
/// needs more (or the line ends). Issue 16: with the bounds checks of the
/// safe calls, a step took 16 instructions, most of a line's scan.
///
/// # Safety
///
/// `sid` must be the latest state `cache` gave for `dfa` (from a start
/// state or a step), as `next_state_untagged_unchecked` asks.
#[inline]
pub(crate) unsafe fn untagged_run(
    dfa: &hybrid::dfa::DFA,
    cache: &hybrid::dfa::Cache,
    mut sid: LazyStateID,
    line: &[u8],
    mut at: usize,
) -> (LazyStateID, usize) {
    while !sid.is_tagged() {
        let Some(&byte) = line.get(at) else {
            break;
        };
        // SAFETY: `sid` is untagged, and the caller's state (see above)
        // or the one the last step gave.
        let next = unsafe { dfa.next_state_untagged_unchecked(cache, sid, byte) };
        if next.is_tagged() {
            break;
        }
        sid = next;
        at += 1;
    }
    (sid, at)
}
