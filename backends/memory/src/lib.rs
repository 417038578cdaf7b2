//! banset-memory: an in-process model of a kernel that holds ban sets.
//!
//! `--dry-run` runs every command against it, and the core's tests use it as
//! the kernel, so it has to behave the way nftables and ipset do, not the way
//! a convenient map would: members carry deadlines and vanish when they pass,
//! a batch is all or nothing, overlapping prefixes are refused, a full set
//! refuses new members, and a set that was never created is `NotFound`. The
//! shared conformance suite (crate `banset-tests`) holds it to the same
//! expectations as the real backends.
//!
//! Time comes from an injected [`Clock`], so expiry is tested by moving a
//! [`banset_core::ManualClock`] instead of sleeping. The clock has whole
//! seconds; deadlines are kept in milliseconds of that clock so that a
//! sub-second timeout (nftables accepts them) is not rounded to zero or to
//! "never".
//!
//! [`MemoryBackend::with_capabilities`] turns it into a weaker kernel: one
//! without timeouts (pf, ipfw: the ledger drives expiry), one with a timeout
//! cap (ipset: 2,147,483 s), or one without atomic batches, so the core's
//! compensating logic is tested against each.

#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use banset_core::{
    find_prefix_overlap, Backend, BackendError, BackendKind, Capabilities, Changes, Clock,
    ErrorKind, Hook, KernelEntry, SetHealth, SetName, SetPolicy, SetSpec, SystemClock, Target,
};

/// ipset's longest timeout: the kernel keeps timeouts in milliseconds in a
/// 32-bit jiffies-derived value, so `ipset` refuses anything above
/// `UINT_MAX / 1000` seconds.
pub const IPSET_MAX_TIMEOUT: Duration = Duration::from_secs(2_147_483);

/// A kernel of ban sets living in this process; see the crate docs.
pub struct MemoryBackend {
    clock: Arc<dyn Clock + Send + Sync>,
    caps: Capabilities,
    sets: Mutex<HashMap<SetName, MemorySet>>,
}

/// One set as the model kernel holds it.
#[derive(Clone, Debug, Default)]
struct MemorySet {
    /// Whether the blocking rule is in place; a real kernel keeps the rule
    /// apart from the set, and an admin can delete one without the other.
    hooked: bool,
    /// The rule's ports, protocol and block type, as `change_set` left them.
    rule: Option<Hook>,
    /// The rule's shape: what members mean to it.
    policy: SetPolicy,
    members: Members,
}

/// Members keyed by (network address, prefix length), so "is this address
/// covered?" is one lookup per prefix length, and the overlap check
/// (banset-core's, as every backend's) gets them in address order.
type Key = (IpAddr, u8);

#[derive(Clone, Debug, Default)]
struct Members(BTreeMap<Key, Member>);

#[derive(Clone, Copy, Debug)]
struct Member {
    target: Target,
    /// Milliseconds of the injected clock; `None` never expires.
    deadline_ms: Option<i64>,
}

impl MemoryBackend {
    /// What the model kernel does by default: the nftables feature set
    /// (timeouts without a practical cap, prefixes, atomic batches), with the
    /// v4 and v6 members of one logical set kept apart as nftables does.
    pub const CAPABILITIES: Capabilities = Capabilities {
        timeouts: true,
        max_timeout: None,
        prefixes: true,
        mixed_families: false,
        atomic_batches: true,
        kills_states: false,
    };

    /// A kernel with [`Self::CAPABILITIES`] whose deadlines follow `clock`.
    pub fn new(clock: Arc<dyn Clock + Send + Sync>) -> MemoryBackend {
        MemoryBackend::with_capabilities(clock, MemoryBackend::CAPABILITIES)
    }

