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
use banset_watch::mail::MatchedLines;
use banset_watch::pipeline::{source_pipeline, source_pipelines, SourcePipeline};
use banset_watch::{Counted, FailureWindows};

use crate::config::Config;
use crate::context::Context;
use crate::host_addrs::host_addresses;
use crate::output::counted;
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
}

/// A configuration read, validated and checked off the loop, for a reload
/// to apply.
pub struct Loaded {
    config: Config,
    settings: Settings,
    specs: BTreeMap<SetName, SetSpec>,
    notices: Vec<String>,
}

/// A jail at run time.
struct Jail {
    settings: JailSettings,
    windows: FailureWindows,
    /// The global allowlist plus the jail's own `ignore`.
    allowlist: Allowlist,
    bans: u64,
    failures: u64,
    /// Failures older than `findtime` when read: not counted.
    too_old: u64,
    /// The lines of the last failures, when a mail lists them.
    lines: Option<MatchedLines>,
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
    let mut notices = std::mem::take(&mut settings.notices);
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
                            "{why} banset counts its own bans instead: {} in {}s ban for {} in set {}",
                            counted(j.maxretry, "ban", "bans"), j.findtime, j.bantime, j.set
                        ));
                        settings.recidive = Some(banset_watch::config::Recidive {
                            bans: j.maxretry,
                            findtime: j.findtime,
                            bantime: j.bantime,
                            set: j.set.clone(),
                            on_ban: Vec::new(),
                            on_unban: Vec::new(),
                            mail: j.mail.clone(),
                        });
                    }
                }
                continue;
            }
            settings.jails.push(jail.settings);
        }
    }
    settings
        .merge_additions(&config.origin_name())
        .map_err(|e| anyhow::Error::new(crate::errors::Usage(e.to_string())))?;
    // Globs and missing files, as fail2ban: a jail whose logpath matches
    // no file is refused (start, reload and `--check` alike).
    let found = banset_watch::logpath::resolve(&mut settings.jails)
        .map_err(|e| crate::errors::Usage(format!("{}: {e}", config.origin_name())))?;
    notices.extend(found);
    // Build every source's pipeline now, so a problem is a config error,
    // not a failure at run time (`--check` stops here too).
    for (key, built) in source_pipelines(&settings.jails) {
        built.map_err(|e| {
            crate::errors::Usage(format!("{}: source {key}: {e}", config.origin_name()))
        })?;
    }
    Ok((settings, notices))
}

/// Refuses inputs someone other than root (or banset's user) could have
/// written (the rule is `path_trust`'s): the config file, fail2ban's
/// configuration tree when jails come from it, every `on_ban`/`on_unban`
/// program and the configured `journalctl` (all run as root), and, when
/// given, the state directory and the ledger's files. Start-up, reload and
/// `watch --check` all run this one check.
pub fn check_inputs(
    config: &Config,
    settings: &Settings,
    fail2ban: Option<&std::path::Path>,
    ledger: Option<&std::path::Path>,
) -> std::result::Result<(), String> {
    use crate::path_trust::{check, check_tree, Expect};
    if let Some(origin) = &config.origin {
        check(origin, Expect::File).map_err(|e| format!("config {e}"))?;
    }
    let dir = fail2ban.or_else(|| config.fail2ban.as_ref().map(|f| f.dir.as_path()));
    if let Some(dir) = dir {
        // The whole tree, not only the files read today: fail2ban reads by
        // name (`jail.d/*.local`, `filter.d/NAME.local`), so any file in it
        // may be read after the next edit. Bounded: a config tree is small.
        check_tree(dir, 20_000).map_err(|e| format!("fail2ban {e}"))?;
    }
    for jail in &settings.jails {
        // A banset.toml jail's fail2ban filter file: its tree, as above.
        if let Some(dir) = &jail.fail2ban_dir {
            check_tree(dir, 20_000).map_err(|e| format!("jail {}: filter {e}", jail.name))?;
        }
    }
    let recidive = settings
        .recidive
        .as_ref()
        .map(|r| ("recidive", &r.on_ban, &r.on_unban, &r.mail));
    let jails = settings
        .jails
        .iter()
        .map(|j| (j.name.as_str(), &j.on_ban, &j.on_unban, &j.mail));
    for (name, on_ban, on_unban, mail) in jails.chain(recidive) {
        let mails = mail.iter().map(|m| (m.action.as_str(), &m.command));
        for (key, argv) in [("on_ban", on_ban), ("on_unban", on_unban)]
            .into_iter()
            .chain(mails)
        {
            if let Some(program) = argv.first() {
                check(std::path::Path::new(program), Expect::Program)
                    .map_err(|e| format!("jail {name}: {key} {e}"))?;
            }
        }
    }
    let journalctl = &settings.watch.journalctl;
    if journalctl.is_absolute() {
        check(journalctl, Expect::Program).map_err(|e| format!("journalctl {e}"))?;
    }
    if let Some(ledger) = ledger {
        let state = match ledger.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        check(state, Expect::Directory).map_err(|e| format!("state directory {e}"))?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = ledger.as_os_str().to_os_string();
            name.push(suffix);
            let file = std::path::PathBuf::from(name);
            if std::fs::symlink_metadata(&file).is_ok() {
                check(&file, Expect::File).map_err(|e| format!("ledger {e}"))?;
            }
        }
    }
    Ok(())
}

