//! The keeper: keeps the kernel true to the ledger while the daemon runs.
//! - every second: checks each set's kernel objects (and at once when a
//!   monitor reports a change) and re-creates what a reload or a flush
//!   removed, with every ban and its remaining time;
//! - every `keeper_interval`: removes bans that are over (the only expiry
//!   pf and ipfw get, and a clean ledger everywhere);
//! - every `sync_interval`: a full sync, which also re-arms bans longer
//!   than a kernel's timeout cap (ipset: 24.8 days).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Result;
use banset_core::{BackendKind, SetHealth, SetName};
use banset_firewall::watchers::{self, DeletionEvent};
use banset_netlink::monitor::{
    Monitor, Notice, NETLINK_ROUTE, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
};
use banset_watch::config::WatchSettings;

use super::event::Event;
use super::logging::log;
use crate::context::Context;
use crate::output::counted;

/// Logs the ledger rows of `set` a sync skipped because they do not parse.
fn log_unreadable(set: &SetName, rows: &[banset_core::UnreadableRow]) {
    for line in crate::output::unreadable_rows_lines(set, rows) {
        log!("{line}");
    }
}

/// How long a burst of kernel changes must be quiet before the keeper heals.
const CHANGE_QUIET: Duration = Duration::from_millis(40);

/// The first wait before a set whose sync failed is tried again, doubled
/// after each failure up to [`RETRY_MAX`]: soon enough that a passing fault
/// costs seconds of unenforced bans, rare enough that a lasting one logs a
/// line a minute, not a second.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// When a set whose sync failed is tried next, and the wait after that.
#[derive(Debug)]
struct Retry {
    at: Instant,
    wait: Duration,
}

pub struct Keeper {
    keeper_interval: Duration,
    sync_interval: Duration,
    last_second: Instant,
    last_keeper: Instant,
    last_sync: Instant,
    last_prune: Instant,
    /// Backends a monitor reported changes of, and when the first came.
    changed: BTreeSet<BackendKind>,
    changed_since: Option<Instant>,
    last_change: Instant,
    pub repairs: u64,
    pub last_heal_ms: Option<f64>,
    /// Sets whose sync failed. A failed restore may leave the set's kernel
    /// objects present but empty, which the health check alone would take
    /// as healed: such sets are synced again until it succeeds.
    retry: BTreeMap<SetName, Retry>,
}

#[derive(Debug, Default)]
pub struct Due {
    pub second: bool,
    pub keeper: bool,
    pub sync: bool,
    pub prune: bool,
    pub changed: bool,
}

impl Keeper {
    pub fn new(settings: &WatchSettings) -> Keeper {
        let now = Instant::now();
        Keeper {
            keeper_interval: Duration::from_secs(settings.keeper_interval.max(1)),
            sync_interval: Duration::from_secs(settings.sync_interval.max(1)),
            last_second: now,
            last_keeper: now,
            last_sync: now,
            last_prune: now,
            changed: BTreeSet::new(),
            changed_since: None,
            last_change: now,
            repairs: 0,
            last_heal_ms: None,
            retry: BTreeMap::new(),
        }
    }

    /// Notes the outcome of a sync of `set`: a failure is retried by the
    /// next heal after a growing wait, a success ends the retries.
    fn note_sync(&mut self, set: &SetName, ok: bool) {
        if ok {
            self.retry.remove(set);
            return;
        }
        let wait = self
            .retry
            .get(set)
            .map_or(RETRY_FIRST, |r| (r.wait * 2).min(RETRY_MAX));
        self.retry.insert(
            set.clone(),
            Retry {
                at: Instant::now() + wait,
                wait,
            },
        );
    }

    /// Syncs every set, each on its own: a set that fails is logged, counted
    /// and retried by the heal, and the others are synced all the same (the
    /// start-up restore and the periodic sync). Returns (sets synced, bans
    /// re-added).
    pub fn sync_every_set(
        &mut self,
        ctx: &mut Context,
        errors: &mut std::collections::BTreeMap<&'static str, u64>,
    ) -> (usize, usize) {
        let outcomes = match ctx.engine().sync_each(None) {
            Ok(o) => o,
            Err(e) => {
                *errors.entry("keeper").or_default() += 1;
                log!("sync failed: {e}");
                return (0, 0);
            }
        };
        let (mut synced, mut added) = (0, 0);
        for (set, outcome) in outcomes {
            self.note_sync(&set, outcome.is_ok());
            let r = match outcome {
                Ok(r) => r,
                Err(e) => {
                    *errors.entry("keeper").or_default() += 1;
                    log!("sync {set} failed, will retry: {e}");
                    continue;
                }
            };
            synced += 1;
            added += r.added;
            log_unreadable(&set, &r.unreadable_rows);
            if r.added + r.refreshed + r.removed > 0 || r.repaired_objects {
                log!(
                    "sync {}: {} re-added, {} re-armed, {} removed{}",
                    r.set,
                    r.added,
                    r.refreshed,
                    r.removed,
                    if r.repaired_objects {
                        ", kernel objects re-created"
                    } else {
                        ""
                    }
                );
            }
        }
        (synced, added)
    }

    pub fn kernel_changed(&mut self, kind: BackendKind) {
        self.changed.insert(kind);
        self.last_change = Instant::now();
        self.changed_since.get_or_insert(self.last_change);
    }

    /// A change was reported and is waiting for its quiet period; the loop
    /// then wakes often instead of once every tick.
    pub fn change_pending(&self) -> bool {
        !self.changed.is_empty()
    }

