//! Following log sources: files (surviving every kind of rotation; the
//! threads that wait for their changes are in [`crate::poller`]) and the
//! systemd journal (a `journalctl` child).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::filter::MAX_LINE_LEN;
use crate::journal_boot::{newest_entry_boot, newest_entry_cursor, probe_args, BootChoice};

/// Where reading stopped in a file: enough to resume after a restart
/// without counting a line twice, and to notice the file was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Bytes consumed (up to the end of the last complete line).
    pub offset: u64,
}

impl Position {
    /// `dev:ino:offset`, as kept in the ledger.
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.dev, self.ino, self.offset)
    }

    /// The inverse of [`Position::encode`].
    pub fn decode(s: &str) -> Option<Position> {
        let mut it = s.split(':').map(|p| p.parse::<u64>().ok());
        let p = Position {
            dev: it.next()??,
            ino: it.next()??,
            offset: it.next()??,
        };
        it.next().is_none().then_some(p)
    }
}

impl Position {
    /// Where to start following `path`, a file that appeared while the
    /// daemon runs (a new match of a `logpath` glob): where a followed
    /// file of the same identity stands in `known` (a rotation renamed it
    /// to a name the glob matches, and its lines were read under the old
    /// name), else the file's top, since all of it is new.
    ///
    /// Known limit: the source of the old name still drains the renamed
    /// file for 30 seconds, so lines a writer adds to it in that
    /// time can be read by both. Only a glob that matches rotated names
    /// (`mail*.log` with `mail-DATE.log`) meets it; Debian's `mail.log.1`
    /// names do not.
    pub fn for_new_file<'a>(
        path: &Path,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Option<Position> {
        let m = std::fs::metadata(path).ok()?;
        let fresh = Position {
            dev: m.dev(),
            ino: m.ino(),
            offset: 0,
        };
        Some(
            known
                .into_iter()
                .filter_map(Position::decode)
                .find(|p| (p.dev, p.ino) == (fresh.dev, fresh.ino) && p.offset <= m.len())
                .unwrap_or(fresh),
        )
    }
}

/// A rotated-away file is still read this long: a daemon keeps writing to
/// its old file until it reopens its log.
const RETIRED_GRACE: Duration = Duration::from_secs(30);
const READ_CHUNK: usize = 256 * 1024;

/// Runs `f` with this thread's read buffer. One per thread, not one per
/// follower: ninety followers each kept 256 KiB resident once their file
/// had been read (23 MB), though a thread reads one file at a time.
fn with_read_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    thread_local! {
        static BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    // Taken out while in use: a follower polled from inside another's
    // callback gets a buffer of its own instead of a double borrow.
    let mut buf = BUF.take();
    if buf.len() < READ_CHUNK {
        buf = vec![0; READ_CHUNK];
    }
    let out = f(&mut buf);
    BUF.set(buf);
    out
}

struct Open {
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
    /// Bytes of an incomplete last line.
    partial: Vec<u8>,
    /// The partial line outgrew [`MAX_LINE_LEN`]: drop bytes up to the
    /// next newline.
    skipping: bool,
}

