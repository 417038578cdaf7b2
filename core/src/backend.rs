//! The `Backend` trait: what every firewall must offer banset.
//!
//! The trait is small and batch-first: every mutating call takes a slice and
//! must apply it as one kernel transaction where the kernel allows, because
//! one-fork-per-ban is the slowness banset exists to remove. Backends say what
//! their kernel does natively in [`Capabilities`]; the core covers the rest
//! (expiry where the kernel has no timeouts, refreshes above a timeout cap).
//!
//! Backends are synchronous and object safe, so the CLI can hold a
//! `&dyn Backend` chosen at run time from a set's stored [`SetSpec`].

use std::fmt;
use std::time::Duration;

use crate::errno;
use crate::policy::SetPolicy;
use crate::set_name::SetName;
use crate::spec::{BackendKind, SetSpec};
use crate::target::Target;

/// What a kernel does by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Members expire on their own (nftables, ipset). Without it, the ledger
    /// drives expiry (`banset expire`, the keeper).
    pub timeouts: bool,
    /// Longest timeout the kernel accepts; longer bans are refreshed by
    /// `sync` before the kernel would drop them (ipset: 2,147,483 s).
    pub max_timeout: Option<Duration>,
    /// Prefixes (CIDR) can be members.
    pub prefixes: bool,
    /// One kernel object holds IPv4 and IPv6 (pf tables).
    pub mixed_families: bool,
    /// A batch is all-or-nothing in the kernel.
    pub atomic_batches: bool,
    /// A ban can also cut the source's established connections.
    pub kills_states: bool,
}

/// A member as banset gives it to, or reads it from, a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelEntry {
    /// The address or prefix.
    pub target: Target,
    /// Time left, or `None` when the kernel holds it without end (a permanent
    /// ban, or a kernel without timeouts).
    pub timeout: Option<Duration>,
}

/// A set of changes applied as one kernel batch: first (optionally) empty the
/// set, then remove, then add or refresh. `sync` and `replace` are built on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Empty the set before the removals and additions (`replace`).
    pub flush_first: bool,
    /// Members to remove; absent ones are fine.
    pub remove: Vec<Target>,
    /// Members to add, or to refresh when already present.
    pub add: Vec<KernelEntry>,
}

impl Changes {
    /// Whether applying these changes would do nothing, so the kernel call
    /// can be skipped.
    pub fn is_empty(&self) -> bool {
        !self.flush_first && self.remove.is_empty() && self.add.is_empty()
    }
}

/// Is the kernel side of a set whole? `sync` repairs what is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetHealth {
    /// Every kernel object and the blocking rule are in place.
    Present,
    /// Some objects exist, but not all (e.g. a rule deleted behind our back).
    Incomplete,
    /// Nothing of the set is in the kernel (reboot, `flush ruleset`).
    Missing,
}

impl SetHealth {
    /// The health of a set made of `objects`, each as `health` found it:
    /// `(exists, fits)`, where `fits` says it exists in the form banset
    /// would create (an object of another type, or a rule the kernel does
    /// not evaluate, exists without fitting). Present when every object
    /// fits, Missing when none exists, else Incomplete. The one rule for
    /// every backend, so `sync` repairs the same states on each.
    pub fn of(objects: impl IntoIterator<Item = (bool, bool)>) -> SetHealth {
        let (mut all_fit, mut any) = (true, false);
        for (exists, fits) in objects {
            all_fit &= exists && fits;
            any |= exists;
        }
        if all_fit {
            SetHealth::Present
        } else if any {
            SetHealth::Incomplete
        } else {
            SetHealth::Missing
        }
    }
}

/// A firewall that can hold ban sets.
///
/// `Send + Sync` because the daemon's keeper and the CLI's bulk path use one
/// backend from several threads (e.g. a kernel batch in flight while the
/// ledger is written).
pub trait Backend: Send + Sync {
    /// Which kind of firewall this is; sets are routed to backends by it.
    fn kind(&self) -> BackendKind;

    /// What the kernel does by itself; the core covers the rest (expiry,
    /// refreshes under a timeout cap).
    fn capabilities(&self) -> Capabilities;

