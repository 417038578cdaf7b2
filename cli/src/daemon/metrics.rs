//! Prometheus metrics: the text exposition format, written to a
//! textfile-collector file and served on a loopback `/metrics`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// One sample: name, labels, value.
pub struct Sample {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// One metric family: help, type and samples.
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: &'static str,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    pub fn sample(mut self, labels: &[(&'static str, &str)], value: f64) -> Family {
        self.samples.push(Sample {
            name: self.name,
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        });
        self
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format wants.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Renders families in the text exposition format (version 0.0.4).
pub fn render(families: &[Family]) -> String {
    let mut out = String::with_capacity(4096);
    for f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for s in &f.samples {
            out.push_str(s.name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", s.value);
        }
    }
    out
}

/// Writes the textfile atomically, as node_exporter's collector requires:
/// a temporary file in the same directory, then rename.
///
/// The directory is often not root's (node_exporter's belongs to the
/// prometheus user), and whoever can write it can plant names in it, so a
/// root daemon must never open a name there that someone else chose:
/// - every step goes through one descriptor of the directory (`openat`,
///   `renameat`), so swapping the directory or a parent for a symlink after
///   the check changes nothing;
/// - the temporary name is random and created with `O_CREAT|O_EXCL|
///   O_NOFOLLOW`: a planted file or symlink makes the create fail, never
///   a write through it;
/// - `renameat` replaces the directory entry `NAME`, so a symlink planted
///   at `NAME` itself is replaced, not followed;
/// - the mode is set with `fchmod` to 0644 so the exporter can read it
///   whatever the daemon's umask (the unit sets `UMask=0077`).
///
/// Decision on the directory: it may belong to any user (node_exporter's
/// does not belong to root), but a directory every user can write is
/// refused unless it is sticky and root's (`/tmp`-like), where nobody can
/// rename or remove root's file. Whoever owns the directory can at worst
/// change or remove the metrics, never another file: that is the trust the
/// admin gave that user by choosing the directory. Whoever can move the
/// directory (its owner may own its parent too) could point it elsewhere:
/// the config accepts only a name ending in `.prom`, so root still writes
/// nothing but metrics, under a name only a textfile collector reads.
pub fn write_textfile(path: &Path, text: &str) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

    let fail = |what: &str, e: std::io::Error| {
        anyhow::anyhow!("metrics file {}: {what}: {e}", path.display())
    };
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("metrics file {}: not a file name", path.display()))?;
    let dir_path = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir_path)
        .map_err(|e| fail("its directory", e))?;
    let meta = dir.metadata().map_err(|e| fail("its directory", e))?;
    let mode = meta.mode();
    if mode & 0o002 != 0 && !(mode & 0o1000 != 0 && meta.uid() == 0) {
        anyhow::bail!(
            "metrics file {}: its directory {} is writable by every user (mode {:o}) and not a sticky directory of root's; not writing there",
            path.display(),
            dir_path.display(),
            mode & 0o7777
        );
    }
    let name_c = CString::new(name.as_bytes())
        .map_err(|_| anyhow::anyhow!("metrics file {}: NUL in the name", path.display()))?;
    // The collector reads only `*.prom`: a dot first and `.tmp` last keep
    // the half-written file out of a scrape.
    let mut tmp_name = Vec::from(b".".as_slice());
    tmp_name.extend_from_slice(name.as_bytes());
    tmp_name.extend_from_slice(format!(".{:016x}.tmp", random_u64()).as_bytes());
    let tmp_c = CString::new(tmp_name).expect("no NUL: checked above");
    let mut file =
        crate::sys::create_new_at(&dir, &tmp_c, 0o600).map_err(|e| fail("temporary file", e))?;
    let unlink_tmp = || {
        let _ = crate::sys::unlink_at(&dir, &tmp_c);
    };
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(text.as_bytes()));
    if let Err(e) = written {
        unlink_tmp();
        return Err(fail("writing", e));
    }
    drop(file);
    if let Err(e) = crate::sys::rename_at(&dir, &tmp_c, &name_c) {
        unlink_tmp();
        return Err(fail("rename", e));
    }
    Ok(())
}

