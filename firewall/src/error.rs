//! What opening a [`Firewall`](crate::Firewall) can fail with.

use std::path::PathBuf;

use banset_core::LedgerError;

/// Opening the state directory or its ledger failed. The operations on an
/// open firewall fail with [`EngineError`](crate::EngineError).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory did not exist and could not be created.
    #[error("state directory {}: cannot create it", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why it could not be created.
        #[source]
        source: std::io::Error,
    },
    /// The ledger could not be opened, or a new one was refused because
    /// the kernel holds banset sets it would not know about
    /// ([`LedgerError::Refused`]).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}
