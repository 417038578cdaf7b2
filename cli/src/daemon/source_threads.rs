//! Source threads: each file source is followed on one of a few shared
//! poller threads (`banset_watch::poller`), each journal query on a thread
//! of its own; every entry goes to its source's pipeline
//! (`banset_watch::pipeline`, the code `regex-test` runs), and only the
//! failures go to the daemon's loop. Lines never cross a channel; failures
//! do. Nothing about a line is decided here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use banset_core::{Clock, SystemClock};
use banset_watch::config::SourceKey;
use banset_watch::follow::{follow_journal, FileFollower, Position};
use banset_watch::mail::MAX_LINE;
use banset_watch::pipeline::{Failure, RawEntry, SourcePipeline};
use banset_watch::poller::{FileSink, Followed, Poller, Waker};

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

/// A running source.
pub struct SourceHandle {
    pub key: SourceKey,
    pub stats: Arc<SourceStats>,
    stop: Arc<AtomicBool>,
    child_pid: Arc<AtomicU32>,
    running: Running,
}

/// Where a source runs, and how to wait until it is done.
enum Running {
    /// A journal source: its own thread, blocked reading its child.
    Thread(JoinHandle<()>),
    /// A file source on a shared poller thread, which drops the sender of
    /// `done` once the file had its last look.
    Polled { done: Receiver<()>, waker: Waker },
}

impl SourceHandle {
    /// Asks the source to stop, without waiting: a file source's poller
    /// is woken to give it its last look, a journal source stops when its
    /// child ends.
    pub fn signal(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let pid = self.child_pid.load(Ordering::SeqCst);
        if pid != 0 {
            // Our own child (journalctl): ending it ends its read.
            crate::sys::terminate(pid);
        }
        if let Running::Polled { waker, .. } = &self.running {
            waker.wake();
        }
    }

    /// Waits for the source, after [`SourceHandle::signal`]: it finishes
    /// the lines it has read and reports its final position first.
    pub fn join(self) {
        match self.running {
            Running::Thread(t) => {
                let _ = t.join();
            }
            // Err once the poller dropped the file (never sent to).
            Running::Polled { done, .. } => {
                let _ = done.recv();
            }
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

/// The threads that follow the file sources, a few for any number of
/// files: a thread per file cost 90 threads with every stock jail of
/// fail2ban enabled. Several, not one, so a burst in one busy log does
/// not hold up the others on a machine with cores to spare.
#[derive(Default)]
pub struct Pollers(Vec<Poller>);

impl Pollers {
    /// At most this many poller threads.
    fn limit() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, MAX_POLLERS))
    }

    /// The poller for one more file: a new one while under the limit,
    /// else the one following the fewest files.
    fn pick(&mut self) -> std::io::Result<&Poller> {
        if self.0.len() < Self::limit() {
            self.0
                .push(Poller::spawn(format!("file poller {}", self.0.len() + 1))?);
        }
        Ok(self
            .0
            .iter()
            .min_by_key(|p| p.load())
            .expect("at least one poller"))
    }
}

/// The most poller threads, whatever the number of cores.
pub const MAX_POLLERS: usize = 4;

/// What a source needs: its pipeline (which knows the jail each of its
/// filters feeds), and where to resume.
pub struct SourceSpec {
    pub key: SourceKey,
    pub pipeline: SourcePipeline,
    /// Where a previous run stopped (file position or journal cursor).
    pub saved: Option<String>,
    pub journalctl: PathBuf,
    pub generation: u64,
}

