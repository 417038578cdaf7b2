//! A set's rule and size changed in place, in one netlink batch.
//!
//! nf_tables applies a batch as one transaction: packets see the old rules
//! until the commit and the new ones after, never neither. The batch
//! deletes banset's rules of the set, puts the port set in its new shape,
//! and adds the new rules. A set's `size` (maxelem) cannot change on a live
//! set (a NEWSET for an existing set leaves its size alone), so a new
//! maxelem rebuilds each address set inside the same batch: delete it,
//! create it with the new size and fill it with the members as they were
//! listed under the socket lock, with the time each had left.

use std::collections::HashSet;

use banset_core::{BackendError, KernelEntry, SetSpec};

use super::kernel::{commit, list_set, put_ports, rules, sets};
use crate::layout::{every_rule_comment, Layout, CHAIN, TABLE};
use crate::members;
use crate::msg::elements::{self, ElemOp};
use crate::msg::objects;
use crate::sys::Socket;

pub(super) fn change_set(
    sock: &mut Socket,
    old: &SetSpec,
    new: &SetSpec,
) -> Result<(), BackendError> {
    let from = Layout::of(old);
    let to = Layout::of(new);
    let rebuild = from.max_elements != to.max_elements;
    let kept: Vec<Vec<KernelEntry>> = if rebuild {
        from.addr_sets
            .iter()
            .map(|set| list_set(sock, set))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let ours: HashSet<String> = every_rule_comment(&old.name).into_iter().collect();
    let old_rules: Vec<_> = rules(sock, Some(CHAIN))?
        .into_iter()
        .filter(|r| r.comment.as_ref().is_some_and(|c| ours.contains(c)))
        .collect();
    let present: HashSet<String> = sets(sock)?
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.name)
        .collect();

    let mut batch = sock.batch();
    batch.reserve(kept.iter().map(Vec::len).sum::<usize>() * 96);
    for rule in &old_rules {
        let what = rule.comment.as_deref().unwrap_or("banset");
        objects::del_rule(&mut batch, TABLE, CHAIN, rule.handle, what);
    }
    if rebuild {
        for (i, (set, entries)) in to.addr_sets.iter().zip(&kept).enumerate() {
            objects::del_set(&mut batch, TABLE, &set.name);
            objects::new_set(
                &mut batch,
                &set.set_def(to.timeout, to.max_elements, i as u32 + 1),
            );
            if entries.is_empty() {
                continue;
            }
            let (elems, owners) = members::to_elements(
                entries.iter().map(|e| (e.target, Some(e.timeout))),
                set.is_interval(),
            );
            let targets: Vec<_> = entries.iter().map(|e| e.target).collect();
            elements::set_elements(&mut batch, ElemOp::Add, TABLE, &set.name, &elems, &|r| {
                members::describe(&targets, &owners, r)
            });
        }
    }
    match (&from.ports, &to.ports) {
        // The rules that used it are gone in this same batch.
        (Some(ports), None) if present.contains(&ports.name) => {
            objects::del_set(&mut batch, TABLE, &ports.name);
        }
        _ => put_ports(&mut batch, &to),
    }
    for (i, comment) in to.rules() {
        if let Some(rule) = to.rule_def(i, &comment) {
            objects::new_rule(&mut batch, &rule);
        }
    }
    commit(sock, batch).map_err(|e| e.within(format!("change nftables set {}", old.name)))
}
