//! [`Backends`]: every backend of this build, each opened on first use.

use std::sync::{Arc, OnceLock};

use banset_core::{
    Backend, BackendError, BackendKind, BackendProvider, DryRunBackend, ErrorKind, SetName,
    SystemClock,
};
use banset_firewalld::FirewalldBackend;
#[cfg(target_os = "freebsd")]
use banset_ipfw::IpfwBackend;
use banset_ipset::IpsetBackend;
use banset_memory::MemoryBackend;
use banset_nftables::NftablesBackend;
#[cfg(target_os = "freebsd")]
use banset_pf::PfBackend;

use crate::kinds::{available_backends, AVAILABLE_BACKENDS, KERNEL_BACKENDS};

/// Opens the backend of `kind` now: the kernel (or D-Bus, or `/dev/pf`)
/// is asked at once, so a missing privilege or module shows here.
pub fn open_backend(kind: BackendKind) -> Result<Box<dyn Backend>, BackendError> {
    Ok(match kind {
        BackendKind::Nftables => Box::new(NftablesBackend::open()?),
        BackendKind::Ipset => Box::new(IpsetBackend::open()?),
        BackendKind::Firewalld => Box::new(FirewalldBackend::open()?),
        #[cfg(target_os = "freebsd")]
        BackendKind::Pf => Box::new(PfBackend::open()?),
        #[cfg(target_os = "freebsd")]
        BackendKind::Ipfw => Box::new(IpfwBackend::open()?),
        BackendKind::Memory => Box::new(MemoryBackend::new(Arc::new(SystemClock))),
        other => return Err(unavailable(other)),
    })
}

/// Every backend of this build, each opened on first use, so listing an
/// nftables set never needs what another backend needs. Hand it to
/// [`Engine`](banset_core::Engine) as its `backends`.
///
/// A dry run's registry puts each real backend behind a
/// [`DryRunBackend`]: the plan is made against the kernel as it is (a
/// stand-in kernel, empty, made every set look missing), and nothing is
/// written to it.
pub struct Backends {
    dry_run: bool,
    opened: Vec<(BackendKind, OnceLock<Box<dyn Backend>>)>,
    dry: Vec<(BackendKind, OnceLock<DryRunBackend>)>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opened: Vec<BackendKind> = self
            .opened
            .iter()
            .filter(|(_, slot)| slot.get().is_some())
            .map(|(kind, _)| *kind)
            .collect();
        f.debug_struct("Backends")
            .field("dry_run", &self.dry_run)
            .field("opened", &opened)
            .finish()
    }
}

impl Backends {
    /// A registry of this build's backends, none opened yet; `dry_run`
    /// makes every write a plan (see [`Backends::dry_run_plan`]).
    pub fn new(dry_run: bool) -> Backends {
        Backends {
            dry_run,
            opened: AVAILABLE_BACKENDS
                .iter()
                .map(|k| (*k, OnceLock::new()))
                .collect(),
            dry: AVAILABLE_BACKENDS
                .iter()
                .map(|k| (*k, OnceLock::new()))
                .collect(),
        }
    }

    /// What a dry run would have changed in the kernels so far, one line
    /// each starting with "would"; empty outside a dry run.
    pub fn dry_run_plan(&self) -> Vec<String> {
        self.dry
            .iter()
            .filter_map(|(_, slot)| slot.get())
            .flat_map(DryRunBackend::take_plan)
            .collect()
    }

    /// The banset sets each firewall whose sets outlive banset's processes
    /// holds now, by backend; backends without any, or that cannot be
    /// asked (not installed, no privilege), are left out.
    pub fn kernel_sets(&self) -> Vec<(BackendKind, Vec<SetName>)> {
        KERNEL_BACKENDS
            .iter()
            .filter_map(|&kind| {
                let names = self.real(kind).ok()?.kernel_sets().ok()?;
                (!names.is_empty()).then_some((kind, names))
            })
            .collect()
    }

    /// The backend of the real firewall, even for a dry run (which only
    /// reads through it, e.g. to look for kernel sets).
    fn real(&self, kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        let slot = self
            .opened
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| s)
            .ok_or_else(|| unavailable(kind))?;
        if let Some(b) = slot.get() {
            return Ok(b.as_ref());
        }
        let opened = open_backend(kind)?;
        Ok(slot.get_or_init(|| opened).as_ref())
    }
}

impl BackendProvider for Backends {
    fn backend(&self, kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        if self.dry_run {
            let slot = self
                .dry
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, s)| s)
                .ok_or_else(|| unavailable(kind))?;
            if let Some(b) = slot.get() {
                return Ok(b);
            }
            let real = open_backend(kind)?;
            return Ok(slot.get_or_init(|| DryRunBackend::new(real)));
        }
        self.real(kind)
    }
}

fn unavailable(kind: BackendKind) -> BackendError {
    BackendError::new(
        ErrorKind::Unsupported,
        format!("backend {kind}"),
        format!(
            "not available in this build of banset (available: {})",
            available_backends()
        ),
    )
}
