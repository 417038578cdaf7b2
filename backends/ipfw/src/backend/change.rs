//! A set's rule changed in place (or, in `ensure_set`, one of the other
//! policy's shape replaced): the new deny rule is added under a free
//! number before the old one is deleted, so a banned source meets one or
//! the other at every moment, and the table with every member stays.
//! ipfw tables keep the limit they were created with, and banset does not
//! send `IP_FW_TABLE_XMODIFY`, so a new maxelem is refused with why.

use banset_core::{BackendError, ErrorKind, SetSpec};

use super::{forget_sightings, table_of, IpfwBackend, RULE_PLACEMENT};
use crate::rule::{self, Listed};

impl IpfwBackend {
    pub(super) fn change_in_place(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        // A name ipfw refuses fails before anything is sent.
        table_of(new)?;
        if old.max_elements != new.max_elements {
            return Err(BackendError::new(
                ErrorKind::Unsupported,
                format!("change set {}", new.name),
                "an ipfw table keeps the limit it was created with (banset does not modify \
                 table limits); destroy and re-create the set for another maxelem",
            ));
        }
        if old.hook == new.hook && old.policy == new.policy {
            return Ok(());
        }
        forget_sightings(&self.rules_seen, new);
        let _placing = RULE_PLACEMENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let rules = self.rules()?;
        self.swap_rule(new, &rules)
    }

    /// Puts `spec`'s rule (none without a hook) in place of the set's rules
    /// in `rules` (the current listing): the new one is added under a free
    /// number before the old ones are deleted. The caller holds
    /// [`RULE_PLACEMENT`].
    pub(super) fn swap_rule(&self, spec: &SetSpec, rules: &[Listed]) -> Result<(), BackendError> {
        let name = table_of(spec)?;
        let old_numbers: Vec<u32> = rules
            .iter()
            .filter(|r| rule::is_ours(r, name))
            .map(|r| r.number)
            .collect();
        // `ipfw delete N` removes every rule numbered N: never one of the
        // admin's that shares the number.
        if let Some(other) = rules
            .iter()
            .find(|r| old_numbers.contains(&r.number) && !rule::is_ours(r, name))
        {
            return Err(BackendError::new(
                ErrorKind::Other,
                format!("change set {}", spec.name),
                format!(
                    "rule {} holds banset's rule and another one ({}); change it by hand",
                    other.number, other.text
                ),
            ));
        }
        if let Some(hook) = &spec.hook {
            let number = rule::free_number(rules).map_err(|why| {
                BackendError::new(
                    ErrorKind::Other,
                    format!("rule of set {}", spec.name),
                    why.to_string(),
                )
            })?;
            self.run_ipfw(&rule::add_argv(
                number,
                &rule::body(name, hook, spec.policy),
            ))?;
        }
        let mut old_numbers = old_numbers;
        old_numbers.dedup();
        for n in old_numbers {
            self.run_ipfw(&rule::delete_argv(n))?;
        }
        Ok(())
    }
}