    pub fn due(&mut self) -> Due {
        let now = Instant::now();
        let mut due = Due::default();
        let tick = |last: &mut Instant, every: Duration| {
            if now.duration_since(*last) >= every {
                *last = now;
                true
            } else {
                false
            }
        };
        due.second = tick(&mut self.last_second, Duration::from_secs(1));
        due.keeper = tick(&mut self.last_keeper, self.keeper_interval);
        due.sync = tick(&mut self.last_sync, self.sync_interval);
        due.prune = tick(&mut self.last_prune, Duration::from_secs(60));
        // A firewall reload is a burst of changes (firewalld's own tables
        // go and come back, then `Reloaded`); healing in the middle of it
        // is undone by its end. Act once the burst has been quiet for a
        // moment.
        due.changed = !self.changed.is_empty() && self.last_change.elapsed() >= CHANGE_QUIET;
        due
    }

    /// Runs what is due; returns the bans that ended, per set, for the
    /// daemon to log and notify.
    pub fn run(
        &mut self,
        ctx: &mut Context,
        due: &Due,
        errors: &mut std::collections::BTreeMap<&'static str, u64>,
    ) -> Vec<(banset_core::SetName, Vec<banset_core::Target>)> {
        if due.sync {
            self.sync_every_set(ctx, errors);
        } else if due.second || due.changed {
            self.heal(ctx, errors);
        }
        if due.keeper {
            match ctx.engine().expire() {
                Ok(expired) => return expired,
                Err(e) => {
                    *errors.entry("keeper").or_default() += 1;
                    log!("expire failed: {e}")
                }
            }
        }
        Vec::new()
    }

    /// Checks every set's kernel objects; re-syncs those a reload or a
    /// flush took away.
    fn heal(
        &mut self,
        ctx: &mut Context,
        errors: &mut std::collections::BTreeMap<&'static str, u64>,
    ) {
        let noticed = self.changed_since.take();
        self.changed.clear();
        let specs = match ctx.fw.ledger.read().and_then(|tx| tx.set_specs()) {
            Ok(s) => s,
            Err(e) => {
                log!("keeper: cannot read the ledger: {e}");
                return;
            }
        };
        for spec in specs {
            let Ok(health) = banset_core::BackendProvider::backend(&ctx.fw.backends, spec.backend)
                .and_then(|b| b.health(&spec))
            else {
                continue;
            };
            let retry_due = self
                .retry
                .get(&spec.name)
                .is_some_and(|r| r.at <= Instant::now());
            if health == SetHealth::Present && !retry_due {
                continue;
            }
            let started = Instant::now();
            let outcome = ctx.engine().sync(Some(&spec.name));
            self.note_sync(&spec.name, outcome.is_ok());
            match outcome {
                Ok(reports) => {
                    for r in &reports {
                        log_unreadable(&r.set, &r.unreadable_rows);
                    }
                    self.repairs += 1;
                    let heal_ms = noticed.unwrap_or(started).elapsed().as_secs_f64() * 1e3;
                    self.last_heal_ms = Some(heal_ms);
                    let added: usize = reports.iter().map(|r| r.added).sum();
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    super::logging::event(
                        "repair",
                        &[
                            ("set", spec.name.to_string()),
                            ("bans", added.to_string()),
                            ("ms", format!("{ms:.2}")),
                        ],
                        &format!(
                            "repair {}: kernel objects were {}; re-created with {} in {ms:.1} ms",
                            spec.name,
                            match health {
                                SetHealth::Missing => "missing",
                                _ => "incomplete",
                            },
                            counted(added, "ban", "bans"),
                        ),
                    );
                }
                Err(e) => {
                    *errors.entry("keeper").or_default() += 1;
                    log!("repair {} failed, will retry: {e}", spec.name)
                }
            }
        }
    }
}

/// SIGHUP reloads; SIGTERM and SIGINT stop.
pub fn spawn_signal_thread(events: Sender<Event>) -> Result<()> {
    use crate::sys::{SIGHUP, SIGINT, SIGTERM};
    crate::sys::signal_events(&[SIGHUP, SIGTERM, SIGINT], move |sig| {
        let event = if sig == SIGHUP {
            Event::Reload
        } else {
            Event::Shutdown
        };
        events.send(event).is_ok()
    })?;
    Ok(())
}

/// The netlink monitors: nf_tables deletions (a flushed ruleset, a firewall
/// reload) and address changes. Each runs in its own thread; one that
/// cannot open says so and leaves the once-a-second check to do its work.
pub fn spawn_monitors(events: Sender<Event>) {
    let tx = events.clone();
    let watched = watchers::spawn_deletion_watcher(move |event| match event {
        DeletionEvent::Failed(e) => {
            log!("nftables monitor failed ({e}); checking once a second instead");
            false
        }
        _ => tx.send(Event::KernelChanged(BackendKind::Nftables)).is_ok(),
    });
    if let Err(e) = watched {
        log!("nftables monitor unavailable ({e}); checking once a second instead");
    }
    let _ = std::thread::Builder::new()
        .name("address monitor".into())
        .spawn(move || {
            let mut m =
                match Monitor::open(NETLINK_ROUTE, &[RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR]) {
                    Ok(m) => m,
                    Err(e) => {
                        log!(
                            "address monitor unavailable ({e}); host addresses read at start only"
                        );
                        return;
                    }
                };
            loop {
                match m.wait(-1) {
                    Ok(Notice::Timeout) => continue,
                    Ok(_) => {
                        if events.send(Event::HostAddressesChanged).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
}
