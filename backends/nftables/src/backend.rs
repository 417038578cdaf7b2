//! `NftablesBackend`: the [`Backend`] trait over the message and socket layers.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use banset_core::errno::{E2BIG, EBUSY, EEXIST, ENOENT};
use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, KernelEntry, SetHealth,
    SetName, SetSpec, Target,
};

use crate::layout::{
    every_rule_comment, every_set_name, owner_of, AddrSet, Layout, BASE_CHAIN, CHAIN, TABLE,
};
use crate::members::{self, Interval};
use crate::msg::batch::{Batch, Op};
use crate::msg::elements::{self, ElemOp, ElementInfo};
use crate::msg::objects::{self, ChainInfo, RuleInfo, SetInfo};
use crate::msg::{msg_type, DecodeError, NftMessage, NlMsg};
use crate::sys::{Socket, SysError, Until};

mod change;

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

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let layout = Layout::of(spec);
        let mut sock = self.lock();
        let present: HashSet<String> = rules(&mut sock, Some(CHAIN))?
            .into_iter()
            .filter_map(|r| r.comment)
            .collect();

        let mut batch = sock.batch();
        objects::new_table(&mut batch, TABLE);
        objects::new_chain(&mut batch, &BASE_CHAIN);
        for (i, set) in layout.addr_sets.iter().enumerate() {
            objects::new_set(
                &mut batch,
                &set.set_def(layout.timeout, layout.max_elements, i as u32 + 1),
            );
        }
        put_ports(&mut batch, &layout);
        for (i, set) in layout.addr_sets.iter().enumerate() {
            let comment = set.rule_comment();
            if present.contains(&comment) {
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
        if layout.rule.is_some() {
            let comments: HashSet<String> = rules(&mut sock, Some(CHAIN))?
                .into_iter()
                .filter_map(|r| r.comment)
                .collect();
            for set in &layout.addr_sets {
                let present = comments.contains(&set.rule_comment());
                objects.push((present, present));
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

/// Which kernel set `target` goes into; `Invalid` when the spec refuses it.
/// Creates the hook's port set if missing and fills it with exactly the
/// layout's ports.
fn put_ports(batch: &mut Batch, layout: &Layout) {
    let Some(ports) = &layout.ports else {
        return;
    };
    objects::new_set(batch, &ports.set_def(layout.ports_id()));
    // Replace, not merge, so a changed port list takes effect; in the same
    // batch, so the rule never sees an empty set.
    elements::flush_set(batch, TABLE, &ports.name);
    let keys: Vec<_> = ports.keys().map(elements::Element::new).collect();
    elements::set_elements(batch, ElemOp::Add, TABLE, &ports.name, &keys, &|r| {
        let port = |i: usize| ports.ports.get(i).copied().unwrap_or(0);
        format!(
            "ports {} .. {}",
            port(r.start),
            port(r.end.saturating_sub(1))
        )
    });
}

fn set_index(spec: &SetSpec, layout: &Layout, target: &Target) -> Result<usize, BackendError> {
    layout.set_for(target).ok_or_else(|| {
        let why = spec
            .admits(target)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| format!("{target} has no kernel set in {}", spec.name));
        BackendError::new(ErrorKind::Invalid, format!("set {}", spec.name), why)
    })
}

/// Two entries for the same prefix in one batch: the last one wins, as it
/// would if they were sent one after the other.
fn dedup_keep_last(entries: &mut Vec<KernelEntry>) {
    let mut seen = HashSet::with_capacity(entries.len());
    let mut kept: Vec<KernelEntry> = entries
        .iter()
        .rev()
        .filter(|e| seen.insert(e.target))
        .copied()
        .collect();
    kept.reverse();
    *entries = kept;
}

/// Narrows removals from an interval set to exact members, and refuses
/// additions that overlap the members or each other (naming both) before
/// anything is sent.
///
/// Why exact: a range is removed by its start and end keys, and the kernel
/// removes whatever elements carry those keys, even the start of another,
/// wider range (removing an absent 10.0.0.0/16 would cut the start off a
/// present 10.0.0.0/8 and corrupt the set).
fn prepare_interval_changes(
    sock: &mut Socket,
    set: &AddrSet,
    flush_first: bool,
    removes: &mut Vec<Target>,
    adds: &[KernelEntry],
) -> Result<(), BackendError> {
    let mut current = if flush_first {
        Vec::new()
    } else {
        list_intervals(sock, set)?
    };
    let exact: HashSet<(u128, u128)> = current.iter().map(|i| (i.first, i.last)).collect();
    removes.retain(|t| exact.contains(&members::span_of(t)));
    removes.sort_unstable();
    removes.dedup();
    let removed: HashSet<(u128, u128)> = removes.iter().map(members::span_of).collect();
    current.retain(|i| !removed.contains(&(i.first, i.last)));

    let adding: Vec<Target> = adds.iter().map(|e| e.target).collect();
    match members::find_overlap(set.family, &current, &adding) {
        Some(o) => Err(o.into_error(format!("add to set inet {TABLE} {}", set.name))),
        None => Ok(()),
    }
}

/// How often a dump that came back inconsistent is tried again.
const DUMP_ATTEMPTS: u32 = 6;

/// The raw elements of one kernel set. `NotFound` when it does not exist.
///
/// A dump of a large hash set is paged: for every ~32 KiB reply the kernel
/// walks the hash table again and skips what it already sent. While the
/// table is being resized (the kernel grows it in a worker shortly after a
/// large insert, and shrinks it after deletes) the order changes between
/// pages, so a page repeats some elements and the listing misses as many
/// others. Seen as a 10,000-member set listing 8,844 distinct members. A
/// repeated element (or `NLM_F_DUMP_INTR`, which the socket reports as
/// `DumpInterrupted`; both count against the one bound here) gives the
/// dump away, so it is taken again, after a pause that lets the resize
/// finish.
fn dump_elements(sock: &mut Socket, set: &AddrSet) -> Result<Vec<ElementInfo>, BackendError> {
    let what = format!("list set inet {TABLE} {}", set.name);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut infos: Vec<ElementInfo> = Vec::new();
        let seq = sock.next_seq();
        let req =
            elements::get_elements(seq, TABLE, &set.name).map_err(|e| encode_error(e, &what))?;
        let interrupted = match sock.request(&req, seq, Until::Done, &mut |msg| {
            if msg.nft_msg() == Some(msg_type::NEWSETELEM) {
                elements::parse_elements(msg, &mut infos)?;
            }
            Ok(())
        }) {
            Ok(()) => false,
            Err(SysError::DumpInterrupted { .. }) => true,
            Err(e) => return Err(sys_error(e, &what)),
        };
        let consistent = !interrupted && !has_repeats(&infos);
        if consistent || attempt >= DUMP_ATTEMPTS {
            if !consistent {
                return Err(BackendError::new(
                    ErrorKind::Other,
                    what,
                    format!(
                        "the kernel's listing stayed inconsistent over {DUMP_ATTEMPTS} attempts (the set is being resized or changed); try again"
                    ),
                ));
            }
            return Ok(infos);
        }
        std::thread::sleep(std::time::Duration::from_millis(25 << attempt));
    }
}

/// Whether a dump holds an element twice (same key, same start/end role).
fn has_repeats(infos: &[ElementInfo]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(infos.len());
    !infos
        .iter()
        .all(|e| seen.insert((e.key, e.is_interval_end())))
}

/// The ranges of an interval set, as the kernel holds them.
fn list_intervals(sock: &mut Socket, set: &AddrSet) -> Result<Vec<Interval>, BackendError> {
    let infos = dump_elements(sock, set)?;
    members::intervals_from(set.family, &infos).map_err(|e| decode_error(e, set))
}

/// The members of one kernel set. `NotFound` when it does not exist.
fn list_set(sock: &mut Socket, set: &AddrSet) -> Result<Vec<KernelEntry>, BackendError> {
    let infos = dump_elements(sock, set)?;
    members::members_of(set.family, set.is_interval(), &infos).map_err(|e| decode_error(e, set))
}

fn decode_error(e: DecodeError, set: &AddrSet) -> BackendError {
    BackendError::new(
        ErrorKind::Other,
        format!("list set inet {TABLE} {}", set.name),
        e.to_string(),
    )
}

/// GETSETELEM of one host in a hash set. `ENOENT` means absent, unless the
/// set itself is missing, which a GETSET tells apart.
fn host_present(sock: &mut Socket, set: &AddrSet, target: &Target) -> Result<bool, BackendError> {
    let what = format!("look up {target} in set inet {TABLE} {}", set.name);
    let seq = sock.next_seq();
    let key = members::addr_key(target.addr());
    let req =
        elements::get_element(seq, TABLE, &set.name, key).map_err(|e| encode_error(e, &what))?;
    let mut found = false;
    match sock.request(&req, seq, Until::Ack, &mut |msg| {
        found |= msg.nft_msg() == Some(msg_type::NEWSETELEM);
        Ok(())
    }) {
        Ok(()) => Ok(found),
        Err(SysError::Kernel { errno: ENOENT, .. }) => {
            let what = format!("look up set inet {TABLE} {}", set.name);
            let seq = sock.next_seq();
            let req =
                objects::get_set(seq, TABLE, &set.name).map_err(|e| encode_error(e, &what))?;
            sock.request(&req, seq, Until::Ack, &mut |_| Ok(()))
                .map_err(|e| sys_error(e, &what))?;
            Ok(false)
        }
        Err(e) => Err(sys_error(e, &what)),
    }
}

/// Runs a dump and parses every data message with `parse`. `ENOENT` (the
/// table is missing) gives `None`.
fn dump<T>(
    sock: &mut Socket,
    what: &str,
    req: impl FnOnce(u32) -> Result<Vec<u8>, crate::msg::EncodeError>,
    parse: impl Fn(&NlMsg<'_>) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, BackendError> {
    let seq = sock.next_seq();
    let req = req(seq).map_err(|e| encode_error(e, what))?;
    match sock.dump(&req, seq, &mut |out: &mut Vec<T>, msg| {
        if msg.nft_msg().is_some() {
            out.push(parse(msg)?);
        }
        Ok(())
    }) {
        Ok(out) => Ok(Some(out)),
        Err(SysError::Kernel { errno: ENOENT, .. }) => Ok(None),
        Err(e) => Err(sys_error(e, what)),
    }
}

/// banset's rules (in `chain`, or in every chain of the table).
fn rules(sock: &mut Socket, chain: Option<&str>) -> Result<Vec<RuleInfo>, BackendError> {
    let what = format!("list rules of table inet {TABLE}");
    let rules = dump(
        sock,
        &what,
        |seq| objects::get_rules(seq, TABLE, chain),
        objects::parse_rule,
    )?;
    // Dumps filter by name, but a kernel that ignored the filter must not
    // make us delete someone else's rule.
    Ok(rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.table == TABLE && chain.iter().all(|c| r.chain == *c))
        .collect())
}

/// The sets of banset's table, `None` when the table does not exist.
fn sets(sock: &mut Socket) -> Result<Option<Vec<SetInfo>>, BackendError> {
    let what = format!("list sets of table inet {TABLE}");
    let sets = dump(
        sock,
        &what,
        |seq| objects::get_sets(seq, TABLE),
        objects::parse_set,
    )?;
    // An empty answer is how some kernels say "no such table" for dumps; a
    // table without sets is treated alike, which is what callers need.
    Ok(sets
        .map(|s| {
            s.into_iter()
                .filter(|s| s.table == TABLE)
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty()))
}

fn chains(sock: &mut Socket) -> Result<Vec<ChainInfo>, BackendError> {
    let chains = dump(
        sock,
        "list inet chains",
        objects::get_chains,
        objects::parse_chain,
    )?;
    Ok(chains.unwrap_or_default())
}

fn commit(sock: &mut Socket, batch: Batch) -> Result<(), BackendError> {
    commit_batch(sock, batch).map_err(|f| f.error)
}

/// A batch the kernel refused: the error as reported, plus what a caller
/// needs to give it a meaning of its own (which operation failed, with
/// which errno).
struct Refusal {
    error: BackendError,
    /// The failing message's operation; `None` when the error concerns
    /// the whole batch (or never reached the kernel).
    op: Option<Op>,
    errno: Option<i32>,
}

fn commit_batch(sock: &mut Socket, batch: Batch) -> Result<(), Refusal> {
    let sealed = batch.finish().map_err(|e| Refusal {
        error: encode_error(e, "build nftables batch"),
        op: None,
        errno: None,
    })?;
    sock.commit(&sealed).map_err(|e| match e {
        SysError::Kernel { seq, errno, others } => {
            let failed = sealed.failed(seq);
            let err = match failed {
                Some(f) => errno_error(errno, Some(f.op), f.context),
                None => errno_error(errno, None, &sealed.summary()),
            };
            let error = if others == 0 {
                err
            } else {
                BackendError::new(
                    err.kind(),
                    err.context(),
                    format!(
                        "{} (and {others} more failing message{} in the batch; nothing was applied)",
                        err.detail(),
                        if others == 1 { "" } else { "s" }
                    ),
                )
            };
            Refusal {
                error,
                op: failed.map(|f| f.op),
                errno: Some(errno),
            }
        }
        other => Refusal {
            error: sys_error(other, "send nftables batch"),
            op: None,
            errno: None,
        },
    })
}

fn encode_error(e: crate::msg::EncodeError, what: &str) -> BackendError {
    BackendError::new(ErrorKind::Other, what, e.to_string())
}

/// `from_errno` plus what it cannot know: how to fix EPERM, that nf_tables
/// says E2BIG for a set that reached its size limit, and that EEXIST while
/// adding elements means an interval overlapping one already in the set.
/// `op` is the batched message the errno answers, `None` outside a batch.
fn errno_error(errno: i32, op: Option<Op>, context: &str) -> BackendError {
    let err = BackendError::from_errno(errno, context);
    match (err.kind(), errno) {
        (ErrorKind::Permission, _) => BackendError::new(
            ErrorKind::Permission,
            context,
            format!("{}; run as root or with CAP_NET_ADMIN", err.detail()),
        ),
        (_, E2BIG) => BackendError::new(ErrorKind::SetFull, context, err.detail()),
        (_, EEXIST) if op == Some(Op::AddElements) => BackendError::new(
            ErrorKind::Invalid,
            context,
            format!(
                "{}: an interval overlaps one already in the set",
                err.detail()
            ),
        ),
        _ => err,
    }
}

pub(crate) fn sys_error(e: SysError, what: &str) -> BackendError {
    match e {
        SysError::Os { call, errno } => errno_error(errno, None, &format!("{what}: {call}")),
        SysError::Kernel { errno, .. } => errno_error(errno, None, what),
        SysError::Decode(d) => BackendError::new(ErrorKind::Other, what, d.to_string()),
        SysError::NoReply => BackendError::new(ErrorKind::Other, what, "no reply from the kernel"),
        e @ SysError::DumpInterrupted { .. } => {
            BackendError::new(ErrorKind::Other, what, e.to_string())
        }
        SysError::Unsupported => BackendError::new(
            ErrorKind::Unsupported,
            what,
            "nftables exists only on Linux",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind follows the failing message's operation, never its
    /// description: an `EEXIST` while adding elements is an overlapping
    /// interval, while the same errno from a rule whose comment happens to
    /// read "add to set" stays `Exists`.
    #[test]
    fn an_errno_is_read_by_the_operation_it_answers() {
        let e = errno_error(
            EEXIST,
            Some(Op::AddElements),
            "add to set inet banset f_v4net",
        );
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(
            e.detail().contains("overlaps one already in the set"),
            "{e}"
        );
        for op in [Some(Op::AddRule), Some(Op::CreateSet), None] {
            let e = errno_error(EEXIST, op, "add to set inet banset f_v4net");
            assert_eq!(e.kind(), ErrorKind::Exists, "{op:?}");
        }
        let e = errno_error(E2BIG, Some(Op::AddElements), "x");
        assert_eq!(e.kind(), ErrorKind::SetFull);
        let e = errno_error(banset_core::errno::EPERM, None, "x");
        assert!(e.detail().contains("CAP_NET_ADMIN"), "{e}");
    }
}
