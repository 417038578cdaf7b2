//! The daemon's state: what its loop owns (ledger and backends through the
//! context, jails, sources, timers) and the few helpers every part uses.
//! Each part of the daemon (`bans`, `reload`, `sets`, `sources`...) adds
//! its own methods in its own file and imports this one, never the loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use banset_core::{Allowlist, Clock, SetName, SetSpec, Target};
use banset_firewall::host_addresses;
use banset_watch::config::{Settings, SourceKey};
use banset_watch::policy::Jails;

use super::event::Event;
use super::set_plan::set_specs;
use super::source_threads::{Pollers, SourceHandle};
use super::{keeper, notify};
use crate::context::Context;

pub struct Daemon<'a> {
    pub(super) ctx: &'a mut Context,
    pub(super) settings: Settings,
    /// The jail policy: failure windows, escalation, recidive.
    pub(super) jails: Jails,
    pub(super) generation: u64,
    /// Specs of the sets the config defines, and of jail sets it does not.
    pub(super) specs: BTreeMap<SetName, SetSpec>,
    pub(super) sources: Vec<SourceHandle>,
    /// The threads following the file sources.
    pub(super) pollers: Pollers,
    pub(super) positions: HashMap<SourceKey, String>,
    pub(super) positions_dirty: bool,
    pub(super) events_tx: Sender<Event>,
    pub(super) events: Receiver<Event>,
    pub(super) keeper: keeper::Keeper,
    pub(super) started: i64,
    pub(super) unbans: u64,
    pub(super) errors: BTreeMap<&'static str, u64>,
    pub(super) notifier: notify::Notifier,
    pub(super) metrics_text: Arc<std::sync::Mutex<String>>,
    pub(super) last_metrics: Instant,
    /// The firewalld reload subscription is in place.
    pub(super) firewalld_watched: bool,
    /// `--fail2ban DIR`, read again on reload.
    pub(super) fail2ban: Option<std::path::PathBuf>,
    /// A reload thread is reading the configuration.
    pub(super) reloading: bool,
    /// Another SIGHUP came meanwhile: read the files again after it.
    pub(super) reload_again: bool,
    /// Prefixes the control socket's `ignore-add` gave (until stop).
    pub(super) runtime_ignore: Vec<Target>,
    /// Jail sets the ledger has as allow-only (the config does not say so,
    /// or it would have been refused): bans into them are refused, since
    /// they would let the attacker in.
    pub(super) allow_only: std::collections::HashSet<banset_core::SetName>,
    /// The control socket; its file goes when the daemon does.
    pub(super) control: Option<crate::control::server::Socket>,
    /// The fleet thread, when this host shares bans (`[fleet]`).
    pub(super) fleet: Option<super::fleet::FleetHandle>,
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
            pollers: Pollers::default(),
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
            fleet: None,
        };
        daemon.jails = daemon.build_jails(Jails::default());
        Ok(daemon)
    }

    pub(super) fn global_allowlist(&self) -> Allowlist {
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
    pub(super) fn rebuild_allowlists(&mut self) {
        let old = std::mem::take(&mut self.jails);
        self.jails = self.build_jails(old);
        self.ctx.fw.allowlist = self.global_allowlist();
        if let Some(fleet) = &self.fleet {
            fleet.allowlist(self.global_allowlist());
        }
    }

    /// Jails for the current settings, keeping the windows (failure
    /// counts) of jails that existed before under the same name.
    pub(super) fn build_jails(&self, old: Jails) -> Jails {
        Jails::new(
            &self.settings.jails,
            self.settings.recidive.clone(),
            &self.global_allowlist(),
            old,
        )
    }
}
