//! The client end of the control socket: connect, send one request line,
//! read its reply line.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use banset_core::control::{parse_reply, Reply, Request, MAX_LINE};

/// How long the client waits for a reply: long enough for an unban of a
/// whole set of a million members, short enough that a stuck daemon does
/// not hang a script (or fail2ban) for good.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest reply read (a status with a long ban list is big, but bounded).
const MAX_REPLY: u64 = 256 * 1024 * 1024;

/// A connection to the daemon.
pub struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    path: String,
}

impl Connection {
    /// Connects to the socket in `runtime_dir`: `None` when no daemon
    /// listens there (no socket, or a stale one of a dead daemon).
    pub fn open(runtime_dir: &Path) -> Result<Option<Connection>> {
        let path = super::paths::socket_path(runtime_dir);
        let stream = match UnixStream::connect(&path) {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(anyhow!(
                    "control socket {}: {e} (the daemon's socket is root's: run as root)",
                    path.display()
                ))
            }
        };
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        Ok(Some(Connection {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            path: path.display().to_string(),
        }))
    }

    /// Sends a request and reads its reply.
    pub fn request(&mut self, request: &Request) -> Result<Reply> {
        let line = request.to_line();
        if line.len() > MAX_LINE + 1 {
            return Err(anyhow!(
                "request of {} bytes is longer than the protocol's {MAX_LINE}; send fewer targets at once",
                line.len() - 1
            ));
        }
        self.send_raw(line.as_bytes())?;
        self.read_reply()
    }

    /// Sends bytes as they are (`banset control` passes the user's line).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .with_context(|| format!("control socket {}", self.path))
    }

    /// Reads one reply line.
    pub fn read_reply(&mut self) -> Result<Reply> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_REPLY)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("control socket {}: no reply", self.path))?;
        if n == 0 {
            return Err(anyhow!(
                "control socket {}: the daemon closed the connection without a reply",
                self.path
            ));
        }
        parse_reply(line.trim_ascii_end()).map_err(|e| anyhow!("control socket {}: {e}", self.path))
    }
}
