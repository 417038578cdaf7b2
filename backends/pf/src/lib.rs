//! banset-pf: banset's ban sets as FreeBSD pf tables, driven through
//! `/dev/pf` ioctls, each with its blocking rule in an anchor of its own.
//!
//! ```text
//! /etc/pf.conf (the admin's, once):   anchor "banset/*"
//! set f2b  →  anchor banset/f2b:      table <f2b> (persist, IPv4 and IPv6 together)
//!                                     block drop in quick from <f2b> to any
//! ```
//!
//! # What the kernel does and does not do
//!
//! - **No timeouts.** pf tables keep an entry until it is deleted, so
//!   [`banset_core::Capabilities::timeouts`] is `false` and banset's ledger
//!   expires bans: `banset expire` from cron, or the daemon's keeper.
//!   `banset sync` puts everything back after `pfctl -F all` or a reboot.
//! - **One table, both families**; prefixes are members like hosts.
//! - **Longest match, no overlap check**: pf accepts `10.0.0.0/8` and
//!   `10.1.0.0/16` together. banset refuses overlapping prefixes on every
//!   backend, so this one checks before it sends.
//! - **No size bound per table**: pf's only limit is `set limit
//!   table-entries` (200,000 by default, shared by every table), reported
//!   as a full set. `max_elements` is enforced here, before sending.
//! - **Chunks**: one request carries at most `net.pf.request_maxcount`
//!   addresses (65,535 by default, read at run time); bigger batches are
//!   cut, and a table bigger than that cannot be listed until the sysctl is
//!   raised (the error says how).
//! - **Table creation needs `PFR_TFLAG_PERSIST`**, or pf drops a table no
//!   rule refers to; adding to a missing table is `ESRCH`.
//! - **States**: pf is stateful; an established connection from a newly
//!   banned source lives on until its state is killed.
//!   Its [`kill_states`](banset_core::Backend::kill_states) runs `pfctl -k`
//!   (`AddOptions::kill_states` after each ban).
//!
//! # Layers
//!
//! - [`msg`]: the `#[repr(C)]` structs and ioctl numbers, compiled and
//!   tested on every OS (golden bytes, sizes, offsets);
//! - `table`: the table operations over a device (two-pass listing,
//!   chunking);
//! - `sys`: `/dev/pf` (FreeBSD only);
//! - `rule`: the rule text and the `pfctl` argv (the one rule load per set,
//!   and state killing, go through `pfctl`; table operations never do);
//! - [`PfBackend`]: the [`banset_core::Backend`] implementation.
//!
//! Nothing in `sys` has run on a FreeBSD kernel from this repository's CI;
//! the VM suite (`vm-tests/run` in the `freebsd` Vagrant machine) does.
//! Here the backend runs against a model of pf's table code.

#![warn(missing_docs)]

mod backend;
pub mod msg;
mod rule;
mod sys;
mod table;

pub use backend::PfBackend;
pub use rule::PF_CONF_LINE;
