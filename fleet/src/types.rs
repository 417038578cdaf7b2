//! The values that cross the API: the change cursor, a row as read, and a
//! change as published.

use std::time::{Duration, SystemTime};

/// A position in the fleet's change stream: the stamp `(txid, seq)` of the
/// last row a reader applied. Rows are read in stamp order and only below
/// the oldest open transaction, so no row can ever appear behind a cursor.
/// `Cursor::START` reads from the beginning. Save it after applying a page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Cursor {
    pub txid: i64,
    pub seq: i64,
}

impl Cursor {
    /// Before every row.
    pub const START: Cursor = Cursor { txid: 0, seq: 0 };
}

/// What one origin says about one target in one set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Banned; `remaining` is `None` for a permanent ban, else the time
    /// left as measured by the engine's clock when the row was read.
    Banned { remaining: Option<Duration> },
    /// Unbanned (a tombstone) or ended (its deadline passed).
    Unbanned,
}

/// A fleet row as read by [`crate::FleetClient::pull`] or `snapshot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetRow {
    /// The host that owns the row (the host name, without the role prefix).
    pub origin: String,
    pub set: String,
    /// The address or prefix as text; hostile input: parse it with
    /// `banset_core::Target` before use.
    pub target: String,
    pub status: Status,
    pub jail: Option<String>,
    pub reason: Option<String>,
    /// Who wrote the last change: the origin, or the fleet admin when the
    /// admin withdrew the ban everywhere (the origin should then drop its
    /// local ban rather than re-publish it).
    pub changed_by: String,
    /// The row's change stamp.
    pub stamp: Cursor,
}

/// One change this host publishes about its own row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub set: String,
    pub target: String,
    /// `Banned { remaining }`: the engine stores now() + remaining.
    pub status: Status,
    pub jail: Option<String>,
    pub reason: Option<String>,
}

/// One page of changes after a cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Rows in stamp order, at most the limit asked for.
    pub rows: Vec<FleetRow>,
    /// Where the next pull starts: the last row's stamp, or the cursor given
    /// when the page is empty.
    pub cursor: Cursor,
    /// Whether the page was full (more rows may follow at once).
    pub full: bool,
}

/// The answer to a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pull {
    Page(Page),
    /// The cursor is older than the tombstone retention: changes after it
    /// were purged, so the reader must take a snapshot and sweep.
    Expired {
        horizon: Cursor,
    },
}

/// One registered host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    pub name: String,
    pub quota: i64,
    pub rows: i64,
    pub revoked: bool,
}

/// The engine as one connection sees it (`banset fleet status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineStatus {
    /// PostgreSQL's `server_version`.
    pub server_version: String,
    pub schema_version: i32,
    pub retention: Duration,
    /// The engine's clock.
    pub now: SystemTime,
    /// Readers whose cursor is below it must take a snapshot.
    pub horizon: Cursor,
    /// The role this connection logged in as.
    pub role: String,
    /// The newest change a pull can hand out now.
    pub head: Cursor,
    /// Committed changes a pull holds back until an older transaction
    /// ends (a long-open transaction delays every host's pulls).
    pub waiting: u64,
    /// Active bans over all origins.
    pub active: u64,
    pub hosts: Vec<HostInfo>,
}
