//! `IpsetBackend`: the [`Backend`] trait over the message, socket and hook
//! layers. Beside it, one idea a file: `plan` (what one `apply` sends to
//! each kernel set, and the checks before sending), `kernel` (the kernel
//! requests), `entries` (targets to ipset entries and back), `errors`
//! (kernel errors to [`BackendError`]s).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use banset_core::errno::ENOENT;
use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, Family, KernelEntry,
    SetHealth, SetName, SetPolicy, SetSpec, Target,
};

use crate::hook::{self, Action};
use crate::layout::{self, KernelSet, MAX_TIMEOUT};
use crate::msg::replies::SetHeader;
use crate::msg::requests;
use crate::msg::{cmd, errcode};
use crate::sys::{Socket, SysError};

mod entries;
mod errors;
mod kernel;
mod plan;

pub use entries::{listed_target, ListedEntryError};
use entries::{to_entry, to_target};
use errors::{encode_error, sys_error};
use kernel::{create, drop_set, dump, header, missing, reusable, send_entries, simple, test};
use plan::{check_before_adding, FamilyPlan};
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

    /// Both: an allow-only set's rule is `! --match-set` (see `hook`).
    fn supports_policy(&self, _policy: SetPolicy) -> bool {
        true
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let sets = layout::kernel_sets(spec);
        let rules = hook::rules_for(spec, &sets)?;
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
        let other_rules = hook::other_policy_rules(spec, &sets);
        for ((set, rule), other) in sets.iter().zip(&rules).zip(&other_rules) {
            if let Some(rule) = rule {
                if !hook::rule_present(set, rule)? {
                    let program = hook::program(set.family);
                    let args = hook::argv(Action::Insert, rule);
                    let outcome = hook::run(program, &args)?;
                    if !outcome.success() {
                        return Err(hook::failure(program, &args, &outcome));
                    }
                }
                // A rule of the other policy's shape would invert what the
                // members mean; it goes once the right one is in.
                if let Some(other) = other {
                    delete_rule(set, other)?;
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
        let rules = hook::rules_for(spec, &sets)?;
        // (exists, fits) of every object the set is made of.
        let mut objects = Vec::new();
        {
            let mut sock = self.lock();
            for set in &sets {
                let h = header(&mut sock, set)?;
                let fits = h.as_ref().is_some_and(|h| reusable(set, h, spec).is_ok());
                objects.push((h.is_some(), fits));
            }
        }
        let set_exists: Vec<bool> = objects.iter().map(|&(exists, _)| exists).collect();
        for ((set, rule), &exists) in sets.iter().zip(&rules).zip(&set_exists) {
            if let Some(rule) = rule {
                // Without the set, iptables refuses to even check a rule
                // naming it; no such rule can exist.
                let present = exists && hook::rule_present(set, rule)?;
                objects.push((present, present));
            }
        }
        // A rule of the other policy's shape exists without fitting.
        let other_rules = hook::other_policy_rules(spec, &sets);
        for ((set, other), &exists) in sets.iter().zip(&other_rules).zip(&set_exists) {
            if let Some(other) = other {
                if exists && hook::rule_present(set, other)? {
                    objects.push((true, false));
                }
            }
        }
        Ok(SetHealth::of(objects))
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        if changes.is_empty() {
            return Ok(());
        }
        // 1. Everything the input alone decides, before any kernel call.
        let plans = plan::plan(spec, changes)?;

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
                    BackendError::new(
                        ErrorKind::Other,
                        format!("list {}", set.describe()),
                        why.to_string(),
                    )
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
        let rules: Vec<Option<Vec<String>>> =
            hook::rules_for(spec, &sets).unwrap_or_else(|_| vec![None; sets.len()]);
        let other_rules = hook::other_policy_rules(spec, &sets);
        for ((set, rule), other) in sets.iter().zip(&rules).zip(&other_rules) {
            let exists = header(&mut self.lock(), set)?.is_some();
            if !exists {
                continue;
            }
            // The rules go first: the kernel refuses to destroy a set a
            // rule still uses. Either policy's: one of the wrong shape
            // would keep the set busy just the same.
            for rule in [rule, other].into_iter().flatten() {
                delete_rule(set, rule)?;
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

/// Deletes every copy of `rule` (up to [`MAX_RULE_COPIES`]) from `INPUT`.
fn delete_rule(set: &KernelSet, rule: &[String]) -> Result<(), BackendError> {
    for _ in 0..MAX_RULE_COPIES {
        if !hook::rule_present(set, rule)? {
            break;
        }
        let program = hook::program(set.family);
        let args = hook::argv(Action::Delete, rule);
        let outcome = hook::run(program, &args)?;
        if !outcome.success() {
            return Err(hook::failure(program, &args, &outcome));
        }
    }
    Ok(())
}
