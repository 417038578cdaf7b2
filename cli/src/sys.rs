//! Every OS call of the binary that std does not offer, each behind a safe
//! function, so the rest of `cli/` has no `unsafe` (this host's addresses
//! are read by banset-firewall, netlink by the backends).
//!
//! Signals have one mechanism: signal-hook's self-pipe. The daemon reads
//! it through [`signal_events`]' thread; `sshg-fw`, which blocks in a read
//! of its standard input, polls it beside fd 0 ([`StopSignals`]). Neither
//! installs a handler of its own.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;

pub use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether process `pid` exists (one of another user's counts: `EPERM`).
/// Runs `f` with the process's file-creation mask set to `mask`, then puts
/// the old mask back: a file `f` creates is never born with wider
/// permissions than asked. The mask is process-wide, so only for start-up
/// code that runs before other threads create files.
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    // SAFETY: umask(2) cannot fail and only swaps an integer.
    let old = unsafe { libc::umask(mask as libc::mode_t) };
    let out = f();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    out
}

pub fn process_exists(pid: u32) -> bool {
    // SAFETY: kill(pid, 0) sends nothing; it only checks that the process
    // exists and may be signalled.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends SIGTERM to `pid` (a child of ours), ignoring a child already gone.
pub fn terminate(pid: u32) {
    // SAFETY: kill(2) with a plain signal number; no memory is involved.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

/// This host's name, if it has one that fits 255 bytes.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Hands heap pages glibc keeps after a large free back to the system.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; no pointer of
    // ours is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Takes an exclusive lock on `file` without waiting (flock(2)): `false`
/// when another process holds it. Held until the descriptor is closed.
pub fn try_lock_exclusive(file: &File) -> bool {
    // SAFETY: flock(2) on a descriptor `file` owns for the whole call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// 64 random bits from the kernel, `None` in the (never expected) case
/// that getrandom(2) gives fewer.
pub fn random_u64() -> Option<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom(2) writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    (n == buf.len() as isize).then(|| u64::from_ne_bytes(buf))
}

/// Creates `name` in the directory `dir` (O_EXCL, never following a
/// link), with `mode` before the umask.
pub fn create_new_at(dir: &File, name: &CStr, mode: u32) -> io::Result<File> {
    // SAFETY: openat(2) with a directory descriptor `dir` owns and a
    // NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Removes `name` from the directory `dir`.
pub fn unlink_at(dir: &File, name: &CStr) -> io::Result<()> {
    // SAFETY: unlinkat(2) with a directory descriptor `dir` owns and a
    // NUL-terminated name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Renames `from` to `to`, both in the directory `dir` (atomic).
pub fn rename_at(dir: &File, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: renameat(2) within one directory descriptor `dir` owns, with
    // NUL-terminated names.
    let rc =
        unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The daemon's signals, as they arrive, on a thread named `signals`:
/// `on_signal` gets each signal number and returns `false` to stop.
pub fn signal_events(
    signals: &[libc::c_int],
    mut on_signal: impl FnMut(libc::c_int) -> bool + Send + 'static,
) -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new(signals)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if !on_signal(sig) {
                    break;
                }
            }
        })?;
    Ok(())
}

/// INT, TERM and HUP, caught (the process goes on) and made readable on a
/// descriptor, so a loop blocked in a read notices them at once:
/// [`StopSignals::read_stdin`].
#[derive(Debug)]
pub struct StopSignals {
    pipe: UnixStream,
}

impl StopSignals {
    /// Catches the stop signals from now on.
    pub fn install() -> io::Result<StopSignals> {
        let (pipe, write) = UnixStream::pair()?;
        write.set_nonblocking(true)?;
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::low_level::pipe::register(signal, write.try_clone()?)?;
        }
        Ok(StopSignals { pipe })
    }

    /// Reads standard input (fd 0, unbuffered: std's stdin retries on
    /// EINTR and buffers) into `buf`: `Ok(0)` at its end, an `Interrupted`
    /// error once a stop signal came (and at every call after it).
    pub fn read_stdin(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.pipe.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll(2) over an array of two initialised pollfds, of
            // the length given.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // A signal wins over input that is waiting: the pipe is never
            // drained, so every later call says so too.
            if fds[0].revents != 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if fds[1].revents == 0 {
                continue;
            }
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}
