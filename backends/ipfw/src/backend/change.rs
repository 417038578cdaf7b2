//! A set's rule changed in place: the new deny rule is added under a free
//! number before the old one is deleted, so a banned source meets one or
//! the other at every moment, and the table with every member stays.
//! ipfw tables keep the limit they were created with, and banset does not
//! send `IP_FW_TABLE_XMODIFY`, so a new maxelem is refused with why.

use banset_core::{BackendError, ErrorKind, SetSpec};

use super::{table_of, IpfwBackend, RULE_PLACEMENT};
use crate::rule;

impl IpfwBackend {
    pub(super) fn change_in_place(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        let name = table_of(new)?;
        if old.max_elements != new.max_elements {
            return Err(BackendError::new(
                ErrorKind::Unsupported,
                format!("change set {}", new.name),
                "an ipfw table keeps the limit it was created with (banset does not modify \
                 table limits); destroy and re-create the set for another maxelem",
            ));
        }
        if old.hook == new.hook {
            return Ok(());
        }
        self.rules_seen.forget(name);
        let _placing = RULE_PLACEMENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let rules = self.rules()?;
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
                format!("change set {}", new.name),
                format!(
                    "rule {} holds banset's rule and another one ({}); change it by hand",
                    other.number, other.text
                ),
            ));
        }
        if let Some(hook) = &new.hook {
            let number = rule::free_number(&rules).map_err(|why| {
                BackendError::new(
                    ErrorKind::Other,
                    format!("rule of set {}", new.name),
                    why.to_string(),
                )
            })?;
            self.run_ipfw(&rule::add_argv(number, &rule::body(name, hook)))?;
        }
        let mut old_numbers = old_numbers;
        old_numbers.dedup();
        for n in old_numbers {
            self.run_ipfw(&rule::delete_argv(n))?;
        }
        Ok(())
    }
}
