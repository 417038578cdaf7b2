//! The state directory: where the ledger (and the watcher's lock and
//! status) live, and the one place a ledger is opened.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use banset_core::{KernelSetsExist, Ledger};

use crate::backends::Backends;
use crate::error::Error;

/// Where the ledger lives: FreeBSD keeps such state in /var/db (hier(7)).
#[cfg(target_os = "freebsd")]
pub const DEFAULT_STATE_DIR: &str = "/var/db/banset";
/// Where the ledger lives: the FHS's place for state that outlives a boot.
#[cfg(not(target_os = "freebsd"))]
pub const DEFAULT_STATE_DIR: &str = "/var/lib/banset";

/// Whether a file that holds no ledger yet may become a new, empty one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NewLedger {
    /// Only when the kernel holds no banset sets: a ledger that knows none
    /// of them would remove their members at the next sync. What every
    /// banset command but `adopt` uses.
    #[default]
    OnlyWithoutKernelSets,
    /// Always (`banset adopt`, which fills the new ledger from the kernel).
    Always,
}

/// A state directory: the ledger is `ledger.db` in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    path: PathBuf,
}

impl Default for StateDir {
    /// [`DEFAULT_STATE_DIR`], the directory the banset CLI uses.
    fn default() -> StateDir {
        StateDir::new(DEFAULT_STATE_DIR)
    }
}

impl StateDir {
    /// The state directory at `path` (not created until a ledger is opened).
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ledger's file.
    pub fn ledger_path(&self) -> PathBuf {
        self.path.join("ledger.db")
    }

    /// Creates the directory (0700: the ledger says who is banned and why)
    /// and opens the ledger in it. Every banset command and the daemon
    /// open it here, so one check guards them all against taking an empty
    /// or truncated ledger for a new one: with [`NewLedger::OnlyWithoutKernelSets`]
    /// a file that holds no ledger yet is refused while `backends` find
    /// banset sets in the kernel.
    pub fn open_ledger(&self, backends: &Backends, new_ledger: NewLedger) -> Result<Ledger, Error> {
        if !self.path.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.path)
                .map_err(|source| Error::StateDir {
                    path: self.path.clone(),
                    source,
                })?;
        }
        let path = self.ledger_path();
        Ok(match new_ledger {
            NewLedger::Always => Ledger::open(&path)?,
            NewLedger::OnlyWithoutKernelSets => {
                Ledger::open_checked(&path, &|| kernel_sets_refusal(backends))?
            }
        })
    }
}

/// `Err` (carried by [`banset_core::LedgerError::Refused`]) when the
/// kernel holds banset sets: a ledger that knows none of them would remove
/// their members at the next `sync` or daemon start. A backend that cannot
/// be asked (not installed, no privilege) cannot be wiped by this process
/// either, and is passed over.
fn kernel_sets_refusal(backends: &Backends) -> Result<(), KernelSetsExist> {
    let sets = backends.kernel_sets();
    if sets.is_empty() {
        return Ok(());
    }
    Err(KernelSetsExist { sets })
}
