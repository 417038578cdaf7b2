//! The daemon's end of the control socket: binding it safely, and one
//! thread per connection that reads request lines and hands each to the
//! event loop, which executes it between log failures and answers.
//!
//! Nothing a client does can stall the loop or another client: the loop
//! only ever sees whole, parsed requests; a connection has one request in
//! the loop at a time, so a flooding client queues behind itself; a line
//! must arrive whole within [`LINE_TIMEOUT`] and at most [`MAX_LINE`]
//! bytes long; a reply that cannot be written within [`WRITE_TIMEOUT`]
//! closes the connection; and beyond [`MAX_CONNECTIONS`] a new one is
//! turned away with an error reply.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use banset_core::control::{error_line, parse_request, Request, MAX_LINE};

use crate::path_trust::{self, Expect};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// From a request line's first byte to its newline.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);
/// Writing one reply.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a reading connection wakes to check [`LINE_TIMEOUT`].
const POLL: Duration = Duration::from_millis(500);

/// A request for the event loop, and where its reply line goes.
pub struct Call {
    pub request: Request,
    pub reply: SyncSender<String>,
}

/// The bound socket; its file is removed when this is dropped.
pub struct Socket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Socket {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Binds `control.sock` in `runtime_dir` (created 0700 if missing),
    /// mode 0600. Refuses a directory others could write, a socket path
    /// that is a symlink, someone else's or not a socket, and a socket
    /// another daemon answers on; a dead daemon's socket is replaced.
    pub fn bind(runtime_dir: &Path) -> Result<Socket> {
        if !runtime_dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(runtime_dir)
                .with_context(|| {
                    format!(
                        "runtime directory {}: cannot create it (run as root, or pass --runtime-dir)",
                        runtime_dir.display()
                    )
                })?;
        }
        path_trust::check(runtime_dir, Expect::Directory)
            .map_err(|e| anyhow!("runtime directory: {e}"))?;
        let path = super::paths::socket_path(runtime_dir);
        refuse_existing(&path)?;
        // No moment with wider permissions: the socket is born 0600.
        let bound = crate::sys::with_umask(0o177, || UnixListener::bind(&path));
        let listener =
            bound.with_context(|| format!("control socket {}: cannot bind", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("control socket {}", path.display()))?;
        Ok(Socket { listener, path })
    }

    /// Serves connections on threads of their own; each request goes to
    /// `to_loop` through `wrap`.
    pub fn serve<E: Send + 'static>(&self, to_loop: Sender<E>, wrap: fn(Call) -> E) -> Result<()> {
        let listener = self.listener.try_clone()?;
        let open = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                        open.fetch_sub(1, Ordering::SeqCst);
                        turn_away(stream);
                        continue;
                    }
                    let (tx, count) = (to_loop.clone(), open.clone());
                    let spawned = std::thread::Builder::new()
                        .name("control-conn".into())
                        .spawn(move || {
                            let _ = connection(stream, &tx, wrap);
                            count.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        // The thread never ran: its count goes back here.
                        open.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })?;
        Ok(())
    }
}

fn refuse_existing(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(anyhow!("control socket {}: {e}", path.display())),
    };
    let shown = path.display();
    if meta.file_type().is_symlink() {
        return Err(anyhow!(
            "control socket {shown} is a symlink; refusing to start (remove it)"
        ));
    }
    let me = crate::sys::euid();
    if meta.uid() != me {
        return Err(anyhow!(
            "control socket {shown} is owned by uid {}, not by uid {me}; refusing to start (remove it)",
            meta.uid()
        ));
    }
    if !meta.file_type().is_socket() {
        return Err(anyhow!(
            "control socket {shown} exists and is not a socket; refusing to start (remove it)"
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(anyhow!(
            "control socket {shown}: another banset watch answers on it; refusing to start a second daemon"
        ));
    }
    std::fs::remove_file(path).with_context(|| format!("control socket {shown}: stale"))
}

fn turn_away(mut stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(
        error_line(
            None,
            &format!("too many connections (at most {MAX_CONNECTIONS}); try again"),
        )
        .as_bytes(),
    );
}

/// One connection: lines in, replies out, until the client closes, a
/// line breaks the rules or the daemon stops.
fn connection<E>(mut stream: UnixStream, to_loop: &Sender<E>, wrap: fn(Call) -> E) -> Result<()> {
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    // When the first byte of the pending (incomplete) line came.
    let mut started: Option<Instant> = None;
    let (reply_tx, reply_rx) = sync_channel::<String>(1);
    loop {
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            started = (!buf.is_empty()).then(Instant::now);
            let text = line.trim_ascii_end();
            if text.is_empty() {
                continue;
            }
            let reply = match parse_request(text) {
                Ok(request) => {
                    let call = Call {
                        request,
                        reply: reply_tx.clone(),
                    };
                    if to_loop.send(wrap(call)).is_err() {
                        return Ok(()); // the daemon is stopping
                    }
                    match reply_rx.recv() {
                        Ok(reply) => reply,
                        Err(_) => return Ok(()),
                    }
                }
                Err(e) => {
                    let reply = error_line(e.id.as_ref(), &e.message);
                    if e.fatal {
                        stream.write_all(reply.as_bytes())?;
                        return Ok(());
                    }
                    reply
                }
            };
            stream.write_all(reply.as_bytes())?;
        }
        if buf.len() > MAX_LINE {
            let e = parse_request(&buf)
                .err()
                .map(|e| e.message)
                .unwrap_or_default();
            stream.write_all(error_line(None, &e).as_bytes())?;
            return Ok(());
        }
        if started.is_some_and(|t| t.elapsed() > LINE_TIMEOUT) {
            stream.write_all(
                error_line(
                    None,
                    &format!(
                        "request line incomplete after {} s; closing the connection",
                        LINE_TIMEOUT.as_secs()
                    ),
                )
                .as_bytes(),
            )?;
            return Ok(());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if buf.is_empty() {
                    started = Some(Instant::now());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}