impl Open {
    fn position(&self) -> Position {
        Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset - self.partial.len() as u64,
        }
    }

    /// Reads what was appended, handing complete lines to `on_line` with
    /// the position just after each; stops once `budget` bytes were read
    /// and says so (true: there may be more).
    fn drain(
        &mut self,
        buf: &mut [u8],
        on_line: &mut dyn FnMut(&[u8], Position),
        budget: u64,
    ) -> std::io::Result<bool> {
        let size = self.file.metadata()?.len();
        if size < self.offset {
            // copytruncate (or `> file`): start over at the top.
            self.offset = 0;
            self.partial.clear();
            self.skipping = false;
        }
        let mut read = 0u64;
        loop {
            if read >= budget {
                return Ok(true);
            }
            let n = self.file.read_at(buf, self.offset)?;
            if n == 0 {
                return Ok(false);
            }
            read += n as u64;
            let base = self.offset;
            self.offset += n as u64;
            let mut chunk = &buf[..n];
            while let Some(nl) = memchr::memchr(b'\n', chunk) {
                let piece = &chunk[..nl];
                chunk = &chunk[nl + 1..];
                if self.skipping {
                    self.skipping = false;
                    self.partial.clear();
                    continue;
                }
                let after = Position {
                    dev: self.dev,
                    ino: self.ino,
                    offset: base + (n - chunk.len()) as u64,
                };
                if self.partial.is_empty() {
                    on_line(trim_cr(piece), after);
                } else {
                    self.partial.extend_from_slice(piece);
                    let line = std::mem::take(&mut self.partial);
                    on_line(trim_cr(&line), after);
                }
            }
            if !self.skipping {
                self.partial.extend_from_slice(chunk);
                if self.partial.len() > MAX_LINE_LEN {
                    self.partial.clear();
                    self.skipping = true;
                }
            }
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Follows one log file by path, across rename+create rotation,
/// copytruncate, deletion and re-creation, and a file that does not exist
/// yet.
pub struct FileFollower {
    path: PathBuf,
    current: Option<Open>,
    retired: Option<(Open, Instant)>,
    /// Where to resume in the file with this identity (from the ledger).
    saved: Option<Position>,
    /// True until the first look: an existing file without a saved position
    /// is read from its end (old lines are history, not news); a file that
    /// appears later is read from the top.
    first_look: bool,
    /// Set while the path names no file (it vanished, or is not there
    /// yet), for `banset status`.
    missing: Option<std::sync::Arc<AtomicBool>>,
}

impl std::fmt::Debug for FileFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileFollower")
            .field("path", &self.path)
            .field("position", &self.position())
            .finish()
    }
}

impl FileFollower {
    /// A follower of `path`, resuming at `saved` if the file is still the
    /// same one.
    pub fn new(path: PathBuf, saved: Option<Position>) -> FileFollower {
        FileFollower {
            path,
            current: None,
            retired: None,
            saved,
            first_look: true,
            missing: None,
        }
    }

