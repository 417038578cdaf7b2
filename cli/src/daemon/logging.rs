//! The daemon's log: one line per event on stderr, as text (`banset: ban
//! 1.2.3.4 jail=sshd ...`) or JSON (`--log-format json`), or, under systemd,
//! straight to the journal with fields (`BANSET_ACTION=ban`,
//! `BANSET_ADDRESS=...`) that `journalctl BANSET_ACTION=ban` can select.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

struct Logger {
    format: LogFormat,
    journal: Option<UnixDatagram>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Picks the output once, at start. The journal is used when systemd says
/// stderr is connected to it (`JOURNAL_STREAM` names stderr's device and
/// inode) and its socket answers; otherwise stderr.
pub fn init(format: LogFormat) {
    let journal = stderr_is_journal()
        .then(|| {
            let sock = UnixDatagram::unbound().ok()?;
            sock.connect(JOURNAL_SOCKET).ok()?;
            Some(sock)
        })
        .flatten();
    let _ = LOGGER.set(Logger { format, journal });
}

fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream == format!("{}:{}", meta.dev(), meta.ino())
}

/// A plain line (start-up, errors, notices).
pub fn line(message: &str) {
    event("info", &[], message);
}

/// One event with its fields.
pub fn event(action: &str, fields: &[(&str, String)], message: &str) {
    let logger = LOGGER.get_or_init(|| Logger {
        format: LogFormat::Text,
        journal: None,
    });
    // Nothing logged may carry a newline: one event, one line.
    let message = message.replace(['\n', '\r'], " ");
    if let Some(journal) = &logger.journal {
        let mut entry = format!(
            "MESSAGE={message}\nPRIORITY={}\nSYSLOG_IDENTIFIER=banset\nBANSET_ACTION={action}\n",
            if action == "error" { 3 } else { 6 }
        );
        for (k, v) in fields {
            entry.push_str(&format!(
                "BANSET_{}={}\n",
                k.to_ascii_uppercase(),
                v.replace(['\n', '\r'], " ")
            ));
        }
        if journal.send(entry.as_bytes()).is_ok() {
            return;
        }
    }
    let mut err = std::io::stderr().lock();
    match logger.format {
        LogFormat::Text => {
            let _ = writeln!(err, "banset: {message}");
        }
        LogFormat::Json => {
            let mut obj = Map::new();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            obj.insert("time".into(), Value::from((now * 1000.0).round() / 1000.0));
            obj.insert("action".into(), Value::from(action));
            for (k, v) in fields {
                let numeric = matches!(*k, "timeout" | "failures" | "bans" | "ms");
                let value = match v.parse::<f64>() {
                    Ok(n) if numeric => Value::from(n),
                    _ => Value::from(v.as_str()),
                };
                obj.insert((*k).into(), value);
            }
            obj.insert("message".into(), Value::from(message));
            let _ = writeln!(err, "{}", Value::Object(obj));
        }
    }
}

/// Logs one line on stderr (journald keeps it when run by systemd).
macro_rules! log {
    ($($arg:tt)*) => { $crate::daemon::logging::line(&format!($($arg)*)) };
}
pub(crate) use log;
