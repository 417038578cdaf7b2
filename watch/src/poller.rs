//! Threads that follow many files each.
//!
//! A thread per followed file cost ninety threads (and ninety inotify
//! instances, of the 128 a user gets by default) with every stock jail of
//! fail2ban enabled. A [`Poller`] follows any number of files on one
//! thread: one inotify instance watches their directories, an event reads
//! the files it names at once, and every file is looked at once a second
//! anyway (a directory that does not exist yet cannot be watched). Files
//! join and leave a running poller; one that is asked to stop gets one
//! last look first, so what was written before the stop is read and its
//! position reported.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use crate::follow::{FileFollower, Position};

/// Every followed file is looked at this often even without an event.
const TICK: Duration = Duration::from_secs(1);

/// At most this much of one file is read per look: a file with more is
/// looked at again after the others had their turn, so a backlog in one
/// log does not hold up the lines of the others.
const TURN: u64 = 1 << 20;

/// What a poller does with one file's lines.
pub trait FileSink: Send {
    /// A complete line, and the position to resume at once its effect is
    /// kept.
    fn line(&mut self, line: &[u8], after: Position);
    /// Where reading stands after a look at the file.
    fn position(&mut self, at: Position);
    /// A problem worth a log line (reported once until it changes).
    fn error(&mut self, message: String);
}

/// One file to follow, with what to do with its lines and the flag that
/// asks it to stop. The poller drops it (and so its sink) once it has had
/// its last look: a sink can tell its owner so by what it holds.
pub struct Followed {
    /// The file.
    pub follower: FileFollower,
    /// Its lines' destination.
    pub sink: Box<dyn FileSink>,
    /// Set to stop following it; then [`Waker::wake`] the poller.
    pub stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Followed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Followed")
            .field("follower", &self.follower)
            .finish()
    }
}

/// Wakes a poller to look at its stop flags and new files now rather than
/// at its next tick.
#[derive(Debug, Clone)]
pub struct Waker(Arc<UnixStream>);

impl Waker {
    /// See the type.
    pub fn wake(&self) {
        // Non-blocking: a full socket already holds a wake-up.
        let _ = (&*self.0).write(&[1]);
    }
}

/// A thread following files (see the module documentation). Dropping it
/// stops the thread, dropping the files it still follows without a last
/// look: stop them first.
#[derive(Debug)]
pub struct Poller {
    add: Option<Sender<Followed>>,
    waker: Waker,
    load: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Starts a poller thread named `name`.
    pub fn spawn(name: String) -> std::io::Result<Poller> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let (add, added) = channel();
        let load = Arc::new(AtomicUsize::new(0));
        let thread = {
            let load = load.clone();
            std::thread::Builder::new()
                .name(name)
                .spawn(move || run(added, wake_rx, &load))?
        };
        Ok(Poller {
            add: Some(add),
            waker: Waker(Arc::new(wake_tx)),
            load,
            thread: Some(thread),
        })
    }

    /// Follows one more file. Its first look is at once.
    pub fn add(&self, file: Followed) {
        self.load.fetch_add(1, Ordering::Relaxed);
        if let Some(add) = &self.add {
            let _ = add.send(file);
        }
        self.waker.wake();
    }

    /// What wakes this poller.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// How many files it follows (those added and not yet let go).
    pub fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.add = None;
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A followed file on the poller's thread.
struct Entry {
    file: Followed,
    dir: PathBuf,
    name: Option<OsString>,
    last_error: Option<String>,
    /// An event (or its arrival) asks for a look at the next turn.
    due: bool,
}

impl Entry {
    /// Reads what is new (up to [`TURN`] bytes; more left makes it due
    /// again) and reports where reading stands.
    fn look(&mut self, budget: u64) {
        let Followed { follower, sink, .. } = &mut self.file;
        match follower.poll_some(&mut |line, after| sink.line(line, after), budget) {
            Ok(more) => {
                self.due = more;
                self.last_error = None;
                if let Some(p) = follower.position() {
                    sink.position(p);
                }
            }
            Err(e) => {
                // Tried again at the next tick, not in a busy loop.
                self.due = false;
                let msg = format!("{}: {e}", follower.path().display());
                if self.last_error.as_ref() != Some(&msg) {
                    sink.error(msg.clone());
                    self.last_error = Some(msg);
                }
            }
        }
    }
}

/// The inotify instance of a poller and the directories it watches.
struct Watches {
    inotify: Inotify,
    dirs: HashMap<PathBuf, WatchDescriptor>,
}

impl Watches {
    fn new() -> Option<Watches> {
        Some(Watches {
            inotify: Inotify::init().ok()?,
            dirs: HashMap::new(),
        })
    }

