//! The nftables backend's reads and writes of kernel state over its
//! socket: dumps, batches, and the errors they answer with. Apart from
//! `backend.rs` so that `backend/change.rs` can use them without importing
//! the backend that declares it.

use std::collections::HashSet;

use banset_core::errno::{E2BIG, EEXIST, ENOENT};
use banset_core::{BackendError, ErrorKind, KernelEntry, SetSpec, Target};

use crate::layout::{AddrSet, Layout, TABLE};
use crate::members::{self, Interval};
use crate::msg::batch::{Batch, Op};
use crate::msg::elements::{self, ElemOp, ElementInfo};
use crate::msg::objects::{self, ChainInfo, RuleInfo, SetInfo};
use crate::msg::{msg_type, DecodeError, NftMessage, NlMsg};
use crate::sys::{Socket, SysError, Until};

/// Which kernel set `target` goes into; `Invalid` when the spec refuses it.
/// Creates the hook's port set if missing and fills it with exactly the
/// layout's ports.
pub(super) fn put_ports(batch: &mut Batch, layout: &Layout) {
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

pub(super) fn set_index(
    spec: &SetSpec,
    layout: &Layout,
    target: &Target,
) -> Result<usize, BackendError> {
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
pub(super) fn dedup_keep_last(entries: &mut Vec<KernelEntry>) {
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
pub(super) fn prepare_interval_changes(
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
pub(super) fn dump_elements(
    sock: &mut Socket,
    set: &AddrSet,
) -> Result<Vec<ElementInfo>, BackendError> {
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
pub(super) fn has_repeats(infos: &[ElementInfo]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(infos.len());
    !infos
        .iter()
        .all(|e| seen.insert((e.key, e.is_interval_end())))
}

/// The ranges of an interval set, as the kernel holds them.
pub(super) fn list_intervals(
    sock: &mut Socket,
    set: &AddrSet,
) -> Result<Vec<Interval>, BackendError> {
    let infos = dump_elements(sock, set)?;
    members::intervals_from(set.family, &infos).map_err(|e| decode_error(e, set))
}

/// The members of one kernel set. `NotFound` when it does not exist.
pub(super) fn list_set(sock: &mut Socket, set: &AddrSet) -> Result<Vec<KernelEntry>, BackendError> {
    let infos = dump_elements(sock, set)?;
    members::members_of(set.family, set.is_interval(), &infos).map_err(|e| decode_error(e, set))
}

pub(super) fn decode_error(e: DecodeError, set: &AddrSet) -> BackendError {
    BackendError::new(
        ErrorKind::Other,
        format!("list set inet {TABLE} {}", set.name),
        e.to_string(),
    )
}

/// GETSETELEM of one host in a hash set. `ENOENT` means absent, unless the
/// set itself is missing, which a GETSET tells apart.
pub(super) fn host_present(
    sock: &mut Socket,
    set: &AddrSet,
    target: &Target,
) -> Result<bool, BackendError> {
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
pub(super) fn dump<T>(
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
pub(super) fn rules(sock: &mut Socket, chain: Option<&str>) -> Result<Vec<RuleInfo>, BackendError> {
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
pub(super) fn sets(sock: &mut Socket) -> Result<Option<Vec<SetInfo>>, BackendError> {
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

pub(super) fn chains(sock: &mut Socket) -> Result<Vec<ChainInfo>, BackendError> {
    let chains = dump(
        sock,
        "list inet chains",
        objects::get_chains,
        objects::parse_chain,
    )?;
    Ok(chains.unwrap_or_default())
}

pub(super) fn commit(sock: &mut Socket, batch: Batch) -> Result<(), BackendError> {
    commit_batch(sock, batch).map_err(|f| f.error)
}

/// A batch the kernel refused: the error as reported, plus what a caller
/// needs to give it a meaning of its own (which operation failed, with
/// which errno).
pub(super) struct Refusal {
    pub(super) error: BackendError,
    /// The failing message's operation; `None` when the error concerns
    /// the whole batch (or never reached the kernel).
    pub(super) op: Option<Op>,
    pub(super) errno: Option<i32>,
}

pub(super) fn commit_batch(sock: &mut Socket, batch: Batch) -> Result<(), Refusal> {
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

pub(super) fn encode_error(e: crate::msg::EncodeError, what: &str) -> BackendError {
    BackendError::new(ErrorKind::Other, what, e.to_string())
}

/// `from_errno` plus what it cannot know: how to fix EPERM, that nf_tables
/// says E2BIG for a set that reached its size limit, and that EEXIST while
/// adding elements means an interval overlapping one already in the set.
/// `op` is the batched message the errno answers, `None` outside a batch.
pub(super) fn errno_error(errno: i32, op: Option<Op>, context: &str) -> BackendError {
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