    /// Keeps `flag` set while the path names no file.
    pub fn report_missing(mut self, flag: std::sync::Arc<AtomicBool>) -> FileFollower {
        self.missing = Some(flag);
        self
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory whose events concern the file.
    pub(crate) fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => Path::new("/"),
        }
    }

    /// A rotated-away file is still being read: any change in the
    /// directory may be its.
    pub(crate) fn reads_a_retired_file(&self) -> bool {
        self.retired.is_some()
    }

    /// Where reading stands in the current file.
    pub fn position(&self) -> Option<Position> {
        self.current.as_ref().map(Open::position).or(self.saved)
    }

    /// Takes the first look without reading: fixes where reading starts
    /// (the saved position, or the end of a file that already exists).
    /// Call it before announcing that the file is watched, so lines written
    /// after the announcement are never mistaken for history.
    pub fn prime(&mut self) -> std::io::Result<()> {
        if std::mem::replace(&mut self.first_look, false) {
            if let Some(meta) = self.stat()? {
                self.open(&meta, true)?;
            }
        }
        Ok(())
    }

    fn stat(&self) -> std::io::Result<Option<std::fs::Metadata>> {
        match std::fs::metadata(&self.path) {
            Ok(m) if m.is_file() => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the file the path names now, starting where `saved` says, at
    /// its end on the very first look, else at its top.
    fn open(&mut self, m: &std::fs::Metadata, first_look: bool) -> std::io::Result<()> {
        let file = File::open(&self.path)?;
        let m2 = file.metadata()?;
        // Opened a different file than we stat'ed: look again next time.
        if (m2.dev(), m2.ino()) != (m.dev(), m.ino()) {
            return Ok(());
        }
        let offset = match self.saved.take() {
            Some(s) if (s.dev, s.ino) == (m2.dev(), m2.ino()) && s.offset <= m2.len() => s.offset,
            // Replaced (or truncated) while we were away: all of it is new.
            Some(_) => 0,
            None if first_look => m2.len(),
            None => 0,
        };
        self.current = Some(Open {
            file,
            dev: m2.dev(),
            ino: m2.ino(),
            offset,
            partial: Vec::new(),
            skipping: false,
        });
        Ok(())
    }

    /// Reads everything new, from the retired file (if any) first, then the
    /// current one, switching files when the path now names another.
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        self.poll_lines(&mut |line, _| on_line(line))
    }

    /// [`FileFollower::poll`], with each line the position to resume at
    /// once that line's effect is kept: saved together with the ban a line
    /// caused, a crash right after it does not count the line again.
    ///
    /// A line of a rotated-away file resumes at the current file's
    /// position (a restart follows the path, never the old file); without a
    /// current file, after the line in the old one, which a restart then
    /// sees as replaced and reads the new file whole.
    pub fn poll_lines(&mut self, on_line: &mut dyn FnMut(&[u8], Position)) -> std::io::Result<()> {
        with_read_buf(|buf| self.poll_with(buf, on_line, u64::MAX)).map(|_| ())
    }

    /// [`FileFollower::poll_lines`], reading at most about `budget` bytes
    /// of the current file (whole chunks); true when it stopped there with
    /// more maybe left. A thread following many files reads a big backlog
    /// in turns, so the other files' lines are not held up behind it.
    pub fn poll_some(
        &mut self,
        on_line: &mut dyn FnMut(&[u8], Position),
        budget: u64,
    ) -> std::io::Result<bool> {
        with_read_buf(|buf| self.poll_with(buf, on_line, budget))
    }

    fn poll_with(
        &mut self,
        buf: &mut [u8],
        on_line: &mut dyn FnMut(&[u8], Position),
        budget: u64,
    ) -> std::io::Result<bool> {
        if let Some((old, since)) = &mut self.retired {
            let resume = self.current.as_ref().map(Open::position);
            old.drain(
                buf,
                &mut |line, after| on_line(line, resume.unwrap_or(after)),
                u64::MAX,
            )?;
            if since.elapsed() > RETIRED_GRACE {
                self.retired = None;
            }
        }
        let first_look = std::mem::replace(&mut self.first_look, false);
        let meta = self.stat()?;
        if let Some(flag) = &self.missing {
            flag.store(meta.is_none(), Ordering::Relaxed);
        }
        let replaced = match (&self.current, &meta) {
            (Some(open), Some(m)) => (open.dev, open.ino) != (m.dev(), m.ino()),
            (Some(_), None) => false,
            (None, _) => true,
        };
        if replaced {
            if let Some(mut old) = self.current.take() {
                old.drain(buf, &mut |line, after| on_line(line, after), u64::MAX)?;
                self.retired = Some((old, Instant::now()));
            }
            if let Some(m) = &meta {
                self.open(m, first_look)?;
            }
        }
        match &mut self.current {
            Some(open) => open.drain(buf, on_line, budget),
            None => Ok(false),
        }
    }
}

/// One journal entry as the watcher uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    /// `HOST IDENT[PID]: MESSAGE`, the syslog shape the filters expect.
    pub line: Vec<u8>,
    /// `__REALTIME_TIMESTAMP`, Unix seconds.
    pub at: Option<i64>,
    /// `__CURSOR`, to resume after it.
    pub cursor: Option<String>,
}

/// Reads one line of `journalctl -o json`. `None` for lines that are not
/// a journal entry with a message.
pub fn parse_journal_json(json: &[u8]) -> Option<JournalLine> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let field = |k: &str| -> Option<Vec<u8>> {
        match v.get(k)? {
            serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
            // Binary-unsafe fields come as arrays of bytes.
            serde_json::Value::Array(a) => a
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect(),
            _ => None,
        }
    };
    let message = field("MESSAGE")?;
    let mut line = Vec::with_capacity(message.len() + 64);
    let host = field("_HOSTNAME").unwrap_or_else(|| b"localhost".to_vec());
    line.extend_from_slice(&one_token(&host));
    line.push(b' ');
    // Any local user chooses SYSLOG_IDENTIFIER and SYSLOG_PID (`logger -t
    // 'x sshd' --id=...`): kept as one token each, so that a space cannot
    // make the identifier pass for a host field and another program's tag,
    // and a newline cannot fake a line boundary for a multi-line filter.
    let ident = field("SYSLOG_IDENTIFIER")
        .or_else(|| field("_COMM"))
        .unwrap_or_else(|| b"unknown".to_vec());
    line.extend_from_slice(&one_token(&ident));
    if let Some(pid) = field("SYSLOG_PID").or_else(|| field("_PID")) {
        if !pid.is_empty() && pid.iter().all(u8::is_ascii_digit) {
            line.push(b'[');
            line.extend_from_slice(&pid);
            line.push(b']');
        }
    }
    line.extend_from_slice(b": ");
    // A message may hold several lines; the filters see the first.
    let first = message.split(|&b| b == b'\n').next().unwrap_or(&[]);
    line.extend_from_slice(first);
    let at = field("__REALTIME_TIMESTAMP")
        .and_then(|t| std::str::from_utf8(&t).ok()?.parse::<i64>().ok())
        .map(|us| us / 1_000_000);
    let cursor = field("__CURSOR").and_then(|c| String::from_utf8(c).ok());
    Some(JournalLine { line, at, cursor })
}

