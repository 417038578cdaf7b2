//! A set's rule changed in place: `pfctl -a banset/NAME -f -` replaces the
//! anchor's ruleset in one pf transaction (the old rule matches until the
//! new one is committed), and the persistent table, with every member,
//! stays as it is. maxelem is banset's own bound on pf (pf has no size per
//! table), so a new one needs no kernel change.

use banset_core::{BackendError, SetSpec};

use super::{anchor_missing, rule, PfBackend};

impl PfBackend {
    pub(super) fn change_in_place(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        self.forget_sightings(new);
        let anchor = rule::anchor(new.name.as_str());
        match &new.hook {
            Some(hook) if old.hook.as_ref() != Some(hook) || old.policy != new.policy => {
                if !self.anchor_evaluated(new)? {
                    return Err(anchor_missing(new));
                }
                let text = rule::text(new.name.as_str(), hook, new.policy);
                self.run_pfctl(&rule::load_argv(&anchor), Some(&text))?;
            }
            Some(_) => {}
            None => {
                if self.any_rule_present(old)? {
                    self.run_pfctl(&rule::flush_argv(&anchor), None)?;
                }
            }
        }
        Ok(())
    }
}
