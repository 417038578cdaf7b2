//! Source threads: each follows one log file or one journal query, scans
//! every line with its combined matcher, and sends only the hits to the
//! daemon's loop. Lines never cross a channel; failures do.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use banset_core::{Clock, SystemClock};
use banset_watch::config::SourceKey;
use banset_watch::follow::{follow_file, follow_journal, FileFollower, Position};
use banset_watch::logtime::{parse_date, split_date, DateContext};
use banset_watch::{Matcher, Scan};

use super::Event;

/// Counters of one source, read by the status snapshot.
#[derive(Debug, Default)]
pub struct SourceStats {
    pub lines: AtomicU64,
    pub hits: AtomicU64,
    pub ignored: AtomicU64,
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
            // SAFETY: kill(2) on our own child (journalctl), to end its read.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
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

/// What a source thread needs: its matcher, which jail each of the
/// matcher's filters feeds, and the daemon's channel.
pub struct SourceSpec {
    pub key: SourceKey,
    pub matcher: Arc<Matcher>,
    /// Jail index of each filter of `matcher`.
    pub jail_of_filter: Vec<usize>,
    /// Where a previous run stopped (file position or journal cursor).
    pub saved: Option<String>,
    pub journalctl: PathBuf,
    pub utc_offset: i64,
    pub generation: u64,
}

pub fn spawn(spec: SourceSpec, events: Sender<Event>) -> SourceHandle {
    // A file's starting point is fixed here, before the daemon says it is
    // watching, not whenever the thread first runs.
    let follower = match &spec.key {
        SourceKey::File(path) => {
            let saved = spec.saved.as_deref().and_then(Position::decode);
            let mut f = FileFollower::new(path.clone(), saved);
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
    let stats = Arc::new(SourceStats::default());
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
    let mut hits = Vec::with_capacity(4);
    let generation = spec.generation;
    // Scans one line; `at` is the time the source knows (journal), else the
    // line's own date, else now. `resume` says where to resume once this
    // line's effect is kept (asked only for a hit).
    let mut handle = |line: &[u8], at: Option<i64>, resume: &dyn Fn() -> Option<String>| {
        stats.lines.fetch_add(1, Ordering::Relaxed);
        let (date, rest) = split_date(line);
        hits.clear();
        if spec.matcher.scan(rest, &mut hits) != Scan::Hit {
            return;
        }
        let now = SystemClock.now();
        let resume = resume();
        for hit in hits.drain(..) {
            if hit.ignored {
                stats.ignored.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            stats.hits.fetch_add(1, Ordering::Relaxed);
            let at = at
                .or_else(|| {
                    parse_date(
                        date,
                        &DateContext {
                            now,
                            utc_offset: spec.utc_offset,
                        },
                    )
                })
                // A date from the future is a wrong clock or a forged
                // line; count it now.
                .filter(|t| *t <= now)
                .unwrap_or(now);
            let _ = events.send(Event::Failure {
                generation,
                jail: spec.jail_of_filter[hit.filter],
                target: hit.target,
                at,
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
                &mut |line, after| handle(line, None, &|| Some(after.encode())),
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
                    handle(&entry.line, entry.at, &|| entry.cursor.clone());
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
