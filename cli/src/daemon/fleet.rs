//! The daemon's fleet thread: when `[fleet]` is in banset.toml and this
//! host joined (STATE_DIR/fleet/host.toml), it runs
//! `banset_fleet::sync::sync_round` (the code `banset fleet sync --once`
//! runs) on its own ledger connection and backends, so a slow or dead
//! engine never holds up the watcher, the keeper or a local ban: those only
//! write the outbox in their own transaction and wake this thread through
//! a channel that never blocks.
//!
//! It wakes on an engine notification (LISTEN), on a local ban to publish,
//! and every `poll_interval` (notifications are lost with a connection);
//! reconnects with the link's bounded backoff; logs one line when the
//! engine goes up or down. The cursor lives in the ledger, so a restart
//! resumes where the last applied page ended.
//!
//! A reload hands the thread the new `[fleet]` (or none: it then idles,
//! sharing nothing, until a later reload brings the section back); one
//! thread for the daemon's life, so two can never pull into the same
//! ledger.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use banset_core::fleet::FleetConfig;
use banset_core::{Allowlist, SetName};
use banset_firewall::{Firewall, NewLedger, StateDir};
use banset_fleet::sync::{sync_round, Link, LinkState, SyncError};
use banset_fleet::ConnectOptions;

use super::logging::log;
use crate::cmd::fleet::files::FleetDir;

/// How long one wait for an engine notification lasts before the thread
/// looks at its channel: the bound on how late a local ban is published.
const WAKE_SLICE: Duration = Duration::from_millis(100);
/// How often this host re-asserts its own active bans (repairs an engine
/// restored from an old backup) and asks the engine to purge old
/// tombstones.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// A value for the fleet thread, taken at its next wake-up; only the
/// latest matters.
type Slot<T> = Arc<Mutex<Option<T>>>;

fn put<T>(slot: &Slot<T>, value: T) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
}

fn take<T>(slot: &Slot<T>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The daemon's end of the fleet thread. Nothing here ever blocks the
/// daemon: the thread may be busy with the network for seconds (a
/// snapshot), and the channel only carries wake-ups.
pub struct FleetHandle {
    tx: SyncSender<()>,
    /// The allowlist (host addresses, `ignore`, `ignore-add`).
    allowlist: Slot<Allowlist>,
    /// `[fleet]` after a reload; `None` inside: the section is gone.
    config_slot: Slot<Option<FleetConfig>>,
    /// `[fleet]` as the thread has or will have it, for which bans to
    /// publish; `None`: removed by a reload, nothing is shared.
    pub config: Option<FleetConfig>,
}

impl FleetHandle {
    /// Wakes the thread to publish; a full channel already holds a
    /// wake-up.
    pub fn publish(&self) {
        let _ = self.tx.try_send(());
    }

    /// Hands the thread the new allowlist.
    pub fn allowlist(&self, allowlist: Allowlist) {
        put(&self.allowlist, allowlist);
        let _ = self.tx.try_send(());
    }

    /// Hands the thread a reloaded `[fleet]` (`None`: removed); returns
    /// whether it differs from the one in force.
    pub fn reconfigure(&mut self, config: Option<FleetConfig>) -> bool {
        if config == self.config {
            return false;
        }
        self.config.clone_from(&config);
        put(&self.config_slot, config);
        let _ = self.tx.try_send(());
        true
    }

    /// Whether a jail's ban in `set` is published.
    pub fn publishes(&self, set: &SetName, jail: &str) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| c.publishes(set, Some(jail)))
    }

    /// Whether `[fleet]` is in force (bans are shared).
    pub fn sharing(&self) -> bool {
        self.config.is_some()
    }
}

/// Starts the thread if this host is in a fleet and `[fleet]` is set.
pub fn spawn(
    config: Option<&FleetConfig>,
    state: &StateDir,
    allowlist: Allowlist,
    dry_run: bool,
) -> Result<Option<FleetHandle>> {
    let Some(config) = config else {
        return Ok(None);
    };
    let Some(host) = FleetDir::new(state.path()).read_host()? else {
        log!(
            "fleet: [fleet] is set but this host has not joined a fleet ({} is missing): bans are not shared",
            FleetDir::new(state.path()).host_path().display()
        );
        return Ok(None);
    };
    // Its own ledger connection and backends: the loop's stay the loop's.
    let fw = Firewall::options()
        .dry_run(dry_run)
        .new_ledger(NewLedger::OnlyWithoutKernelSets)
        .allowlist(allowlist)
        .open(state)?;
    let (tx, rx) = sync_channel(1);
    let handle = FleetHandle {
        tx,
        allowlist: Slot::default(),
        config_slot: Slot::default(),
        config: Some(config.clone()),
    };
    let slots = Slots {
        allowlist: handle.allowlist.clone(),
        config: handle.config_slot.clone(),
    };
    let thread_config = config.clone();
    let options = host.options();
    thread::Builder::new()
        .name("fleet".into())
        .spawn(move || run(fw, options, thread_config, rx, &slots))?;
    log!(
        "fleet: sharing bans (publish {}, poll every {} s)",
        if config.publish { "on" } else { "off" },
        config.poll_interval.as_secs()
    );
    Ok(Some(handle))
}

/// The thread's ends of the handle's slots.
struct Slots {
    allowlist: Slot<Allowlist>,
    config: Slot<Option<FleetConfig>>,
}

