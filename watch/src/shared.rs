//! One compiled copy of what many sources would otherwise each compile.
//!
//! With every stock jail of fail2ban's configuration enabled, ninety
//! sources each compiled their filter and their date templates: the same
//! regexes, compiled again per source, each copy growing its own lazy-DFA
//! caches. What compiles the same is now compiled once and shared while
//! anything uses it; the entry holds only a weak reference, so a reload
//! that drops a filter frees it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Compiled values by the definition they were compiled from.
pub(crate) struct Shared<K, V> {
    map: OnceLock<Mutex<HashMap<K, Weak<V>>>>,
}

impl<K: Hash + Eq + Clone, V> Shared<K, V> {
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
            return Ok(alive);
        }
        let value = Arc::new(build()?);
        // Forget what nothing holds any more, so the map stays as small as
        // the set of live definitions.
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key.clone(), Arc::downgrade(&value));
        Ok(value)
    }
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
}
