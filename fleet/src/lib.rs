//! banset-fleet: bans shared across hosts through PostgreSQL.
//!
//! Each host publishes its own bans as rows keyed by (origin, set, target)
//! that only it may write (row-level security, `origin = current_user`), and
//! pulls everyone's changes after a cursor. The engine does the rest:
//! ordering, durability, authentication, notifications. The schema is in
//! `schema_v1.sql`; `docs` of the design are in the fleet note.
//!
//! - [`FleetClient`]: a host's connection: [`FleetClient::publish`],
//!   [`FleetClient::pull`], [`FleetClient::snapshot`],
//!   [`FleetClient::wait_for_change`], [`FleetClient::now`].
//! - [`Admin`]: set-up and roles: [`Admin::init`], [`Admin::add_host`],
//!   [`Admin::revoke_host`], [`Admin::add_admin`].
//!
//! The client is the synchronous `postgres` crate, as banset's code is
//! synchronous; it supports LISTEN, which wakes pullers within milliseconds.

mod admin;
mod client;
mod connect;
mod error;
mod types;
mod validate;

pub use admin::{Admin, Credentials, InitOutcome, HOST_CONNECTION_LIMIT};
pub use client::{FleetClient, CHANNEL, MAX_PAGE};
pub use connect::{ConnectOptions, Endpoint, CONNECT_TIMEOUT, IO_TIMEOUT};
pub use error::FleetError;
pub use types::{Cursor, EngineStatus, FleetRow, HostInfo, Page, Publish, Pull, Status};

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: i32 = 1;
/// Host roles are `banset.NAME`: the dot keeps them apart from every role
/// PostgreSQL or an admin would create (`postgres`, `banset_admin`, ...).
pub const HOST_PREFIX: &str = "banset.";
/// The fleet admin's login role.
pub const ADMIN_ROLE: &str = "banset_admin";

/// The host name of a role (`banset.mail1` → `mail1`); other roles as they are.
pub fn host_name(role: &str) -> &str {
    role.strip_prefix(HOST_PREFIX).unwrap_or(role)
}

/// The role of host `name`.
pub fn host_role(name: &str) -> String {
    format!("{HOST_PREFIX}{name}")
}
