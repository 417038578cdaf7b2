//! `NftablesBackend`: the [`Backend`] trait over the message and socket layers.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use banset_core::errno::{EBUSY, EEXIST};
use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, KernelEntry, SetHealth,
    SetName, SetPolicy, SetSpec, Target,
};

use crate::layout::{
    every_rule_comment, every_set_name, owner_of, Layout, BASE_CHAIN, CHAIN, TABLE,
};
use crate::members::{self};
use crate::msg::batch::Op;
use crate::msg::elements::{self, ElemOp};
use crate::msg::objects::{self, RuleInfo, SetInfo};
use crate::sys::Socket;

mod change;
mod kernel;

pub(crate) use kernel::sys_error;
use kernel::*;

/// banset's nftables backend: the kernel objects described in the crate
/// docs, driven over one `NETLINK_NETFILTER` socket.
///
/// Every mutating call is one atomic kernel batch. Errors carry the nftables
/// object (and, for elements, the first and last target of the failing
/// message) in their context; the kind follows the errno (`EPERM` ->
/// [`ErrorKind::Permission`] with a hint, `ENOENT` -> [`ErrorKind::NotFound`]
/// when a set is missing, overlaps -> [`ErrorKind::Invalid`]).
///
/// The socket sits behind a mutex so the backend is `Sync`: replies of two
/// requests must never interleave.
#[derive(Debug)]
pub struct NftablesBackend {
    sock: Mutex<Socket>,
    /// `DESTROYSETELEM` exists (Linux >= 6.3). Without it removals fall back
    /// to listing the set and deleting only what is present.
    destroy_elements: bool,
}

impl NftablesBackend {
    /// Opens the netlink socket. Creating it needs no privilege; the first
    /// request without CAP_NET_ADMIN fails with [`ErrorKind::Permission`].
    /// Off Linux this fails with [`ErrorKind::Unsupported`].
    pub fn open() -> Result<NftablesBackend, BackendError> {
        let sock = Socket::open().map_err(|e| sys_error(e, "open nftables netlink socket"))?;
        Ok(NftablesBackend {
            sock: Mutex::new(sock),
            destroy_elements: kernel_at_least(6, 3),
        })
    }

