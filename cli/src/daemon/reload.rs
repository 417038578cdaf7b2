//! SIGHUP: the configuration is read again on its own thread, and the
//! loop applies it when it comes.

use anyhow::Result;

use super::event::{Event, Loaded};
use super::keeper;
use super::logging::log;
use super::set_plan::set_specs;
use super::settings::{check_inputs, load_settings};
use super::state::Daemon;
use crate::config::Config;
use crate::output::counted;

impl Daemon<'_> {
    /// SIGHUP: reads the configuration on its own thread. Reading can take
    /// long (a large or hostile fail2ban tree, a slow disk); the loop keeps
    /// banning and healing meanwhile, and applies the result when it comes
    /// (`Event::Reloaded`). SIGHUPs during a read make one more read after
    /// it, so the last edit is always the one applied.
    pub(super) fn start_reload(&mut self) {
        if self.reloading {
            self.reload_again = true;
            return;
        }
        let path = self.ctx.global.config.clone();
        let fail2ban = self.fail2ban.clone();
        let ledger = std::path::PathBuf::from(self.ctx.fw.ledger.path());
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
    pub(super) fn apply_reload(&mut self, loaded: std::result::Result<Loaded, String>) {
        self.reloading = false;
        match loaded {
            Ok(loaded) => self.apply_loaded(loaded),
            Err(e) => log!("reload refused, keeping the running configuration: {e}"),
        }
        if std::mem::take(&mut self.reload_again) {
            self.start_reload();
        }
    }

    pub(super) fn apply_loaded(&mut self, loaded: Loaded) {
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
        self.ctx.fw.allowlist = self.global_allowlist();
        self.ensure_sets();
        // After the sets exist: remote bans land in them.
        self.reload_fleet();
        self.watch_firewalld();
        self.start_sources();
        log!(
            "reloaded: {}, {}",
            counted(self.jails.len(), "jail", "jails"),
            counted(self.sources.len(), "source", "sources")
        );
    }
}

impl Daemon<'_> {
    /// Hands the fleet thread the reloaded `[fleet]` and the allowlist
    /// (`ignore` guards remote bans too), or starts the thread when the
    /// section (or this host's `fleet join`) is new.
    fn reload_fleet(&mut self) {
        let allowlist = self.global_allowlist();
        let config = self.ctx.config.fleet.clone();
        match &mut self.fleet {
            Some(fleet) => {
                fleet.allowlist(allowlist);
                fleet.reconfigure(config);
            }
            None if config.is_some() => {
                let state = crate::context::state_dir(&self.ctx.global, &self.ctx.config);
                match super::fleet::spawn(
                    config.as_ref(),
                    &state,
                    allowlist,
                    self.ctx.global.dry_run,
                ) {
                    Ok(handle) => self.fleet = handle,
                    Err(e) => log!("fleet: not started: {e:#}"),
                }
            }
            None => {}
        }
    }
}

/// What a reload reads, validates and checks, as start-up does; run on
/// the reload thread, never on the loop.
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