/// Starts a source: a file on a poller, a journal query on its own
/// thread. `None` when no poller could be started (reported).
pub fn spawn(
    spec: SourceSpec,
    events: Sender<Event>,
    pollers: &mut Pollers,
) -> Option<SourceHandle> {
    let stats = Arc::new(SourceStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let child_pid = Arc::new(AtomicU32::new(0));
    let key = spec.key.clone();
    let running = match &spec.key {
        SourceKey::File(path) => {
            // A file's starting point is fixed here, before the daemon
            // says it is watching, not whenever the poller first looks.
            let saved = spec.saved.as_deref().and_then(Position::decode);
            let mut follower =
                FileFollower::new(path.clone(), saved).report_missing(stats.waiting.clone());
            if let Err(e) = follower.prime() {
                let _ = events.send(Event::SourceError {
                    source: spec.key.to_string(),
                    message: e.to_string(),
                });
            }
            let poller = match pollers.pick() {
                Ok(p) => p,
                Err(e) => {
                    let _ = events.send(Event::SourceError {
                        source: spec.key.to_string(),
                        message: format!("cannot start a thread to follow it: {e}"),
                    });
                    return None;
                }
            };
            let (done_tx, done) = channel();
            let last = follower.position();
            poller.add(Followed {
                follower,
                sink: Box::new(FileLines {
                    lines: Lines::new(spec, events, stats.clone()),
                    last,
                    _done: done_tx,
                }),
                stop: stop.clone(),
            });
            Running::Polled {
                done,
                waker: poller.waker(),
            }
        }
        SourceKey::Journal(_) => {
            let (stop, child_pid, stats) = (stop.clone(), child_pid.clone(), stats.clone());
            let thread = std::thread::Builder::new()
                .name(format!("source {key}"))
                .spawn(move || run_journal(spec, events, &stop, &child_pid, stats))
                .expect("spawning a source thread");
            Running::Thread(thread)
        }
    };
    Some(SourceHandle {
        key,
        stats,
        stop,
        child_pid,
        running,
    })
}

/// A source's entries through its pipeline; failures (only) to the
/// daemon's loop.
struct Lines {
    spec: SourceSpec,
    events: Sender<Event>,
    stats: Arc<SourceStats>,
    failures: Vec<Failure>,
}

impl Lines {
    fn new(spec: SourceSpec, events: Sender<Event>, stats: Arc<SourceStats>) -> Lines {
        Lines {
            spec,
            events,
            stats,
            failures: Vec::with_capacity(4),
        }
    }

    /// One entry. `resume` says where to resume once this entry's effect
    /// is kept (asked only for a failure that counts).
    fn entry(&mut self, entry: RawEntry<'_>, resume: &dyn Fn() -> Option<String>) {
        let stats = &self.stats;
        stats.lines.fetch_add(1, Ordering::Relaxed);
        self.failures.clear();
        let text = entry.text();
        let pipeline = &self.spec.pipeline;
        pipeline
            .pipeline
            .process(entry, SystemClock.now(), &mut self.failures);
        if self.failures.is_empty() {
            return;
        }
        let resume = resume();
        for f in self.failures.drain(..) {
            if f.ignored {
                stats.ignored.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            stats.hits.fetch_add(1, Ordering::Relaxed);
            let _ = self.events.send(Event::Failure {
                generation: self.spec.generation,
                jail: pipeline.jail_of_filter[f.filter],
                target: f.target,
                at: f.at,
                line: text[..text.len().min(MAX_LINE)].into(),
                resume: resume
                    .as_ref()
                    .map(|value| (self.spec.key.clone(), value.clone())),
            });
        }
    }

    fn position(&self, value: String) {
        let _ = self.events.send(Event::Position {
            source: self.spec.key.clone(),
            value,
        });
    }

    fn error(&self, message: String) {
        let _ = self.events.send(Event::SourceError {
            source: self.spec.key.to_string(),
            message,
        });
    }
}

/// A file source's lines, on its poller.
struct FileLines {
    lines: Lines,
    /// The position last reported (reported again only when it moves).
    last: Option<Position>,
    /// Dropped with the file once the poller is done with it: its
    /// [`SourceHandle::join`] returns then.
    _done: Sender<()>,
}

impl FileSink for FileLines {
    fn line(&mut self, line: &[u8], after: Position) {
        self.lines
            .entry(RawEntry::Line(line), &|| Some(after.encode()));
    }

    fn position(&mut self, at: Position) {
        if self.last != Some(at) {
            self.last = Some(at);
            self.lines.position(at.encode());
        }
    }

    fn error(&mut self, message: String) {
        self.lines.error(message);
    }
}

fn run_journal(
    spec: SourceSpec,
    events: Sender<Event>,
    stop: &AtomicBool,
    child_pid: &Arc<AtomicU32>,
    stats: Arc<SourceStats>,
) {
    let SourceKey::Journal(matches) = spec.key.clone() else {
        return;
    };
    let (journalctl, saved) = (spec.journalctl.clone(), spec.saved.clone());
    let mut lines = Lines::new(spec, events, stats);
    let mut last_cursor = saved.clone();
    let errors = lines.events.clone();
    let key = lines.spec.key.to_string();
    follow_journal(
        &journalctl,
        &matches,
        saved,
        stop,
        child_pid,
        &mut |entry| {
            lines.entry(
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
                lines.position(c);
            }
        },
        &mut |message| {
            let _ = errors.send(Event::SourceError {
                source: key.clone(),
                message,
            });
        },
    );
    if let Some(c) = last_cursor {
        lines.position(c);
    }
}

/// The ledger's `meta` key of a source's saved position.
pub(super) fn position_key(source: &SourceKey) -> String {
    format!("watch.position:{source}")
}
