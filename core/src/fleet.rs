//! The fleet, host side: bans shared with other hosts through an engine
//! (PostgreSQL, `banset-fleet`). Here are the parts with no network: what
//! this host accepts from others ([`policy`], pure), what it has to
//! publish (the outbox, written in the local ban's own ledger transaction)
//! and what it holds from others (one row per origin, so one origin's unban
//! leaves another's ban in place). `Engine::apply_fleet` applies a page of
//! remote rows to ledger and kernel; `docs/fleet.md` has the whole design.

pub mod config;
pub(crate) mod kept;
mod outbox;
mod page;
pub mod policy;
mod remote;
pub mod schema;

pub use config::{FleetConfig, FleetConfigError, FleetSection};
pub use outbox::OutboxEntry;
pub use page::{FleetApplied, FleetPage, FleetRow};
pub use policy::{effective, judge, local_deadline, FleetPolicy, RemoteBan, Suppressed};
pub(crate) use remote::CURSOR_KEY;
pub use remote::FLEET_REASON_PREFIX;
