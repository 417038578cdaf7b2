//! What the dispatcher runs on (the daemon, or one process alone) and the
//! jails it is shown: a leaf, so the daemon can implement it without the
//! dispatcher and the dispatcher's helpers importing one another.

use anyhow::Result;
use banset_core::control::Which;
use banset_core::{SetName, SetSpec, Target, Timeout};
use banset_watch::config::SourceKey;

use crate::context::Context;

/// A jail as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct JailView {
    pub name: String,
    pub set: SetName,
    pub bantime: Timeout,
    pub sources: Vec<SourceKey>,
    /// The daemon's tallies; `None` without a daemon.
    pub live: Option<Live>,
}

/// A running jail's tallies.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// Addresses with failures in the window.
    pub currently_failed: u64,
    /// Failures counted since the jail was (re)built.
    pub total_failed: u64,
    /// Bans the jail made since then.
    pub total_banned: u64,
}

/// What the dispatcher runs on: the daemon, or one process alone.
pub trait Host {
    /// Ledger, backends, allowlist.
    fn ctx(&mut self) -> &mut Context;
    /// The daemon (true) or a process alone (false).
    fn is_daemon(&self) -> bool;
    /// Every jail this host knows.
    fn jails(&mut self) -> Result<Vec<JailView>>;
    /// How a set the ledger does not have yet is made (the config's).
    fn new_set_spec(&mut self, set: &SetName) -> Option<SetSpec>;
    /// Forgets failures of `which` (`set`: only in jails banning into
    /// it); returns how many addresses were forgotten.
    fn forget(&mut self, which: &Which, set: Option<&SetName>) -> u64;
    /// Prefixes `ignore-add` gave.
    fn ignored(&mut self) -> &mut Vec<Target>;
    /// The ignore list changed: rebuild the allowlists.
    fn ignore_changed(&mut self);
    /// Reads the configuration again.
    fn reload(&mut self) -> Result<()>;
}
