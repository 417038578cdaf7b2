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
//!   [`FleetClient::wait_for_change`], [`FleetClient::now`],
//!   [`FleetClient::status`] (the change stream's head, what waits behind
//!   an open transaction, the hosts).
//! - [`Admin`]: set-up and roles: [`Admin::init`], [`Admin::add_host`],
//!   [`Admin::revoke_host`], [`Admin::add_admin`].
//!
//! The client is the synchronous `postgres` crate, as banset's code is
//! synchronous; it supports LISTEN, which wakes pullers within milliseconds.

mod admin;
mod client;
mod connect;
mod error;
mod hosts;
mod names;
pub mod sync;
mod types;
mod validate;

pub use admin::{Admin, Credentials, InitOutcome, HOST_CONNECTION_LIMIT};
pub use client::{FleetClient, CHANNEL, MAX_PAGE};
pub use connect::{ConnectOptions, Endpoint, CONNECT_TIMEOUT, IO_TIMEOUT};
pub use error::FleetError;
pub use names::{host_name, host_role, ADMIN_ROLE, HOST_PREFIX, SCHEMA_VERSION};
pub use types::{Cursor, EngineStatus, FleetRow, HostInfo, Page, Publish, Pull, Status};
