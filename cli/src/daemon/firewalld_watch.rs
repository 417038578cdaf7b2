//! Subscribing to firewalld's reloads, so its sets are healed at once.

use banset_core::BackendKind;
use banset_firewall::watchers::{self, ReloadEvent};

use super::event::Event;
use super::logging::log;
use super::state::Daemon;

impl Daemon<'_> {
    /// firewalld drops its runtime direct rules on every reload and restart;
    /// when firewalld-backed sets exist, listen for both on the bus and heal
    /// at once (the once-a-second check remains the fallback).
    pub(super) fn watch_firewalld(&mut self) {
        if self.firewalld_watched {
            return;
        }
        let uses_firewalld = self
            .ctx
            .fw
            .ledger
            .read()
            .and_then(|tx| tx.set_specs())
            .map(|specs| specs.iter().any(|s| s.backend == BackendKind::Firewalld))
            .unwrap_or(false);
        if !uses_firewalld {
            return;
        }
        let tx = self.events_tx.clone();
        match watchers::spawn_reload_watcher(move |event| {
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
}