/// What the daemon does with a set the config (or a jail) names, at start
/// and on reload; `watch --check` says the same.
pub enum SetPlan {
    /// The ledger has no such set: create it from the config.
    Create,
    /// The ledger has it as the config says.
    Keep,
    /// The ledger has it otherwise (other ports, timeout, backend...): the
    /// daemon keeps the ledger's, as changing a live set would drop or
    /// re-time its bans. Holds the ledger's spec.
    KeepLedgers(SetSpec),
}

pub fn set_plan(ledger: &mut banset_core::Ledger, spec: &SetSpec) -> SetPlan {
    match ledger
        .read()
        .and_then(|tx| tx.set_spec(&spec.name))
        .ok()
        .flatten()
    {
        None => SetPlan::Create,
        Some(existing) if existing == *spec => SetPlan::Keep,
        Some(existing) => SetPlan::KeepLedgers(existing),
    }
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
        let spec = build_spec(
            set_name.clone(),
            &set.options(),
            set.timeout,
            config,
            true,
            false,
        )
        .with_context(|| format!("{}: sets.{name}", config.origin_name()))?;
        out.insert(set_name, spec);
    }
    let mut wanted: Vec<SetName> = settings.jails.iter().map(|j| j.set.clone()).collect();
    if let Some(r) = &settings.recidive {
        wanted.push(r.set.clone());
    }
    for name in wanted {
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(name.clone()) {
            slot.insert(build_spec(
                name,
                &Default::default(),
                None,
                config,
                true,
                false,
            )?);
        }
    }
    Ok(out)
}