    /// Watches `dir` if it is not yet. One that cannot be (it does not
    /// exist yet) is tried again at the next tick, which looks at its
    /// files meanwhile; so does a poller without inotify (the per-user
    /// limit of instances).
    fn watch(&mut self, dir: &PathBuf) {
        if self.dirs.contains_key(dir) {
            return;
        }
        let mask = WatchMask::MODIFY
            | WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE
            | WatchMask::ATTRIB
            | WatchMask::CLOSE_WRITE;
        if let Ok(wd) = self.inotify.watches().add(dir, mask) {
            self.dirs.insert(dir.clone(), wd);
        }
    }
}

fn run(added: Receiver<Followed>, wake: UnixStream, load: &AtomicUsize) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut watches: Option<Watches> = None;
    let mut events = vec![0u8; 16 * 1024];
    let mut next_tick = Instant::now();
    loop {
        loop {
            match added.try_recv() {
                Ok(file) => {
                    let dir = file.follower.dir().to_path_buf();
                    let name = file.follower.path().file_name().map(OsString::from);
                    entries.push(Entry {
                        file,
                        dir,
                        name,
                        last_error: None,
                        due: true,
                    });
                }
                // The owner is gone: so is everything followed here.
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => break,
            }
        }
        let tick = Instant::now() >= next_tick;
        if tick {
            next_tick = Instant::now() + TICK;
        }
        // A directory that could not be watched may exist now (looked for
        // each tick); after an overflow the watches start over.
        let fresh = watches.is_none();
        if fresh {
            watches = Watches::new();
        }
        if let Some(w) = &mut watches {
            for e in &mut entries {
                if e.due || tick || fresh {
                    w.watch(&e.dir);
                }
            }
        }
        let mut i = 0;
        while i < entries.len() {
            let e = &mut entries[i];
            let stopping = e.file.stop.load(Ordering::SeqCst);
            if e.due || tick || stopping {
                // The last look reads everything.
                e.look(if stopping { u64::MAX } else { TURN });
            }
            if stopping {
                // Counted out before it is dropped, which tells its owner
                // it is done.
                let gone = entries.swap_remove(i);
                load.fetch_sub(1, Ordering::Relaxed);
                drop(gone);
            } else {
                i += 1;
            }
        }
        let timeout = if entries.iter().any(|e| e.due) {
            Duration::ZERO
        } else {
            next_tick.saturating_duration_since(Instant::now())
        };
        let inotify_fd = watches.as_ref().map(|w| w.inotify.as_raw_fd());
        let (changed, woken) = wait(inotify_fd, wake.as_raw_fd(), timeout);
        if woken {
            let mut sink = [0u8; 64];
            while matches!((&wake).read(&mut sink), Ok(n) if n > 0) {}
        }
        if changed {
            mark_due(&mut watches, &mut events, &mut entries);
        }
    }
}

