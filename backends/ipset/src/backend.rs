//! `IpsetBackend`: the [`Backend`] trait over the message, socket and hook
//! layers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, Family, KernelEntry,
    SetHealth, SetName, SetSpec, Target,
};

use crate::hook::{self, Action};
use crate::layout::{self, KernelSet, MAX_TIMEOUT};
use crate::msg::replies::{self, ListedEntry, SetHeader};
use crate::msg::requests::{self, CreateParams, Entry};
use crate::msg::{cmd, errcode, EncodeError, IpsetMessage, MAX_SET_NAME};
use crate::sys::{Socket, SysError};

mod change;

/// banset's ipset backend: the kernel objects described in the crate docs,
/// driven over one `NETLINK_NETFILTER` socket, plus the iptables/ip6tables
/// hook rule.
///
/// The socket sits behind a mutex so the backend is `Sync`: replies of two
/// requests must never interleave.
#[derive(Debug)]
pub struct IpsetBackend {
    sock: Mutex<Socket>,
    /// Numbers the temporary sets of [`Changes::flush_first`] replaces, so
    /// two threads never pick the same name.
    temp_counter: AtomicU32,
}

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const EEXIST: i32 = 17;

/// How often `destroy` deletes a matching hook rule at most: once normally,
/// more if an older banset or a race left duplicates.
const MAX_RULE_COPIES: usize = 8;

