//! The daemon's status snapshot: `watch-status.json` in the state
//! directory, rewritten every second, read by `banset status`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::context::Context;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchStatus {
    pub pid: u32,
    pub started: i64,
    pub updated: i64,
    pub config: String,
    pub jails: Vec<JailStatus>,
    pub sources: Vec<SourceStatus>,
    /// Bans removed because they were over, since start.
    pub unbans: u64,
    /// Sets re-created after a reload or flush, since start.
    pub repairs: u64,
    /// From noticing a lost set to having it back, last time (ms).
    pub last_heal_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JailStatus {
    pub name: String,
    pub set: String,
    pub filter: String,
    pub maxretry: u32,
    pub findtime: u64,
    /// Seconds; `None` is permanent.
    pub bantime: Option<u64>,
    /// Addresses with failures in their window.
    pub tracked: u64,
    /// Failures within the window, all addresses.
    pub failures: u64,
    /// Bans this jail made since start.
    pub bans: u64,
    /// Failures older than `findtime` when read, not counted, since start.
    #[serde(default)]
    pub too_old: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceStatus {
    pub source: String,
    pub lines: u64,
    pub hits: u64,
    pub ignored: u64,
    /// The file does not exist now (vanished, or not created again yet).
    #[serde(default)]
    pub waiting: bool,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("watch-status.json")
}

fn state_dir(ctx: &Context) -> PathBuf {
    Path::new(ctx.fw.ledger.path())
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Writes the snapshot atomically (temporary file, then rename).
pub fn write(ctx: &Context, status: &WatchStatus) -> Result<()> {
    let dir = state_dir(ctx);
    let tmp = dir.join(".watch-status.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(status)?)
        .with_context(|| format!("{}", tmp.display()))?;
    std::fs::rename(&tmp, path(&dir)).with_context(|| format!("{}", path(&dir).display()))?;
    Ok(())
}

pub fn remove(ctx: &Context) -> std::io::Result<()> {
    std::fs::remove_file(path(&state_dir(ctx)))
}

/// The running daemon's snapshot, if a daemon is running on this state
/// directory (a stale file of a dead daemon is ignored).
pub fn read_status(ctx: &Context) -> Option<WatchStatus> {
    let text = std::fs::read(path(&state_dir(ctx))).ok()?;
    let status: WatchStatus = serde_json::from_slice(&text).ok()?;
    crate::sys::process_exists(status.pid).then_some(status)
}

impl super::state::Daemon<'_> {
    pub(super) fn snapshot(&self, now: i64) -> WatchStatus {
        WatchStatus {
            pid: std::process::id(),
            started: self.started,
            updated: now,
            config: self.ctx.config.origin_name(),
            jails: self
                .jails
                .iter()
                .map(|j| {
                    let s = j.settings();
                    JailStatus {
                        name: s.name.clone(),
                        set: s.set.to_string(),
                        filter: s.filter.name.clone(),
                        maxretry: s.maxretry,
                        findtime: s.findtime,
                        bantime: s.bantime.secs(),
                        tracked: j.tracked() as u64,
                        failures: j.failures_in_window(now) as u64,
                        bans: j.stats().bans,
                        too_old: j.stats().too_old,
                    }
                })
                .collect(),
            sources: self
                .sources
                .iter()
                .map(|s| SourceStatus {
                    source: s.key.to_string(),
                    lines: s.stats.lines.load(std::sync::atomic::Ordering::Relaxed),
                    hits: s.stats.hits.load(std::sync::atomic::Ordering::Relaxed),
                    ignored: s.stats.ignored.load(std::sync::atomic::Ordering::Relaxed),
                    waiting: s.stats.waiting.load(std::sync::atomic::Ordering::Relaxed),
                })
                .collect(),
            unbans: self.unbans,
            repairs: self.keeper.repairs,
            last_heal_ms: self.keeper.last_heal_ms,
        }
    }
}