/// Reads the pending events and marks the files they concern.
fn mark_due(watches: &mut Option<Watches>, buf: &mut [u8], entries: &mut [Entry]) {
    let Some(w) = watches else { return };
    let mut reset = false;
    match w.inotify.read_events(buf) {
        Ok(evs) => {
            for ev in evs {
                // Overflow or a directory going away: start over.
                if ev.mask.contains(EventMask::Q_OVERFLOW) || ev.mask.contains(EventMask::IGNORED) {
                    reset = true;
                    continue;
                }
                let Some(dir) = w.dirs.iter().find(|(_, wd)| **wd == ev.wd).map(|(d, _)| d) else {
                    continue;
                };
                for e in entries.iter_mut().filter(|e| &e.dir == dir) {
                    if ev.name.is_none()
                        || e.name.as_deref() == ev.name
                        || e.file.follower.reads_a_retired_file()
                    {
                        e.due = true;
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => reset = true,
    }
    if reset {
        *watches = None;
        for e in entries {
            e.due = true;
        }
    }
}

/// Waits up to `timeout` for inotify events or a wake-up; says which came.
fn wait(inotify: Option<RawFd>, wake: RawFd, timeout: Duration) -> (bool, bool) {
    let mut fds = [
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: inotify.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: two valid pollfds (a negative fd is ignored by poll).
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if rc <= 0 {
        return (false, false);
    }
    (fds[1].revents != 0, fds[0].revents != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Collect {
        name: usize,
        seen: Arc<Mutex<Vec<(usize, String)>>>,
        looked: Arc<AtomicUsize>,
        _done: Sender<()>,
    }

    impl FileSink for Collect {
        fn line(&mut self, line: &[u8], _: Position) {
            let line = String::from_utf8_lossy(line).into_owned();
            self.seen.lock().unwrap().push((self.name, line));
        }
        fn position(&mut self, _: Position) {
            self.looked.fetch_add(1, Ordering::SeqCst);
        }
        fn error(&mut self, _: String) {}
    }

    fn append(path: &std::path::Path, text: &str) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// One thread follows many files, in two directories (one created
    /// after the files were added); a file asked to stop gets its last
    /// look, then is let go, which its owner sees.
    #[test]
    fn one_poller_follows_many_files_and_a_stopped_one_gets_a_last_look() {
        let dir = std::env::temp_dir().join(format!("banset-poller-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let later = dir.join("later");
        let poller = Poller::spawn("test poller".into()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let looked = Arc::new(AtomicUsize::new(0));
        let mut files = Vec::new();
        for i in 0..20 {
            let path = if i % 2 == 0 {
                dir.join(format!("f{i}.log"))
            } else {
                later.join(format!("f{i}.log"))
            };
            if i % 2 == 0 {
                append(&path, "history\n");
            }
            let mut follower = FileFollower::new(path.clone(), None);
            follower.prime().unwrap();
            let (done_tx, done) = channel();
            let stop = Arc::new(AtomicBool::new(false));
            poller.add(Followed {
                follower,
                sink: Box::new(Collect {
                    name: i,
                    seen: seen.clone(),
                    looked: looked.clone(),
                    _done: done_tx,
                }),
                stop: stop.clone(),
            });
            files.push((path, stop, done));
        }
        assert_eq!(poller.load(), 20);
        // The poller has looked at the files that exist (and failed to
        // watch the directory that does not) before it is created.
        assert!(wait_for(|| looked.load(Ordering::SeqCst) >= 10));
        std::fs::create_dir_all(&later).unwrap();
        for (i, (path, _, _)) in files.iter().enumerate() {
            append(path, &format!("line {i}\n"));
        }
        assert!(wait_for(|| seen.lock().unwrap().len() == 20), "{seen:?}");
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        let want: Vec<(usize, String)> = (0..20).map(|i| (i, format!("line {i}"))).collect();
        assert_eq!(got, want);
        // Written just before the stop: read by the last look.
        let (path, stop, done) = files.remove(3);
        append(&path, "last\n");
        stop.store(true, Ordering::SeqCst);
        poller.waker().wake();
        assert!(done.recv().is_err(), "the poller let the file go");
        assert!(seen.lock().unwrap().contains(&(3, "last".into())));
        assert_eq!(poller.load(), 19);
        drop(poller);
        for (_, _, done) in files {
            assert!(done.recv().is_err());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A thread per file let the scheduler share the CPU between a log
    /// with a big backlog and the others; on a shared poller the backlog
    /// is read in turns, so another file's line does not wait for all of
    /// it.
    #[test]
    fn a_backlog_in_one_file_does_not_hold_up_the_lines_of_another() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("banset-poller-turns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.log");
        let small = dir.join("small.log");
        let backlog = 8 * TURN as usize;
        let line = "x".repeat(99) + "\n";
        append(&big, &line.repeat(backlog / line.len()));
        append(&small, "urgent\n");
        let poller = Poller::spawn("test poller".into()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut done = Vec::new();
        // The poller's first line waits for this lock until both files are
        // added: a busy machine that pauses this thread between the two
        // adds must not let the backlog be read before the other file is
        // there.
        let adding = seen.lock().unwrap();
        for (i, path) in [&big, &small].into_iter().enumerate() {
            let m = std::fs::metadata(path).unwrap();
            let top = Position {
                dev: m.dev(),
                ino: m.ino(),
                offset: 0,
            };
            let (done_tx, done_rx) = channel();
            poller.add(Followed {
                follower: FileFollower::new(path.clone(), Some(top)),
                sink: Box::new(Collect {
                    name: i,
                    seen: seen.clone(),
                    looked: Arc::new(AtomicUsize::new(0)),
                    _done: done_tx,
                }),
                stop: Arc::new(AtomicBool::new(false)),
            });
            done.push(done_rx);
        }
        drop(adding);
        let lines = backlog / line.len() + 1;
        assert!(wait_for(|| seen.lock().unwrap().len() == lines));
        let seen = seen.lock().unwrap();
        let urgent = seen.iter().position(|(i, _)| *i == 1).unwrap();
        assert!(
            urgent < lines / 2,
            "the other file's line came after {urgent} of the backlog's {} lines",
            lines - 1
        );
        drop(poller);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