    /// Uses the pre-6.3 removal path (list, then DELSETELEM of what is
    /// present) even on newer kernels, so tests can exercise it.
    #[doc(hidden)]
    pub fn with_legacy_removal(mut self) -> NftablesBackend {
        self.destroy_elements = false;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Socket> {
        // A poisoned lock only means another thread panicked. The socket has
        // no state a panic can corrupt: at worst replies are left queued, and
        // every request skips replies whose sequence number is not its own.
        self.sock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parses `/proc/sys/kernel/osrelease` ("6.18.44-..."); unknown counts as new.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return true;
    };
    let mut parts = release.trim().split(['.', '-']);
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (next(), next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => true,
    }
}

impl Backend for NftablesBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Nftables
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            timeouts: true,
            // nf_tables takes u64 milliseconds; banset's own 100-year cap on
            // timeouts is far below the kernel's limit.
            max_timeout: None,
            prefixes: true,
            mixed_families: false,
            atomic_batches: true,
            // The rule sits before any `ct state established accept`, so a
            // ban cuts existing connections without killing conntrack state.
            kills_states: false,
        }
    }

    /// Both: an allow-only set's rule is `saddr != @set` (crate docs).
    fn supports_policy(&self, _policy: SetPolicy) -> bool {
        true
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let layout = Layout::of(spec);
        let mut sock = self.lock();
        let chain_rules = rules(&mut sock, Some(CHAIN))?;
        let present: HashSet<&str> = chain_rules
            .iter()
            .filter_map(|r| r.comment.as_deref())
            .collect();
        // A rule of the other policy's shape (left by a set of the same
        // name, or put back by hand) would invert what members mean: it
        // goes in the same batch that adds the right one.
        let wrong = layout.other_policy_comments();
        let wrong_rules: Vec<&RuleInfo> = chain_rules
            .iter()
            .filter(|r| r.comment.as_ref().is_some_and(|c| wrong.contains(c)))
            .collect();

        let mut batch = sock.batch();
        for rule in &wrong_rules {
            let what = rule.comment.as_deref().unwrap_or("banset");
            objects::del_rule(&mut batch, TABLE, CHAIN, rule.handle, what);
        }
        objects::new_table(&mut batch, TABLE);
        objects::new_chain(&mut batch, &BASE_CHAIN);
        for (i, set) in layout.addr_sets.iter().enumerate() {
            objects::new_set(
                &mut batch,
                &set.set_def(layout.timeout, layout.max_elements, i as u32 + 1),
            );
        }
        put_ports(&mut batch, &layout);
        for (i, comment) in layout.rules() {
            if present.contains(comment.as_str()) {
                continue;
            }
            if let Some(rule) = layout.rule_def(i, &comment) {
                objects::new_rule(&mut batch, &rule);
            }
        }
        commit_batch(&mut sock, batch).map_err(|f| match (f.op, f.errno) {
            (Some(Op::CreateSet), Some(EEXIST)) => BackendError::new(
                ErrorKind::Exists,
                f.error.context(),
                format!(
                    "a set of that name exists with other flags or another key type; \
                     run `banset destroy {}` first",
                    spec.name
                ),
            ),
            _ => f.error,
        })
    }

    fn change_set(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        change::change_set(&mut self.lock(), old, new)
    }

    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        let layout = Layout::of(spec);
        let mut sock = self.lock();
        let Some(sets) = sets(&mut sock)? else {
            return Ok(SetHealth::Missing);
        };
        // (exists, fits) of every object the set is made of.
        let mut objects = Vec::new();
        for set in &layout.addr_sets {
            let info = sets.iter().find(|s| s.name == set.name);
            objects.push((info.is_some(), info.is_some_and(|i| i.flags == set.flags())));
        }
        if let Some(ports) = &layout.ports {
            let exists = sets.iter().any(|s| s.name == ports.name);
            objects.push((exists, exists));
        }
        let comments: HashSet<String> = rules(&mut sock, Some(CHAIN))?
            .into_iter()
            .filter_map(|r| r.comment)
            .collect();
        for (_, comment) in layout.rules() {
            let present = comments.contains(&comment);
            objects.push((present, present));
        }
        // A rule of the other policy's shape exists but does not fit: the
        // set is Incomplete, and `sync` (or the keeper) replaces it.
        for comment in layout.other_policy_comments() {
            if comments.contains(&comment) {
                objects.push((true, false));
            }
        }
        Ok(SetHealth::of(objects))
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        if changes.is_empty() {
            return Ok(());
        }
        let layout = Layout::of(spec);
        let n = layout.addr_sets.len();
        let mut removes: Vec<Vec<Target>> = vec![Vec::new(); n];
        let mut adds: Vec<Vec<KernelEntry>> = vec![Vec::new(); n];
        for target in &changes.remove {
            removes[set_index(spec, &layout, target)?].push(*target);
        }
        for entry in &changes.add {
            adds[set_index(spec, &layout, &entry.target)?].push(*entry);
        }

        let mut sock = self.lock();
        if changes.flush_first {
            // Removing from a set that is emptied first is moot.
            removes.iter_mut().for_each(Vec::clear);
        }
        for (i, set) in layout.addr_sets.iter().enumerate() {
            if set.is_interval() && !(adds[i].is_empty() && removes[i].is_empty()) {
                dedup_keep_last(&mut adds[i]);
                prepare_interval_changes(
                    &mut sock,
                    set,
                    changes.flush_first,
                    &mut removes[i],
                    &adds[i],
                )?;
            }
        }

        let mut batch = sock.batch();
        // ~28 bytes per IPv4 host, 40 per IPv6 host, twice that per prefix.
        batch.reserve(changes.add.len() * 48 + changes.remove.len() * 40);
        if changes.flush_first {
            for set in &layout.addr_sets {
                elements::flush_set(&mut batch, TABLE, &set.name);
            }
        }
        for (i, set) in layout.addr_sets.iter().enumerate() {
            if removes[i].is_empty() {
                continue;
            }
            let (op, targets) = if self.destroy_elements {
                (ElemOp::Destroy, std::mem::take(&mut removes[i]))
            } else if set.is_interval() {
                // Already narrowed to exact members.
                (ElemOp::Delete, std::mem::take(&mut removes[i]))
            } else {
                // Before DESTROYSETELEM, deleting an absent element fails the
                // whole batch. Delete only what the kernel holds now; an
                // element expiring between this listing and the batch still
                // makes it fail with NotFound, which callers retry.
                let members: HashSet<Target> = list_set(&mut sock, set)?
                    .into_iter()
                    .map(|e| e.target)
                    .collect();
                let mut present = std::mem::take(&mut removes[i]);
                present.retain(|t| members.contains(t));
                present.sort_unstable();
                present.dedup();
                (ElemOp::Delete, present)
            };
            let (elements, owners) =
                members::to_elements(targets.iter().map(|&t| (t, None)), set.is_interval());
            elements::set_elements(&mut batch, op, TABLE, &set.name, &elements, &|r| {
                members::describe(&targets, &owners, r)
            });
        }
        for (i, set) in layout.addr_sets.iter().enumerate() {
            if adds[i].is_empty() {
                continue;
            }
            let entries = &adds[i];
            let (elements, owners) = members::to_elements(
                entries.iter().map(|e| (e.target, Some(e.timeout))),
                set.is_interval(),
            );
            let targets: Vec<Target> = entries.iter().map(|e| e.target).collect();
            elements::set_elements(&mut batch, ElemOp::Add, TABLE, &set.name, &elements, &|r| {
                members::describe(&targets, &owners, r)
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        commit(&mut sock, batch)
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        let layout = Layout::of(spec);
        let mut sock = self.lock();
        let mut out = Vec::new();
        for set in &layout.addr_sets {
            out.extend(list_set(&mut sock, set)?);
        }
        Ok(out)
    }

    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let mut sock = self.lock();
        let Some(sets) = sets(&mut sock)? else {
            return Ok(());
        };
        let set_names = every_set_name(&spec.name);
        let comments = every_rule_comment(&spec.name);
        let all_rules = rules(&mut sock, None)?;
        let (our_rules, other_rules): (Vec<&RuleInfo>, Vec<&RuleInfo>) =
            all_rules.iter().partition(|r| {
                r.chain == CHAIN && r.comment.as_ref().is_some_and(|c| comments.contains(c))
            });
        let (our_sets, other_sets): (Vec<&SetInfo>, Vec<&SetInfo>) =
            sets.iter().partition(|s| set_names.contains(&s.name));
        let other_chains = chains(&mut sock)?
            .into_iter()
            .any(|c| c.table == TABLE && c.name != CHAIN);

        let mut batch = sock.batch();
        if other_rules.is_empty() && other_sets.is_empty() && !other_chains {
            // Nothing but this set's objects left: take the table and chain too.
            objects::del_table(&mut batch, TABLE);
        } else {
            for rule in &our_rules {
                let what = rule.comment.as_deref().unwrap_or("banset");
                objects::del_rule(&mut batch, TABLE, CHAIN, rule.handle, what);
            }
            for set in &our_sets {
                objects::del_set(&mut batch, TABLE, &set.name);
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        match commit_batch(&mut sock, batch) {
            // Removed concurrently: absent is fine.
            Err(f) if f.error.kind() == ErrorKind::NotFound => Ok(()),
            Err(f) if f.errno == Some(EBUSY) => Err(BackendError::new(
                f.error.kind(),
                f.error.context(),
                format!(
                    "{}: a rule not created by banset still uses the set",
                    f.error.detail()
                ),
            )),
            other => other.map_err(|f| f.error),
        }
    }

    fn kernel_sets(&self) -> Result<Vec<SetName>, BackendError> {
        let mut sock = self.lock();
        let mut names: Vec<SetName> = sets(&mut sock)?
            .unwrap_or_default()
            .iter()
            .filter_map(|s| owner_of(&s.name))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        let layout = Layout::of(spec);
        if !spec.families.includes(target.family()) {
            return Ok(false);
        }
        let mut sock = self.lock();
        if target.is_host() {
            if let Some(hosts) = layout.addr_sets.iter().find(|s| s.takes(target)) {
                if host_present(&mut sock, hosts, target)? {
                    return Ok(true);
                }
            }
        }
        for nets in layout
            .addr_sets
            .iter()
            .filter(|s| s.is_interval() && s.family == target.family())
        {
            if list_set(&mut sock, nets)?
                .iter()
                .any(|e| e.target.contains(target))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
