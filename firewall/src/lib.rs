//! banset-firewall: banset as a library. Ban through any of banset's
//! backends from another Rust program, keeping a ledger like the `banset`
//! command does, without the command.
//!
//! ```no_run
//! use banset_firewall::{
//!     default_backend, AddOptions, BanRequest, Firewall, SetName, SetSpec, StateDir, Target,
//!     Timeout,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut fw = Firewall::open(&StateDir::new("/var/lib/myapp"))?;
//! let set = SetName::new("X")?;
//! let ban = BanRequest {
//!     timeout: Some(Timeout::parse("1h")?),
//!     ..BanRequest::new(Target::parse("1.2.3.4")?)
//! };
//! let create = AddOptions {
//!     create_with: Some(SetSpec::new(set.clone(), default_backend())),
//!     ..AddOptions::default()
//! };
//! fw.engine().add(&set, &[ban], &create)?;
//! for listing in fw.engine().list(Some(&set))? {
//!     println!("{} holds {} members", listing.spec.name, listing.members.len());
//! }
//! fw.engine().del(&set, &[Target::parse("1.2.3.4")?])?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`Firewall`]: the ledger in a [`StateDir`], the [`Backends`], the
//!   clock and the allowlist; [`Firewall::engine`] gives the
//!   [`Engine`] whose operations (`add`, `del`, `list`, `sync`, ...) keep
//!   ledger and kernel in agreement.
//! - [`Backends`] and [`open_backend`]: a backend by [`BackendKind`];
//!   [`default_backend`], [`detected_backend`], [`AVAILABLE_BACKENDS`].
//! - [`watchers`]: an nftables ruleset flushed, a firewalld reload: when
//!   to put the sets back.
//! - [`host_addresses`]: this host's addresses, which
//!   [`Firewall::open`] puts on the allowlist so no ban cuts the host off
//!   from itself.
//!
//! The model (targets, set specs, the ledger, the engine) is
//! [`banset_core`], re-exported whole as [`core`] and in part here.

mod backends;
mod error;
mod host_addrs;
mod kinds;
mod state;

pub use backends::{open_backend, Backends};
pub use error::Error;
pub use host_addrs::host_addresses;
pub use kinds::{available_backends, default_backend, detected_backend, AVAILABLE_BACKENDS};
pub use state::{NewLedger, StateDir, DEFAULT_STATE_DIR};

/// Noticing that someone dropped banset's objects from a firewall (an
/// nftables ruleset flushed, a firewalld reload or restart), so a
/// long-running caller can put them back at once with `Engine::sync`.
pub mod watchers {
    pub use banset_firewalld::{spawn_reload_watcher, ReloadEvent};
    pub use banset_nftables::{spawn_deletion_watcher, DeletionEvent};
}

pub use banset_core as core;
pub use banset_core::{
    AddOptions, AddReport, Allowlist, Backend, BackendError, BackendKind, BackendProvider,
    BanRequest, Clock, Engine, Error as EngineError, ErrorKind, Ledger, LedgerError, Listed,
    SetListing, SetName, SetSpec, SetStatus, SyncReport, SystemClock, Target, Timeout,
};

/// Everything the [`Engine`] needs, opened: the ledger of a state
/// directory, the backends (each opened on first use), the system clock
/// and the allowlist.
#[derive(Debug)]
pub struct Firewall {
    /// The durable record of every ban, `ledger.db` in the state directory.
    pub ledger: Ledger,
    /// The backends, each opened on first use.
    pub backends: Backends,
    /// The clock bans are timed by.
    pub clock: SystemClock,
    /// What is never banned.
    pub allowlist: Allowlist,
    /// Whether the engine only plans: the ledger transaction is rolled
    /// back and the backends write nothing.
    pub dry_run: bool,
}

impl Firewall {
    /// Opens the ledger in `state` (creating the directory, 0700), with
    /// this host's own addresses and loopback on the allowlist. A file
    /// that holds no ledger yet is refused while the kernel holds banset
    /// sets, as the `banset` command does; see [`Firewall::options`] to
    /// change that or the allowlist.
    pub fn open(state: &StateDir) -> Result<Firewall, Error> {
        Firewall::options().open(state)
    }

    /// How to open a firewall, for what [`Firewall::open`] does not cover.
    pub fn options() -> OpenOptions {
        OpenOptions::default()
    }

    /// The engine over this firewall: its operations keep ledger and
    /// kernel in agreement.
    pub fn engine(&mut self) -> Engine<'_> {
        Engine {
            ledger: &mut self.ledger,
            backends: &self.backends,
            clock: &self.clock,
            allowlist: &self.allowlist,
            dry_run: self.dry_run,
        }
    }
}

/// Options for opening a [`Firewall`]; [`Firewall::open`] takes the
/// defaults.
#[derive(Debug, Default)]
pub struct OpenOptions {
    dry_run: bool,
    new_ledger: NewLedger,
    allowlist: Option<Allowlist>,
}

impl OpenOptions {
    /// Only plan: backends write nothing, the ledger transaction is rolled
    /// back, and a state directory without a ledger is not created (the
    /// plan is made against an empty ledger).
    pub fn dry_run(mut self, dry_run: bool) -> OpenOptions {
        self.dry_run = dry_run;
        self
    }

    /// When a file that holds no ledger yet may become a new one.
    pub fn new_ledger(mut self, new_ledger: NewLedger) -> OpenOptions {
        self.new_ledger = new_ledger;
        self
    }

    /// The allowlist, instead of loopback and [`host_addresses`].
    pub fn allowlist(mut self, allowlist: Allowlist) -> OpenOptions {
        self.allowlist = Some(allowlist);
        self
    }

    /// Opens the firewall with the ledger in `state`.
    pub fn open(self, state: &StateDir) -> Result<Firewall, Error> {
        let backends = Backends::new(self.dry_run);
        let ledger = if self.dry_run && !state.ledger_path().exists() {
            // A dry run creates no state directory and no ledger: with
            // none yet, it plans against an empty one.
            Ledger::open_in_memory()?
        } else {
            state.open_ledger(&backends, self.new_ledger)?
        };
        let allowlist = self
            .allowlist
            .unwrap_or_else(|| Allowlist::new().with_host_addresses(host_addresses()));
        Ok(Firewall {
            ledger,
            backends,
            clock: SystemClock,
            allowlist,
            dry_run: self.dry_run,
        })
    }
}