/// `field` as one syslog token: white space, control bytes and the
/// brackets and colon that end a tag become `_`.
fn one_token(field: &[u8]) -> Vec<u8> {
    field
        .iter()
        .map(|&b| match b {
            b if b.is_ascii_whitespace() || b.is_ascii_control() => b'_',
            b'[' | b']' | b':' => b'_',
            b => b,
        })
        .collect()
}

/// The argv of the journal child: follow, JSON, resume after `cursor` (or
/// start at the end of an empty journal), in `boot`'s choice of boot, with
/// `matches`.
pub fn journalctl_args(matches: &[String], cursor: Option<&str>, boot: &BootChoice) -> Vec<String> {
    let mut args = vec![
        "--follow".to_string(),
        "--output=json".to_string(),
        "--no-pager".to_string(),
        "--quiet".to_string(),
    ];
    args.extend(boot.arg());
    match cursor {
        Some(c) => args.push(format!("--after-cursor={c}")),
        None => args.push("--lines=0".to_string()),
    }
    args.extend(matches.iter().cloned());
    args
}

/// The argv of the catch-up run before following: every entry after
/// `cursor`, of every boot of this machine. journalctl 252 adds "this
/// boot" by itself when it follows, so the follower alone skipped what was
/// logged after the cursor in the boot before (between the daemon's stop
/// and the reboot); without `--follow` it adds no boot.
pub fn catch_up_args(matches: &[String], cursor: &str) -> Vec<String> {
    let mut args = vec![
        "--output=json".to_string(),
        "--no-pager".to_string(),
        "--quiet".to_string(),
        format!("--after-cursor={cursor}"),
    ];
    args.extend(matches.iter().cloned());
    args
}

