//! What every subcommand runs with: the configuration, the ledger, the
//! backends (opened on first use) and the allowlist.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, Result};
use banset_core::{
    Allowlist, Backend, BackendError, BackendKind, Engine, ErrorKind, Ledger, SystemClock,
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
        let config = Config::load(global.config.as_deref())?;
        let state_dir = global
            .state_dir
            .clone()
            .or_else(|| config.defaults.state_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let ledger = open_ledger(&state_dir)?;
        let origin = config
            .origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into());
        let host = if bans { host_addresses() } else { Vec::new() };
        let allowlist = Allowlist::new()
            .with_host_addresses(host)
            .with_ignored(config.ignore.iter().copied(), &origin);
        let backends = Backends::new(global.dry_run);
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

/// Creates the state directory (0700: the ledger says who is banned and
/// why) and opens the ledger in it.
fn open_ledger(dir: &Path) -> Result<Ledger> {
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
    Ok(Ledger::open(&dir.join("ledger.db"))?)
}

/// Opens each backend on first use, so `banset list` of an nftables set
/// never needs what another backend needs.
pub struct Backends {
    dry_run: Option<MemoryBackend>,
    nftables: OnceLock<NftablesBackend>,
    ipset: OnceLock<IpsetBackend>,
    firewalld: OnceLock<FirewalldBackend>,
    #[cfg(target_os = "freebsd")]
    pf: OnceLock<PfBackend>,
    #[cfg(target_os = "freebsd")]
    ipfw: OnceLock<IpfwBackend>,
    memory: MemoryBackend,
    kill_states: bool,
}

impl Backends {
    fn new(dry_run: bool) -> Backends {
        Backends {
            dry_run: dry_run.then(|| MemoryBackend::new(Arc::new(SystemClock))),
            nftables: OnceLock::new(),
            ipset: OnceLock::new(),
            firewalld: OnceLock::new(),
            #[cfg(target_os = "freebsd")]
            pf: OnceLock::new(),
            #[cfg(target_os = "freebsd")]
            ipfw: OnceLock::new(),
            memory: MemoryBackend::new(Arc::new(SystemClock)),
            kill_states: false,
        }
    }

    /// Bans made from now on also cut the banned sources' established
    /// connections, where the backend can (`add --kill-states`; pf).
    pub fn kill_states(&mut self) {
        self.kill_states = true;
    }
}

impl banset_core::BackendProvider for Backends {
    fn backend(&self, kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        if let Some(memory) = &self.dry_run {
            return Ok(memory);
        }
        match kind {
            BackendKind::Nftables => {
                if let Some(b) = self.nftables.get() {
                    return Ok(b);
                }
                let opened = NftablesBackend::open()?;
                Ok(self.nftables.get_or_init(|| opened))
            }
            BackendKind::Ipset => {
                if let Some(b) = self.ipset.get() {
                    return Ok(b);
                }
                let opened = IpsetBackend::open()?;
                Ok(self.ipset.get_or_init(|| opened))
            }
            BackendKind::Firewalld => {
                if let Some(b) = self.firewalld.get() {
                    return Ok(b);
                }
                let opened = FirewalldBackend::open()?;
                Ok(self.firewalld.get_or_init(|| opened))
            }
            #[cfg(target_os = "freebsd")]
            BackendKind::Pf => {
                if let Some(b) = self.pf.get() {
                    return Ok(b);
                }
                let opened = PfBackend::open()?.with_kill_states(self.kill_states);
                Ok(self.pf.get_or_init(|| opened))
            }
            #[cfg(target_os = "freebsd")]
            BackendKind::Ipfw => {
                if let Some(b) = self.ipfw.get() {
                    return Ok(b);
                }
                let opened = IpfwBackend::open()?;
                Ok(self.ipfw.get_or_init(|| opened))
            }
            BackendKind::Memory => Ok(&self.memory),
            other => Err(BackendError::new(
                ErrorKind::Unsupported,
                format!("backend {other}"),
                format!(
                    "not available in this build of banset (available: {})",
                    available_backends()
                ),
            )),
        }
    }
}