impl IpsetBackend {
    /// Opens the netlink socket. Creating it needs no privilege; the first
    /// request without CAP_NET_ADMIN fails with [`ErrorKind::Permission`].
    /// Off Linux this fails with [`ErrorKind::Unsupported`].
    pub fn open() -> Result<IpsetBackend, BackendError> {
        let sock = Socket::open().map_err(|e| sys_error(e, "open ipset netlink socket"))?;
        Ok(IpsetBackend {
            sock: Mutex::new(sock),
            temp_counter: AtomicU32::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Socket> {
        // A poisoned lock only means another thread panicked. The socket has
        // no state a panic can corrupt: at worst replies are left queued, and
        // every request skips replies whose sequence number is not its own.
        self.sock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A set name no other banset thread or process uses right now.
    fn temp_name(&self) -> String {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        format!("banset-tmp-{}-{n}", std::process::id())
    }
}

impl Backend for IpsetBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Ipset
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            timeouts: true,
            max_timeout: Some(MAX_TIMEOUT),
            prefixes: true,
            mixed_families: false,
            // ipset applies a message entry by entry and keeps what went in
            // before a failure. Every refusal banset can foresee (family,
            // prefix, overlap, timeout cap, missing set, no room) is checked
            // before anything is sent, and a replace goes through a swap,
            // but a kernel failure mid-batch is not rolled back.
            atomic_batches: false,
            kills_states: false,
        }
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let sets = layout::kernel_sets(spec);
        let rules = hook_rules(spec, &sets)?;
        {
            let mut sock = self.lock();
            // Every existing kernel set is checked before anything is made:
            // creating `x` and then finding `x6` taken (the IPv4 set of set
            // `x6`) left an orphan ipset `x` behind.
            let headers = sets
                .iter()
                .map(|set| header(&mut sock, set))
                .collect::<Result<Vec<_>, _>>()?;
            for (set, h) in sets.iter().zip(&headers) {
                if let Some(h) = h {
                    reusable(set, h, spec)?;
                }
            }
            for (set, h) in sets.iter().zip(&headers) {
                if h.is_none() {
                    create(&mut sock, set, &set.name, spec, None)?;
                }
            }
        }
        for (set, rule) in sets.iter().zip(&rules) {
            if let Some(rule) = rule {
                if !rule_present(set, rule)? {
                    let program = hook::program(set.family);
                    let args = hook::argv(Action::Insert, rule);
                    let outcome = hook::run(program, &args)?;
                    if !outcome.success() {
                        return Err(hook::failure(program, &args, &outcome));
                    }
                }
            }
        }
        Ok(())
    }

    fn change_set(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        self.change_in_place(old, new)
    }

    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        let sets = layout::kernel_sets(spec);
        let rules = hook_rules(spec, &sets)?;
        let mut wanted = 0;
        let mut found = 0;
        let mut any = false;
        let mut present = Vec::new();
        {
            let mut sock = self.lock();
            for set in &sets {
                wanted += 1;
                let h = header(&mut sock, set)?;
                any |= h.is_some();
                let fits = h.as_ref().is_some_and(|h| reusable(set, h, spec).is_ok());
                found += usize::from(fits);
                present.push(h.is_some());
            }
        }
        for ((set, rule), exists) in sets.iter().zip(&rules).zip(present) {
            if let Some(rule) = rule {
                wanted += 1;
                // Without the set, iptables refuses to even check a rule
                // naming it; no such rule can exist.
                if exists && rule_present(set, rule)? {
                    any = true;
                    found += 1;
                }
            }
        }
        Ok(if found == wanted {
            SetHealth::Present
        } else if any {
            SetHealth::Incomplete
        } else {
            SetHealth::Missing
        })
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut plans: Vec<FamilyPlan> = layout::kernel_sets(spec)
            .into_iter()
            .map(|set| FamilyPlan {
                set,
                removes: Vec::new(),
                adds: Vec::new(),
                add_targets: Vec::new(),
            })
            .collect();

        // 1. Everything the input alone decides, before any kernel call.
        for entry in &changes.add {
            let target = &entry.target;
            let invalid = |why: String| {
                BackendError::new(ErrorKind::Invalid, format!("add to set {}", spec.name), why)
            };
            spec.admits(target).map_err(invalid)?;
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

        let mut sock = self.lock();
        // 2. What the kernel decides: the sets exist and are of our type,
        //    no prefix overlaps another, and the additions fit.
        //    One host added or removed skips the lookup (about 50 us on
        //    an empty set, 1.5 ms on one of 100,000, where the kernel sums
        //    its memory use): a single entry is all-or-nothing anyway, a
        //    host means the same to hash:ip and hash:net, and the kernel's
        //    own answer (missing set, set full) is mapped alike.
        let single_host = !changes.flush_first
            && changes.add.len() + changes.remove.len() == 1
            && changes
                .add
                .iter()
                .map(|e| &e.target)
                .chain(&changes.remove)
                .all(Target::is_host);
        let mut headers = Vec::with_capacity(plans.len());
        for plan in &plans {
            if !changes.flush_first && plan.adds.is_empty() && plan.removes.is_empty() {
                headers.push(None);
                continue;
            }
            if single_host {
                headers.push(Some(SetHeader::default()));
                continue;
            }
            let h = header(&mut sock, &plan.set)?.ok_or_else(|| missing(&plan.set))?;
            if h.typename != plan.set.typename {
                return Err(reusable(&plan.set, &h, spec).unwrap_err());
            }
            check_before_adding(&mut sock, plan, &h, changes.flush_first, spec)?;
            headers.push(Some(h));
        }

        // 3. Send.
        for (plan, h) in plans.iter().zip(&headers) {
            let Some(h) = h else { continue };
            if changes.flush_first {
                if plan.adds.is_empty() {
                    simple(&mut sock, cmd::FLUSH, &plan.set, &plan.set.name)
                        .map_err(|e| sys_error(e, &format!("flush {}", plan.set.describe())))?;
                } else {
                    self.replace(&mut sock, plan, h, spec)?;
                }
                continue;
            }
            send_entries(
                &mut sock,
                cmd::DEL,
                &plan.set,
                &plan.set.name,
                &plan.removes,
                h,
            )?;
            send_entries(
                &mut sock,
                cmd::ADD,
                &plan.set,
                &plan.set.name,
                &plan.adds,
                h,
            )?;
        }
        Ok(())
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        let mut sock = self.lock();
        let mut out = Vec::new();
        for set in layout::kernel_sets(spec) {
            let (h, entries) = dump(&mut sock, &set)?;
            out.reserve(entries.len());
            for e in entries.iter().filter(|e| !e.nomatch) {
                let target = to_target(&set, e).map_err(|why| {
                    BackendError::new(ErrorKind::Other, format!("list {}", set.describe()), why)
                })?;
                let timeout = match (h.timeout, e.timeout) {
                    (Some(_), Some(left)) if left > 0 => Some(Duration::from_secs(left.into())),
                    _ => None,
                };
                out.push(KernelEntry { target, timeout });
            }
        }
        Ok(out)
    }

    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let sets = layout::kernel_sets(spec);
        // A hook that no longer builds (ports changed) cannot have a rule.
        let rules: Vec<Option<Vec<String>>> = sets
            .iter()
            .map(|set| {
                spec.hook
                    .as_ref()
                    .and_then(|h| hook::rule_spec(&set.name, h).ok())
            })
            .collect();
        for (set, rule) in sets.iter().zip(&rules) {
            let exists = header(&mut self.lock(), set)?.is_some();
            if !exists {
                continue;
            }
            if let Some(rule) = rule {
                // The rule goes first: the kernel refuses to destroy a set a
                // rule still uses.
                for _ in 0..MAX_RULE_COPIES {
                    if !rule_present(set, rule)? {
                        break;
                    }
                    let program = hook::program(set.family);
                    let args = hook::argv(Action::Delete, rule);
                    let outcome = hook::run(program, &args)?;
                    if !outcome.success() {
                        return Err(hook::failure(program, &args, &outcome));
                    }
                }
            }
            let what = format!("destroy {}", set.describe());
            match simple(&mut self.lock(), cmd::DESTROY, set, &set.name) {
                Ok(()) | Err(SysError::Kernel { errno: ENOENT, .. }) => {}
                Err(SysError::Kernel {
                    errno: errcode::BUSY | errcode::REFERENCED,
                    ..
                }) => {
                    return Err(BackendError::new(
                        ErrorKind::Other,
                        what,
                        format!(
                            "the set is still in use by a rule banset did not create \
                             (find it with `{} -S | grep -- '--match-set {} '`, or in firewalld); \
                             remove that rule, then run `banset destroy {}` again",
                            hook::program(set.family),
                            set.name,
                            spec.name
                        ),
                    ))
                }
                Err(e) => return Err(sys_error(e, &what)),
            }
        }
        Ok(())
    }