fn run(
    mut fw: Firewall,
    options: ConnectOptions,
    config: FleetConfig,
    rx: Receiver<()>,
    slots: &Slots,
) {
    let mut link = Link::new(options.clone());
    // A host with no cursor starts with a snapshot: spread over up to one
    // poll interval, so a fleet restarted at once does not ask the engine
    // for every snapshot in the same second.
    if matches!(banset_fleet::sync::saved_cursor(&mut fw.ledger), Ok(None)) {
        thread::sleep(startup_jitter(
            config.poll_interval.min(Duration::from_secs(5)),
        ));
    }
    let mut due = true;
    let mut next_poll = Instant::now();
    let mut next_maintenance = Instant::now() + MAINTENANCE_EVERY;
    let mut last_error: Option<String> = None;
    let mut config = Some(config);
    loop {
        let Some(active) = &config else {
            // [fleet] was removed by a reload: share nothing, hold no
            // connection, wait for the daemon.
            link = Link::new(options.clone());
            match rx.recv_timeout(MAINTENANCE_EVERY) {
                Err(RecvTimeoutError::Disconnected) => return,
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            }
            if let Some(a) = take(&slots.allowlist) {
                fw.allowlist = a;
            }
            if let Some(new) = take(&slots.config) {
                config = reconfigured(&mut fw, None, new);
                due = true;
            }
            continue;
        };
        if due || Instant::now() >= next_poll {
            let round = sync_round(&mut link, &mut fw.engine(), &|name| active.policy(name));
            report(&round, &mut link, &mut last_error);
            due = false;
            next_poll = Instant::now() + active.poll_interval;
        }
        if Instant::now() >= next_maintenance {
            maintain(&mut fw, &mut link);
            next_maintenance = Instant::now() + MAINTENANCE_EVERY;
        }
        match link.wait_for_change(WAKE_SLICE) {
            Ok(true) => due = true,
            Ok(false) => {}
            Err(e) => {
                link.failed(&e);
                due = true;
            }
        }
        match rx.try_recv() {
            Ok(()) => due = true,
            Err(TryRecvError::Empty) => {}
            // The daemon is gone.
            Err(TryRecvError::Disconnected) => return,
        }
        if let Some(a) = take(&slots.allowlist) {
            fw.allowlist = a;
        }
        if let Some(new) = take(&slots.config) {
            config = reconfigured(&mut fw, config.take(), new);
            due = true;
        }
    }
}

/// Takes a reloaded `[fleet]`. When what this host accepts changed, the
/// cursor is forgotten, so the next round is a snapshot that judges every
/// remote ban again under the new policy (a delta brings only rows that
/// changed), as `banset fleet sync --once --snapshot` does.
fn reconfigured(
    fw: &mut Firewall,
    old: Option<FleetConfig>,
    new: Option<FleetConfig>,
) -> Option<FleetConfig> {
    let Some(new) = new else {
        log!("fleet: [fleet] removed: bans are no longer shared (remote bans held here run out)");
        return None;
    };
    // The host name is the same for both; only the settings differ.
    let rejudge = old
        .as_ref()
        .is_none_or(|old| old.policy("") != new.policy(""));
    if rejudge {
        let forgotten = fw
            .ledger
            .begin()
            .and_then(|tx| tx.fleet_forget_cursor().and_then(|()| tx.commit()));
        if let Err(e) = forgotten {
            log!("fleet: [fleet] reloaded, but remote bans are not judged again: {e}");
        }
    }
    log!(
        "fleet: [fleet] reloaded (publish {}, poll every {} s){}",
        if new.publish { "on" } else { "off" },
        new.poll_interval.as_secs(),
        if rejudge {
            "; remote bans judged again by a snapshot"
        } else {
            ""
        }
    );
    Some(new)
}

/// One log line per change of the engine's state, and per new error.
fn report(
    round: &Result<(usize, banset_fleet::sync::PullOutcome), SyncError>,
    link: &mut Link,
    last_error: &mut Option<String>,
) {
    match link.state_change() {
        Some(LinkState::Up) => log!("fleet: engine up, as host {}", link.host()),
        Some(LinkState::Down) => log!(
            "fleet: engine down ({}); local bans go on and are published when it is back",
            link.last_error.as_deref().unwrap_or("not connected")
        ),
        None => {}
    }
    match round {
        Ok((_, pulled)) => {
            *last_error = None;
            if pulled.snapshot {
                log!(
                    "fleet: caught up by snapshot: {} rows, {} banned, {} removed",
                    pulled.rows,
                    pulled.applied.banned,
                    pulled.applied.removed
                );
            }
        }
        Err(SyncError::Backoff(_)) => {}
        Err(e) if e.is_disconnect() => {}
        Err(e) => {
            let text = e.to_string();
            if last_error.as_deref() != Some(&text) {
                log!("fleet: {text}");
                *last_error = Some(text);
            }
        }
    }
}

/// The hourly work: this host's active bans published again, and the
/// engine's old tombstones purged (any host may; the engine decides what
/// is old). Failures wait for the next hour.
fn maintain(fw: &mut Firewall, link: &mut Link) {
    let now = banset_core::Clock::now(&fw.clock);
    if let Ok(tx) = fw.ledger.begin() {
        if tx.fleet_reassert(now).is_ok() {
            let _ = tx.commit();
        }
    }
    if let Ok(client) = link.client() {
        let _ = client.purge();
    }
}

/// A delay in `[0, bound)` that differs between hosts and starts.
fn startup_jitter(bound: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos) ^ (u64::from(std::process::id()) << 20);
    let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(seed % bound_ms)
}