    /// Creates the set's kernel objects and its blocking rule if missing.
    /// Idempotent; never touches members.
    ///
    /// The rule follows [`SetSpec::policy`]: for [`SetPolicy::Ban`] it
    /// blocks members on the hook's ports; for [`SetPolicy::AllowOnly`] it
    /// blocks, on those ports, every source that is in none of the set's
    /// kernel objects, except loopback and the host's own addresses, and
    /// never accepts anything (so ban sets still drop a member). A backend
    /// builds only the policies [`Backend::supports_policy`] names; the
    /// engine refuses the others before calling.
    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError>;

    /// Whether this backend builds `policy`'s rule. Only
    /// [`SetPolicy::Ban`] unless a backend says more, so a backend that
    /// predates policies refuses an allow-only set (the engine says so)
    /// instead of silently banning its members.
    fn supports_policy(&self, policy: SetPolicy) -> bool {
        policy == SetPolicy::Ban
    }

    /// Whether the set's kernel objects and rule are all present.
    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError>;

    /// Inserts members, or refreshes the timeout of members already present.
    /// Never fails because a member exists. All or nothing.
    fn add(&self, spec: &SetSpec, entries: &[KernelEntry]) -> Result<(), BackendError> {
        self.apply(
            spec,
            &Changes {
                add: entries.to_vec(),
                ..Changes::default()
            },
        )
    }

    /// Removes members; absent members are fine. All or nothing.
    fn del(&self, spec: &SetSpec, targets: &[Target]) -> Result<(), BackendError> {
        self.apply(
            spec,
            &Changes {
                remove: targets.to_vec(),
                ..Changes::default()
            },
        )
    }

    /// Applies removals and additions together, atomically when the kernel
    /// supports batches.
    ///
    /// Contract, checked by the conformance suite:
    /// - a target outside `spec.families`, or a prefix when `!spec.prefixes`,
    ///   is `Invalid`, and nothing is applied;
    /// - a prefix overlapping another prefix (in the set or in the batch) is
    ///   `Invalid` and names both; a host inside a banned prefix is fine
    ///   (redundant, and it may outlive the prefix ban);
    /// - an entry's timeout is never `Some(0)`: the core sends `None` for a
    ///   permanent ban and at least one second otherwise;
    /// - removing an absent target, or one of a family the set does not
    ///   hold, is fine.
    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError>;

    /// The members as the kernel holds them, with time left where known.
    /// `NotFound` when the set does not exist.
    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError>;

    /// Removes every member, keeps the set and its rule.
    fn flush(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.apply(
            spec,
            &Changes {
                flush_first: true,
                ..Changes::default()
            },
        )
    }

    /// Removes the set, its members and its rule. Absent is fine.
    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError>;

    /// Cuts the established connections of `target`, just banned, where
    /// the firewall matches a connection's state before any rule (pf,
    /// whose [`Capabilities::kills_states`] is true), so the ban would
    /// otherwise spare it until it closes. Elsewhere the blocking rule
    /// already drops every packet of a banned source: nothing to do.
    fn kill_states(&self, target: &Target) -> Result<(), BackendError> {
        let _ = target;
        Ok(())
    }

    /// Whether `target` is a member: the target itself, or a prefix
    /// containing it, is in the set. For a ban set that means its traffic
    /// is blocked; for an allow-only set, allowed
    /// ([`SetPolicy::blocks`] says which).
    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError>;

    /// Changes a set's blocking rule (ports, protocol, block type, hook on
    /// or off) and member bound (maxelem) from `old` to `new`, keeping every
    /// member and its remaining timeout. The core calls it only for the
    /// changes [`SpecChange::in_place`](crate::SpecChange) lists; both specs
    /// share name, backend, families, prefixes and timeout.
    ///
    /// Contract: traffic is never let through in between (the new rule is in
    /// place before the old one goes, or both swap in one kernel
    /// transaction), and a failure leaves the old rule and set as they were.
    /// A kernel that cannot make the change answers
    /// [`ErrorKind::Unsupported`] saying why.
    fn change_set(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        let _ = new;
        Err(BackendError::new(
            ErrorKind::Unsupported,
            format!("change set {}", old.name),
            format!("the {} backend cannot change a set in place", self.kind()),
        ))
    }

