//! banset-firewalld: ban sets on hosts where firewalld owns the firewall
//! (RHEL, CentOS, Fedora, and Debian with firewalld installed).
//!
//! ```text
//! ipset (netlink, banset-ipset):  f2b   hash:net inet  timeout 86400    entries + timeouts
//!                                 f2b6  hash:net inet6 timeout 86400
//! firewalld (D-Bus):  direct rule ipv4 filter INPUT 0 -m set --match-set f2b  src -m comment --comment "banset f2b"  -j DROP
//!                     direct rule ipv6 filter INPUT 0 -m set --match-set f2b6 src -m comment --comment "banset f2b6" -j DROP
//! ```
//!
//! # Why this shape
//!
//! - **Entries live in kernel ipsets made by banset, not in firewalld
//!   ipsets.** A kernel ipset created outside firewalld keeps its entries
//!   and per-entry timeouts across `firewall-cmd --reload`; firewalld's own
//!   ipsets lose their runtime entries on every reload, and on firewalld
//!   1.3 a firewalld ipset with a timeout never expires its entries on the
//!   nftables backend and cannot have them removed (`notes/firewalld.md`
//!   §3, §4). It also keeps bans fast: adding and removing entries is
//!   netlink only, firewalld is not involved.
//! - **firewalld carries the rule**, as a direct rule (`addRule` over
//!   D-Bus, never `firewall-cmd`), so firewalld knows about it, it shows in
//!   `firewall-cmd --direct --get-all-rules`, and firewalld's own
//!   transactions do not fight it.
//! - **A reload drops runtime direct rules**: the set keeps its entries but
//!   stops blocking, silently. That is fail2ban's long-standing failure with
//!   `firewallcmd-ipset` (fail2ban/fail2ban#1005, #1691). banset covers it
//!   twice: [`Backend::health`](banset_core::Backend::health) sees the
//!   missing rule, so `banset sync` restores it, and the daemon's keeper
//!   re-applies it within a second of firewalld's `Reloaded` signal or a
//!   restart ([`spawn_reload_watcher`]).
//! - **`permanent`** ([`Hook::permanent`](banset_core::Hook::permanent),
//!   `banset create --permanent`) also writes the rule into firewalld's
//!   saved configuration, so a reload or restart re-applies it by itself.
//!
//! # The one trap of permanent rules: boot order
//!
//! A permanent direct rule names a kernel ipset, and kernel ipsets do not
//! survive a reboot. If firewalld starts and the set does not exist,
//! iptables refuses the rule and **firewalld enters its FAILED state**: no
//! direct rule is applied and permanent changes are refused until it is
//! restarted (seen with firewalld 1.3.3). So on a host with permanent sets,
//! run `banset sync` before firewalld starts (a drop-in with
//! `ExecStartPre=-/usr/bin/banset sync`; the README shows it). Creating the
//! kernel sets needs no firewalld, so that `sync` makes them and then stops
//! with "firewalld is not running", which the `-` ignores; the daemon (or a
//! `banset sync` after firewalld) then restores the bans.
//!
//! # Errors
//!
//! - firewalld not running, or the bus unreachable:
//!   [`ErrorKind::Unavailable`](banset_core::ErrorKind::Unavailable);
//! - refused by firewalld (`org.fedoraproject.FirewallD1.Exception`): the
//!   message names the set and firewalld's code (`INVALID_IPSET`,
//!   `COMMAND_FAILED`, ...), the kind follows the code;
//!   `ALREADY_ENABLED` on add and `NOT_ENABLED` on remove are success;
//! - refused by the bus or polkit: `Permission`.
//!
//! # Layers
//!
//! - [`msg`]: bus names, the direct rule of a set, firewalld's error codes
//!   (pure, unit-tested);
//! - `sys`: the zbus connection and calls, error mapping, detection;
//! - [`FirewalldBackend`]: the [`banset_core::Backend`] implementation;
//! - [`spawn_reload_watcher`]: the reload/restart signal watcher.
//!
//! # Run-time requirements
//!
//! firewalld (tested with 1.3.3) on the system bus, polkit or root allowed
//! to call it, and what the ipset backend needs (`ip_set` modules,
//! CAP_NET_ADMIN). firewalld runs the iptables commands for the rule.

#![warn(missing_docs)]

mod backend;
pub mod msg;
mod reload;
mod sys;

pub use backend::FirewalldBackend;
pub use reload::{spawn_reload_watcher, spawn_reload_watcher_on, ReloadEvent};
pub use sys::Bus;

/// Whether firewalld is running on the system bus. For choosing the backend
/// of a new set: no connection is attempted when there is no bus socket,
/// and otherwise it costs one short D-Bus call (about a millisecond),
/// bounded by a 2 s timeout.
pub fn firewalld_running() -> bool {
    sys::is_running(&Bus::System)
}

/// [`firewalld_running`] on a given bus.
pub fn firewalld_running_on(bus: &Bus) -> bool {
    sys::is_running(bus)
}
