//! `banset watch`: the daemon. One loop owns the ledger, the backends and
//! the jails' failure windows; source threads send it failures, monitor
//! threads send it kernel and address changes, and timers drive the keeper.
//!
//! Single ownership keeps the logic plain: no locks around windows or the
//! ledger, and each ban is one engine call in order of arrival.
//!
//! This file is the loop: start, shutdown and timers. Who is banned and
//! for how long is `banset_watch::policy`'s; the rest is one idea a file:
//! `state` (what the loop owns), `event` (what it reacts to), `bans`
//! (engine calls for the policy's decisions), `reload`, `settings`
//! (reading and checking the configuration), `set_plan` (what to do with
//! each set) and `sets` (doing it, and the start-up restore), `sources`
//! and `source_threads`, `keeper`, `firewalld_watch`, `metrics`,
//! `status`, `notify`, `logging`, `control`. The parts import `state`,
//! `event` and `logging`, never this file, so the loop can use them all
//! without an import cycle.

mod bans;
mod control;
mod event;
mod firewalld_watch;
mod fleet;
mod keeper;
pub mod logging;
mod metrics;
mod notify;
mod reload;
pub mod set_plan;
mod sets;
pub mod settings;
mod source_threads;
mod sources;
mod state;
pub mod status;

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::Result;
use banset_core::Clock as _;
use banset_firewall::host_addresses;

use crate::output::counted;
use event::Event;
use logging::log;

pub use set_plan::{set_plan, set_specs, SetPlan};
pub use settings::{check_inputs, load_settings};
pub use state::Daemon;

impl Daemon<'_> {
    /// Runs until SIGTERM/SIGINT.
    pub fn run(mut self) -> Result<()> {
        keeper::spawn_signal_thread(self.events_tx.clone())?;
        if let Some(addr) = self.settings.watch.metrics_listen {
            let _ = metrics::serve(addr, self.metrics_text.clone())?;
        }
        keeper::spawn_monitors(self.events_tx.clone());
        if let Some(socket) = &self.control {
            socket.serve(self.events_tx.clone(), Event::Control)?;
        }
        self.ensure_sets();
        // Subscribe before restoring: a reload in between is then heard.
        self.watch_firewalld();
        self.restore();
        // After the sets exist (remote bans land in them), before the
        // sources (their first bans are published).
        self.fleet = fleet::spawn(
            self.ctx.config.fleet.as_ref(),
            &crate::context::state_dir(&self.ctx.global, &self.ctx.config),
            self.global_allowlist(),
            self.ctx.global.dry_run,
        )?;
        self.start_sources();
        log!(
            "watching: {}, {}, {}",
            counted(self.jails.len(), "jail", "jails"),
            counted(self.sources.len(), "source", "sources"),
            counted(self.specs.len(), "set", "sets")
        );
        loop {
            let tick = if self.keeper.change_pending() {
                Duration::from_millis(10)
            } else {
                Duration::from_millis(250)
            };
            match self.events.recv_timeout(tick) {
                Ok(Event::Shutdown) => break,
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Drain a burst before the timers run.
            while let Ok(event) = self.events.try_recv() {
                if matches!(event, Event::Shutdown) {
                    return self.shutdown();
                }
                self.handle(event);
            }
            self.timers();
        }
        self.shutdown()
    }

    fn shutdown(mut self) -> Result<()> {
        self.stop_sources();
        // Failures read before the stop count (a ban they complete is
        // made), as on reload: the position saved below covers their lines,
        // so dropping them would skip them for good.
        while let Ok(event) = self.events.try_recv() {
            if let Event::Position { .. } | Event::Failure { .. } = event {
                self.handle(event);
            }
        }
        self.save_positions();
        let _ = status::remove(self.ctx);
        log!("stopped");
        Ok(())
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Failure {
                generation,
                jail,
                target,
                at,
                resume,
                line,
            } => {
                if generation == self.generation {
                    self.failure(jail, target, at, resume, &line);
                }
            }
            Event::Position { source, value } => {
                self.positions.insert(source, value);
                self.positions_dirty = true;
            }
            Event::SourceError { source, message } => {
                *self.errors.entry("source").or_default() += 1;
                log!("source {source}: {message}")
            }
            Event::KernelChanged(kind) => self.keeper.kernel_changed(kind),
            Event::HostAddressesChanged => {
                self.rebuild_allowlists();
                log!(
                    "host addresses changed: {} of this host {} never banned",
                    counted(host_addresses().len(), "address", "addresses"),
                    if host_addresses().len() == 1 {
                        "is"
                    } else {
                        "are"
                    }
                );
            }
            Event::Reload => self.start_reload(),
            Event::Reloaded(loaded) => self.apply_reload(*loaded),
            Event::Control(call) => self.control(call),
            Event::Shutdown => {}
        }
    }

    fn timers(&mut self) {
        let now = self.ctx.fw.clock.now();
        let due = self.keeper.due();
        if due.second {
            self.save_positions();
            let snapshot = self.snapshot(now);
            if let Err(e) = status::write(self.ctx, &snapshot) {
                log!("status file: {e:#}");
            }
        }
        if due.keeper {
            self.discover_sources();
        }
        let expired = self.keeper.run(self.ctx, &due, &mut self.errors);
        for (set, targets) in expired {
            self.unbanned(set, targets);
        }
        if self.last_metrics.elapsed()
            >= Duration::from_secs(self.settings.watch.metrics_interval.max(1))
            && (self.settings.watch.metrics_file.is_some()
                || self.settings.watch.metrics_listen.is_some())
        {
            self.last_metrics = Instant::now();
            self.publish_metrics(now);
        }
        if due.prune {
            self.jails.prune(now);
            // The admin's retention, or longer when escalation or
            // recidive look further back; bounded in rows all the same.
            let keep = self
                .jails
                .history_needed()
                .max(self.settings.watch.history_retention);
            if let Ok(tx) = self.ctx.fw.ledger.begin() {
                if tx.prune_ban_events(now.saturating_sub(keep as i64)).is_ok()
                    && tx
                        .cap_ban_events(self.settings.watch.history_max_events)
                        .is_ok()
                {
                    let _ = tx.commit();
                }
            }
        }
    }
}