/// Runs `journalctl` until `stop`, restarting it (after a second) when it
/// dies, always resuming after the last cursor seen. The child's pid is
/// kept in `child_pid` so a stopper can kill it to end a blocked read.
pub fn follow_journal(
    journalctl: &Path,
    matches: &[String],
    mut cursor: Option<String>,
    stop: &AtomicBool,
    child_pid: &Arc<AtomicU32>,
    on_line: &mut dyn FnMut(JournalLine),
    on_error: &mut dyn FnMut(String),
) {
    let mut noticed = None;
    while !stop.load(Ordering::Relaxed) {
        let newest = probe_journal(journalctl, stop);
        let boot = BootChoice::between(
            newest.as_deref().and_then(newest_entry_boot).as_deref(),
            std::fs::read_to_string(OWN_BOOT_ID).ok().as_deref(),
        );
        if let Some(notice) = boot.notice() {
            // Once per boot pair, not at every restart of the child.
            if noticed.as_ref() != Some(&boot) {
                on_error(notice);
                noticed = Some(boot.clone());
            }
        }
        if let Some(saved) = cursor.clone() {
            match spawn_reader(journalctl, catch_up_args(matches, &saved), child_pid, stop) {
                Ok(child) => {
                    let (_, status) = read_entries(child, child_pid, &mut cursor, on_line);
                    match status {
                        Ok(s) if !s.success() => on_error(format!(
                            "{} (catching up after the saved cursor) exited ({s})",
                            journalctl.display()
                        )),
                        _ => {}
                    }
                }
                Err(e) => on_error(format!("{}: cannot start: {e}", journalctl.display())),
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        // No cursor yet: start after the journal's newest entry.
        let start = cursor
            .clone()
            .or_else(|| newest.as_deref().and_then(newest_entry_cursor));
        let child = match spawn_reader(
            journalctl,
            journalctl_args(matches, start.as_deref(), &boot),
            child_pid,
            stop,
        ) {
            Ok(c) => c,
            Err(e) => {
                on_error(format!("{}: cannot start: {e}", journalctl.display()));
                sleep_unless(stop, Duration::from_secs(1));
                continue;
            }
        };
        let (mut child, status) = read_entries(child, child_pid, &mut cursor, on_line);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let err = err.lines().next().unwrap_or("").to_string();
        on_error(format!(
            "{} exited ({}){}; restarting",
            journalctl.display(),
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string()),
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        ));
        sleep_unless(stop, Duration::from_secs(1));
    }
}

/// Starts `journalctl ARGS` with its output piped, its pid in `child_pid`
/// (killed at once if `stop` is already set).
fn spawn_reader(
    journalctl: &Path,
    args: Vec<String>,
    child_pid: &Arc<AtomicU32>,
    stop: &AtomicBool,
) -> std::io::Result<Child> {
    let mut child = Command::new(journalctl)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child_pid.store(child.id(), Ordering::SeqCst);
    if stop.load(Ordering::SeqCst) {
        let _ = child.kill();
    }
    Ok(child)
}

/// Hands every entry `child` prints to `on_line`, keeping the last cursor,
/// until its output ends; then reaps it. Returns it (for its stderr) and
/// its exit status.
fn read_entries(
    mut child: Child,
    child_pid: &Arc<AtomicU32>,
    cursor: &mut Option<String>,
    on_line: &mut dyn FnMut(JournalLine),
) -> (Child, std::io::Result<std::process::ExitStatus>) {
    let stdout = child.stdout.take().expect("piped");
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut raw = Vec::with_capacity(4096);
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Some(entry) = parse_journal_json(&raw) {
                    if let Some(c) = &entry.cursor {
                        *cursor = Some(c.clone());
                    }
                    on_line(entry);
                }
            }
        }
    }
    let _ = child.kill();
    let status = child.wait();
    child_pid.store(0, Ordering::SeqCst);
    (child, status)
}

