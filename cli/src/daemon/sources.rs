//! Which sources run: starting one per configured log or journal query
//! (the journal ones all read by one `journal_reader`), finding files
//! that appeared, stopping them all, and saving where each stands. The
//! threads themselves are `source_threads`.

use banset_watch::config::SourceKey;
use banset_watch::pipeline::{source_pipeline, SourcePipeline};

use super::event::PositionKey;
use super::logging::log;
use super::source_threads::{position_key, spawn_file, stop_all, SourceSpec};
use super::state::Daemon;

impl Daemon<'_> {
    pub(super) fn start_sources(&mut self) {
        self.generation += 1;
        let mut journal = Vec::new();
        for (key, built) in banset_watch::pipeline::source_pipelines(&self.settings.jails) {
            let pipeline = match built {
                Ok(p) => p,
                Err(e) => {
                    log!("source {key}: {e}; not watched");
                    continue;
                }
            };
            let saved = self.saved_position(&PositionKey::Source(key.clone()));
            let spec = self.spec(key, pipeline, saved);
            match spec.key {
                SourceKey::Journal(_) => journal.push(spec),
                SourceKey::File(_) => self.start_file(spec),
            }
        }
        // Every source is built: what the configuration's checks compiled
        // is held by the sources that use it, and the rest may go.
        drop(std::mem::take(&mut self.settings.compiled));
        let shared = self.saved_position(&PositionKey::Journal);
        let (handles, reader) = super::journal_reader::spawn(
            journal,
            shared,
            self.settings.watch.journalctl.clone(),
            self.events_tx.clone(),
        );
        self.sources.extend(handles);
        self.journal_reader = reader;
    }

    /// Where a previous run stopped (this run's latest, else the ledger's).
    fn saved_position(&mut self, key: &PositionKey) -> Option<String> {
        self.positions.get(key).cloned().or_else(|| {
            self.ctx
                .fw
                .ledger
                .read()
                .ok()?
                .meta(&position_key(key))
                .ok()?
        })
    }

    fn spec(&self, key: SourceKey, pipeline: SourcePipeline, saved: Option<String>) -> SourceSpec {
        SourceSpec {
            key,
            pipeline,
            saved,
            generation: self.generation,
        }
    }

    fn start_file(&mut self, spec: SourceSpec) {
        if let Some(source) = spawn_file(spec, self.events_tx.clone(), &mut self.pollers) {
            self.sources.push(source);
        }
    }

    /// Follows files the jails' `logpath` globs match now and did not
    /// before (fail2ban expands them only at start). A new file is read
    /// from its top, or, when it is a followed file renamed to a matching
    /// name, from where that one stands.
    pub(super) fn discover_sources(&mut self) {
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
                stop_all(vec![old], None);
                while let Ok(event) = self.events.try_recv() {
                    self.handle(event);
                }
            }
            let saved = match (&key, self.positions.get(&PositionKey::Source(key.clone()))) {
                (_, Some(p)) => Some(p.clone()),
                (SourceKey::File(path), None) => banset_watch::follow::Position::for_new_file(
                    path,
                    self.positions.values().map(String::as_str),
                )
                .map(|p| p.encode()),
                (SourceKey::Journal(_), None) => None,
            };
            log!("source {key}: new match of a logpath; following it");
            let spec = self.spec(key, pipeline, saved);
            self.start_file(spec);
        }
    }

    pub(super) fn stop_sources(&mut self) {
        stop_all(
            std::mem::take(&mut self.sources),
            self.journal_reader.take(),
        );
    }

    pub(super) fn save_positions(&mut self) {
        if !self.positions_dirty {
            return;
        }
        let Ok(tx) = self.ctx.fw.ledger.begin() else {
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
}
