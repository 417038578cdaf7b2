//! The one journal reader: a thread and a `journalctl --follow` child
//! for every journal source together (the OR of their matches), each
//! entry handed to the pipelines of the sources whose matches it
//! satisfies (`banset_watch::journal_share` decides which). A reader per
//! source made threads and processes grow with the jails on the systemd
//! backend. One cursor, the reader's, is saved (`watch.position:journal`);
//! a reload stops the reader and starts it again, with the new sources'
//! matches, after that cursor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use banset_watch::config::SourceKey;
use banset_watch::follow::follow_journal;
use banset_watch::journal_share::{past_floor, resume, JournalShare};
use banset_watch::pipeline::RawEntry;

use super::event::{Event, PositionKey};
use super::source_threads::{Lines, Running, SourceHandle, SourceSpec, SourceStats, Worker};

/// Starts the reader for `specs` (journal sources; each one's `saved` is
/// its own cursor from a banset that ran a reader per source), resuming
/// after `shared` (the reader's own cursor) when there is one. Returns a
/// handle per source (for its counters) and the reader's worker; no
/// worker without sources.
pub fn spawn(
    specs: Vec<SourceSpec>,
    shared: Option<String>,
    journalctl: PathBuf,
    events: Sender<Event>,
) -> (Vec<SourceHandle>, Option<Worker>) {
    if specs.is_empty() {
        return (Vec::new(), None);
    }
    let share = JournalShare::new(specs.iter().map(|s| match &s.key {
        SourceKey::Journal(m) => m.as_slice(),
        SourceKey::File(_) => &[],
    }));
    let per_source: Vec<Option<String>> = specs.iter().map(|s| s.saved.clone()).collect();
    let start = resume(shared, &per_source);
    let mut handles = Vec::with_capacity(specs.len());
    let mut sources = Vec::with_capacity(specs.len());
    for spec in specs {
        let stats = Arc::new(SourceStats::default());
        handles.push(SourceHandle::shared(spec.key.clone(), stats.clone()));
        sources.push(Lines::new(
            spec,
            PositionKey::Journal,
            events.clone(),
            stats,
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let child_pid = Arc::new(AtomicU32::new(0));
    let thread = {
        let (stop, child_pid) = (stop.clone(), child_pid.clone());
        std::thread::Builder::new()
            .name("journal reader".into())
            .spawn(move || {
                let mut floors = start.floors;
                // Only a cursor read here: saving the start of a first
                // run after per-source readers would drop their floors.
                let mut last = None;
                let mut to = Vec::new();
                let args = share.args();
                follow_journal(
                    &journalctl,
                    &args,
                    start.cursor,
                    &stop,
                    &child_pid,
                    &mut |entry, fields| {
                        to.clear();
                        share.dispatch(fields, &mut to);
                        for &i in &to {
                            if past_floor(&mut floors[i], entry.cursor.as_deref()) {
                                sources[i].entry(
                                    RawEntry::Journal {
                                        line: &entry.line,
                                        at: entry.at,
                                    },
                                    &|| entry.cursor.clone(),
                                );
                            }
                        }
                        if let Some(c) = entry.cursor {
                            // The loop keeps the latest and saves it with
                            // the failures it follows, so a restart
                            // re-reads nothing.
                            let _ = events.send(Event::Position {
                                source: PositionKey::Journal,
                                value: c.clone(),
                            });
                            last = Some(c);
                        }
                    },
                    &mut |message| {
                        let _ = events.send(Event::SourceError {
                            source: "journal".into(),
                            message,
                        });
                    },
                );
                if let Some(c) = last {
                    let _ = events.send(Event::Position {
                        source: PositionKey::Journal,
                        value: c,
                    });
                }
            })
            .expect("spawning the journal reader")
    };
    (
        handles,
        Some(Worker {
            stop,
            child_pid,
            running: Running::Thread(thread),
        }),
    )
}