    /// A kernel that does only what `caps` says, as strictly as a real one
    /// would:
    /// - `timeouts: false`: members never expire by themselves and list with
    ///   timeout `None`, whatever timeout they were added with (pf, ipfw);
    /// - `max_timeout: Some(cap)`: a longer timeout is refused as
    ///   [`ErrorKind::Invalid`] (ipset, see [`IPSET_MAX_TIMEOUT`]);
    /// - `prefixes: false`: a prefix member is [`ErrorKind::Unsupported`];
    /// - `atomic_batches: false`: a failing batch keeps the changes made
    ///   before the failing entry, as a kernel applying one entry per call
    ///   would.
    ///
    /// `mixed_families` and `kills_states` change nothing here: they are
    /// reported back to the core, which is what tests want to vary.
    pub fn with_capabilities(
        clock: Arc<dyn Clock + Send + Sync>,
        caps: Capabilities,
    ) -> MemoryBackend {
        MemoryBackend {
            clock,
            caps,
            sets: Mutex::new(HashMap::new()),
        }
    }

    /// The blocking rule of `set` as the model holds it: `None` when the
    /// set does not exist, `Some(None)` when it has no rule.
    pub fn rule_of(&self, set: &SetName) -> Option<Option<Hook>> {
        self.lock().0.get(set).map(|s| s.rule.clone())
    }

    /// The policy the set's rule was built with (`None`: no such set).
    pub fn policy_of(&self, set: &SetName) -> Option<SetPolicy> {
        self.lock().0.get(set).map(|s| s.policy)
    }

    /// Simulates a rule of another shape put in place behind banset's back
    /// (an allow-only set's rule turned into a ban rule): `health` reports
    /// [`SetHealth::Incomplete`] until `ensure_set` rebuilds it. Returns
    /// whether the set exists.
    pub fn reshape_rule(&self, name: &SetName, policy: SetPolicy) -> bool {
        match self.lock().0.get_mut(name) {
            Some(set) => {
                set.policy = policy;
                true
            }
            None => false,
        }
    }

    /// Simulates a reboot or `nft flush ruleset`: every set and rule is gone,
    /// which is what `banset sync` and the keeper must repair.
    pub fn wipe(&self) {
        self.lock().0.clear();
    }

    /// Simulates an admin deleting a set's blocking rule behind banset's
    /// back: the set keeps its members and `health` reports
    /// [`SetHealth::Incomplete`] until `ensure_set` restores the rule.
    /// Returns whether the set exists.
    pub fn remove_hook(&self, name: &SetName) -> bool {
        match self.lock().0.get_mut(name) {
            Some(set) => {
                set.hooked = false;
                true
            }
            None => false,
        }
    }

    /// The sets, with every member whose deadline has passed removed, as a
    /// kernel's garbage collector would have done by now, and that "now" in
    /// milliseconds, so one operation sees one instant.
    fn lock(&self) -> (MutexGuard<'_, HashMap<SetName, MemorySet>>, i64) {
        // A panic while the lock was held (a failed assertion in a test
        // thread) leaves the map consistent: every mutation is built on a
        // copy and swapped in whole. So a poisoned lock is safe to reuse.
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.now_ms();
        for set in sets.values_mut() {
            set.members.expire(now);
        }
        (sets, now)
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().saturating_mul(1000)
    }

    /// The deadline of a member added now with `timeout`, after the checks a
    /// kernel makes on the value.
    fn deadline(
        &self,
        timeout: Option<Duration>,
        now_ms: i64,
    ) -> Result<Option<i64>, TimeoutRefused> {
        let Some(timeout) = timeout else {
            return Ok(None);
        };
        if timeout.is_zero() {
            // Kernels read 0 as "no timeout": passing it on would turn a
            // caller's bug into a permanent ban.
            return Err(TimeoutRefused::Zero);
        }
        if !self.caps.timeouts {
            return Ok(None);
        }
        if let Some(cap) = self.caps.max_timeout {
            if timeout > cap {
                return Err(TimeoutRefused::AboveLimit { timeout, cap });
            }
        }
        i64::try_from(timeout.as_millis())
            .ok()
            .and_then(|ms| now_ms.checked_add(ms))
            .map(Some)
            .ok_or(TimeoutRefused::TooLong { timeout })
    }

