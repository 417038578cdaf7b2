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
        /// The source, and where it resumes after the failure's line.
        resume: Option<(SourceKey, String)>,
        /// The line (at most [`banset_watch::mail::MAX_LINE`] bytes), for
        /// the mails that list them.
        line: Box<[u8]>,
    },
    /// Where a source stands (file position or journal cursor).
    Position { source: SourceKey, value: String },
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

/// A configuration read, validated and checked off the loop, for a reload
/// to apply.
pub struct Loaded {
    pub(super) config: Config,
    pub(super) settings: Settings,
    pub(super) specs: BTreeMap<SetName, SetSpec>,
    pub(super) notices: Vec<String>,
}
