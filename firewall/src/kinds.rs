//! Which backends this build can open, and which one a new set gets.

use banset_core::BackendKind;

/// The backend a new set gets when neither the caller nor a config says:
/// pf on FreeBSD, nftables elsewhere.
pub fn default_backend() -> BackendKind {
    if cfg!(target_os = "freebsd") {
        BackendKind::Pf
    } else {
        BackendKind::Nftables
    }
}

/// The backend a new set gets on this machine when neither the caller nor
/// a config says: firewalld when it is running (it owns the firewall
/// there, and reloads would drop a rule it does not know about), otherwise
/// [`default_backend`]. Costs one D-Bus call when a system bus exists.
pub fn detected_backend() -> BackendKind {
    if cfg!(target_os = "linux") && banset_firewalld::firewalld_running() {
        BackendKind::Firewalld
    } else {
        default_backend()
    }
}

/// Backends this build can open.
#[cfg(not(target_os = "freebsd"))]
pub const AVAILABLE_BACKENDS: &[BackendKind] = &[
    BackendKind::Nftables,
    BackendKind::Ipset,
    BackendKind::Firewalld,
    BackendKind::Memory,
];
/// Backends this build can open.
#[cfg(target_os = "freebsd")]
pub const AVAILABLE_BACKENDS: &[BackendKind] =
    &[BackendKind::Pf, BackendKind::Ipfw, BackendKind::Memory];

/// [`AVAILABLE_BACKENDS`] that reach a kernel, for messages:
/// `nftables, ipset, firewalld` (memory is for dry runs and tests only).
pub fn available_backends() -> String {
    AVAILABLE_BACKENDS
        .iter()
        .filter(|k| **k != BackendKind::Memory)
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backends whose sets outlive banset's processes, so a new ledger
/// could be wrong about them. firewalld keeps its ipsets in its own
/// configuration under names that are not banset's alone, and says
/// `Unsupported` like any backend that cannot enumerate its sets: those
/// are not checked.
#[cfg(not(target_os = "freebsd"))]
pub(crate) const KERNEL_BACKENDS: &[BackendKind] = &[BackendKind::Nftables, BackendKind::Ipset];
#[cfg(target_os = "freebsd")]
pub(crate) const KERNEL_BACKENDS: &[BackendKind] = &[BackendKind::Pf, BackendKind::Ipfw];