/// 64 random bits from the kernel, for names nobody can guess.
fn random_u64() -> u64 {
    crate::sys::random_u64().unwrap_or_else(|| {
        // Never expected (8 bytes do not block once the pool is ready);
        // the name stays unpredictable enough and O_EXCL keeps it safe.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ u64::from(std::process::id()).rotate_left(32)
    })
}

/// Connections served at once; a newer one closes the oldest.
const MAX_CONNECTIONS: usize = 32;
/// A client has this long to send its request line, then as long again to
/// take the reply.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves the latest rendering on `addr` (loopback only; checked by the
/// config): `GET /metrics` gets it, anything else a 404. Returns the
/// address bound.
///
/// Any local user can connect and then say nothing. Serving connections
/// one after another let each idle one hold the scrape behind it for the
/// whole read timeout (20 idle connections: 20 s). So each connection gets
/// its own thread, with a deadline for its request line, and at most
/// `MAX_CONNECTIONS` are open: the next one closes the oldest, which is
/// the idle one, never a scrape that arrived after it. Threads and memory
/// stay bounded however many clients come.
pub fn serve(addr: SocketAddr, latest: Arc<Mutex<String>>) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).with_context(|| format!("metrics_listen {addr}"))?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            // Open connections, oldest first: a handle to close it, and
            // whether its thread is done.
            let mut open: std::collections::VecDeque<(TcpStream, Arc<AtomicBool>)> =
                std::collections::VecDeque::new();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                open.retain(|(_, done)| !done.load(Ordering::Acquire));
                if open.len() >= MAX_CONNECTIONS {
                    if let Some((oldest, _)) = open.pop_front() {
                        // Ends its blocked read at once; its thread exits.
                        let _ = oldest.shutdown(Shutdown::Both);
                    }
                }
                let Ok(handle) = conn.try_clone() else {
                    continue;
                };
                let done = Arc::new(AtomicBool::new(false));
                let (latest, finished) = (latest.clone(), done.clone());
                let spawned = std::thread::Builder::new()
                    .name("metrics conn".into())
                    .spawn(move || {
                        answer(conn, &latest);
                        finished.store(true, Ordering::Release);
                    });
                if spawned.is_ok() {
                    open.push_back((handle, done));
                }
            }
        })?;
    Ok(bound)
}

/// Reads one request line (up to 1 KiB, within `CLIENT_TIMEOUT`) and
/// answers it.
fn answer(mut conn: TcpStream, latest: &Mutex<String>) {
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    let mut buf = [0u8; 1024];
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match conn.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return,
            Ok(k) => n += k,
        }
    }
    let request = &buf[..n];
    let (status, body) =
        if request.starts_with(b"GET /metrics ") || request.starts_with(b"GET /metrics?") {
            (
                "200 OK",
                latest.lock().map(|s| s.clone()).unwrap_or_default(),
            )
        } else {
            ("404 Not Found", "try /metrics\n".to_string())
        };
    let _ = conn.set_write_timeout(Some(CLIENT_TIMEOUT));
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The accept loop holds a clone of the socket: close it for both, so
    // the client sees the end of the reply now.
    let _ = conn.shutdown(Shutdown::Both);
}

