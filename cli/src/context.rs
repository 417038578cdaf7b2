//! What every subcommand runs with: the configuration, the ledger, the
//! backends (opened on first use) and the allowlist.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, Result};
use banset_core::{
    Allowlist, Backend, BackendError, BackendKind, DryRunBackend, Engine, ErrorKind, Ledger,
    SetName, SystemClock,
};
use banset_firewalld::FirewalldBackend;
#[cfg(target_os = "freebsd")]
use banset_ipfw::IpfwBackend;
use banset_ipset::IpsetBackend;
use banset_memory::MemoryBackend;
use banset_nftables::NftablesBackend;
#[cfg(target_os = "freebsd")]
use banset_pf::PfBackend;

use crate::args::GlobalArgs;
use crate::config::Config;
use crate::host_addrs::host_addresses;

/// Where the ledger lives: FreeBSD keeps such state in /var/db (hier(7)).
#[cfg(target_os = "freebsd")]
pub const DEFAULT_STATE_DIR: &str = "/var/db/banset";
#[cfg(not(target_os = "freebsd"))]
pub const DEFAULT_STATE_DIR: &str = "/var/lib/banset";

/// The backend a new set gets when neither `--backend` nor the config says.
pub fn default_backend() -> BackendKind {
    if cfg!(target_os = "freebsd") {
        BackendKind::Pf
    } else {
        BackendKind::Nftables
    }
}

/// The backend a new set gets on this machine when neither `--backend` nor
/// the config says: firewalld when it is running (it owns the firewall
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
/// `nftables, ipset, firewalld` (memory is for `--dry-run` only).
pub fn available_backends() -> String {
    AVAILABLE_BACKENDS
        .iter()
        .filter(|k| **k != BackendKind::Memory)
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

pub struct Context {
    pub global: GlobalArgs,
    pub config: Config,
    pub ledger: Ledger,
    pub backends: Backends,
    pub clock: SystemClock,
    pub allowlist: Allowlist,
}

impl Context {
    /// `bans` says whether the command bans anything: only then is the
    /// allowlist consulted, and only then are this host's addresses read
    /// (two netlink dumps, not worth making for `list` or `test`).
    pub fn new(global: GlobalArgs, bans: bool) -> Result<Context> {
        Context::open(global, bans, NewLedger::OnlyWithoutKernelSets)
    }

    /// [`Context::new`] for `banset adopt`, the one command that may start
    /// a new ledger beside the kernel's banset sets: it fills it from them.
    pub fn for_adopt(global: GlobalArgs) -> Result<Context> {
        Context::open(global, true, NewLedger::Always)
    }

    fn open(global: GlobalArgs, bans: bool, new_ledger: NewLedger) -> Result<Context> {
        let config = Config::load(global.config.as_deref())?;
        let state_dir = global
            .state_dir
            .clone()
            .or_else(|| config.defaults.state_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let backends = Backends::new(global.dry_run);
        let ledger = if global.dry_run && !state_dir.join("ledger.db").exists() {
            // A dry run creates no state directory and no ledger: with
            // none yet, it plans against an empty one.
            Ledger::open_in_memory()?
        } else {
            open_ledger(&state_dir, &backends, new_ledger)?
        };
        let origin = config
            .origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into());
        let host = if bans { host_addresses() } else { Vec::new() };
        let allowlist = Allowlist::new()
            .with_host_addresses(host)
            .with_ignored(config.ignore.iter().copied(), &origin);
        Ok(Context {
            global,
            config,
            ledger,
            backends,
            clock: SystemClock,
            allowlist,
        })
    }

    pub fn engine(&mut self) -> Engine<'_> {
        Engine {
            ledger: &mut self.ledger,
            backends: &self.backends,
            clock: &self.clock,
            allowlist: &self.allowlist,
            dry_run: self.global.dry_run,
        }
    }

    /// Prints a notice on stderr unless `--quiet`.
    pub fn notice(&self, msg: impl std::fmt::Display) {
        if !self.global.quiet {
            eprintln!("banset: {msg}");
        }
    }

    /// `done` after a real run, `would` after a dry run: a dry run's
    /// report says what would have happened, never that it did.
    pub fn did<'a>(&self, done: &'a str, would: &'a str) -> &'a str {
        if self.global.dry_run {
            would
        } else {
            done
        }
    }

    /// Prints on stderr with `--verbose` (or always, for a dry run, whose
    /// whole point is to say what would happen).
    pub fn info(&self, msg: impl std::fmt::Display) {
        if self.global.verbose || (self.global.dry_run && !self.global.quiet) {
            eprintln!(
                "banset: {}{msg}",
                if self.global.dry_run { "dry run: " } else { "" }
            );
        }
    }
}

