//! A page of remote rows as the engine applies it, and what applying did:
//! the types `Engine::apply_fleet` takes and gives, apart from the engine
//! so the fleet's modules and the engine do not import each other.

use std::collections::BTreeMap;

use crate::set_name::SetName;
use crate::target::Target;

/// One row of the engine, as the puller read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetRow {
    /// The host that wrote it.
    pub origin: String,
    /// Its set.
    pub set: SetName,
    /// Its target.
    pub target: Target,
    /// Banned, or withdrawn (a tombstone, or a ban that is over).
    pub banned: bool,
    /// Seconds left by the engine's clock; `None`: permanent. A ban with
    /// none left is treated as withdrawn.
    pub remaining: Option<u64>,
    /// The fleet admin withdrew it (`banset unban --fleet`): on this host's
    /// own row, the local ban goes too and is not published again.
    pub by_admin: bool,
}

/// A page of rows, from a delta or a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetPage {
    /// The rows, in the engine's order.
    pub rows: Vec<FleetRow>,
    /// `Some(generation)`: a page of the snapshot
    /// `Engine::begin_fleet_snapshot` started; its rows are marked so
    /// that `Engine::finish_fleet_snapshot` keeps them.
    pub snapshot: Option<i64>,
    /// The cursor after the page, saved with it (a snapshot's pages have
    /// none: its cursor is saved by the sweep).
    pub cursor: Option<String>,
    /// Rows of the engine's page left out because their set or target does
    /// not parse here: counted as suppressed (`unreadable`).
    pub unreadable: u64,
}

/// What `Engine::apply_fleet` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FleetApplied {
    /// Targets banned or re-armed in the kernel.
    pub banned: usize,
    /// Targets removed from the kernel.
    pub removed: usize,
    /// Remote bans that never reached the kernel, by reason.
    pub suppressed: BTreeMap<&'static str, u64>,
}

impl FleetApplied {
    /// Adds `other`'s counts to these.
    pub fn absorb(&mut self, other: FleetApplied) {
        self.banned += other.banned;
        self.removed += other.removed;
        for (k, v) in other.suppressed {
            *self.suppressed.entry(k).or_default() += v;
        }
    }
}
