//! A private PostgreSQL 15 for fleet tests: Debian's binaries
//! (/usr/lib/postgresql/15/bin) run as the `postgres` user on a data
//! directory and unix socket in a temp dir, optionally listening on TCP
//! inside a network namespace. Never the default cluster, never a service:
//! the postmaster is stopped by its PID on drop.
//!
//! The superuser `postgres` logs in over the private socket without a
//! password (the socket's directory is 0700); every other role needs its
//! SCRAM password, on the socket and on TCP alike, so trust tests exercise
//! the same authentication as a real hub.

use std::fs;
use std::io;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::netns::{run_checked, NamedNetns};

/// Where Debian's postgresql-15 puts its programs.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The port: the socket lives in a private directory and TCP in a private
/// namespace, so the default never collides with anything.
pub const PORT: u16 = 5432;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Whether the PostgreSQL binaries are installed; tests skip, saying so,
/// without them.
pub fn available() -> bool {
    Path::new(PG_BIN).join("postgres").exists()
}

/// Returns true, after saying why on stderr, when a PostgreSQL test must
/// be skipped (not root, or no postgresql-15).
pub fn skip_unless_postgres(test: &str) -> bool {
    if crate::netns::skip_unless_root(test) {
        return true;
    }
    if !available() {
        eprintln!("{test}: skipped: {PG_BIN}/postgres missing (apt-get install postgresql-15)");
        return true;
    }
    false
}

/// How to start the instance.
#[derive(Debug, Default, Clone)]
pub struct PgOptions {
    /// Listen on TCP at this address (it must exist in `netns`).
    pub listen: Option<String>,
    /// Run the postmaster in this named namespace (`ip netns`).
    pub netns: Option<String>,
    /// Server certificate and key: TCP then accepts only TLS (hostssl).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running private PostgreSQL.
#[derive(Debug)]
pub struct TestPostgres {
    dir: PathBuf,
    options: PgOptions,
    pid: Option<i32>,
    uid: u32,
    gid: u32,
}

impl TestPostgres {
    /// initdb + start on a unix socket only.
    pub fn start() -> io::Result<TestPostgres> {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(options: PgOptions) -> io::Result<TestPostgres> {
        let (uid, gid) = postgres_user()?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("banset-pg-{}-{id}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        chown(&dir, Some(uid), Some(gid))?;
        let mut pg = TestPostgres {
            dir,
            options,
            pid: None,
            uid,
            gid,
        };
        pg.initdb()?;
        pg.restart()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The directory of the unix socket (libpq's `host=`).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's PID while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// A DSN for `user` over the unix socket.
    pub fn dsn(&self, user: &str, password: Option<&str>) -> String {
        let mut dsn = format!(
            "host={} port={PORT} dbname=postgres user='{user}'",
            self.dir.display()
        );
        if let Some(password) = password {
            dsn.push_str(&format!(" password={password}"));
        }
        dsn
    }

    /// The superuser's DSN (no password: the socket directory is private).
    pub fn superuser_dsn(&self) -> String {
        self.dsn("postgres", None)
    }

    fn initdb(&self) -> io::Result<()> {
        run_checked(
            self.as_postgres(&format!("{PG_BIN}/initdb"))
                .args(["-D"])
                .arg(self.data())
                .args(["-U", "postgres", "-E", "UTF8", "--no-sync", "--auth=trust"]),
        )?;
        let tcp = self.options.listen.as_deref().unwrap_or("");
        let mut conf = format!(
            "\n# banset test instance\nlisten_addresses = '{tcp}'\nport = {PORT}\n\
             unix_socket_directories = '{}'\nfsync = off\nmax_connections = 200\n\
             password_encryption = 'scram-sha-256'\n",
            self.dir.display()
        );
        let host_kind = match &self.options.tls {
            Some((cert, key)) => {
                conf.push_str(&format!(
                    "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                    cert.display(),
                    key.display()
                ));
                "hostssl"
            }
            None => "host",
        };
        let mut postgresql_conf = fs::read_to_string(self.data().join("postgresql.conf"))?;
        postgresql_conf.push_str(&conf);
        fs::write(self.data().join("postgresql.conf"), postgresql_conf)?;
        let hba = format!(
            "local all postgres trust\nlocal all all scram-sha-256\n\
             {host_kind} all all 0.0.0.0/0 scram-sha-256\n{host_kind} all all ::/0 scram-sha-256\n"
        );
        fs::write(self.data().join("pg_hba.conf"), hba)?;
        Ok(())
    }

    /// A command that runs `program` as the postgres user (inside the
    /// namespace when there is one).
    fn as_postgres(&self, program: &str) -> Command {
        // setpriv, not Command::uid: it also drops root's supplementary
        // groups, and it runs the same inside `ip netns exec`.
        let mut command = match &self.options.netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns, "setpriv"]);
                command
            }
            None => Command::new("setpriv"),
        };
        command.arg(format!("--reuid={}", self.uid));
        command.arg(format!("--regid={}", self.gid));
        command.args(["--clear-groups", program]);
        command
    }

    /// Starts the postmaster (again, after `kill`), waiting until it
    /// accepts connections.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.pid.is_some() {
            return Ok(());
        }
        run_checked(
            self.as_postgres(&format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-w", "-t", "60", "start"]),
        )?;
        let pidfile = fs::read_to_string(self.data().join("postmaster.pid"))?;
        let pid = pidfile
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| io::Error::other("postmaster.pid without a PID"))?;
        self.pid = Some(pid);
        Ok(())
    }

    /// Kills the engine the hard way (`pg_ctl stop -m immediate`: no
    /// checkpoint, clients cut off), then waits for its PID to be gone.
    pub fn kill(&mut self) -> io::Result<()> {
        let Some(pid) = self.pid else { return Ok(()) };
        let stopped = run_checked(
            self.as_postgres(&format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"]),
        );
        if stopped.is_err() {
            // SAFETY: kill with a PID we started; SIGQUIT is the postmaster's
            // immediate shutdown.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
        }
        wait_gone(pid, Duration::from_secs(30));
        self.pid = None;
        stopped.map(|_| ())
    }

    /// Runs `psql` (the independent oracle) as `user` with `password` on
    /// the socket; returns its output whatever the exit status.
    pub fn psql(&self, user: &str, password: Option<&str>, sql: &str) -> io::Result<Output> {
        let mut command = Command::new(format!("{PG_BIN}/psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.dsn(user, password))
            .args(["-c", sql]);
        command.output()
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SAFETY: signals only the postmaster this value started.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            wait_gone(pid, Duration::from_secs(30));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `pid` no longer exists (bounded).
fn wait_gone(pid: i32, bound: Duration) {
    let until = Instant::now() + bound;
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn postgres_user() -> io::Result<(u32, u32)> {
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at
    // once, before any other call could reuse its static buffer.
    unsafe {
        let entry = libc::getpwnam(c"postgres".as_ptr());
        if entry.is_null() {
            return Err(io::Error::other(
                "no `postgres` user (installed by postgresql-common)",
            ));
        }
        Ok(((*entry).pw_uid, (*entry).pw_gid))
    }
}

/// A named namespace holding a private PostgreSQL on TCP: the fleet's
/// engine host in multi-host tests.
pub fn in_netns(
    netns: &NamedNetns,
    addr: &str,
    tls: Option<(PathBuf, PathBuf)>,
) -> io::Result<TestPostgres> {
    TestPostgres::start_with(PgOptions {
        listen: Some(addr.to_owned()),
        netns: Some(netns.name().to_owned()),
        tls,
    })
}
