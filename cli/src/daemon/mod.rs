//! `banset watch`: the daemon. One loop owns the ledger, the backends and
//! the jails' failure windows; source threads send it failures, monitor
//! threads send it kernel and address changes, and timers drive the keeper.
//!
//! Single ownership keeps the logic plain: no locks around windows or the
//! ledger, and each ban is one engine call in order of arrival.

mod keeper;
pub mod logging;
mod metrics;
mod notify;
mod sources;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use banset_core::{
    format_duration, AddOptions, Allowlist, BackendKind, BanRequest, Clock, SetName, SetSpec,
    Target, Timeout,
};
use banset_watch::config::{JailSettings, Recidive, Settings, SourceKey};
use banset_watch::{FailureWindows, Matcher};

use crate::config::Config;
use crate::context::Context;
use crate::host_addrs::host_addresses;
use crate::set_options::build_spec;
use sources::{SourceHandle, SourceSpec};

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
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// A jail at run time.
struct Jail {
    settings: JailSettings,
    windows: FailureWindows,
    /// The global allowlist plus the jail's own `ignore`.
    allowlist: Allowlist,
    bans: u64,
    failures: u64,
}

/// Logs one line on stderr (journald keeps it when run by systemd).
macro_rules! log {
    ($($arg:tt)*) => { $crate::daemon::logging::line(&format!($($arg)*)) };
}
pub(crate) use log;

pub struct Daemon<'a> {
    ctx: &'a mut Context,
    settings: Settings,
    jails: Vec<Jail>,
    generation: u64,
    /// Specs of the sets the config defines, and of jail sets it does not.
    specs: BTreeMap<SetName, SetSpec>,
    sources: Vec<SourceHandle>,
    positions: HashMap<SourceKey, String>,
    positions_dirty: bool,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    utc_offset: i64,
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
}

/// Reads and validates the watcher's configuration (`--check` stops here):
/// banset.toml's jails, and the enabled jails of fail2ban's configuration
/// (`fail2ban`, else `[fail2ban] dir`), whose sets join `config.sets`
/// unless the file defines them. Returns the settings and what fail2ban's
/// configuration asks for that banset does differently, one line each.
pub fn load_settings(
    config: &mut Config,
    fail2ban: Option<&std::path::Path>,
) -> Result<(Settings, Vec<String>)> {
    let mut settings = config
        .watch_section()
        .validate(&config.text, &config.origin_name())
        .map_err(|e| anyhow::Error::new(crate::errors::Usage(e.to_string())))?;
    let dir = fail2ban
        .map(std::path::Path::to_path_buf)
        .or_else(|| config.fail2ban.as_ref().map(|f| f.dir.clone()));
    let mut notices = Vec::new();
    if let Some(dir) = dir {
        let f2b = banset_watch::fail2ban::load(&dir)
            .map_err(|e| crate::errors::Usage(format!("fail2ban {}: {e}", dir.display())))?;
        notices.extend(banset_watch::fail2ban::notice_lines(&f2b.notices));
        for jail in f2b.jails {
            let name = jail.settings.name.clone();
            if settings.jails.iter().any(|j| j.name == name) {
                notices.push(format!(
                    "{}: jail {name}: {} defines it too; banset.toml's wins",
                    jail.origin,
                    config.origin_name()
                ));
                continue;
            }
            let set = jail.settings.set.to_string();
            config
                .sets
                .entry(set)
                .or_insert_with(|| crate::config::SetConfig {
                    backend: jail.set.backend.map(|b| b.to_string()),
                    ports: jail.set.ports.clone().map(crate::config::Ports::Text),
                    protocol: jail.set.protocol.clone(),
                    blocktype: jail.set.blocktype.clone(),
                    ..Default::default()
                });
            // fail2ban's recidive jail reads fail2ban's own log of bans,
            // which nobody writes once banset replaces fail2ban: it would
            // silently never ban again. banset's recidive counts banset's
            // own bans, in every jail, the same way.
            if jail.settings.filter.name.split('[').next() == Some("recidive") {
                let why = format!(
                    "{}: jail {name}: reads fail2ban's own log, which banset does not write;",
                    jail.origin
                );
                match &settings.recidive {
                    Some(_) => notices.push(format!(
                        "{why} {}'s [recidive] counts banset's bans instead",
                        config.origin_name()
                    )),
                    None => {
                        let j = &jail.settings;
                        notices.push(format!(
                            "{why} banset counts its own bans instead: {} bans in {}s ban for {} in set {}",
                            j.maxretry, j.findtime, j.bantime, j.set
                        ));
                        settings.recidive = Some(banset_watch::config::Recidive {
                            bans: j.maxretry,
                            findtime: j.findtime,
                            bantime: j.bantime,
                            set: j.set.clone(),
                        });
                    }
                }
                continue;
            }
            settings.jails.push(jail.settings);
        }
    }
    // Compile every source's combined matcher now, so a problem is a
    // config error, not a failure at run time.
    for (key, (filters, _)) in group_sources(&settings.jails) {
        Matcher::new(&filters).map_err(|e| {
            crate::errors::Usage(format!("{}: source {key}: {e}", config.origin_name()))
        })?;
    }
    Ok((settings, notices))
}

