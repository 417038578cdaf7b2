//! `banset watch`: the daemon. One loop owns the ledger, the backends and
//! the jails' failure windows; source threads send it failures, monitor
//! threads send it kernel and address changes, and timers drive the keeper.
//!
//! Single ownership keeps the logic plain: no locks around windows or the
//! ledger, and each ban is one engine call in order of arrival.
//!
//! This file is the loop: its events, start, shutdown and timers. Who is
//! banned and for how long is `banset_watch::policy`'s; the rest is one
//! idea a file: `bans` (engine calls for the policy's decisions),
//! `reload`, `settings` (reading and checking the configuration), `sets`
//! (set planning and the start-up restore), `sources`, `keeper`, `metrics`,
//! `status`, `notify`, `logging`.

mod bans;
mod control;
mod keeper;
pub mod logging;
mod metrics;
mod notify;
mod reload;
mod sets;
mod settings;
mod sources;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use banset_core::{Allowlist, BackendKind, Clock, SetName, SetSpec, Target};
use banset_watch::config::{Settings, SourceKey};
use banset_watch::policy::Jails;

use crate::context::Context;
use crate::output::counted;
use banset_firewall::host_addresses;
use reload::Loaded;
use sources::SourceHandle;

pub use sets::{set_plan, set_specs, SetPlan};
pub use settings::{check_inputs, load_settings};
pub use status::{read_status, WatchStatus};

/// What the loop reacts to.
pub enum Event {
    /// A filter matched: one failure of `target` in jail `jail` (an index
    /// into the jails of `generation`).
    Failure {
        generation: u64,
        jail: usize,
        target: Target,
        at: i64,
        /// The source, and where it resumes after the failure's line.
        resume: Option<(SourceKey, String)>,
        /// The line (at most [`banset_watch::mail::MAX_LINE`] bytes), for
        /// the mails that list them.
        line: Box<[u8]>,
    },
    /// Where a source stands (file position or journal cursor).
    Position { source: SourceKey, value: String },
    /// A source's problem, worth one log line.
    SourceError { source: String, message: String },
    /// Someone changed kernel objects of this backend (nftables monitor,
    /// firewalld reload): check its sets now.
    KernelChanged(BackendKind),
    /// The host's addresses changed: rebuild the allowlists.
    HostAddressesChanged,
    /// SIGHUP: reload the configuration.
    Reload,
    /// The reload thread read the configuration (or why it refuses it).
    Reloaded(Box<std::result::Result<Loaded, String>>),
    /// SIGTERM or SIGINT.
    Shutdown,
    /// A control-socket request, and where its reply goes.
    Control(crate::control::server::Call),
}

/// Logs one line on stderr (journald keeps it when run by systemd).
macro_rules! log {
    ($($arg:tt)*) => { $crate::daemon::logging::line(&format!($($arg)*)) };
}
pub(crate) use log;

pub struct Daemon<'a> {
    ctx: &'a mut Context,
    settings: Settings,
    /// The jail policy: failure windows, escalation, recidive.
    jails: Jails,
    generation: u64,
    /// Specs of the sets the config defines, and of jail sets it does not.
    specs: BTreeMap<SetName, SetSpec>,
    sources: Vec<SourceHandle>,
    positions: HashMap<SourceKey, String>,
    positions_dirty: bool,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    keeper: keeper::Keeper,
    started: i64,
    unbans: u64,
    errors: BTreeMap<&'static str, u64>,
    notifier: notify::Notifier,
    metrics_text: Arc<std::sync::Mutex<String>>,
    last_metrics: Instant,
    /// The firewalld reload subscription is in place.
    firewalld_watched: bool,
    /// `--fail2ban DIR`, read again on reload.
    fail2ban: Option<std::path::PathBuf>,
    /// A reload thread is reading the configuration.
    reloading: bool,
    /// Another SIGHUP came meanwhile: read the files again after it.
    reload_again: bool,
    /// Prefixes the control socket's `ignore-add` gave (until stop).
    runtime_ignore: Vec<Target>,
    /// Jail sets the ledger has as allow-only (the config does not say so,
    /// or it would have been refused): bans into them are refused, since
    /// they would let the attacker in.
    allow_only: std::collections::HashSet<SetName>,
    /// The control socket; its file goes when the daemon does.
    control: Option<crate::control::server::Socket>,
}

impl<'a> Daemon<'a> {
    pub fn new(
        ctx: &'a mut Context,
        settings: Settings,
        fail2ban: Option<std::path::PathBuf>,
    ) -> Result<Daemon<'a>> {
        let specs = set_specs(&ctx.config, &settings)?;
        let (events_tx, events) = channel();
        let now = ctx.fw.clock.now();
        let keeper = keeper::Keeper::new(&settings.watch);
        let settings_notify = (
            settings.watch.notify_concurrency,
            settings.watch.notify_timeout,
        );
        let mut daemon = Daemon {
            ctx,
            settings,
            jails: Jails::default(),
            generation: 0,
            specs,
            sources: Vec::new(),
            positions: HashMap::new(),
            positions_dirty: false,
            events_tx,
            events,
            keeper,
            started: now,
            unbans: 0,
            errors: BTreeMap::new(),
            notifier: notify::Notifier::new(
                settings_notify.0,
                Duration::from_secs(settings_notify.1),
            ),
            metrics_text: Arc::new(std::sync::Mutex::new(String::new())),
            last_metrics: Instant::now() - Duration::from_secs(3600),
            firewalld_watched: false,
            fail2ban,
            reloading: false,
            reload_again: false,
            runtime_ignore: Vec::new(),
            allow_only: Default::default(),
            control: None,
        };
        daemon.jails = daemon.build_jails(Jails::default());
        Ok(daemon)
    }

    fn global_allowlist(&self) -> Allowlist {
        Allowlist::new()
            .with_host_addresses(host_addresses())
            .with_ignored(
                self.ctx.config.ignore.iter().copied(),
                &self.ctx.config.origin_name(),
            )
            .with_ignored(self.runtime_ignore.iter().copied(), "ignore-add")
    }

    /// Serves the control socket from the start of [`Daemon::run`].
    pub fn with_control(mut self, socket: crate::control::server::Socket) -> Self {
        self.control = Some(socket);
        self
    }

    /// The jails' and the engine's allowlists, after the host's addresses
    /// or the run-time ignores changed.
    fn rebuild_allowlists(&mut self) {
        let old = std::mem::take(&mut self.jails);
        self.jails = self.build_jails(old);
        self.ctx.fw.allowlist = self.global_allowlist();
    }

    /// Jails for the current settings, keeping the windows (failure
    /// counts) of jails that existed before under the same name.
    fn build_jails(&self, old: Jails) -> Jails {
        Jails::new(
            &self.settings.jails,
            self.settings.recidive.clone(),
            &self.global_allowlist(),
            old,
        )
    }

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
