//! One compiled copy of what many sources would otherwise each compile.
//!
//! With every stock jail of fail2ban's configuration enabled, ninety
//! sources each compiled their filter and their date templates: the same
//! regexes, compiled again per source, each copy growing its own lazy-DFA
//! caches. What compiles the same is now compiled once and shared while
//! anything uses it; the entry holds only a weak reference, so a reload
//! that drops a filter frees it.
//!
//! A weak reference alone frees too early at start-up, though: the checks
//! (the filter loader's, a jail's, every source's pipeline at `--check`)
//! each compile a filter and drop it, and the sources then compiled it all
//! again. What compiles inside [`keeping`] is held by the [`Kept`] it
//! returns, until the caller has built what it runs from the same
//! definitions.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Strong references to what [`keeping`] saw compiled or reused: while
/// this lives, building the same definitions again finds them in the
/// caches. Drop it once what runs is built, so a later reload can free
/// what it no longer uses.
#[derive(Clone, Default)]
#[must_use = "what it keeps is freed when it drops"]
pub struct Kept(Vec<Arc<dyn Any + Send + Sync>>);

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kept({} compiled values)", self.0.len())
    }
}

thread_local! {
    /// The [`Kept`] of the innermost [`keeping`] running on this thread.
    static KEEPING: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Runs `f` and returns, besides its result, every shared compiled value
/// (filter patterns, combined scans, date finders) `f` got on this thread,
/// so that building the same filters after it compiles nothing again.
/// The returned [`Kept`] may move to another thread (a reload reads its
/// configuration on one and starts the sources on another).
pub fn keeping<T>(f: impl FnOnce() -> T) -> (T, Kept) {
    /// Puts the outer collection back, even when `f` panics.
    struct Restore(Option<Kept>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            KEEPING.with(|k| *k.borrow_mut() = outer);
        }
    }
    let restore = Restore(KEEPING.with(|k| k.borrow_mut().replace(Kept::default())));
    let out = f();
    let kept = KEEPING.with(|k| k.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    // An outer `keeping` keeps what this one did too.
    kept.0.iter().cloned().for_each(keep);
    (out, kept)
}

/// Adds `value` to the running [`keeping`]'s [`Kept`], if any.
fn keep(value: Arc<dyn Any + Send + Sync>) {
    KEEPING.with(|k| {
        if let Some(kept) = k.borrow_mut().as_mut() {
            // Sources that share a filter get the same value: keep it once.
            if !kept.0.iter().any(|v| Arc::ptr_eq(v, &value)) {
                kept.0.push(value);
            }
        }
    });
}

/// Compiled values by the definition they were compiled from.
pub(crate) struct Shared<K, V> {
    map: OnceLock<Mutex<HashMap<K, Weak<V>>>>,
}

impl<K: Hash + Eq + Clone, V: Send + Sync + 'static> Shared<K, V> {
    /// An empty cache (for a `static`).
    pub(crate) const fn new() -> Self {
        Shared {
            map: OnceLock::new(),
        }
    }

    /// The value compiled from `key`: the one alive if any, else
    /// `build`'s, kept for the next caller while anything holds it.
    /// `build` runs under the cache's lock, so two sources starting at once
    /// compile a filter once, not twice.
    pub(crate) fn get_or_build<E>(
        &self,
        key: &K,
        build: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        let map = self.map.get_or_init(Default::default);
        // A panic while compiling leaves only dead weak entries behind.
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(alive) = map.get(key).and_then(Weak::upgrade) {
            keep(alive.clone());
            return Ok(alive);
        }
        #[cfg(test)]
        BUILDS.with(|b| b.set(b.get() + 1));
        let value = Arc::new(build()?);
        // Forget what nothing holds any more, so the map stays as small as
        // the set of live definitions.
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key.clone(), Arc::downgrade(&value));
        keep(value.clone());
        Ok(value)
    }
}

#[cfg(test)]
thread_local! {
    /// Values [`Shared::get_or_build`] built on this thread (tests count
    /// compiles with it).
    pub(crate) static BUILDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_built_once_while_held_and_again_once_dropped() {
        static CACHE: Shared<String, String> = Shared::new();
        let mut builds = 0;
        let mut get = |k: &str| {
            CACHE
                .get_or_build(&k.to_string(), || {
                    builds += 1;
                    Ok::<_, ()>(k.to_uppercase())
                })
                .unwrap()
        };
        let a = get("sshd");
        let b = get("sshd");
        assert!(Arc::ptr_eq(&a, &b));
        let c = get("postfix");
        assert_eq!(*c, "POSTFIX");
        drop((a, b));
        let _d = get("sshd");
        assert_eq!(builds, 3);
        let failed: Result<Arc<String>, &str> = CACHE.get_or_build(&"x".into(), || Err("bad"));
        assert_eq!(failed.unwrap_err(), "bad");
    }

    #[test]
    fn what_keeping_saw_outlives_its_users_until_the_kept_drops() {
        static CACHE: Shared<String, String> = Shared::new();
        let builds = std::cell::Cell::new(0);
        let get = |k: &str| {
            CACHE
                .get_or_build(&k.to_string(), || {
                    builds.set(builds.get() + 1);
                    Ok::<_, ()>(k.to_uppercase())
                })
                .unwrap()
        };
        // Built and dropped inside, as a check does; an inner `keeping`
        // keeps for the outer one too.
        let ((), kept) = keeping(|| {
            drop(get("sshd"));
            let ((), inner) = keeping(|| drop(get("postfix")));
            drop(inner);
            drop(get("sshd"));
        });
        assert_eq!(builds.get(), 2);
        // Another thread builds from what was kept (a reload's sources).
        let kept = std::thread::spawn(move || kept).join().unwrap();
        drop((get("sshd"), get("postfix")));
        assert_eq!(builds.get(), 2);
        drop(kept);
        drop(get("sshd"));
        assert_eq!(builds.get(), 3);
        // Nothing keeps outside `keeping`.
        drop(get("sshd"));
        assert_eq!(builds.get(), 4);
    }
}