    /// The sets whose blocking rule banset made (the comment `banset
    /// NAME`): ipset names are the admin's namespace, so a bare `f2b` ipset
    /// may be anyone's. A set made with `--no-hook` has no rule and is not
    /// found.
    fn kernel_sets(&self) -> Result<Vec<SetName>, BackendError> {
        let mut names = Vec::new();
        for family in [Family::V4, Family::V6] {
            let program = hook::program(family);
            let args: Vec<String> = ["-w", "-S", hook::CHAIN].map(String::from).to_vec();
            let outcome = hook::run(program, &args)?;
            if !outcome.success() {
                return Err(hook::failure(program, &args, &outcome));
            }
            for kernel_set in hook::commented_sets(&outcome.stdout) {
                // The IPv6 ipset of NAME is NAME6 (see `layout::kernel_set`).
                let base = match family {
                    Family::V4 => Some(kernel_set.as_str()),
                    Family::V6 => kernel_set.strip_suffix('6'),
                };
                names.extend(base.and_then(|b| SetName::new(b).ok()));
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        if !spec.families.includes(target.family()) {
            return Ok(false);
        }
        let set = layout::kernel_set(spec, target.family());
        let mut sock = self.lock();
        if target.is_host() {
            // TEST of an address on hash:net tries every prefix length the
            // set holds, so a banned prefix around the host answers too.
            return test(&mut sock, &set, to_entry(&set, target, None));
        }
        if !set.is_net() {
            // A hash:ip set holds no prefix; still say NotFound for a set
            // that is missing.
            header(&mut sock, &set)?.ok_or_else(|| missing(&set))?;
            return Ok(false);
        }
        // TEST of a prefix on hash:net matches that exact prefix only, so
        // ask for it and every wider one.
        for len in (1..=target.prefix_len()).rev() {
            let Ok(wider) = Target::listed(target.addr(), len) else {
                continue;
            };
            if test(&mut sock, &set, to_entry(&set, &wider, None))? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The changes for one kernel set.
struct FamilyPlan {
    set: KernelSet,
    removes: Vec<Entry>,
    adds: Vec<Entry>,
    /// The targets of `adds`, in the same order, for messages and checks.
    add_targets: Vec<Target>,
}

fn plan_for(plans: &mut [FamilyPlan], family: Family) -> Option<&mut FamilyPlan> {
    plans.iter_mut().find(|p| p.set.family == family)
}

fn to_entry(set: &KernelSet, target: &Target, timeout: Option<u32>) -> Entry {
    Entry {
        addr: target.addr(),
        // hash:net: every entry carries its length, hosts included, except
        // for TEST of a host, which must not (see `contains`).
        cidr: (set.is_net() && !(timeout.is_none() && target.is_host()))
            .then_some(target.prefix_len()),
        timeout,
    }
}

/// A single host's prefix length in `addr`'s own family (an IPv4-mapped
/// address is folded to its /32 by [`Target::listed`]).
fn max_len(addr: std::net::IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn to_target(set: &KernelSet, e: &ListedEntry) -> Result<Target, String> {
    listed_target(set.family, set.is_net(), e)
}

/// The target of an entry listed from an ipset of `family` (`is_net`: a
/// `hash:net`, whose entries carry a prefix length). An IPv4-mapped
/// address in an `inet6` set is refused, as in the nftables backend
/// (`members_of`): it is a target of the IPv4 family, which banset keeps
/// in the `inet` set, so it would be looked for and removed there, never
/// where it is. Refused by name rather than skipped, which would hide a
/// kernel member from `list` and `sync` without a word.
pub fn listed_target(family: Family, is_net: bool, e: &ListedEntry) -> Result<Target, String> {
    let target = match e.cidr {
        Some(len) if is_net => Target::listed(e.addr, len)
            .map_err(|why| format!("listed entry {}/{len}: {why}", e.addr))?,
        _ => Target::listed(e.addr, max_len(e.addr))
            .map_err(|why| format!("listed entry {}: {why}", e.addr))?,
    };
    if target.family() != family {
        return Err(format!(
            "listed entry {} (IPv4-mapped) in an {} set: banset never writes one there; \
             delete it with ipset",
            e.addr, family
        ));
    }
    Ok(target)
}

impl IpsetBackend {
    /// `flush_first` with additions, atomically for anyone matching against
    /// the set: fill a temporary set of the same type, `SWAP` it with the
    /// live one (rules follow the name's slot, so they see the new content
    /// at once), then destroy the temporary set, which now holds the old
    /// content. A failure before the swap leaves the live set untouched.
    fn replace(
        &self,
        sock: &mut Socket,
        plan: &FamilyPlan,
        live: &SetHeader,
        spec: &SetSpec,
    ) -> Result<(), BackendError> {
        let temp = self.temp_name();
        let what = format!("replace the content of {}", plan.set.describe());
        // A leftover of a crashed process with the same pid.
        drop_set(sock, &plan.set, &temp, &what)?;
        create(sock, &plan.set, &temp, spec, Some(live.revision)).map_err(|e| e.within(&what))?;
        let filled =
            send_entries(sock, cmd::ADD, &plan.set, &temp, &plan.adds, live).and_then(|()| {
                let seq = sock.next_seq();
                let req = requests::swap(seq, plan.set.nfproto(), &temp, &plan.set.name)
                    .map_err(|e| encode_error(e, &what))?;
                sock.request(&req, seq, &mut |_| Ok(()))
                    .map_err(|e| sys_error(e, &format!("{what}: swap with {temp}")))
            });
        let cleanup = drop_set(sock, &plan.set, &temp, &what);
        filled?;
        cleanup
    }
}

/// DESTROY that is fine with an absent set.
fn drop_set(
    sock: &mut Socket,
    set: &KernelSet,
    name: &str,
    what: &str,
) -> Result<(), BackendError> {
    match simple(sock, cmd::DESTROY, set, name) {
        Ok(()) | Err(SysError::Kernel { errno: ENOENT, .. }) => Ok(()),
        Err(e) => Err(sys_error(
            e,
            &format!("{what}: destroy temporary set {name}"),
        )),
    }
}

/// The overlap and room checks, before anything is sent for this set.
fn check_before_adding(
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
        let current: Vec<Target> = members.iter().copied().collect();
        if let Some(o) = layout::find_overlap(&current, &plan.add_targets) {
            let where_ = if o.other_is_new {
                "also being added".to_string()
            } else {
                format!("already in ipset {}", plan.set.name)
            };
            return Err(BackendError::new(
                ErrorKind::Invalid,
                format!("add to {}", plan.set.describe()),
                format!(
                    "prefix {} overlaps {} ({where_}); banset keeps one ban per address range, \
                     so remove the other prefix first",
                    o.new, o.other
                ),
            ));
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

fn full_detail(set: &KernelSet, maxelem: u32, state: &str) -> String {
    format!(
        "ipset {} is full: its maxelem is {maxelem} ({state}). Raise the limit with \
         `banset create --maxelem N` after `banset destroy`, or let bans expire",
        set.name
    )
}

/// ADD or DEL of `entries` in messages of up to 64 KiB, one request each,
/// stopping at the first failure.
fn send_entries(
    sock: &mut Socket,
    command: u8,
    set: &KernelSet,
    name: &str,
    entries: &[Entry],
    h: &SetHeader,
) -> Result<(), BackendError> {
    let verb = if command == cmd::ADD {
        "add to"
    } else {
        "delete from"
    };
    let mut start = 0;
    while start < entries.len() {
        let n = requests::entries_per_message(&entries[start..]);
        let chunk = &entries[start..start + n];
        let seq = sock.next_seq();
        let what = format!("{verb} ipset {name}");
        let req = requests::adt(command, seq, set.nfproto(), name, chunk, start as u32 + 1)
            .map_err(|e| encode_error(e, &what))?;
        if let Err(e) = sock.request(&req, seq, &mut |_| Ok(())) {
            // Without a header looked up in advance, the full set's
            // maxelem is looked up now, for the message.
            let looked_up;
            let h = match e {
                SysError::Kernel {
                    errno: errcode::HASH_FULL,
                    ..
                } if h.maxelem.is_none() => {
                    looked_up = header(sock, set).ok().flatten().unwrap_or_default();
                    &looked_up
                }
                _ => h,
            };
            return Err(entry_error(e, set, name, verb, entries, start, h));
        }
        start += n;
    }
    Ok(())
}

/// An error from an ADT message, naming the failing entry (from the line
/// number the kernel sends back) and what was applied before it.
fn entry_error(
    e: SysError,
    set: &KernelSet,
    name: &str,
    verb: &str,
    entries: &[Entry],
    chunk_start: usize,
    h: &SetHeader,
) -> BackendError {
    let (errno, lineno) = match e {
        SysError::Kernel { errno, lineno } => (errno, lineno),
        other => return sys_error(other, &format!("{verb} ipset {name}")),
    };
    let failed = lineno
        .and_then(|l| usize::try_from(l).ok())
        .and_then(|l| l.checked_sub(1))
        .filter(|&i| i < entries.len());
    let context = match failed {
        Some(i) => {
            let e = &entries[i];
            let shown = match e.cidr {
                Some(len) if len != if e.addr.is_ipv4() { 32 } else { 128 } => {
                    format!("{}/{len}", e.addr)
                }
                _ => e.addr.to_string(),
            };
            format!(
                "{verb} ipset {name}, entry {shown} ({} of {})",
                i + 1,
                entries.len()
            )
        }
        None => format!("{verb} ipset {name}"),
    };
    let applied = failed.unwrap_or(chunk_start);
    let partial = if applied > 0 {
        format!("; the {applied} entries before it were applied")
    } else {
        String::new()
    };
    if errno == errcode::HASH_FULL {
        let maxelem = h.maxelem.unwrap_or(u32::MAX);
        return BackendError::new(
            ErrorKind::SetFull,
            context,
            format!(
                "{}{partial}",
                full_detail(set, maxelem, "the kernel refused more")
            ),
        );
    }
    if errno == ENOENT {
        return BackendError::new(ErrorKind::NotFound, context, "the set does not exist");
    }
    let err = ipset_error(errno, &context);
    BackendError::new(
        err.kind(),
        err.context(),
        format!("{}{partial}", err.detail()),
    )
}

/// TEST: true when the entry matches, false on `IPSET_ERR_EXIST`.
fn test(sock: &mut Socket, set: &KernelSet, entry: Entry) -> Result<bool, BackendError> {
    let what = format!("test {} in {}", entry.addr, set.describe());
    let seq = sock.next_seq();
    let req = requests::test(seq, &set.name, &entry).map_err(|e| encode_error(e, &what))?;
    match sock.request(&req, seq, &mut |_| Ok(())) {
        Ok(()) => Ok(true),
        Err(SysError::Kernel {
            errno: errcode::EXIST,
            ..
        }) => Ok(false),
        Err(SysError::Kernel { errno: ENOENT, .. }) => Err(missing(set)),
        Err(e) => Err(sys_error(e, &what)),
    }
}

/// A request naming one set and nothing else (DESTROY, FLUSH).
fn simple(sock: &mut Socket, command: u8, set: &KernelSet, name: &str) -> Result<(), SysError> {
    let seq = sock.next_seq();
    let req = requests::on_set(command, seq, set.nfproto(), name)
        .map_err(|e| SysError::Decode(crate::msg::DecodeError(e.to_string())))?;
    sock.request(&req, seq, &mut |_| Ok(()))
}

/// The set's header, `None` when it does not exist.
fn header(sock: &mut Socket, set: &KernelSet) -> Result<Option<SetHeader>, BackendError> {
    let what = format!("look up {}", set.describe());
    let seq = sock.next_seq();
    let req =
        requests::list(seq, set.nfproto(), &set.name, true).map_err(|e| encode_error(e, &what))?;
    let mut ignored = Vec::new();
    match sock.dump(&req, seq, &mut |head: &mut Option<SetHeader>, msg| {
        if msg.ipset_cmd() == Some(cmd::LIST) {
            replies::parse_list_part(msg, head, &mut ignored)?;
        }
        Ok(())
    }) {
        Ok(head) => Ok(head.filter(|h| h.name == set.name)),
        Err(SysError::Kernel { errno: ENOENT, .. }) => Ok(None),
        Err(e) => Err(sys_error(e, &what)),
    }
}

/// The header and entries of a set; `NotFound` when it does not exist.
fn dump(sock: &mut Socket, set: &KernelSet) -> Result<(SetHeader, Vec<ListedEntry>), BackendError> {
    let what = format!("list {}", set.describe());
    let seq = sock.next_seq();
    let req =
        requests::list(seq, set.nfproto(), &set.name, false).map_err(|e| encode_error(e, &what))?;
    type Listing = (Option<SetHeader>, Vec<ListedEntry>);
    let (head, entries) = match sock.dump(&req, seq, &mut |acc: &mut Listing, msg| {
        if msg.ipset_cmd() == Some(cmd::LIST) {
            let name = replies::parse_list_part(msg, &mut acc.0, &mut acc.1)?;
            if name != set.name {
                return Err(crate::msg::DecodeError(format!(
                    "asked for set {}, the kernel listed {name}",
                    set.name
                )));
            }
        }
        Ok(())
    }) {
        Ok(listing) => listing,
        Err(SysError::Kernel { errno: ENOENT, .. }) => return Err(missing(set)),
        Err(e) => return Err(sys_error(e, &what)),
    };
    let head = head.ok_or_else(|| {
        BackendError::new(ErrorKind::Other, &what, "the kernel listed no set header")
    })?;
    Ok((head, entries))
}

/// CREATE `name` with the parameters of `set` and `spec`. The revision is
/// the kernel's newest for the type unless given (a swap partner must match
/// the live set's).
fn create(
    sock: &mut Socket,
    set: &KernelSet,
    name: &str,
    spec: &SetSpec,
    revision: Option<u8>,
) -> Result<(), BackendError> {
    let what = format!(
        "create ipset {name} ({}, {})",
        set.typename,
        layout::family_name(set.family)
    );
    if name.len() > MAX_SET_NAME {
        return Err(BackendError::new(
            ErrorKind::Invalid,
            what,
            format!("ipset names are at most {MAX_SET_NAME} bytes"),
        ));
    }
    let revision = match revision {
        Some(r) => r,
        None => {
            let seq = sock.next_seq();
            let req = requests::type_query(seq, set.typename, set.nfproto())
                .map_err(|e| encode_error(e, &what))?;
            let mut revs = None;
            sock.request(&req, seq, &mut |msg| {
                if msg.ipset_cmd() == Some(cmd::TYPE) {
                    revs = Some(replies::parse_type(msg)?);
                }
                Ok(())
            })
            .map_err(|e| sys_error(e, &format!("{what}: query the type's revision")))?;
            revs.map(|(max, _)| max).ok_or_else(|| {
                BackendError::new(
                    ErrorKind::Unsupported,
                    &what,
                    "the kernel does not know the set type",
                )
            })?
        }
    };
    let maxelem = layout::maxelem(spec);
    let params = CreateParams {
        name,
        typename: set.typename,
        revision,
        family: set.nfproto(),
        timeout: layout::default_timeout(spec),
        hashsize: layout::hash_size(maxelem),
        maxelem,
    };
    let seq = sock.next_seq();
    let req = requests::create(seq, &params).map_err(|e| encode_error(e, &what))?;
    match sock.request(&req, seq, &mut |_| Ok(())) {
        Ok(()) => Ok(()),
        // Created concurrently with other parameters.
        Err(SysError::Kernel { errno: EEXIST, .. }) => Err(BackendError::new(
            ErrorKind::Exists,
            what,
            format!(
                "a set of that name exists with other parameters; run `banset destroy {}` first",
                spec.name
            ),
        )),
        Err(e) => Err(sys_error(e, &what)),
    }
}

/// Whether an existing set can serve `set`: same type and family, with
/// timeout support. Other parameters (default timeout, maxelem) may differ:
/// entries always carry their own timeout, and a different maxelem is the
/// admin's choice, reported when the set fills up.
fn reusable(set: &KernelSet, h: &SetHeader, spec: &SetSpec) -> Result<(), BackendError> {
    let family = match h.family {
        crate::msg::NFPROTO_IPV4 => "inet",
        crate::msg::NFPROTO_IPV6 => "inet6",
        _ => "unknown",
    };
    if h.family != set.nfproto() {
        // Not a stale set of ours: banset names a set's IPv6 ipset NAME6, so
        // the IPv4 ipset of set `x6` is the name set `x` needs for IPv6 (and
        // the other way round). `banset destroy` would remove the other
        // set's kernel object, so it is not the advice.
        return Err(BackendError::new(
            ErrorKind::Exists,
            format!("ipset {}", set.name),
            format!(
                "a set of that name exists for family {family}, and set {} needs it for {}: it \
                 belongs to another set (the IPv6 ipset of a banset set NAME is NAME6, so sets \
                 `x` and `x6` clash); choose another name for set {}",
                spec.name,
                layout::family_name(set.family),
                spec.name
            ),
        ));
    }
    let problem = if h.typename != set.typename {
        format!(
            "it is {} family {family}, banset needs {} family {}",
            h.typename,
            set.typename,
            layout::family_name(set.family)
        )
    } else if h.timeout.is_none() {
        "it was created without timeout support".to_string()
    } else {
        return Ok(());
    };
    Err(BackendError::new(
        ErrorKind::Exists,
        format!("ipset {}", set.name),
        format!(
            "a set of that name exists but {problem}; run `banset destroy {}` first (or `ipset destroy {}` if it is not banset's)",
            spec.name, set.name
        ),
    ))
}

fn missing(set: &KernelSet) -> BackendError {
    BackendError::new(
        ErrorKind::NotFound,
        format!("ipset {}", set.name),
        "the set does not exist",
    )
}

/// The hook rule of each kernel set (`None` without a hook). Refused hooks
/// are `Invalid` before anything is created.
fn hook_rules(
    spec: &SetSpec,
    sets: &[KernelSet],
) -> Result<Vec<Option<Vec<String>>>, BackendError> {
    sets.iter()
        .map(|set| {
            spec.hook
                .as_ref()
                .map(|h| {
                    hook::rule_spec(&set.name, h).map_err(|why| {
                        BackendError::new(
                            ErrorKind::Invalid,
                            format!("hook of set {}", spec.name),
                            why,
                        )
                    })
                })
                .transpose()
        })
        .collect()
}

/// `-C`: exit 0 present, 1 absent; anything else is an error with stderr.
fn rule_present(set: &KernelSet, rule: &[String]) -> Result<bool, BackendError> {
    let program = hook::program(set.family);
    let args = hook::argv(Action::Check, rule);
    let outcome = hook::run(program, &args)?;
    match outcome.code {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(hook::failure(program, &args, &outcome)),
    }
}

fn encode_error(e: EncodeError, what: &str) -> BackendError {
    BackendError::new(ErrorKind::Other, what, e.to_string())
}

/// Maps a kernel error, an errno or an ipset code, by number.
fn ipset_error(code: i32, context: &str) -> BackendError {
    let (kind, text) = match code {
        errcode::PROTOCOL => (
            ErrorKind::Invalid,
            "ipset protocol error (IPSET_ERR_PROTOCOL): the kernel refused the request's format \
             (an address of the wrong family, or a kernel older than ipset protocol 7)",
        ),
        errcode::FIND_TYPE => (
            ErrorKind::Unsupported,
            "the kernel lacks this set type or revision (IPSET_ERR_FIND_TYPE); load ip_set_hash_ip / ip_set_hash_net",
        ),
        errcode::MAX_SETS => (ErrorKind::Other, "the kernel's limit on the number of sets is reached (IPSET_ERR_MAX_SETS)"),
        errcode::BUSY => (ErrorKind::Other, "the set is in use by a kernel component such as an iptables rule (IPSET_ERR_BUSY)"),
        errcode::EXIST_SETNAME2 => (ErrorKind::NotFound, "the second set does not exist (IPSET_ERR_EXIST_SETNAME2)"),
        errcode::TYPE_MISMATCH => (ErrorKind::Exists, "the sets are of different types (IPSET_ERR_TYPE_MISMATCH)"),
        errcode::EXIST => (ErrorKind::Exists, "the entry or set exists (IPSET_ERR_EXIST)"),
        errcode::INVALID_CIDR => (ErrorKind::Invalid, "the set type refuses this prefix length (IPSET_ERR_INVALID_CIDR)"),
        errcode::INVALID_NETMASK => (ErrorKind::Invalid, "invalid netmask (IPSET_ERR_INVALID_NETMASK)"),
        errcode::INVALID_FAMILY => (ErrorKind::Invalid, "invalid family (IPSET_ERR_INVALID_FAMILY)"),
        errcode::TIMEOUT => (
            ErrorKind::Exists,
            "the set was created without timeout support (IPSET_ERR_TIMEOUT); destroy and recreate it",
        ),
        errcode::REFERENCED => (ErrorKind::Other, "the set is referenced (IPSET_ERR_REFERENCED)"),
        errcode::IPADDR_IPV4 => (ErrorKind::Invalid, "an IPv4 address was expected (IPSET_ERR_IPADDR_IPV4)"),
        errcode::IPADDR_IPV6 => (ErrorKind::Invalid, "an IPv6 address was expected (IPSET_ERR_IPADDR_IPV6)"),
        errcode::HASH_FULL => (ErrorKind::SetFull, "the set is full: maxelem reached (IPSET_ERR_HASH_FULL)"),
        code if code >= 4096 => {
            return BackendError::new(
                ErrorKind::Other,
                context,
                format!("ipset error {code} (see enum ipset_errno in linux/netfilter/ipset/ip_set.h)"),
            )
        }
        errno => {
            let err = BackendError::from_errno(errno, context);
            return if errno == EPERM || err.kind() == ErrorKind::Permission {
                BackendError::new(
                    ErrorKind::Permission,
                    context,
                    format!("{}; run as root or with CAP_NET_ADMIN", err.detail()),
                )
            } else {
                err
            };
        }
    };
    BackendError::new(kind, context, text)
}

fn sys_error(e: SysError, what: &str) -> BackendError {
    match e {
        SysError::Os { call, errno } => ipset_error(errno, &format!("{what}: {call}")),
        SysError::Kernel { errno, .. } => ipset_error(errno, what),
        SysError::Decode(d) => BackendError::new(ErrorKind::Other, what, d.to_string()),
        SysError::NoReply => BackendError::new(ErrorKind::Other, what, "no reply from the kernel"),
        SysError::DumpInterrupted { attempts } => BackendError::new(
            ErrorKind::Other,
            what,
            format!(
                "the kernel's listing was interrupted by concurrent changes {attempts} times in a row; try again"
            ),
        ),
        SysError::Unsupported => {
            BackendError::new(ErrorKind::Unsupported, what, "ipset exists only on Linux")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_codes_map_by_number() {
        let e = ipset_error(errcode::HASH_FULL, "add");
        assert_eq!(e.kind(), ErrorKind::SetFull);
        assert_eq!(ipset_error(ENOENT, "x").kind(), ErrorKind::NotFound);
        let e = ipset_error(EPERM, "x");
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(e.detail().contains("CAP_NET_ADMIN"));
        assert_eq!(ipset_error(errcode::TIMEOUT, "x").kind(), ErrorKind::Exists);
        assert!(ipset_error(4200, "x").detail().contains("ipset error 4200"));
    }

    #[test]
    fn failing_entries_are_named_by_line_number() {
        let set = KernelSet {
            name: "f2b".into(),
            family: Family::V4,
            typename: layout::HASH_NET,
        };
        let entries: Vec<Entry> = ["192.0.2.1", "192.0.2.2", "198.51.100.0/24"]
            .iter()
            .map(|s| to_entry(&set, &s.parse().unwrap(), Some(60)))
            .collect();
        let h = SetHeader {
            maxelem: Some(2),
            ..SetHeader::default()
        };
        let full = SysError::Kernel {
            errno: errcode::HASH_FULL,
            lineno: Some(3),
        };
        let e = entry_error(full, &set, "f2b", "add to", &entries, 0, &h);
        assert_eq!(e.kind(), ErrorKind::SetFull);
        assert_eq!(
            e.context(),
            "add to ipset f2b, entry 198.51.100.0/24 (3 of 3)"
        );
        assert!(e.detail().contains("maxelem is 2"), "{e}");
        assert!(
            e.detail().contains("the 2 entries before it were applied"),
            "{e}"
        );
        let e = entry_error(
            SysError::Kernel {
                errno: ENOENT,
                lineno: None,
            },
            &set,
            "f2b",
            "add to",
            &entries,
            0,
            &h,
        );
        assert_eq!(
            (e.kind(), e.context(), e.detail()),
            (
                ErrorKind::NotFound,
                "add to ipset f2b",
                "the set does not exist"
            )
        );
        // A line number out of range is ignored rather than trusted.
        let e = entry_error(
            SysError::Kernel {
                errno: errcode::PROTOCOL,
                lineno: Some(99),
            },
            &set,
            "f2b",
            "delete from",
            &entries,
            0,
            &h,
        );
        assert_eq!(e.context(), "delete from ipset f2b");
    }

    #[test]
    fn hosts_in_hash_net_carry_their_length_except_in_tests() {
        let net = KernelSet {
            name: "n".into(),
            family: Family::V4,
            typename: layout::HASH_NET,
        };
        let ip = KernelSet {
            typename: layout::HASH_IP,
            ..net.clone()
        };
        let host: Target = "192.0.2.1".parse().unwrap();
        assert_eq!(to_entry(&net, &host, Some(5)).cidr, Some(32));
        assert_eq!(to_entry(&net, &host, None).cidr, None);
        assert_eq!(to_entry(&ip, &host, Some(5)).cidr, None);
        let prefix: Target = "10.0.0.0/8".parse().unwrap();
        assert_eq!(to_entry(&net, &prefix, None).cidr, Some(8));
    }

    /// As in the nftables backend (found there by the nftables_dump fuzz
    /// target): `::ffff:1.2.3.4` listed from an inet6 set became the IPv4
    /// target 1.2.3.4, which banset would look for in the inet set.
    #[test]
    fn an_ipv4_mapped_entry_in_an_inet6_set_is_refused() {
        let entry = |addr: &str, cidr| ListedEntry {
            addr: addr.parse().unwrap(),
            cidr,
            timeout: None,
            nomatch: false,
        };
        for is_net in [false, true] {
            let e = listed_target(Family::V6, is_net, &entry("::ffff:1.2.3.4", Some(128)));
            assert!(e.unwrap_err().contains("IPv4-mapped"));
        }
        let ok = listed_target(Family::V6, true, &entry("2001:db8::", Some(32))).unwrap();
        assert_eq!(ok, "2001:db8::/32".parse::<Target>().unwrap());
        let ok = listed_target(Family::V4, false, &entry("192.0.2.1", None)).unwrap();
        assert_eq!(ok, "192.0.2.1".parse::<Target>().unwrap());
    }
}