    /// The banset sets this firewall holds now, whatever any ledger says:
    /// what a new (or emptied) ledger must not silently take over, because
    /// restoring sets from it would remove every member they hold. Sorted,
    /// without duplicates. A backend that cannot tell its own objects from
    /// others' answers [`ErrorKind::Unsupported`], and the caller decides
    /// without it.
    fn kernel_sets(&self) -> Result<Vec<SetName>, BackendError> {
        Err(BackendError::new(
            ErrorKind::Unsupported,
            format!("list the {} sets", self.kind()),
            "this backend cannot enumerate its sets",
        ))
    }
}

/// What went wrong, as a kind the caller can act on (pfctl-rs style: match
/// on the kind, never on message text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The process lacks the privilege (CAP_NET_ADMIN, root).
    Permission,
    /// The set or member does not exist.
    NotFound,
    /// The object exists in a form banset cannot reuse (e.g. other flags).
    Exists,
    /// The kernel set holds as many members as it may.
    SetFull,
    /// The kernel refused the request as malformed (overlap, bad value).
    Invalid,
    /// The backend cannot do this on this system.
    Unsupported,
    /// The firewall service is not running or not reachable.
    Unavailable,
    /// Any other kernel or I/O failure.
    Other,
}

impl ErrorKind {
    /// A short lowercase description (`not found`, `set is full`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Permission => "permission denied",
            ErrorKind::NotFound => "not found",
            ErrorKind::Exists => "already exists",
            ErrorKind::SetFull => "set is full",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Other => "failed",
        }
    }
}

/// A backend failure: the kind, what was being done to which object, and the
/// kernel's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError {
    kind: ErrorKind,
    context: String,
    detail: String,
}

impl BackendError {
    /// `context` names the operation and object (`add to nftables set inet
    /// banset f2b_v4, element 1.2.3.4`); `detail` is the cause.
    pub fn new(kind: ErrorKind, context: impl Into<String>, detail: impl Into<String>) -> Self {
        BackendError {
            kind,
            context: context.into(),
            detail: detail.into(),
        }
    }

    /// Maps an errno the way every netlink and ioctl backend needs to.
    pub fn from_errno(errno: i32, context: impl Into<String>) -> Self {
        let kind = match errno {
            errno::EPERM | errno::EACCES => ErrorKind::Permission,
            errno::ENOENT => ErrorKind::NotFound,
            errno::EEXIST => ErrorKind::Exists,
            errno::ENOSPC | errno::ENFILE => ErrorKind::SetFull,
            errno::EINVAL | errno::ERANGE => ErrorKind::Invalid,
            errno::EOPNOTSUPP | errno::EAFNOSUPPORT | errno::EPROTONOSUPPORT => {
                ErrorKind::Unsupported
            }
            _ => ErrorKind::Other,
        };
        let detail = match kind {
            // strerror(ENFILE) says "too many open files in system", which is
            // what the kernel means by a full set but not what it says.
            ErrorKind::SetFull => "the set is full".to_string(),
            _ => std::io::Error::from_raw_os_error(errno).to_string(),
        };
        BackendError::new(kind, context, detail)
    }

    /// What went wrong, to act on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation and object, outermost first (`sync f2b: add to ...`);
    /// empty when none was given.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The cause, in the kernel's or the system's words.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The same error with more context in front (`set f2b: ...`).
    pub fn within(mut self, outer: impl fmt::Display) -> Self {
        self.context = if self.context.is_empty() {
            outer.to_string()
        } else {
            format!("{outer}: {}", self.context)
        };
        self
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            write!(f, "{}", self.detail)
        } else {
            write!(f, "{}: {}", self.context, self.detail)
        }
    }
}

impl std::error::Error for BackendError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_present_when_all_fit_missing_when_none_exists() {
        let of = |o: &[(bool, bool)]| SetHealth::of(o.iter().copied());
        assert_eq!(of(&[(true, true), (true, true)]), SetHealth::Present);
        assert_eq!(of(&[(false, false), (false, false)]), SetHealth::Missing);
        assert_eq!(of(&[(true, true), (false, false)]), SetHealth::Incomplete);
        // An object of another form is there but does not count as whole.
        assert_eq!(of(&[(true, false)]), SetHealth::Incomplete);
        assert_eq!(of(&[(true, false), (false, false)]), SetHealth::Incomplete);
    }
}
