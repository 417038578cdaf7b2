//! A set's rule and maxelem changed in place, never letting a banned
//! source through in between.
//!
//! The rule: for each kernel set, the new iptables rule is inserted at the
//! top of `INPUT` before the old one is deleted, so both match for a moment
//! and neither is ever missing. maxelem: a live ipset keeps the maxelem it
//! was created with, so a temporary set is created with the new one,
//! filled with the live members and their remaining timeouts, `SWAP`ped
//! with the live set (rules follow the name, so they see the new set at
//! once) and destroyed (the same path as `replace`). The rules change
//! first; if the sets then fail, the old rules are put back.

use banset_core::{Backend, BackendError, ErrorKind, KernelEntry, SetSpec};

use super::{header, missing, to_entry, FamilyPlan, IpsetBackend};
use crate::hook::{self, Action};
use crate::hook::{rule_present, rules_for as hook_rules};
use crate::layout::{self, KernelSet};

impl IpsetBackend {
    pub(super) fn change_in_place(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        let sets = layout::kernel_sets(new);
        let old_rules = hook_rules(old, &sets).unwrap_or_else(|_| vec![None; sets.len()]);
        let new_rules = hook_rules(new, &sets)?;
        swap_rules(&sets, &old_rules, &new_rules)?;
        if old.max_elements != new.max_elements {
            let members = self.list(old);
            let resized = members.and_then(|m| self.resize(&sets, new, &m));
            if let Err(e) = resized {
                let _ = swap_rules(&sets, &new_rules, &old_rules);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Every kernel set rebuilt with `spec`'s maxelem, holding `members`.
    fn resize(
        &self,
        sets: &[KernelSet],
        spec: &SetSpec,
        members: &[KernelEntry],
    ) -> Result<(), BackendError> {
        let mut sock = self.lock();
        for set in sets {
            let live = header(&mut sock, set)?.ok_or_else(|| missing(set))?;
            let mut adds = Vec::new();
            let mut add_targets = Vec::new();
            for m in members.iter().filter(|m| m.target.family() == set.family) {
                let timeout = layout::entry_timeout(m.timeout).map_err(|why| {
                    BackendError::new(
                        ErrorKind::Invalid,
                        format!("resize {}", set.describe()),
                        format!("{}: {why}", m.target),
                    )
                })?;
                adds.push(to_entry(set, &m.target, Some(timeout)));
                add_targets.push(m.target);
            }
            let plan = FamilyPlan {
                set: set.clone(),
                removes: Vec::new(),
                adds,
                add_targets,
            };
            self.replace(&mut sock, &plan, &live, spec)?;
        }
        Ok(())
    }
}

/// For each kernel set: insert `to` (when it differs from `from`), then
/// delete `from`. A failed insert leaves everything as it was.
fn swap_rules(
    sets: &[KernelSet],
    from: &[Option<Vec<String>>],
    to: &[Option<Vec<String>>],
) -> Result<(), BackendError> {
    for ((set, from), to) in sets.iter().zip(from).zip(to) {
        if from == to {
            continue;
        }
        if let Some(rule) = to {
            if !rule_present(set, rule)? {
                run(set, Action::Insert, rule)?;
            }
        }
        if let Some(rule) = from {
            if rule_present(set, rule)? {
                run(set, Action::Delete, rule)?;
            }
        }
    }
    Ok(())
}

fn run(set: &KernelSet, action: Action, rule: &[String]) -> Result<(), BackendError> {
    let program = hook::program(set.family);
    let args = hook::argv(action, rule);
    let outcome = hook::run(program, &args)?;
    if outcome.success() {
        Ok(())
    } else {
        Err(hook::failure(program, &args, &outcome))
    }
}