/// Whether a file that holds no ledger yet may become a new, empty one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NewLedger {
    /// Only when the kernel holds no banset sets: every command but adopt.
    OnlyWithoutKernelSets,
    /// `banset adopt`, which fills the new ledger from the kernel.
    Always,
}

/// Creates the state directory (0700: the ledger says who is banned and
/// why) and opens the ledger in it. Every command and the daemon open it
/// here, so one check ([`kernel_sets_refusal`]) guards them all against
/// taking an empty or truncated ledger for a new one.
fn open_ledger(dir: &Path, backends: &Backends, new_ledger: NewLedger) -> Result<Ledger> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| {
                format!(
                    "state directory {}: cannot create it (run as root, or pass --state-dir)",
                    dir.display()
                )
            })?;
    }
    let path = dir.join("ledger.db");
    Ok(match new_ledger {
        NewLedger::Always => Ledger::open(&path)?,
        NewLedger::OnlyWithoutKernelSets => {
            Ledger::open_checked(&path, &|| kernel_sets_refusal(backends))?
        }
    })
}

/// The backends whose sets outlive banset's processes, so a new ledger
/// could be wrong about them. firewalld keeps its ipsets in its own
/// configuration under names that are not banset's alone, and says
/// `Unsupported` like any backend that cannot enumerate its sets: those
/// are not checked.
#[cfg(not(target_os = "freebsd"))]
const KERNEL_BACKENDS: &[BackendKind] = &[BackendKind::Nftables, BackendKind::Ipset];
#[cfg(target_os = "freebsd")]
const KERNEL_BACKENDS: &[BackendKind] = &[BackendKind::Pf, BackendKind::Ipfw];

/// `Err` with the message of [`banset_core::LedgerError::Refused`] when the
/// kernel holds banset sets: a ledger that knows none of them would remove
/// their members at the next `sync` or daemon start. A backend that cannot
/// be asked (not installed, no privilege) cannot be wiped by this process
/// either, and is passed over.
fn kernel_sets_refusal(backends: &Backends) -> std::result::Result<(), String> {
    let found: Vec<String> = backends
        .kernel_sets()
        .into_iter()
        .map(|(kind, names)| {
            let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            format!("{kind}: {}", names.join(", "))
        })
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the file holds no ledger (new, empty or truncated), but the kernel holds banset sets ({}); \
         refusing to start an empty ledger, which would remove their members. \
         Restore the file from a backup, or run `banset adopt` to record the kernel's members \
         in a new ledger (see banset-adopt(1))",
        found.join("; ")
    ))
}

/// Opens each backend on first use, so `banset list` of an nftables set
/// never needs what another backend needs.
///
/// With `--dry-run` each is the real backend behind a
/// [`DryRunBackend`]: the plan is made against the kernel as it is (a
/// stand-in kernel, empty, made every set look missing), and nothing is
/// written to it. The engine's ledger transaction is rolled back.
pub struct Backends {
    dry_run: bool,
    opened: Vec<(BackendKind, OnceLock<Box<dyn Backend>>)>,
    dry: Vec<(BackendKind, OnceLock<DryRunBackend>)>,
    kill_states: bool,
}

impl Backends {
    fn new(dry_run: bool) -> Backends {
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
            kill_states: false,
        }
    }

    /// Bans made from now on also cut the banned sources' established
    /// connections, where the backend can (`add --kill-states`; pf).
    pub fn kill_states(&mut self) {
        self.kill_states = true;
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

    fn open(&self, kind: BackendKind) -> Result<Box<dyn Backend>, BackendError> {
        Ok(match kind {
            BackendKind::Nftables => Box::new(NftablesBackend::open()?),
            BackendKind::Ipset => Box::new(IpsetBackend::open()?),
            BackendKind::Firewalld => Box::new(FirewalldBackend::open()?),
            #[cfg(target_os = "freebsd")]
            BackendKind::Pf => Box::new(PfBackend::open()?.with_kill_states(self.kill_states)),
            #[cfg(target_os = "freebsd")]
            BackendKind::Ipfw => Box::new(IpfwBackend::open()?),
            BackendKind::Memory => Box::new(MemoryBackend::new(Arc::new(SystemClock))),
            other => return Err(unavailable(other)),
        })
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

impl banset_core::BackendProvider for Backends {
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
            let real = self.open(kind)?;
            return Ok(slot.get_or_init(|| DryRunBackend::new(real)));
        }
        self.real(kind)
    }
}

impl Backends {
    /// The banset sets each firewall whose sets outlive banset's processes
    /// holds now, by backend; backends without any are left out.
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
        let opened = self.open(kind)?;
        Ok(slot.get_or_init(|| opened).as_ref())
    }
}
