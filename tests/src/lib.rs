//! banset-tests: the machinery every backend's tests share.
//!
//! - [`conformance`]: one suite of expectations, written against the
//!   `Backend` trait, run against every backend the machine has.
//! - [`dying`]: a backend that aborts its process right after a kernel
//!   call, for crash tests.
//! - `netns` (Linux): fresh network namespaces for kernel tests, so they never
//!   touch the host's own firewall, plus a veth pair for packet tests.
//! - `allow_only` (Linux): the allow-only packet scenario over a veth pair,
//!   written once for every backend that builds allow-only sets.
//! - `firewalld` (Linux): a real firewalld isolated in its own network and
//!   mount namespaces with a private D-Bus system bus, for the firewalld
//!   backend's tests and the daemon's reload self-heal test.
//! - `postgres` (Linux): a private PostgreSQL 15 in a temp dir (and
//!   optionally a namespace) for the fleet's tests, stopped by PID.
//! - `fleet_hosts` (Linux): N hosts as namespaces around a hub where that
//!   PostgreSQL listens, for the fleet's end-to-end tests and benchmark.

#[cfg(target_os = "linux")]
pub mod allow_only;
pub mod conformance;
pub mod dying;
#[cfg(target_os = "linux")]
pub mod firewalld;
#[cfg(target_os = "linux")]
pub mod fleet_hosts;
#[cfg(target_os = "linux")]
pub mod netns;
#[cfg(target_os = "linux")]
pub mod postgres;
