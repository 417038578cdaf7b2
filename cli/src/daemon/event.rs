//! What the daemon's loop reacts to: the messages its threads (sources,
//! monitors, signals, the reload reader, the control socket) send it. A
//! leaf, so those threads' modules and the loop do not import one another.

use std::collections::BTreeMap;

use banset_core::{BackendKind, SetName, SetSpec, Target};
use banset_watch::config::{Settings, SourceKey};

use crate::config::Config;

/// What the loop reacts to.
pub enum Event {
    /// A filter matched: one failure of `target` in jail `jail` (an index
    /// into the jails of `generation`).
    Failure {
        generation: u64,
        jail: usize,
        target: Target,
        at: i64,
        /// The source's reader, and where it resumes after the failure's
        /// line.
        resume: Option<(PositionKey, String)>,
        /// The line (at most [`banset_watch::mail::MAX_LINE`] bytes), for
        /// the mails that list them.
        line: Box<[u8]>,
    },
    /// Where a source stands (file position or journal cursor).
    Position { source: PositionKey, value: String },
    /// A source's problem, worth one log line.
    SourceError { source: String, message: String },
    /// Someone changed kernel objects of this backend (nftables monitor,
    /// firewalld reload): check its sets now.
    KernelChanged(BackendKind),
    /// The host's addresses changed: rebuild the allowlists.
    HostAddressesChanged,
    /// SIGHUP: reload the configuration.
    Reload,
    /// The reload thread read the configuration (or why it refuses it).
    Reloaded(Box<std::result::Result<Loaded, String>>),
    /// SIGTERM or SIGINT.
    Shutdown,
    /// A control-socket request, and where its reply goes.
    Control(crate::control::server::Call),
}

/// Whose position a saved value is: a file source's, or the one journal
/// reader's that every journal source shares (its cursor).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PositionKey {
    Source(SourceKey),
    Journal,
}

impl std::fmt::Display for PositionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PositionKey::Source(k) => k.fmt(f),
            PositionKey::Journal => f.write_str("journal"),
        }
    }
}

/// A configuration read, validated and checked off the loop, for a reload
/// to apply.
pub struct Loaded {
    pub(super) config: Config,
    pub(super) settings: Settings,
    pub(super) specs: BTreeMap<SetName, SetSpec>,
    pub(super) notices: Vec<String>,
}