    /// Applies `changes` to `members`, entry by entry. On error `members`
    /// holds what was applied before the failing entry; the caller decides
    /// whether that is kept (no atomic batches) or thrown away.
    fn apply_to(
        &self,
        spec: &SetSpec,
        members: &mut Members,
        changes: &Changes,
        now_ms: i64,
    ) -> Result<(), BackendError> {
        if changes.flush_first {
            members.0.clear();
        }
        for target in &changes.remove {
            members.0.remove(&key(target));
        }
        // Checked for the whole batch before the first entry, and reported
        // at the entry it names: a kernel applying one entry at a time stops
        // there, keeping the entries before it.
        let adding: Vec<Target> = changes.add.iter().map(|e| e.target).collect();
        let overlap = find_prefix_overlap(members.0.values().map(|m| &m.target), &adding);
        for entry in &changes.add {
            let target = entry.target;
            let refused = |kind, detail: String| {
                BackendError::new(
                    kind,
                    format!("add to memory set {}, element {target}", spec.name),
                    detail,
                )
            };
            spec.admits(&target)
                .map_err(|why| refused(ErrorKind::Invalid, why.to_string()))?;
            if !target.is_host() && !self.caps.prefixes {
                return Err(refused(
                    ErrorKind::Unsupported,
                    "this kernel holds single addresses only, not prefixes".to_string(),
                ));
            }
            let deadline_ms = self
                .deadline(entry.timeout, now_ms)
                .map_err(|why| refused(ErrorKind::Invalid, why.to_string()))?;
            // The first entry naming the refused prefix is the one refused:
            // an earlier one equal to it would have overlapped the same.
            if let Some(o) = overlap.filter(|o| o.new == target) {
                return Err(
                    o.into_error(format!("add to memory set {}, element {target}", spec.name))
                );
            }
            let is_new = !members.0.contains_key(&key(&target));
            if let Some(max) = spec.max_elements {
                if is_new && members.0.len() >= max as usize {
                    return Err(refused(
                        ErrorKind::SetFull,
                        format!("set {} is full: it holds at most {max} members", spec.name),
                    ));
                }
            }
            members.0.insert(
                key(&target),
                Member {
                    target,
                    deadline_ms,
                },
            );
        }
        Ok(())
    }
}

impl Default for MemoryBackend {
    /// A kernel on the wall clock, as `--dry-run` wants.
    fn default() -> MemoryBackend {
        MemoryBackend::new(Arc::new(SystemClock))
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // try_lock: formatting must not deadlock when the caller is inside
        // an operation on the same backend.
        let mut out = f.debug_struct("MemoryBackend");
        out.field("now", &self.clock.now())
            .field("caps", &self.caps);
        match self.sets.try_lock() {
            Ok(sets) => out.field("sets", &sets.len()),
            Err(_) => out.field("sets", &"(busy)"),
        };
        out.finish_non_exhaustive()
    }
}

/// A member's timeout the simulated kernel refuses, as the real ones do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum TimeoutRefused {
    /// Zero, which kernels read as "never".
    #[error(
        "a zero timeout means \"never\" to kernels and is refused; \
         pass no timeout for a permanent ban"
    )]
    Zero,
    /// Above the kernel's cap ([`Capabilities::max_timeout`]).
    #[error(
        "timeout {}s is longer than the kernel's limit of {}s",
        timeout.as_secs(),
        cap.as_secs()
    )]
    AboveLimit {
        /// The timeout asked for.
        timeout: Duration,
        /// The kernel's cap.
        cap: Duration,
    },
    /// Past what the deadline's milliseconds can count.
    #[error("timeout {}s is too long", timeout.as_secs())]
    TooLong {
        /// The timeout asked for.
        timeout: Duration,
    },
}