impl super::state::Daemon<'_> {
    /// Renders the metrics; writes the textfile and hands the text to the
    /// HTTP endpoint, whichever are configured.
    pub(super) fn publish_metrics(&mut self, now: i64) {
        let mut set_bans = Family::new(
            "banset_set_bans",
            "gauge",
            "Bans in effect per set, from the ledger.",
        );
        if let Ok(tx) = self.ctx.fw.ledger.read() {
            if let Ok(specs) = tx.set_specs() {
                for spec in specs {
                    if let Ok((active, _)) = tx.counts(&spec.name, now) {
                        set_bans = set_bans.sample(&[("set", spec.name.as_str())], active as f64);
                    }
                }
            }
        }
        let mut bans = Family::new(
            "banset_jail_bans_total",
            "counter",
            "Bans the jail made since the daemon started.",
        );
        let mut failures = Family::new(
            "banset_jail_failures_total",
            "counter",
            "Failures the jail counted since the daemon started.",
        );
        let mut too_old = Family::new(
            "banset_jail_too_old_failures_total",
            "counter",
            "Failures older than the jail's findtime when read (a backlog after downtime): not counted.",
        );
        let mut failing = Family::new(
            "banset_jail_failing_addresses",
            "gauge",
            "Addresses with failures in the jail's window.",
        );
        for j in self.jails.iter() {
            let jail = [("jail", j.settings().name.as_str())];
            let stats = j.stats();
            bans = bans.sample(&jail, stats.bans as f64);
            failures = failures.sample(&jail, stats.failures as f64);
            too_old = too_old.sample(&jail, stats.too_old as f64);
            failing = failing.sample(&jail, j.tracked() as f64);
        }
        let mut lines = Family::new(
            "banset_source_lines_total",
            "counter",
            "Log lines read per source since the daemon started.",
        );
        let mut hits = Family::new(
            "banset_source_failures_total",
            "counter",
            "Failures found per source since the daemon started.",
        );
        for s in &self.sources {
            let source = s.key.to_string();
            let label = [("source", source.as_str())];
            lines = lines.sample(
                &label,
                s.stats.lines.load(std::sync::atomic::Ordering::Relaxed) as f64,
            );
            hits = hits.sample(
                &label,
                s.stats.hits.load(std::sync::atomic::Ordering::Relaxed) as f64,
            );
        }
        let mut errors = Family::new(
            "banset_errors_total",
            "counter",
            "Errors by kind since the daemon started.",
        );
        for kind in ["ban", "source", "keeper"] {
            errors = errors.sample(
                &[("kind", kind)],
                *self.errors.get(kind).unwrap_or(&0) as f64,
            );
        }
        let fleet = if self
            .fleet
            .as_ref()
            .is_some_and(super::fleet::FleetHandle::sharing)
        {
            self.ctx
                .fw
                .ledger
                .read()
                .ok()
                .map(|tx| fleet_families(&tx))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut families = vec![
            Family::new("banset_up", "gauge", "1 while banset watch runs.").sample(&[], 1.0),
            Family::new(
                "banset_start_time_seconds",
                "gauge",
                "Unix time the daemon started.",
            )
            .sample(&[], self.started as f64),
            set_bans,
            bans,
            failures,
            too_old,
            failing,
            Family::new(
                "banset_unbans_total",
                "counter",
                "Bans that ended since the daemon started.",
            )
            .sample(&[], self.unbans as f64),
            lines,
            hits,
            Family::new(
                "banset_repairs_total",
                "counter",
                "Sets re-created after a firewall reload or flush.",
            )
            .sample(&[], self.keeper.repairs as f64),
            errors,
            Family::new(
                "banset_last_heal_seconds",
                "gauge",
                "From noticing a lost set to having it back, last time.",
            )
            .sample(&[], self.keeper.last_heal_ms.unwrap_or(0.0) / 1e3),
        ];
        families.extend(fleet);
        let text = render(&families);
        if let Some(path) = &self.settings.watch.metrics_file {
            if let Err(e) = write_textfile(path, &text) {
                *self.errors.entry("keeper").or_default() += 1;
                super::logging::log!("{e:#}");
            }
        }
        if let Ok(mut latest) = self.metrics_text.lock() {
            *latest = text;
        }
    }
}

