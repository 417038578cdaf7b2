//! Source threads: each follows one log file or one journal query, hands
//! every entry to its source's pipeline (`banset_watch::pipeline`, the code
//! `regex-test` runs), and sends only the failures to the daemon's loop.
//! Lines never cross a channel; failures do. Nothing about a line is
//! decided here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use banset_core::{Clock, SystemClock};
use banset_watch::config::SourceKey;
use banset_watch::follow::{follow_file, follow_journal, FileFollower, Position};
use banset_watch::mail::MAX_LINE;
use banset_watch::pipeline::{Failure, RawEntry, SourcePipeline};

use super::event::Event;

/// Counters of one source, read by the status snapshot.
#[derive(Debug, Default)]
pub struct SourceStats {
    pub lines: AtomicU64,
    pub hits: AtomicU64,
    pub ignored: AtomicU64,
    /// A file source whose path names no file now.
    pub waiting: Arc<AtomicBool>,
}

/// A running source thread.
pub struct SourceHandle {
    pub key: SourceKey,
    pub stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
    child_pid: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl SourceHandle {
    /// Asks the thread to stop, without waiting: a file source notices
    /// within its one-second look, a journal source when its child ends.
    pub fn signal(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let pid = self.child_pid.load(Ordering::SeqCst);
        if pid != 0 {
            // Our own child (journalctl): ending it ends its read.
            crate::sys::terminate(pid);
        }
    }

    /// Waits for the thread, after [`SourceHandle::signal`]: it finishes
    /// the lines it has read and reports its final position first.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stops every source: all are asked first, then all are waited for, so
/// stopping takes one source's time, not the sum (89 sources took 58 s,
/// past systemd's stop timeout, which then killed the daemon before it
/// saved its positions).
pub fn stop_all(sources: Vec<SourceHandle>) {
    for s in &sources {
        s.signal();
    }
    for s in sources {
        s.join();
    }
}

/// What a source thread needs: its pipeline (which knows the jail each of
/// its filters feeds), and where to resume.
pub struct SourceSpec {
    pub key: SourceKey,
    pub pipeline: SourcePipeline,
    /// Where a previous run stopped (file position or journal cursor).
    pub saved: Option<String>,
    pub journalctl: PathBuf,
    pub generation: u64,
}

pub fn spawn(spec: SourceSpec, events: Sender<Event>) -> SourceHandle {
    // A file's starting point is fixed here, before the daemon says it is
    // watching, not whenever the thread first runs.
    let stats = Arc::new(SourceStats::default());
    let follower = match &spec.key {
        SourceKey::File(path) => {
            let saved = spec.saved.as_deref().and_then(Position::decode);
            let mut f =
                FileFollower::new(path.clone(), saved).report_missing(stats.waiting.clone());
            if let Err(e) = f.prime() {
                let _ = events.send(Event::SourceError {
                    source: spec.key.to_string(),
                    message: e.to_string(),
                });
            }
            Some(f)
        }
        SourceKey::Journal(_) => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let child_pid = Arc::new(AtomicU32::new(0));
    let key = spec.key.clone();
    let thread = {
        let (stop, child_pid, stats) = (stop.clone(), child_pid.clone(), stats.clone());
        std::thread::Builder::new()
            .name(format!("source {key}"))
            .spawn(move || run(spec, follower, events, &stop, &child_pid, &stats))
            .expect("spawning a source thread")
    };
    SourceHandle {
        key,
        stats,
        stop,
        child_pid,
        thread: Some(thread),
    }
}

fn run(
    spec: SourceSpec,
    follower: Option<FileFollower>,
    events: Sender<Event>,
    stop: &AtomicBool,
    child_pid: &Arc<AtomicU32>,
    stats: &SourceStats,
) {
    let mut failures: Vec<Failure> = Vec::with_capacity(4);
    let generation = spec.generation;
    // `resume` says where to resume once this line's effect is kept
    // (asked only for a failure that counts).
    let mut handle = |entry: RawEntry<'_>, resume: &dyn Fn() -> Option<String>| {
        stats.lines.fetch_add(1, Ordering::Relaxed);
        failures.clear();
        let text = entry.text();
        spec.pipeline
            .pipeline
            .process(entry, SystemClock.now(), &mut failures);
        if failures.is_empty() {
            return;
        }
        let resume = resume();
        for f in failures.drain(..) {
            if f.ignored {
                stats.ignored.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            stats.hits.fetch_add(1, Ordering::Relaxed);
            let _ = events.send(Event::Failure {
                generation,
                jail: spec.pipeline.jail_of_filter[f.filter],
                target: f.target,
                at: f.at,
                line: text[..text.len().min(MAX_LINE)].into(),
                resume: resume
                    .as_ref()
                    .map(|value| (spec.key.clone(), value.clone())),
            });
        }
    };
    let key = spec.key.clone();
    let report_error = |msg: String| {
        let _ = events.send(Event::SourceError {
            source: key.to_string(),
            message: msg,
        });
    };
    match &spec.key {
        SourceKey::File(_) => {
            let mut follower = follower.expect("a file source has a follower");
            let mut last: Option<Position> = follower.position();
            follow_file(
                &mut follower,
                stop,
                &mut |line, after| handle(RawEntry::Line(line), &|| Some(after.encode())),
                &mut |pos| {
                    if last != Some(pos) {
                        last = Some(pos);
                        let _ = events.send(Event::Position {
                            source: spec.key.clone(),
                            value: pos.encode(),
                        });
                    }
                },
                &mut |msg| report_error(msg),
            );
        }
        SourceKey::Journal(matches) => {
            let mut last_cursor = spec.saved.clone();
            follow_journal(
                &spec.journalctl,
                matches,
                spec.saved.clone(),
                stop,
                child_pid,
                &mut |entry| {
                    handle(
                        RawEntry::Journal {
                            line: &entry.line,
                            at: entry.at,
                        },
                        &|| entry.cursor.clone(),
                    );
                    if let Some(c) = entry.cursor {
                        last_cursor = Some(c.clone());
                        // The loop keeps the latest and saves it with the
                        // failures it follows, so a restart re-reads nothing.
                        let _ = events.send(Event::Position {
                            source: spec.key.clone(),
                            value: c,
                        });
                    }
                },
                &mut |msg| report_error(msg),
            );
            if let Some(c) = last_cursor {
                let _ = events.send(Event::Position {
                    source: spec.key.clone(),
                    value: c,
                });
            }
        }
    }
}

/// The ledger's `meta` key of a source's saved position.
pub(super) fn position_key(source: &SourceKey) -> String {
    format!("watch.position:{source}")
}