/// The specs of the sets jails and recidive use: `[sets.NAME]` when the
/// file has it, the defaults otherwise.
pub fn set_specs(config: &Config, settings: &Settings) -> Result<BTreeMap<SetName, SetSpec>> {
    let mut out = BTreeMap::new();
    for (name, set) in &config.sets {
        let set_name = SetName::new(name).map_err(|e| {
            crate::errors::Usage(format!("{}: sets.{name}: {e}", config.origin_name()))
        })?;
        // Detection (firewalld running?) once per start; the spec is only
        // used for a set the ledger does not have yet.
        let spec = build_spec(set_name.clone(), &set.options(), set.timeout, config, true)
            .with_context(|| format!("{}: sets.{name}", config.origin_name()))?;
        out.insert(set_name, spec);
    }
    let mut wanted: Vec<SetName> = settings.jails.iter().map(|j| j.set.clone()).collect();
    if let Some(r) = &settings.recidive {
        wanted.push(r.set.clone());
    }
    for name in wanted {
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(name.clone()) {
            slot.insert(build_spec(name, &Default::default(), None, config, true)?);
        }
    }
    Ok(out)
}

/// Groups jails by source: per source, the filters in jail order and the
/// jail index of each.
fn group_sources(
    jails: &[JailSettings],
) -> BTreeMap<SourceKey, (Vec<banset_watch::FilterDef>, Vec<usize>)> {
    let mut by_source: BTreeMap<SourceKey, (Vec<_>, Vec<usize>)> = BTreeMap::new();
    for (i, jail) in jails.iter().enumerate() {
        for key in &jail.sources {
            let entry = by_source.entry(key.clone()).or_default();
            entry.0.push(jail.filter.clone());
            entry.1.push(i);
        }
    }
    by_source
}

fn position_key(source: &SourceKey) -> String {
    format!("watch.position:{source}")
}