fn not_found(spec: &SetSpec, operation: &str) -> BackendError {
    BackendError::new(
        ErrorKind::NotFound,
        format!("{operation} memory set {}", spec.name),
        "no such set",
    )
}

impl Backend for MemoryBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let (mut sets, _) = self.lock();
        let set = sets.entry(spec.name.clone()).or_default();
        // Like a real backend, ensuring also puts back a rule that was
        // deleted behind our back; members are left alone.
        set.hooked = spec.hook.is_some();
        set.rule = spec.hook.clone();
        set.policy = spec.policy;
        Ok(())
    }

    /// The model builds both shapes, so the engine's paths for allow-only
    /// sets run against it.
    fn supports_policy(&self, _policy: SetPolicy) -> bool {
        true
    }

    fn change_set(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        let (mut sets, _) = self.lock();
        let set = sets
            .get_mut(&old.name)
            .ok_or_else(|| not_found(old, "change"))?;
        // A real kernel refuses to shrink a set below what it holds.
        let held = set.members.0.len();
        if new.max_elements.is_some_and(|m| held > m as usize) {
            return Err(BackendError::new(
                ErrorKind::SetFull,
                format!("change memory set {}", old.name),
                format!("it holds {held} members, more than the new maxelem"),
            ));
        }
        set.hooked = new.hook.is_some();
        set.rule = new.hook.clone();
        Ok(())
    }

    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        Ok(match self.lock().0.get(&spec.name) {
            None => SetHealth::Missing,
            Some(set) if spec.hook.is_some() && !set.hooked => SetHealth::Incomplete,
            Some(set) if spec.hook.is_some() && set.policy != spec.policy => SetHealth::Incomplete,
            Some(_) => SetHealth::Present,
        })
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        let (mut sets, now) = self.lock();
        let set = sets
            .get_mut(&spec.name)
            .ok_or_else(|| not_found(spec, "change"))?;
        // Work on a copy and swap it in: nothing is half-applied if an entry
        // fails, which is what atomic_batches promises.
        let mut next = set.members.clone();
        let result = self.apply_to(spec, &mut next, changes, now);
        if result.is_ok() || !self.caps.atomic_batches {
            set.members = next;
        }
        result
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        let (sets, now) = self.lock();
        let set = sets
            .get(&spec.name)
            .ok_or_else(|| not_found(spec, "list"))?;
        Ok(set
            .members
            .0
            .values()
            .map(|m| KernelEntry {
                target: m.target,
                // `lock` removed the members due at `now`, so what is left
                // has a positive remainder.
                timeout: m
                    .deadline_ms
                    .map(|d| Duration::from_millis(d.saturating_sub(now).unsigned_abs())),
            })
            .collect())
    }

    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.lock().0.remove(&spec.name);
        Ok(())
    }

    fn kernel_sets(&self) -> Result<Vec<SetName>, BackendError> {
        let (sets, _) = self.lock();
        let mut names: Vec<SetName> = sets.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        let (sets, _) = self.lock();
        let set = sets
            .get(&spec.name)
            .ok_or_else(|| not_found(spec, "test"))?;
        Ok(set.members.covering(target).is_some())
    }
}

impl Members {
    fn expire(&mut self, now_ms: i64) {
        self.0
            .retain(|_, m| !matches!(m.deadline_ms, Some(deadline) if deadline <= now_ms));
    }

    /// A member equal to `target` or a prefix containing it.
    fn covering(&self, target: &Target) -> Option<Target> {
        (0..=target.prefix_len())
            .rev()
            .find_map(|len| self.0.get(&(network(target.addr(), len), len)))
            .map(|m| m.target)
    }
}

fn key(target: &Target) -> Key {
    (target.addr(), target.prefix_len())
}

/// `addr` with the bits after the first `len` cleared.
fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

#[cfg(test)]
mod tests;
