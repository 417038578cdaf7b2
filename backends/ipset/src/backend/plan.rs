//! What one `apply` sends to each kernel set, and the checks it must pass
//! before anything is sent: ipset applies a message entry by entry, so a
//! refusal has to come first to change nothing.

use std::collections::HashSet;

use banset_core::{BackendError, Changes, ErrorKind, Family, SetSpec, Target};

use super::entries::{max_len, to_entry, to_target};
use super::errors::full_detail;
use super::kernel::dump;
use crate::layout::{self, KernelSet};
use crate::msg::replies::SetHeader;
use crate::msg::requests::Entry;
use crate::sys::Socket;

/// The changes for one kernel set.
pub(super) struct FamilyPlan {
    pub(super) set: KernelSet,
    pub(super) removes: Vec<Entry>,
    pub(super) adds: Vec<Entry>,
    /// The targets of `adds`, in the same order, for messages and checks.
    pub(super) add_targets: Vec<Target>,
}

fn plan_for(plans: &mut [FamilyPlan], family: Family) -> Option<&mut FamilyPlan> {
    plans.iter_mut().find(|p| p.set.family == family)
}

/// The plan of every kernel set of `spec` for `changes`, after everything
/// the input alone decides (family, prefix, timeout cap), before any
/// kernel call.
pub(super) fn plan(spec: &SetSpec, changes: &Changes) -> Result<Vec<FamilyPlan>, BackendError> {
    let mut plans: Vec<FamilyPlan> = layout::kernel_sets(spec)
        .into_iter()
        .map(|set| FamilyPlan {
            set,
            removes: Vec::new(),
            adds: Vec::new(),
            add_targets: Vec::new(),
        })
        .collect();

    for entry in &changes.add {
        let target = &entry.target;
        let invalid = |why: String| {
            BackendError::new(ErrorKind::Invalid, format!("add to set {}", spec.name), why)
        };
        spec.admits(target).map_err(|e| invalid(e.to_string()))?;
        if target.prefix_len() == 0 {
            return Err(invalid(format!(
                "{target}: ipset's hash:net cannot hold a /0 prefix"
            )));
        }
        let timeout = layout::entry_timeout(entry.timeout)
            .map_err(|why| invalid(format!("{target}: {why}")))?;
        let plan = plan_for(&mut plans, target.family())
            .ok_or_else(|| invalid(format!("{target} has no kernel set in {}", spec.name)))?;
        plan.adds.push(to_entry(&plan.set, target, Some(timeout)));
        plan.add_targets.push(*target);
    }
    if !changes.flush_first {
        for target in &changes.remove {
            // A family the set does not hold, or a prefix in a hash:ip
            // set, cannot be a member. Sending the prefix would even be
            // harmful: hash:ip deletes every address of the range.
            let Some(plan) = plan_for(&mut plans, target.family()) else {
                continue;
            };
            if (!target.is_host() && !plan.set.is_net()) || target.prefix_len() == 0 {
                continue;
            }
            plan.removes.push(to_entry(&plan.set, target, None));
        }
    }
    Ok(plans)
}

/// The overlap and room checks, before anything is sent for this set.
pub(super) fn check_before_adding(
    sock: &mut Socket,
    plan: &FamilyPlan,
    h: &SetHeader,
    flush_first: bool,
    spec: &SetSpec,
) -> Result<(), BackendError> {
    if plan.adds.is_empty() {
        return Ok(());
    }
    let has_prefix = plan.add_targets.iter().any(|t| !t.is_host());
    let maxelem = if flush_first {
        layout::maxelem(spec)
    } else {
        h.maxelem.unwrap_or(u32::MAX)
    };
    let elements = if flush_first {
        0
    } else {
        h.elements.unwrap_or(0)
    };
    let may_overflow = u64::from(elements) + plan.adds.len() as u64 > u64::from(maxelem);
    let check_overlaps = has_prefix && plan.set.is_net();
    if !check_overlaps && !may_overflow {
        return Ok(());
    }
    // The members after this call's removals: what the additions meet.
    let mut members: HashSet<Target> = HashSet::new();
    if !flush_first {
        let (_, entries) = dump(sock, &plan.set)?;
        for e in entries.iter().filter(|e| !e.nomatch) {
            if let Ok(t) = to_target(&plan.set, e) {
                members.insert(t);
            }
        }
        for r in &plan.removes {
            let t = match r.cidr {
                Some(len) => Target::listed(r.addr, len).ok(),
                None => Target::listed(r.addr, max_len(r.addr)).ok(),
            };
            if let Some(t) = t {
                members.remove(&t);
            }
        }
    }
    if check_overlaps {
        if let Some(o) = banset_core::find_prefix_overlap(&members, &plan.add_targets) {
            return Err(o.into_error(format!("add to {}", plan.set.describe())));
        }
    }
    let new: HashSet<&Target> = plan
        .add_targets
        .iter()
        .filter(|t| !members.contains(t))
        .collect();
    let after = members.len() as u64 + new.len() as u64;
    if after > u64::from(maxelem) {
        return Err(BackendError::new(
            ErrorKind::SetFull,
            format!("add to {}", plan.set.describe()),
            full_detail(
                &plan.set,
                maxelem,
                &format!(
                    "it holds {} and this would add {} more; nothing was added",
                    members.len(),
                    new.len()
                ),
            ),
        ));
    }
    Ok(())
}