/// The fleet's metrics, from the ledger (the fleet thread writes it):
/// what waits to be published, what this host holds from others, what it
/// held back, and when a round last worked.
fn fleet_families(tx: &banset_core::LedgerTx<'_>) -> Vec<Family> {
    let mut out = Vec::new();
    if let Ok(n) = tx.fleet_outbox_len() {
        out.push(
            Family::new(
                "banset_fleet_outbox_pending",
                "gauge",
                "Local changes waiting to be published to the fleet.",
            )
            .sample(&[], n as f64),
        );
    }
    if let Ok(n) = tx.fleet_row_count() {
        out.push(
            Family::new(
                "banset_fleet_remote_rows",
                "gauge",
                "Other hosts' bans this host holds.",
            )
            .sample(&[], n as f64),
        );
    }
    if let Ok(counts) = tx.fleet_suppressed() {
        let mut f = Family::new(
            "banset_fleet_suppressed_total",
            "counter",
            "Remote bans kept out of this host's kernel, by reason.",
        );
        for (reason, n) in &counts {
            f = f.sample(&[("reason", reason.as_str())], *n as f64);
        }
        out.push(f);
    }
    if let Ok(Some(t)) = tx.meta(banset_fleet::sync::LAST_SYNC_KEY) {
        if let Ok(t) = t.parse::<f64>() {
            out.push(
                Family::new(
                    "banset_fleet_last_sync_seconds",
                    "gauge",
                    "Unix time of the last fleet round that worked.",
                )
                .sample(&[], t),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn tempdir(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("banset-metrics-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn metrics_textfile_never_writes_through_a_planted_symlink() {
        let d = tempdir("symlink");
        let victim = d.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let prom = d.join("banset.prom");
        // The old fixed temporary name, likely guesses, and the textfile's
        // own name: all symlinks to the victim.
        for planted in [
            "banset.prom.tmp",
            ".banset.prom.tmp",
            "banset.tmp",
            "banset.prom~",
            "banset.prom",
        ] {
            std::os::unix::fs::symlink(&victim, d.join(planted)).unwrap();
        }
        write_textfile(&prom, "banset_up 1\n").unwrap();
        write_textfile(&prom, "banset_up 1\nbanset_unbans_total 0\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let meta = std::fs::symlink_metadata(&prom).unwrap();
        assert!(meta.file_type().is_file(), "{meta:?}");
        assert_eq!(meta.mode() & 0o7777, 0o644);
        assert_eq!(
            std::fs::read_to_string(&prom).unwrap(),
            "banset_up 1\nbanset_unbans_total 0\n"
        );
        // No temporary file of ours is left behind; the planted ones stay.
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n.starts_with(".banset.prom."))
            .filter(|n| n != ".banset.prom.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn metrics_textfile_refuses_a_directory_every_user_can_write() {
        let d = tempdir("worldwritable");
        let open = d.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = write_textfile(&open.join("banset.prom"), "x 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("writable by every user (mode 777)") && e.contains("open"),
            "{e}"
        );
        assert!(!open.join("banset.prom").exists());
        // Sticky and root's (like /tmp): nobody else can replace root's file.
        if crate::sys::euid() == 0 {
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
            write_textfile(&open.join("banset.prom"), "x 1\n").unwrap();
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn idle_metrics_connections_cannot_starve_a_scrape() {
        let latest = Arc::new(Mutex::new("banset_up 1\n".to_string()));
        let addr = serve("127.0.0.1:0".parse().unwrap(), latest).unwrap();
        // More idle clients than connections served at once; each says
        // nothing and stays open. Serving in turn took 2 s for each.
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS + 8)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let mut scrape = TcpStream::connect(addr).unwrap();
        // A failsafe against hanging, far above a served scrape, far
        // below the 80 s the idle clients cost one after another.
        scrape
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        scrape
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        scrape.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.ends_with("banset_up 1\n"), "{reply}");
        drop(idle);
    }
}