impl<'a> Daemon<'a> {
    pub fn new(
        ctx: &'a mut Context,
        settings: Settings,
        fail2ban: Option<std::path::PathBuf>,
    ) -> Result<Daemon<'a>> {
        let specs = set_specs(&ctx.config, &settings)?;
        let (events_tx, events) = channel();
        let now = ctx.clock.now();
        let keeper = keeper::Keeper::new(&settings.watch);
        let settings_notify = (
            settings.watch.notify_concurrency,
            settings.watch.notify_timeout,
        );
        let mut daemon = Daemon {
            ctx,
            settings,
            jails: Vec::new(),
            generation: 0,
            specs,
            sources: Vec::new(),
            positions: HashMap::new(),
            positions_dirty: false,
            events_tx,
            events,
            utc_offset: local_utc_offset(),
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
        };
        daemon.jails = daemon.build_jails(Vec::new());
        Ok(daemon)
    }

    fn global_allowlist(&self) -> Allowlist {
        Allowlist::new()
            .with_host_addresses(host_addresses())
            .with_ignored(
                self.ctx.config.ignore.iter().copied(),
                &self.ctx.config.origin_name(),
            )
    }

    /// Jails for the current settings, keeping the windows (failure
    /// counts) of jails that existed before under the same name.
    fn build_jails(&self, mut old: Vec<Jail>) -> Vec<Jail> {
        let global = self.global_allowlist();
        self.settings
            .jails
            .iter()
            .map(|s| {
                let windows = match old.iter().position(|j| j.settings.name == s.name) {
                    Some(i) => {
                        let mut j = old.swap_remove(i);
                        j.windows.set_limits(s.findtime, s.maxretry);
                        j.windows
                    }
                    None => FailureWindows::new(s.findtime, s.maxretry),
                };
                Jail {
                    allowlist: global
                        .clone()
                        .with_ignored(s.ignore.iter().copied(), &format!("jail {}", s.name)),
                    settings: s.clone(),
                    windows,
                    bans: 0,
                    failures: 0,
                }
            })
            .collect()
    }

    fn start_sources(&mut self) {
        self.generation += 1;
        for (key, (filters, jail_of_filter)) in group_sources(&self.settings.jails) {
            let matcher = match Matcher::new(&filters) {
                Ok(m) => Arc::new(m),
                Err(e) => {
                    log!("source {key}: {e}; not watched");
                    continue;
                }
            };
            let saved = self.positions.get(&key).cloned().or_else(|| {
                self.ctx
                    .ledger
                    .read()
                    .ok()?
                    .meta(&position_key(&key))
                    .ok()?
            });
            let spec = SourceSpec {
                key: key.clone(),
                matcher,
                jail_of_filter,
                saved,
                journalctl: self.settings.watch.journalctl.clone(),
                utc_offset: self.utc_offset,
                generation: self.generation,
            };
            self.sources
                .push(sources::spawn(spec, self.events_tx.clone()));
        }
    }

    fn stop_sources(&mut self) {
        for s in self.sources.drain(..) {
            s.stop();
        }
    }

    /// Runs until SIGTERM/SIGINT.
    pub fn run(mut self) -> Result<()> {
        keeper::spawn_signal_thread(self.events_tx.clone())?;
        if let Some(addr) = self.settings.watch.metrics_listen {
            metrics::serve(addr, self.metrics_text.clone())?;
        }
        keeper::spawn_monitors(self.events_tx.clone());
        self.ensure_sets();
        // Subscribe before restoring: a reload in between is then heard.
        self.watch_firewalld();
        self.restore();
        self.start_sources();
        log!(
            "watching: {} jails, {} sources, {} sets",
            self.jails.len(),
            self.sources.len(),
            self.specs.len()
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
        while let Ok(event) = self.events.try_recv() {
            if let Event::Position { .. } = event {
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
            } => {
                if generation == self.generation {
                    self.failure(jail, target, at);
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
                let old = std::mem::take(&mut self.jails);
                self.jails = self.build_jails(old);
                self.ctx.allowlist = self.global_allowlist();
                log!(
                    "host addresses changed: {} addresses of this host are never banned",
                    host_addresses().len()
                );
            }
            Event::Reload => self.reload(),
            Event::Shutdown => {}
        }
    }

    /// One failure: count it, and ban at `maxretry`.
    fn failure(&mut self, jail_index: usize, target: Target, at: i64) {
        let jail = &mut self.jails[jail_index];
        if jail.allowlist.check(&target, false).is_err() {
            return;
        }
        jail.failures += 1;
        if !jail.windows.fail(target, at) {
            return;
        }
        let name = jail.settings.name.clone();
        let set = jail.settings.set.clone();
        let base = jail.settings.bantime;
        let escalation = jail.settings.escalation;
        let maxretry = jail.settings.maxretry;
        let now = self.ctx.clock.now();
        let earlier = match escalation {
            Some(e) => self
                .ctx
                .ledger
                .read()
                .and_then(|tx| tx.ban_events_since(&target, now - e.remember as i64))
                .map(|v| v.iter().filter(|(j, _)| *j == name).count())
                .unwrap_or(0),
            None => 0,
        };
        let bantime = escalation.map_or(base, |e| e.bantime(base, earlier));
        let note = if earlier > 0 && bantime != base {
            format!(" (ban #{} of this address in this jail)", earlier + 1)
        } else {
            String::new()
        };
        let Some(banned) = self.ban(&name, &set, target, bantime, maxretry, &note) else {
            // Not recorded (kernel or ledger failed): the window keeps the
            // failures, so the next one tries the ban again.
            return;
        };
        // Banned, or refused for good: the address starts from zero.
        self.jails[jail_index].windows.forget(&target);
        if banned {
            self.jails[jail_index].bans += 1;
            let on_ban = self.jails[jail_index].settings.on_ban.clone();
            self.notifier.notify(
                "on_ban",
                &on_ban,
                [
                    target.to_string(),
                    name.clone(),
                    set.to_string(),
                    bantime.secs().map_or("-1".to_string(), |s| s.to_string()),
                    maxretry.to_string(),
                ],
            );
            self.recidive(&name, target, now);
        }
    }

    /// Bans through the engine, records the ban in the history, logs it.
    /// `Some(true)` banned, `Some(false)` refused (allowlisted), `None`
    /// failed.
    fn ban(
        &mut self,
        jail: &str,
        set: &SetName,
        target: Target,
        bantime: Timeout,
        failures: u32,
        note: &str,
    ) -> Option<bool> {
        let request = BanRequest {
            target,
            timeout: Some(bantime),
            since: None,
            comment: Some(format!("jail {jail}")),
        };
        let opts = AddOptions {
            force: false,
            create_with: self.specs.get(set).cloned(),
        };
        let started = Instant::now();
        match self.ctx.engine().add(set, &[request], &opts) {
            Ok(report) => {
                if report.created_set {
                    self.watch_firewalld();
                }
                let now = self.ctx.clock.now();
                if let Ok(tx) = self.ctx.ledger.begin() {
                    if tx.record_ban_event(&target, jail, now).is_ok() {
                        let _ = tx.commit();
                    }
                }
                let ms = started.elapsed().as_secs_f64() * 1e3;
                logging::event(
                    "ban",
                    &[
                        ("address", target.to_string()),
                        ("jail", jail.to_string()),
                        ("set", set.to_string()),
                        ("timeout", bantime.secs().map_or("-1".into(), |s| s.to_string())),
                        ("failures", failures.to_string()),
                        ("ms", format!("{ms:.2}")),
                    ],
                    &format!(
                        "ban {target} jail={jail} set={set} for {} after {failures} failures{note} ({ms:.1} ms)",
                        bantime.secs().map_or("ever".to_string(), format_duration),
                    ),
                );
                Some(true)
            }
            Err(banset_core::Error::Refused(r)) => {
                log!("not banning {target} (jail {jail}): {r}");
                Some(false)
            }
            Err(e) => {
                *self.errors.entry("ban").or_default() += 1;
                logging::event(
                    "error",
                    &[
                        ("address", target.to_string()),
                        ("jail", jail.to_string()),
                        ("set", set.to_string()),
                    ],
                    &format!("ban {target} jail={jail} set={set} failed: {e}"),
                );
                None
            }
        }
    }

    /// After a ban: enough bans of this address within recidive's window
    /// (in any jail) ban it in the recidive set as well.
    fn recidive(&mut self, jail: &str, target: Target, now: i64) {
        let Some(Recidive {
            bans,
            findtime,
            bantime,
            set,
        }) = self.settings.recidive.clone()
        else {
            return;
        };
        if set.as_str() == jail {
            return;
        }
        let count = self
            .ctx
            .ledger
            .read()
            .and_then(|tx| tx.ban_events_since(&target, now - findtime as i64))
            .map(|v| v.iter().filter(|(j, _)| j != "recidive").count())
            .unwrap_or(0);
        if count >= bans as usize {
            self.ban(
                "recidive",
                &set,
                target,
                bantime,
                count as u32,
                &format!(" (bans within {})", format_duration(findtime)),
            );
        }
    }

    /// Creates the sets the config names that the ledger does not have yet.
    fn ensure_sets(&mut self) {
        let specs: Vec<SetSpec> = self.specs.values().cloned().collect();
        for spec in specs {
            let known = self
                .ctx
                .ledger
                .read()
                .and_then(|tx| tx.set_spec(&spec.name))
                .ok()
                .flatten();
            match known {
                None => match self.ctx.engine().create(&spec) {
                    Ok(_) => log!("created set {}", spec.name),
                    Err(e) => log!("set {}: cannot create it: {e}", spec.name),
                },
                Some(existing)
                    if existing != spec
                        && self.ctx.config.sets.contains_key(spec.name.as_str()) =>
                {
                    log!(
                        "set {}: the ledger's set differs from the config's; keeping the ledger's (destroy and re-create the set to change it)",
                        spec.name
                    );
                }
                Some(_) => {}
            }
        }
    }

    /// firewalld drops its runtime direct rules on every reload and restart;
    /// when firewalld-backed sets exist, listen for both on the bus and heal
    /// at once (the once-a-second check remains the fallback).
    fn watch_firewalld(&mut self) {
        if self.firewalld_watched {
            return;
        }
        let uses_firewalld = self
            .ctx
            .ledger
            .read()
            .and_then(|tx| tx.set_specs())
            .map(|specs| specs.iter().any(|s| s.backend == BackendKind::Firewalld))
            .unwrap_or(false);
        if !uses_firewalld {
            return;
        }
        let tx = self.events_tx.clone();
        match banset_firewalld::spawn_reload_watcher(move |event| {
            use banset_firewalld::ReloadEvent;
            if !matches!(event, ReloadEvent::Stopped) {
                let _ = tx.send(Event::KernelChanged(BackendKind::Firewalld));
            }
        }) {
            Ok(_) => {
                self.firewalld_watched = true;
                log!("listening for firewalld reloads and restarts");
            }
            Err(e) => {
                log!("firewalld reloads: cannot subscribe ({e}); checking once a second instead")
            }
        }
    }

    /// Start-up: bring every kernel set back to the ledger (one batch per
    /// set), so a reboot or a firewall restart loses nothing.
    fn restore(&mut self) {
        let started = Instant::now();
        match self.ctx.engine().sync(None) {
            Ok(reports) => {
                let added: usize = reports.iter().map(|r| r.added).sum();
                log!(
                    "restored {} sets from the ledger ({added} bans re-added) in {:.0} ms",
                    reports.len(),
                    started.elapsed().as_secs_f64() * 1e3
                );
            }
            Err(e) => log!("restore from the ledger failed: {e}"),
        }
        release_free_memory();
    }

    fn reload(&mut self) {
        let mut config = match Config::load(self.ctx.global.config.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                log!("reload refused, keeping the running configuration: {e:#}");
                return;
            }
        };
        let settings =
            match load_settings(&mut config, self.fail2ban.as_deref()).and_then(|(s, notices)| {
                let specs = set_specs(&config, &s)?;
                for n in notices {
                    log!("fail2ban: {n}");
                }
                Ok((s, specs))
            }) {
                Ok(s) => s,
                Err(e) => {
                    log!("reload refused, keeping the running configuration: {e:#}");
                    return;
                }
            };
        self.stop_sources();
        // Failures already read by the old sources still count.
        while let Ok(event) = self.events.try_recv() {
            self.handle(event);
        }
        self.ctx.config = config;
        self.settings = settings.0;
        self.specs = settings.1;
        self.keeper = keeper::Keeper::new(&self.settings.watch);
        let old = std::mem::take(&mut self.jails);
        self.jails = self.build_jails(old);
        self.ctx.allowlist = self.global_allowlist();
        self.ensure_sets();
        self.watch_firewalld();
        self.start_sources();
        log!(
            "reloaded: {} jails, {} sources",
            self.jails.len(),
            self.sources.len()
        );
    }

    fn save_positions(&mut self) {
        if !self.positions_dirty {
            return;
        }
        let Ok(tx) = self.ctx.ledger.begin() else {
            return;
        };
        for (source, value) in &self.positions {
            if tx.set_meta(&position_key(source), value).is_err() {
                return;
            }
        }
        if tx.commit().is_ok() {
            self.positions_dirty = false;
        }
    }

    fn timers(&mut self) {
        let now = self.ctx.clock.now();
        let due = self.keeper.due();
        if due.second {
            self.save_positions();
            let snapshot = self.snapshot(now);
            if let Err(e) = status::write(self.ctx, &snapshot) {
                log!("status file: {e:#}");
            }
        }
        let expired = self.keeper.run(self.ctx, &due, &mut self.errors);
        for (set, targets) in expired {
            self.unbans += targets.len() as u64;
            let jails: Vec<(String, Vec<String>)> = self
                .jails
                .iter()
                .filter(|j| j.settings.set == set && !j.settings.on_unban.is_empty())
                .map(|j| (j.settings.name.clone(), j.settings.on_unban.clone()))
                .collect();
            // A mass expiry is one line, not thousands.
            let each = targets.len() <= 20;
            if !each {
                logging::event(
                    "unban",
                    &[
                        ("set", set.to_string()),
                        ("bans", targets.len().to_string()),
                    ],
                    &format!(
                        "unban {} addresses from set {set} (bans over)",
                        targets.len()
                    ),
                );
            }
            for t in targets {
                if each {
                    logging::event(
                        "unban",
                        &[("address", t.to_string()), ("set", set.to_string())],
                        &format!("unban {t} set={set} (ban over)"),
                    );
                }
                for (jail, argv) in &jails {
                    self.notifier.notify(
                        "on_unban",
                        argv,
                        [
                            t.to_string(),
                            jail.clone(),
                            set.to_string(),
                            "0".into(),
                            "0".into(),
                        ],
                    );
                }
            }
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
            for jail in &mut self.jails {
                jail.windows.prune(now);
            }
            let keep = self
                .jails
                .iter()
                .filter_map(|j| j.settings.escalation.map(|e| e.remember))
                .chain(self.settings.recidive.as_ref().map(|r| r.findtime))
                .max()
                .unwrap_or(0);
            if let Ok(tx) = self.ctx.ledger.begin() {
                if tx.prune_ban_events(now - keep as i64).is_ok() {
                    let _ = tx.commit();
                }
            }
        }
    }

    /// Renders the metrics; writes the textfile and hands the text to the
    /// HTTP endpoint, whichever are configured.
    fn publish_metrics(&mut self, now: i64) {
        use metrics::Family;
        let mut set_bans = Family::new(
            "banset_set_bans",
            "gauge",
            "Bans in effect per set, from the ledger.",
        );
        if let Ok(tx) = self.ctx.ledger.read() {
            if let Ok(specs) = tx.set_specs() {
                for spec in specs {
                    if let Ok((active, _)) = tx.counts(&spec.name, now) {
                        set_bans = set_bans.sample(&[("set", spec.name.as_str())], active as f64);
                    }
                }
            }
        }
        let mut bans = Family::new(
            "banset_jail_bans_total",
            "counter",
            "Bans the jail made since the daemon started.",
        );
        let mut failures = Family::new(
            "banset_jail_failures_total",
            "counter",
            "Failures the jail counted since the daemon started.",
        );
        let mut failing = Family::new(
            "banset_jail_failing_addresses",
            "gauge",
            "Addresses with failures in the jail's window.",
        );
        for j in &self.jails {
            let jail = [("jail", j.settings.name.as_str())];
            bans = bans.sample(&jail, j.bans as f64);
            failures = failures.sample(&jail, j.failures as f64);
            failing = failing.sample(&jail, j.windows.tracked() as f64);
        }
        let mut lines = Family::new(
            "banset_source_lines_total",
            "counter",
            "Log lines read per source since the daemon started.",
        );
        let mut hits = Family::new(
            "banset_source_failures_total",
            "counter",
            "Failures found per source since the daemon started.",
        );
        for s in &self.sources {
            let source = s.key.to_string();
            let label = [("source", source.as_str())];
            lines = lines.sample(
                &label,
                s.stats.lines.load(std::sync::atomic::Ordering::Relaxed) as f64,
            );
            hits = hits.sample(
                &label,
                s.stats.hits.load(std::sync::atomic::Ordering::Relaxed) as f64,
            );
        }
        let mut errors = Family::new(
            "banset_errors_total",
            "counter",
            "Errors by kind since the daemon started.",
        );
        for kind in ["ban", "source", "keeper"] {
            errors = errors.sample(
                &[("kind", kind)],
                *self.errors.get(kind).unwrap_or(&0) as f64,
            );
        }
        let families = [
            Family::new("banset_up", "gauge", "1 while banset watch runs.").sample(&[], 1.0),
            Family::new(
                "banset_start_time_seconds",
                "gauge",
                "Unix time the daemon started.",
            )
            .sample(&[], self.started as f64),
            set_bans,
            bans,
            failures,
            failing,
            Family::new(
                "banset_unbans_total",
                "counter",
                "Bans that ended since the daemon started.",
            )
            .sample(&[], self.unbans as f64),
            lines,
            hits,
            Family::new(
                "banset_repairs_total",
                "counter",
                "Sets re-created after a firewall reload or flush.",
            )
            .sample(&[], self.keeper.repairs as f64),
            errors,
            Family::new(
                "banset_last_heal_seconds",
                "gauge",
                "From noticing a lost set to having it back, last time.",
            )
            .sample(&[], self.keeper.last_heal_ms.unwrap_or(0.0) / 1e3),
        ];
        let text = metrics::render(&families);
        if let Some(path) = &self.settings.watch.metrics_file {
            if let Err(e) = metrics::write_textfile(path, &text) {
                *self.errors.entry("keeper").or_default() += 1;
                log!("{e:#}");
            }
        }
        if let Ok(mut latest) = self.metrics_text.lock() {
            *latest = text;
        }
    }

    fn snapshot(&self, now: i64) -> WatchStatus {
        WatchStatus {
            pid: std::process::id(),
            started: self.started,
            updated: now,
            config: self.ctx.config.origin_name(),
            jails: self
                .jails
                .iter()
                .map(|j| status::JailStatus {
                    name: j.settings.name.clone(),
                    set: j.settings.set.to_string(),
                    filter: j.settings.filter.name.clone(),
                    maxretry: j.settings.maxretry,
                    findtime: j.settings.findtime,
                    bantime: j.settings.bantime.secs(),
                    tracked: j.windows.tracked() as u64,
                    failures: j.windows.total_failures(now) as u64,
                    bans: j.bans,
                })
                .collect(),
            sources: self
                .sources
                .iter()
                .map(|s| status::SourceStatus {
                    source: s.key.to_string(),
                    lines: s.stats.lines.load(std::sync::atomic::Ordering::Relaxed),
                    hits: s.stats.hits.load(std::sync::atomic::Ordering::Relaxed),
                    ignored: s.stats.ignored.load(std::sync::atomic::Ordering::Relaxed),
                })
                .collect(),
            unbans: self.unbans,
            repairs: self.keeper.repairs,
            last_heal_ms: self.keeper.last_heal_ms,
        }
    }
}

/// Hands memory freed after a large restore (the ledger's and the kernel's
/// listings) back to the system: glibc keeps it otherwise, and a daemon's
/// resident size is what admins watch.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Seconds east of UTC of the local zone now, for log dates without a zone.
fn local_utc_offset() -> i64 {
    // SAFETY: time(NULL) and localtime_r into a zeroed tm we own.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}