/// Where the kernel shows a process its boot ID (journalctl reads the same).
const OWN_BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The journal's newest entry (its boot and cursor), from a `journalctl`
/// run without `--follow`; `None` when it fails or takes longer than a few
/// seconds (it is killed then; its output is one short line, well within a
/// pipe's buffer, so waiting before reading cannot block it).
fn probe_journal(journalctl: &Path, stop: &AtomicBool) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut child = Command::new(journalctl)
        .args(probe_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let exited = loop {
        match child.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => break false,
        }
    };
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let mut out = Vec::new();
    child
        .stdout
        .take()?
        .take(64 * 1024)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let deadline = Instant::now() + total;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tempdir(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("banset-follow-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// A file a glob matches after start is read from its top; one that
    /// is a followed file renamed (rotation to a matching name) goes on
    /// where that one stands, so no line is read twice. And a follower
    /// says while its file is missing.
    #[test]
    fn a_new_glob_match_starts_at_its_top_or_where_its_renamed_self_stood() {
        let d = tempdir("newmatch");
        let log = d.0.join("mail.log");
        append(&log, "old 1\nold 2\n");
        let missing = Arc::new(AtomicBool::new(false));
        let mut f = FileFollower::new(log.clone(), None).report_missing(missing.clone());
        f.prime().unwrap();
        append(&log, "new 1\n");
        assert_eq!(poll(&mut f), ["new 1"]);
        assert!(!missing.load(Ordering::Relaxed));
        let followed = f.position().unwrap().encode();
        // Renamed to a name the glob matches: resumes after "new 1".
        let rotated = d.0.join("mail-1.log");
        std::fs::rename(&log, &rotated).unwrap();
        let _ = poll(&mut f);
        assert!(
            missing.load(Ordering::Relaxed),
            "the path names no file now"
        );
        append(&rotated, "late\n");
        let start = Position::for_new_file(&rotated, [followed.as_str()]).unwrap();
        let mut g = FileFollower::new(rotated.clone(), Some(start));
        g.prime().unwrap();
        assert_eq!(poll(&mut g), ["late"]);
        // A file nobody followed: all of it.
        let fresh = d.0.join("mail-2.log");
        append(&fresh, "a\nb\n");
        let start = Position::for_new_file(&fresh, [followed.as_str()]).unwrap();
        let mut h = FileFollower::new(fresh, Some(start));
        h.prime().unwrap();
        assert_eq!(poll(&mut h), ["a", "b"]);
        append(&log, "again\n");
        let _ = poll(&mut f);
        assert!(!missing.load(Ordering::Relaxed));
    }

    fn poll(f: &mut FileFollower) -> Vec<String> {
        let mut out = Vec::new();
        f.poll(&mut |l| out.push(String::from_utf8_lossy(l).into_owned()))
            .unwrap();
        out
    }

    #[test]
    fn an_existing_file_is_read_from_its_end_a_new_one_from_the_top() {
        let d = tempdir("start");
        let log = d.0.join("auth.log");
        append(&log, "old 1\nold 2\n");
        let mut f = FileFollower::new(log.clone(), None);
        assert!(poll(&mut f).is_empty());
        append(&log, "new 1\nnew");
        assert_eq!(poll(&mut f), vec!["new 1"]);
        append(&log, " 2\r\n");
        assert_eq!(poll(&mut f), vec!["new 2"]);

        let later = d.0.join("later.log");
        let mut g = FileFollower::new(later.clone(), None);
        assert!(poll(&mut g).is_empty());
        append(&later, "first\n");
        assert_eq!(poll(&mut g), vec!["first"]);
    }

    #[test]
    fn survives_rename_and_create_reading_the_old_file_to_its_end() {
        let d = tempdir("rename");
        let log = d.0.join("auth.log");
        append(&log, "");
        let mut f = FileFollower::new(log.clone(), None);
        poll(&mut f);
        append(&log, "a\n");
        std::fs::rename(&log, d.0.join("auth.log.1")).unwrap();
        // The daemon still writes to the old file until it reopens.
        append(&d.0.join("auth.log.1"), "b\n");
        append(&log, "c\n");
        assert_eq!(poll(&mut f), vec!["a", "b", "c"]);
        append(&d.0.join("auth.log.1"), "late\n");
        append(&log, "d\n");
        assert_eq!(poll(&mut f), vec!["late", "d"]);
    }

    #[test]
    fn survives_copytruncate_and_delete_then_recreate() {
        let d = tempdir("truncate");
        let log = d.0.join("mail.log");
        append(&log, "");
        let mut f = FileFollower::new(log.clone(), None);
        poll(&mut f);
        append(&log, "one\ntwo\n");
        assert_eq!(poll(&mut f), vec!["one", "two"]);
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, "three\n");
        assert_eq!(poll(&mut f), vec!["three"]);
        std::fs::remove_file(&log).unwrap();
        assert!(poll(&mut f).is_empty());
        append(&log, "four\n");
        assert_eq!(poll(&mut f), vec!["four"]);
    }

    #[test]
    fn resumes_at_the_saved_position_and_rereads_a_replaced_file_whole() {
        let d = tempdir("resume");
        let log = d.0.join("auth.log");
        append(&log, "");
        let mut f = FileFollower::new(log.clone(), None);
        poll(&mut f);
        append(&log, "counted\npart");
        assert_eq!(poll(&mut f), vec!["counted"]);
        let saved = f.position().unwrap();
        assert_eq!(Position::decode(&saved.encode()), Some(saved));
        drop(f);
        append(&log, "ial\nwhile away\n");
        let mut f = FileFollower::new(log.clone(), Some(saved));
        assert_eq!(poll(&mut f), vec!["partial", "while away"]);
        let saved = f.position().unwrap();
        drop(f);
        std::fs::rename(&log, d.0.join("auth.log.1")).unwrap();
        append(&log, "after rotation\n");
        let mut f = FileFollower::new(log.clone(), Some(saved));
        assert_eq!(poll(&mut f), vec!["after rotation"]);
    }

    #[test]
    fn each_line_comes_with_the_position_after_it() {
        let d = tempdir("line-positions");
        let log = d.0.join("auth.log");
        append(&log, "");
        let mut f = FileFollower::new(log.clone(), None);
        poll(&mut f);
        append(&log, "one\ntwo\r\nthr");
        let mut seen = Vec::new();
        f.poll_lines(&mut |l, p| seen.push((String::from_utf8_lossy(l).into_owned(), p.offset)))
            .unwrap();
        assert_eq!(seen, vec![("one".to_string(), 4), ("two".to_string(), 9)]);
        append(&log, "ee\n");
        seen.clear();
        f.poll_lines(&mut |l, p| seen.push((String::from_utf8_lossy(l).into_owned(), p.offset)))
            .unwrap();
        assert_eq!(seen, vec![("three".to_string(), 15)]);
        // Resuming at a line's position reads what followed it, only.
        append(&log, "four\n");
        let mut g = FileFollower::new(
            log.clone(),
            Some(Position {
                offset: 9,
                ..f.position().unwrap()
            }),
        );
        assert_eq!(poll(&mut g), vec!["three", "four"]);
        // A rotated-away file's lines resume at the current file's position.
        std::fs::rename(&log, d.0.join("auth.log.1")).unwrap();
        append(&log, "new\n");
        append(&d.0.join("auth.log.1"), "late\n");
        let mut seen = Vec::new();
        f.poll_lines(&mut |l, p| seen.push((String::from_utf8_lossy(l).into_owned(), p)))
            .unwrap();
        let names: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(names, vec!["four", "late", "new"]);
        let new_ino = std::fs::metadata(&log).unwrap().ino();
        assert_eq!(seen[2].1.ino, new_ino);
        assert_eq!(seen[2].1.offset, 4);
        append(&d.0.join("auth.log.1"), "later\n");
        let mut seen = Vec::new();
        f.poll_lines(&mut |l, p| seen.push((String::from_utf8_lossy(l).into_owned(), p)))
            .unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].1.ino, seen[0].1.offset), (new_ino, 4));
    }

    #[test]
    fn overlong_lines_are_dropped_whole() {
        let d = tempdir("long");
        let log = d.0.join("x.log");
        append(&log, "");
        let mut f = FileFollower::new(log.clone(), None);
        poll(&mut f);
        append(&log, &"x".repeat(MAX_LINE_LEN + 10));
        assert!(poll(&mut f).is_empty());
        append(&log, &format!("{}\nok\n", "y".repeat(READ_CHUNK)));
        assert_eq!(poll(&mut f), vec!["ok"]);
    }

    #[test]
    fn a_journal_identifier_cannot_fake_a_line_a_host_field_or_a_tag() {
        let e = parse_journal_json(
            br#"{"_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"x sshd[1]: Failed password for root from 6.6.6.6 port 22 ssh2\nsshd","SYSLOG_PID":"1]: y","MESSAGE":"hello"}"#,
        )
        .unwrap();
        let line = String::from_utf8(e.line).unwrap();
        assert_eq!(
            line,
            "mx x_sshd_1___Failed_password_for_root_from_6.6.6.6_port_22_ssh2_sshd: hello"
        );
    }

    #[test]
    fn journal_json_becomes_a_syslog_line() {
        let e = parse_journal_json(br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1795262400123456","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"sshd","_PID":"77","MESSAGE":"Failed password for root from 1.2.3.4 port 22 ssh2"}"#).unwrap();
        assert_eq!(
            e.line,
            b"mx sshd[77]: Failed password for root from 1.2.3.4 port 22 ssh2"
        );
        assert_eq!(e.at, Some(1_795_262_400));
        assert_eq!(e.cursor.as_deref(), Some("s=1;i=2"));
        let e =
            parse_journal_json(br#"{"MESSAGE":[104,105,255],"SYSLOG_IDENTIFIER":"x"}"#).unwrap();
        assert_eq!(e.line, b"localhost x: hi\xff");
        assert!(parse_journal_json(b"not json").is_none());
        assert!(parse_journal_json(br#"{"_PID":"1"}"#).is_none());
        assert_eq!(
            journalctl_args(
                &["_SYSTEMD_UNIT=ssh.service".into()],
                Some("c1"),
                &BootChoice::Implicit
            ),
            vec![
                "--follow",
                "--output=json",
                "--no-pager",
                "--quiet",
                "--after-cursor=c1",
                "_SYSTEMD_UNIT=ssh.service"
            ]
        );
        let boot = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
        assert_eq!(
            journalctl_args(&[], None, &BootChoice::between(Some(boot), None))[4],
            format!("--boot={boot}")
        );
    }
}
