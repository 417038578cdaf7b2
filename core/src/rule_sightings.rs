//! How long a backend may trust a blocking rule it has seen, for kernels
//! where seeing it is expensive (pf: two `pfctl` runs; ipfw: an `ipfw
//! list`) and the table cheap to look up (one call). The daemon asks for
//! `health` every second; meanwhile only the table is checked. A flushed
//! ruleset that also took the table is noticed at once, a rule deleted on
//! its own within [`RuleSightings::RECHECK`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::backend::{BackendError, SetHealth};

/// When each set's rule was last seen in place by `health`, by set name.
#[derive(Debug, Default)]
pub struct RuleSightings {
    seen: Mutex<HashMap<String, Instant>>,
}

impl RuleSightings {
    /// How long a sighting is trusted.
    pub const RECHECK: Duration = Duration::from_secs(30);

    /// The health of set `name` whose table `exists` and which has a
    /// blocking rule: a sighting younger than [`Self::RECHECK`] answers
    /// for the rule; otherwise `look` says whether the rule exists and
    /// fits (is in the form banset makes, and evaluated), and a whole set
    /// is recorded as seen.
    pub fn health(
        &self,
        name: &str,
        exists: bool,
        look: impl FnOnce() -> Result<(bool, bool), BackendError>,
    ) -> Result<SetHealth, BackendError> {
        let mut seen = self.lock();
        if exists && seen.get(name).is_some_and(|t| t.elapsed() < Self::RECHECK) {
            return Ok(SetHealth::Present);
        }
        seen.remove(name);
        let rule = look()?;
        let health = SetHealth::of([(exists, exists), rule]);
        if health == SetHealth::Present {
            seen.insert(name.to_string(), Instant::now());
        }
        Ok(health)
    }

    /// Forgets the set's sighting (it is being destroyed).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Forgets every sighting, so the next `health` looks at the rules.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        // The map holds no invariant a panic could break.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_set_is_trusted_until_forgotten() {
        let s = RuleSightings::default();
        let mut looks = 0;
        let mut look = |rule: (bool, bool)| {
            looks += 1;
            move || Ok(rule)
        };
        assert_eq!(
            s.health("f2b", true, look((true, true))).unwrap(),
            SetHealth::Present
        );
        // Trusted: not looked at again.
        assert_eq!(
            s.health("f2b", true, || panic!("looked")).unwrap(),
            SetHealth::Present
        );
        // A missing table is noticed at once, and the sighting dropped.
        assert_eq!(
            s.health("f2b", false, look((false, false))).unwrap(),
            SetHealth::Missing
        );
        assert_eq!(
            s.health("f2b", true, look((true, false))).unwrap(),
            SetHealth::Incomplete
        );
        assert_eq!(
            s.health("f2b", false, look((true, true))).unwrap(),
            SetHealth::Incomplete
        );
        assert_eq!(
            s.health("f2b", true, look((true, true))).unwrap(),
            SetHealth::Present
        );
        s.forget("f2b");
        assert_eq!(
            s.health("f2b", true, look((false, false))).unwrap(),
            SetHealth::Incomplete
        );
        assert_eq!(looks, 6);
    }
}