/// Groups jails by source: per source, the filters in jail order and the
/// jail index of each.
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
                    too_old: 0,
                    lines: matched_lines(s),
                }
            })
            .collect()
    }

    fn start_sources(&mut self) {
        self.generation += 1;
        for (key, built) in source_pipelines(&self.settings.jails) {
            let pipeline = match built {
                Ok(p) => p,
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
            self.start_source(key, pipeline, saved);
        }
    }

    fn start_source(&mut self, key: SourceKey, pipeline: SourcePipeline, saved: Option<String>) {
        let spec = SourceSpec {
            key,
            pipeline,
            saved,
            journalctl: self.settings.watch.journalctl.clone(),
            generation: self.generation,
        };
        self.sources
            .push(sources::spawn(spec, self.events_tx.clone()));
    }

    /// Follows files the jails' `logpath` globs match now and did not
    /// before (fail2ban expands them only at start). A new file is read
    /// from its top, or, when it is a followed file renamed to a matching
    /// name, from where that one stands.
    fn discover_sources(&mut self) {
        let (new, errors) = banset_watch::logpath::discover(&mut self.settings.jails);
        for e in errors {
            log!("{e}");
        }
        for key in new {
            let Some(built) = source_pipeline(&self.settings.jails, &key) else {
                continue;
            };
            let pipeline = match built {
                Ok(p) => p,
                Err(e) => {
                    log!("source {key}: {e}; not watched");
                    continue;
                }
            };
            // A file another jail already follows: restart it with every
            // jail's filters, where it stands.
            if let Some(i) = self.sources.iter().position(|s| s.key == key) {
                let old = self.sources.swap_remove(i);
                sources::stop_all(vec![old]);
                while let Ok(event) = self.events.try_recv() {
                    self.handle(event);
                }
            }
            let saved = match (&key, self.positions.get(&key)) {
                (_, Some(p)) => Some(p.clone()),
                (SourceKey::File(path), None) => banset_watch::follow::Position::for_new_file(
                    path,
                    self.positions.values().map(String::as_str),
                )
                .map(|p| p.encode()),
                (SourceKey::Journal(_), None) => None,
            };
            log!("source {key}: new match of a logpath; following it");
            self.start_source(key, pipeline, saved);
        }
    }

    fn stop_sources(&mut self) {
        sources::stop_all(std::mem::take(&mut self.sources));
    }

    /// Runs until SIGTERM/SIGINT.
    pub fn run(mut self) -> Result<()> {
        keeper::spawn_signal_thread(self.events_tx.clone())?;
        if let Some(addr) = self.settings.watch.metrics_listen {
            let _ = metrics::serve(addr, self.metrics_text.clone())?;
        }
        keeper::spawn_monitors(self.events_tx.clone());
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
                let old = std::mem::take(&mut self.jails);
                self.jails = self.build_jails(old);
                self.ctx.allowlist = self.global_allowlist();
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
            Event::Shutdown => {}
        }
    }

    /// One failure: count it, and ban at `maxretry`.
    ///
    /// A crash must not count a line twice: a ban is recorded together with
    /// its source's position after the line that made it, in one ledger
    /// transaction, so a restart resumes after that line (escalation and
    /// recidive would otherwise count one offence as two). Failures that
    /// did not ban yet live only in memory, lost with the process anyway:
    /// the lines after the last ban are read again after a crash and
    /// rebuild them, which is the replay we accept (decided: keeping every
    /// line's position durable would cost a commit per line).
    fn failure(
        &mut self,
        jail_index: usize,
        target: Target,
        at: i64,
        resume: Option<(SourceKey, String)>,
        line: &[u8],
    ) {
        let jail = &mut self.jails[jail_index];
        if jail.allowlist.check(&target, false).is_err() {
            return;
        }
        let now = self.ctx.clock.now();
        let counted = jail.windows.count(target, at, now);
        if let (Some(lines), false) = (&mut jail.lines, counted == Counted::TooOld) {
            lines.push(target, at, line);
        }
        match counted {
            Counted::TooOld => {
                jail.too_old += 1;
                return;
            }
            Counted::Counted => {
                jail.failures += 1;
                return;
            }
            Counted::Reached => jail.failures += 1,
        }
        let name = jail.settings.name.clone();
        let set = jail.settings.set.clone();
        let base = jail.settings.bantime;
        let escalation = jail.settings.escalation;
        let maxretry = jail.settings.maxretry;
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
        let Some(banned) = self.ban(&name, &set, target, bantime, maxretry, &note, resume) else {
            // Not recorded (kernel or ledger failed): the window keeps the
            // failures, so the next one tries the ban again.
            return;
        };
        // Banned, or refused for good: the address starts from zero.
        self.jails[jail_index].windows.forget(&target);
        if banned {
            self.jails[jail_index].bans += 1;
            let on_ban = self.jails[jail_index].settings.on_ban.clone();
            let lines = match &mut self.jails[jail_index].lines {
                Some(l) => l.take(&target),
                None => Vec::new(),
            };
            for mail in &self.jails[jail_index].settings.mail {
                self.notifier.mail(mail, target, &name, maxretry, &lines);
            }
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

    /// Bans through the engine, records the ban in the history (with
    /// `resume`, the source's position after the line that made it, in the
    /// same transaction), logs it. `Some(true)` banned, `Some(false)`
    /// refused (allowlisted), `None` failed.
    #[allow(clippy::too_many_arguments)] // each is one fact of the ban's log line
    fn ban(
        &mut self,
        jail: &str,
        set: &SetName,
        target: Target,
        bantime: Timeout,
        failures: u32,
        note: &str,
        resume: Option<(SourceKey, String)>,
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
                    let position = match &resume {
                        Some((source, value)) => tx.set_meta(&position_key(source), value),
                        None => Ok(()),
                    };
                    if position.is_ok()
                        && tx.record_ban_event(&target, jail, now).is_ok()
                        && tx.commit().is_ok()
                    {
                        if let Some((source, value)) = resume {
                            // Later positions of this source come after it
                            // in the channel; none can take it back.
                            self.positions.insert(source, value);
                        }
                    }
                }
                let ms = started.elapsed().as_secs_f64() * 1e3;
                logging::event(
                    "ban",
                    &[
                        ("address", target.to_string()),
                        ("jail", jail.to_string()),
                        ("set", set.to_string()),
                        (
                            "timeout",
                            bantime.secs().map_or("-1".into(), |s| s.to_string()),
                        ),
                        ("failures", failures.to_string()),
                        ("ms", format!("{ms:.2}")),
                    ],
                    &format!(
                        "ban {target} jail={jail} set={set} for {} after {}{note} ({ms:.1} ms)",
                        bantime.secs().map_or("ever".to_string(), format_duration),
                        counted(failures, "failure", "failures"),
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
            on_ban,
            mail,
            ..
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
        if count >= bans as usize
            && self.ban(
                "recidive",
                &set,
                target,
                bantime,
                count as u32,
                &format!(" (bans within {})", format_duration(findtime)),
                None,
            ) == Some(true)
        {
            for m in &mail {
                self.notifier.mail(m, target, "recidive", count as u32, &[]);
            }
            self.notifier.notify(
                "on_ban",
                &on_ban,
                [
                    target.to_string(),
                    "recidive".into(),
                    set.to_string(),
                    bantime.secs().map_or("-1".to_string(), |s| s.to_string()),
                    count.to_string(),
                ],
            );
        }
    }

    /// Creates the sets the config names that the ledger does not have yet.
    fn ensure_sets(&mut self) {
        let specs: Vec<SetSpec> = self.specs.values().cloned().collect();
        for spec in specs {
            match set_plan(&mut self.ctx.ledger, &spec) {
                SetPlan::Create => match self.ctx.engine().create(&spec) {
                    Ok(_) => log!("created set {}", spec.name),
                    Err(e) => log!("set {}: cannot create it: {e}", spec.name),
                },
                SetPlan::KeepLedgers(_)
                    if self.ctx.config.sets.contains_key(spec.name.as_str()) =>
                {
                    log!(
                        "set {}: the ledger's set differs from the config's; keeping the ledger's (destroy and re-create the set to change it)",
                        spec.name
                    );
                }
                SetPlan::KeepLedgers(_) | SetPlan::Keep => {}
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
        // Set by set: one that fails is logged and retried by the keeper,
        // and does not stop the others from coming back.
        let (synced, added) = self.keeper.sync_every_set(self.ctx, &mut self.errors);
        log!(
            "restored {} from the ledger ({} re-added) in {:.0} ms",
            counted(synced, "set", "sets"),
            counted(added, "ban", "bans"),
            started.elapsed().as_secs_f64() * 1e3
        );
        release_free_memory();
    }

    /// SIGHUP: reads the configuration on its own thread. Reading can take
    /// long (a large or hostile fail2ban tree, a slow disk); the loop keeps
    /// banning and healing meanwhile, and applies the result when it comes
    /// (`Event::Reloaded`). SIGHUPs during a read make one more read after
    /// it, so the last edit is always the one applied.
    fn start_reload(&mut self) {
        if self.reloading {
            self.reload_again = true;
            return;
        }
        let path = self.ctx.global.config.clone();
        let fail2ban = self.fail2ban.clone();
        let ledger = std::path::PathBuf::from(self.ctx.ledger.path());
        let tx = self.events_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let loaded = read_for_reload(path.as_deref(), fail2ban.as_deref(), &ledger)
                    .map_err(|e| format!("{e:#}"));
                let _ = tx.send(Event::Reloaded(Box::new(loaded)));
            });
        match spawned {
            Ok(_) => self.reloading = true,
            Err(e) => log!("reload refused, keeping the running configuration: {e}"),
        }
    }

    /// Applies what the reload thread read.
    fn apply_reload(&mut self, loaded: std::result::Result<Loaded, String>) {
        self.reloading = false;
        match loaded {
            Ok(loaded) => self.apply_loaded(loaded),
            Err(e) => log!("reload refused, keeping the running configuration: {e}"),
        }
        if std::mem::take(&mut self.reload_again) {
            self.start_reload();
        }
    }

    fn apply_loaded(&mut self, loaded: Loaded) {
        for n in &loaded.notices {
            log!("fail2ban: {n}");
        }
        self.stop_sources();
        // Failures already read by the old sources still count.
        let mut shutdown = false;
        while let Ok(event) = self.events.try_recv() {
            if matches!(event, Event::Shutdown) {
                shutdown = true;
                continue;
            }
            self.handle(event);
        }
        if shutdown {
            // Heard again by the loop once the reload is done.
            let _ = self.events_tx.send(Event::Shutdown);
        }
        self.ctx.config = loaded.config;
        self.settings = loaded.settings;
        self.specs = loaded.specs;
        self.keeper = keeper::Keeper::new(&self.settings.watch);
        let old = std::mem::take(&mut self.jails);
        self.jails = self.build_jails(old);
        self.ctx.allowlist = self.global_allowlist();
        self.ensure_sets();
        self.watch_firewalld();
        self.start_sources();
        log!(
            "reloaded: {}, {}",
            counted(self.jails.len(), "jail", "jails"),
            counted(self.sources.len(), "source", "sources")
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
        if due.keeper {
            self.discover_sources();
        }
        let expired = self.keeper.run(self.ctx, &due, &mut self.errors);
        for (set, targets) in expired {
            self.unbans += targets.len() as u64;
            let recidive = self
                .settings
                .recidive
                .as_ref()
                .filter(|r| r.set == set && !r.on_unban.is_empty())
                .map(|r| ("recidive".to_string(), r.on_unban.clone()));
            let jails: Vec<(String, Vec<String>)> = self
                .jails
                .iter()
                .filter(|j| j.settings.set == set && !j.settings.on_unban.is_empty())
                .map(|j| (j.settings.name.clone(), j.settings.on_unban.clone()))
                .chain(recidive)
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
                        "unban {} from set {set} (bans over)",
                        counted(targets.len(), "address", "addresses")
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
                if let Some(lines) = &mut jail.lines {
                    lines.prune(now - jail.settings.findtime as i64);
                }
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
        let mut too_old = Family::new(
            "banset_jail_too_old_failures_total",
            "counter",
            "Failures older than the jail's findtime when read (a backlog after downtime): not counted.",
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
            too_old = too_old.sample(&jail, j.too_old as f64);
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
            too_old,
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
                    too_old: j.too_old,
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
                    waiting: s.stats.waiting.load(std::sync::atomic::Ordering::Relaxed),
                })
                .collect(),
            unbans: self.unbans,
            repairs: self.keeper.repairs,
            last_heal_ms: self.keeper.last_heal_ms,
        }
    }
}

/// What a reload reads, validates and checks, as start-up does; run on
/// the reload thread, never on the loop.
/// The matched-lines store of a jail whose mails list them. Bounded (the
/// lines are an attacker's text): at most 50 lines of each of 1,024
/// addresses, 1 KiB each, 50 MiB at worst; a mail lists an address's
/// latest lines, which are the ones that made its ban.
fn matched_lines(jail: &JailSettings) -> Option<MatchedLines> {
    let want = jail.mail.iter().map(|m| m.lines).max().unwrap_or(0);
    (want > 0).then(|| MatchedLines::new(want.min(50), 1024))
}

fn read_for_reload(
    config_path: Option<&std::path::Path>,
    fail2ban: Option<&std::path::Path>,
    ledger: &std::path::Path,
) -> Result<Loaded> {
    let mut config = Config::load(config_path)?;
    let (settings, notices) = load_settings(&mut config, fail2ban)?;
    if let Err(e) = check_inputs(&config, &settings, fail2ban, Some(ledger)) {
        anyhow::bail!("{e}");
    }
    let specs = set_specs(&config, &settings)?;
    Ok(Loaded {
        config,
        settings,
        specs,
        notices,
    })
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
