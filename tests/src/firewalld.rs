//! A real firewalld for tests, fully isolated from the host: its own network
//! namespace, a private mount namespace (private `/run`, `/etc/firewalld`,
//! `/var/log`) and a private dbus-daemon acting as its system bus. The
//! recipe, and why each piece is there, is in `notes/firewalld.md` §1.
//!
//! ```text
//! test process (host netns) ──unix:path=$INST/run-dbus/system_bus_socket──┐
//!                                                                         │
//! netns <name>  +  private mount ns                                        │
//!   dbus-daemon  --config-file=$INST/dbus.conf   (listens on that path) ◄──┘
//!   firewalld --nofork --nopid  (FirewallBackend=nftables|iptables)
//!   /run = tmpfs, /run/dbus = $INST/run-dbus, /etc/firewalld = $INST/etc-firewalld,
//!   /var/log = $INST/var-log
//! ```
//!
//! The bus listens on a *path* socket, which any namespace can reach, so the
//! test process talks to the instance from anywhere by pointing a D-Bus
//! client at [`Firewalld::bus_address`]; no process-wide environment
//! variable is changed, so several instances (one per firewall backend) run
//! side by side in one test binary. Kernel objects, on the other hand, are
//! per network namespace: whatever must see firewalld's rules (the ipset
//! netlink socket of the backend under test, `ipset`/`iptables`/`nft` as
//! oracles, a TCP listener) has to live in [`Firewalld::netns`], through
//! [`Firewalld::enter`] or [`Firewalld::command`].
//!
//! The instance is stopped on drop, even when the test panics: firewalld
//! first (with `CleanupOnExit=yes` it removes its own rules), then the bus,
//! then anything left in the namespace, then the namespace itself when the
//! instance owns it. Its directory goes too, unless the start failed or
//! `BANSET_KEEP_FIREWALLD=1` is set, so its logs can be read.
//!
//! # Use
//!
//! ```ignore
//! use banset_tests::firewalld::{Firewalld, FirewallBackend};
//!
//! if banset_tests::firewalld::skip_unless_available("my_test") { return; }
//! let fw = Firewalld::start(FirewallBackend::Nftables)?;
//! // A backend talks D-Bus on the instance's bus and netlink in its netns:
//! let backend = fw.enter(|| FirewalldBackend::open_on(&Bus::Address(fw.bus_address())))?;
//! fw.enter(|| backend.ensure_set(&spec))?;
//! fw.reload()?;                                   // firewall-cmd --reload, on the private bus
//! let rules = fw.firewall_cmd(&["--direct", "--get-all-rules"])?;
//! ```
//!
//! For a packet test, start firewalld in the server side of a
//! [`VethPair`](crate::netns::VethPair) with [`Firewalld::start_in`]; zone
//! `public` rejects everything but ssh and dhcpv6-client, so listen on port
//! 22 there (see [`Firewalld::listen_ssh_port`]).
//!
//! The real binary (`banset`, or `banset watch` for the reload self-heal)
//! runs in the instance through [`Firewalld::command`], which sets
//! `DBUS_SYSTEM_BUS_ADDRESS` for it. A daemon under test is a child of the
//! test: kill and wait for it before the instance drops.
//! [`Firewalld::restart`] stops and starts firewalld alone (same bus, same
//! namespace), which is what a daemon must notice as a name-owner change;
//! [`Firewalld::stop_firewalld`] and [`Firewalld::start_firewalld`] split
//! it, for what must happen while firewalld is down (a reboot's order).
//!
//! The daemon's reload self-heal test, end to end, goes like this
//! (`cli/tests/cli_firewalld.rs` has the `banset sync` variant):
//!
//! ```ignore
//! let pair = VethPair::new()?;
//! let mut fw = Firewalld::start_in(pair.server(), FirewallBackend::Nftables)?;
//! let listener = fw.listen_ssh_port(VethPair::SERVER_V4.into())?;     // zone public admits 22
//! let to = listener.local_addr()?;
//! fw.command(BANSET).args(["--state-dir", dir, "add", "f2b", &client]).status()?;
//! let mut watch = fw.command(BANSET).args(["--state-dir", dir, "watch", "--config", cfg]).spawn()?;
//! // wait until the daemon says it subscribed (its log), then:
//! fw.reload()?;                               // returns after firewalld emitted Reloaded
//! let t = Instant::now();
//! while pair.connect_tcp(to, Duration::from_millis(200)) == Reach::Connected { /* not yet */ }
//! eprintln!("blocked again {:?} after the reload", t.elapsed());   // print, never assert a time
//! watch.kill()?; watch.wait()?;               // before `fw` drops
//! ```
//!
//! Probe with short connect timeouts there: a probe that gets through while
//! the rule is still missing returns at once, one that is dropped costs the
//! timeout.

use std::fs;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::netns::{is_root, NamedNetns};

/// Which firewall firewalld drives (`FirewallBackend=` in firewalld.conf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirewallBackend {
    /// nftables: firewalld's own rules in `table inet firewalld`; direct
    /// rules still go through iptables(-nft).
    Nftables,
    /// iptables: everything through `iptables-restore` (iptables-nft on
    /// Debian 12).
    Iptables,
}

impl FirewallBackend {
    /// Both values, for tests that must pass under each.
    pub const ALL: [FirewallBackend; 2] = [FirewallBackend::Nftables, FirewallBackend::Iptables];

    /// The value of `FirewallBackend=`.
    pub fn name(self) -> &'static str {
        match self {
            FirewallBackend::Nftables => "nftables",
            FirewallBackend::Iptables => "iptables",
        }
    }
}

/// The programs an instance needs: firewalld itself, the bus, and the tools
/// the harness and the oracles run.
const REQUIRED: &[&str] = &[
    "firewalld",
    "firewall-cmd",
    "dbus-daemon",
    "dbus-send",
    "ip",
    "unshare",
    "nsenter",
    "ipset",
    "iptables",
];

/// Returns true, after saying why on stderr, when a firewalld test cannot
/// run here: not root, or firewalld and its tools are not installed. On CI
/// (`CI` set) a missing tool is a failure instead, so a broken CI image can
/// never report firewalld tests as passed.
pub fn skip_unless_available(test: &str) -> bool {
    if !is_root() {
        eprintln!("{test}: skipped: needs root to run an isolated firewalld");
        return true;
    }
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|p| !on_path(p)).collect();
    if missing.is_empty() {
        return false;
    }
    let why = format!(
        "{test}: needs {} (Debian: apt-get install firewalld; see .ci/run for how to \
         install it without starting it on the host)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("{why}: skipped");
    true
}

fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(program).is_file())
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// How long firewalld may take to reach `RUNNING` (measured: 0.3-0.7 s).
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long a process may take to end after SIGTERM before SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// The bus path firewalld sees inside its mount namespace.
const INNER_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// A running, isolated firewalld; stopped on drop (see the module docs).
#[derive(Debug)]
pub struct Firewalld {
    netns_name: String,
    /// Set when the instance made its namespace (and deletes it on drop).
    owned_netns: Option<NamedNetns>,
    dir: PathBuf,
    backend: FirewallBackend,
    firewalld: Option<Child>,
    dbus_pid: Option<u32>,
    keep_dir: bool,
}

impl Firewalld {
    /// Starts an instance in a network namespace of its own.
    pub fn start(backend: FirewallBackend) -> io::Result<Firewalld> {
        let netns = NamedNetns::create("fwd")?;
        let name = netns.name().to_string();
        Firewalld::launch(name, Some(netns), backend)
    }

    /// Starts an instance in an existing namespace (the server side of a
    /// [`VethPair`](crate::netns::VethPair)), which the caller keeps owning
    /// and must outlive the instance.
    pub fn start_in(netns: &NamedNetns, backend: FirewallBackend) -> io::Result<Firewalld> {
        Firewalld::launch(netns.name().to_string(), None, backend)
    }

    fn launch(
        netns_name: String,
        owned_netns: Option<NamedNetns>,
        backend: FirewallBackend,
    ) -> io::Result<Firewalld> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        // /tmp, not TMPDIR: the instance hides /run and /var/log behind its
        // own mounts, and a unix socket path must stay under 108 bytes.
        let dir = PathBuf::from(format!("/tmp/banset-fwd-{}-{id}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let mut fw = Firewalld {
            netns_name,
            owned_netns,
            dir,
            backend,
            firewalld: None,
            dbus_pid: None,
            keep_dir: true,
        };
        // On failure `fw` drops here: the stop sequence runs and the
        // directory stays for its logs.
        fw.prepare()?;
        fw.spawn_first()?;
        fw.wait_running()?;
        fw.keep_dir = std::env::var_os("BANSET_KEEP_FIREWALLD").is_some();
        Ok(fw)
    }

    fn prepare(&self) -> io::Result<()> {
        for sub in ["run-dbus", "var-log", "etc-firewalld"] {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(self.dir.join(sub))?;
        }
        let copy = Command::new("cp")
            .args(["-a", "/etc/firewalld/."])
            .arg(self.dir.join("etc-firewalld"))
            .output()?;
        if !copy.status.success() {
            return Err(io::Error::other(format!(
                "copying /etc/firewalld: {}",
                String::from_utf8_lossy(&copy.stderr).trim()
            )));
        }
        let conf_path = self.dir.join("etc-firewalld/firewalld.conf");
        let conf = fs::read_to_string(&conf_path).unwrap_or_default();
        fs::write(&conf_path, with_backend(&conf, self.backend))?;
        fs::write(
            self.dir.join("dbus.conf"),
            bus_config(&self.dir.join("run-dbus/system_bus_socket")),
        )?;
        fs::write(self.dir.join("inner.sh"), INNER_SCRIPT)?;
        Ok(())
    }

    /// Runs `inner.sh` in the namespace under a fresh mount namespace: it
    /// mounts, starts the bus and execs firewalld, so the child is firewalld.
    fn spawn_first(&mut self) -> io::Result<()> {
        let log = fs::File::create(self.dir.join("var-log/launcher.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns_name])
            .args(["unshare", "--mount", "--propagation", "private", "/bin/sh"])
            .arg(self.dir.join("inner.sh"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a ^C meant for the test harness does
            // not reach firewalld half-way through a transaction.
            .process_group(0)
            .spawn()?;
        self.firewalld = Some(child);
        Ok(())
    }

    /// Polls firewalld's `state` property until `RUNNING`, which it reports
    /// only once its rules are applied.
    fn wait_running(&mut self) -> io::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.firewalld.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.firewalld = None;
                    return Err(io::Error::other(format!(
                        "firewalld exited ({status}) before it was running; {}",
                        self.logs()
                    )));
                }
            }
            if self.dbus_pid.is_none() {
                self.dbus_pid = fs::read_to_string(self.dir.join("dbus.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
            }
            if self.dbus_pid.is_some() && self.state().as_deref() == Some("RUNNING") {
                break;
            }
            if start.elapsed() > START_LIMIT {
                return Err(io::Error::other(format!(
                    "firewalld was not RUNNING after {START_LIMIT:?}; {}",
                    self.logs()
                )));
            }
            std::thread::sleep(POLL);
        }
        // The whole point: it must not run in the host's namespace.
        let pid = self.firewalld_pid().expect("running");
        if !self.in_our_netns(pid) {
            return Err(io::Error::other(format!(
                "firewalld (pid {pid}) is not in network namespace {}; refusing to go on",
                self.netns_name
            )));
        }
        Ok(())
    }

    /// firewalld's `state` property, `None` when it does not answer.
    pub fn state(&self) -> Option<String> {
        let out = Command::new("dbus-send")
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address())
            .args([
                "--system",
                "--print-reply=literal",
                "--reply-timeout=2000",
                "--dest=org.fedoraproject.FirewallD1",
                "/org/fedoraproject/FirewallD1",
                "org.freedesktop.DBus.Properties.Get",
                "string:org.fedoraproject.FirewallD1",
                "string:state",
            ])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        // "   variant       string RUNNING"
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .last()
            .map(str::to_string)
    }

    /// The address of the instance's bus, for `DBUS_SYSTEM_BUS_ADDRESS` or
    /// a D-Bus client's explicit address.
    pub fn bus_address(&self) -> String {
        format!(
            "unix:path={}",
            self.dir.join("run-dbus/system_bus_socket").display()
        )
    }

    /// The network namespace firewalld runs in (`ip netns` name).
    pub fn netns(&self) -> &str {
        &self.netns_name
    }

    /// Which firewall firewalld drives.
    pub fn backend(&self) -> FirewallBackend {
        self.backend
    }

    /// firewalld's pid, while it runs.
    pub fn firewalld_pid(&self) -> Option<u32> {
        self.firewalld.as_ref().map(Child::id)
    }

    /// Runs `f` on a thread that joined the instance's network namespace,
    /// so netlink sockets and listeners made there see firewalld's rules.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = Path::new("/run/netns").join(&self.netns_name);
        let handle =
            fs::File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        std::thread::scope(|scope| {
            let joined = scope.spawn(move || {
                // SAFETY: handle is an open namespace file for the whole call.
                if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    panic!(
                        "setns into {}: {}",
                        path.display(),
                        io::Error::last_os_error()
                    );
                }
                f()
            });
            match joined.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// `program` run in the instance's network namespace with
    /// `DBUS_SYSTEM_BUS_ADDRESS` pointing at its bus: `ipset`, `iptables`,
    /// `nft` as oracles, `firewall-cmd`, or the `banset` binary.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.netns_name])
            .arg(program)
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address());
        command
    }

    /// Runs `program args` through [`Firewalld::command`]; stdout, or an
    /// error with the command line and its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let out = self.command(program).args(args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{program} {} ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `firewall-cmd args` against the instance.
    pub fn firewall_cmd(&self, args: &[&str]) -> io::Result<String> {
        self.run("firewall-cmd", args)
    }

    /// `firewall-cmd --reload`: returns once firewalld has re-applied its
    /// permanent configuration (it replies after emitting `Reloaded`).
    pub fn reload(&self) -> io::Result<()> {
        self.firewall_cmd(&["--reload"]).map(drop)
    }

    /// A TCP listener on port 22 of `addr`, in the instance's namespace:
    /// zone `public` admits ssh, and rejects other ports.
    pub fn listen_ssh_port(&self, addr: IpAddr) -> io::Result<TcpListener> {
        self.enter(|| TcpListener::bind((addr, 22)))
    }

    /// Everything of firewalld's configuration banset could change, runtime
    /// and permanent, plus the kernel's ipsets and iptables rules in the
    /// namespace, as text: equal snapshots before `create` and after
    /// `destroy` mean nothing was left behind. The raw nftables ruleset is
    /// left out: once a direct rule has existed, iptables-nft keeps its
    /// empty `ip filter`/`ip6 filter` tables with an accepting `INPUT`
    /// chain, as it does for any iptables user.
    pub fn snapshot(&self) -> io::Result<String> {
        let mut out = String::new();
        for args in [
            &["--direct", "--get-all-rules"][..],
            &["--direct", "--get-all-chains"],
            &["--direct", "--get-all-passthroughs"],
            &["--permanent", "--direct", "--get-all-rules"],
            &["--permanent", "--direct", "--get-all-chains"],
            &["--permanent", "--direct", "--get-all-passthroughs"],
            &["--get-ipsets"],
            &["--permanent", "--get-ipsets"],
            &["--list-all"],
            &["--permanent", "--list-all"],
        ] {
            out.push_str(&format!("## firewall-cmd {}\n", args.join(" ")));
            out.push_str(&self.firewall_cmd(args)?);
        }
        for (program, args) in [
            ("ipset", &["list", "-n"][..]),
            ("iptables", &["-S"]),
            ("ip6tables", &["-S"]),
        ] {
            out.push_str(&format!("## {program} {}\n", args.join(" ")));
            out.push_str(&self.run(program, args)?);
        }
        Ok(out)
    }

    /// Stops firewalld (SIGTERM, as systemd would) and starts it again in
    /// the same namespaces with the same bus, then waits until it runs:
    /// a daemon watching the bus sees the name lose and regain its owner.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop_firewalld();
        self.start_firewalld()
    }

    /// Stops firewalld alone (SIGTERM, then SIGKILL after 10 s); the bus,
    /// the namespaces and kernel objects firewalld did not make stay. With
    /// `CleanupOnExit=yes` it removes its rules first, as at a host's
    /// shutdown. No-op when it is not running.
    pub fn stop_firewalld(&mut self) {
        if let Some(mut child) = self.firewalld.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(child.id(), libc::SIGTERM);
                let start = Instant::now();
                while matches!(child.try_wait(), Ok(None)) && start.elapsed() < STOP_LIMIT {
                    std::thread::sleep(POLL);
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Starts firewalld again after [`Firewalld::stop_firewalld`], in the
    /// same namespaces on the same bus, and waits until it runs: what a
    /// boot does, when whatever must exist before firewalld (the kernel
    /// sets its permanent rules name) has been prepared in between.
    pub fn start_firewalld(&mut self) -> io::Result<()> {
        if self.firewalld.is_some() {
            return Err(io::Error::other("firewalld is already running"));
        }
        let bus_holder = self
            .dbus_pid
            .ok_or_else(|| io::Error::other("the instance's bus is not running"))?;
        let log = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("var-log/launcher.log"))?;
        // nsenter execs firewalld (no pid namespace, so no fork): the child
        // is firewalld itself, in the bus's network and mount namespaces.
        let child = Command::new("nsenter")
            .args(["-t", &bus_holder.to_string(), "-n", "-m", "--"])
            .args(["env", &format!("DBUS_SYSTEM_BUS_ADDRESS={INNER_BUS}")])
            .args(FIREWALLD_ARGV)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        self.firewalld = Some(child);
        self.wait_running()
    }

    fn logs(&self) -> String {
        let read = |name: &str| {
            fs::read_to_string(self.dir.join("var-log").join(name))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        format!(
            "launcher log: {:?}; firewalld log: {:?} (kept in {})",
            read("launcher.log"),
            read("firewalld"),
            self.dir.display()
        )
    }

    /// Whether `pid` lives in the instance's network namespace: the guard
    /// against signalling a reused pid.
    fn in_our_netns(&self, pid: u32) -> bool {
        let ns = fs::metadata(Path::new("/run/netns").join(&self.netns_name));
        let proc_ns = fs::metadata(format!("/proc/{pid}/ns/net"));
        match (ns, proc_ns) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }

    fn stop(&mut self) {
        self.stop_firewalld();
        if let Some(pid) = self.dbus_pid.take() {
            if self.in_our_netns(pid) {
                terminate(pid);
            }
        }
        // Anything else left in the namespace (a listener, a daemon under
        // test that was not waited for), never the test process itself.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.netns_name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .filter(|&p| p != std::process::id())
            {
                if self.in_our_netns(pid) {
                    terminate(pid);
                }
            }
        }
        self.owned_netns = None;
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("firewalld instance files kept in {}", self.dir.display());
        }
    }
}

impl Drop for Firewalld {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory effects; the pid was checked by the caller.
        unsafe { libc::kill(pid, sig) };
    }
}

/// SIGTERM, wait, SIGKILL for a process that is not our child. A zombie
/// counts as gone: it was reparented to pid 1, which may reap it late.
fn terminate(pid: u32) {
    let alive = || {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| {
                !s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'))
            })
            .unwrap_or(false)
    };
    signal(pid, libc::SIGTERM);
    let start = Instant::now();
    while alive() && start.elapsed() < STOP_LIMIT {
        std::thread::sleep(POLL);
    }
    if alive() {
        signal(pid, libc::SIGKILL);
    }
}

/// firewalld in the foreground, without a pid file (`/var/run` is the
/// host's), logging to the instance's private `/var/log`.
const FIREWALLD_ARGV: &[&str] = &[
    "firewalld",
    "--nofork",
    "--nopid",
    "--log-target=file",
    "--log-file=/var/log/firewalld",
];

/// Runs inside the new network and mount namespaces with the instance
/// directory as `$1`. Mounts first, so neither the bus nor firewalld ever
/// sees the host's `/run`, `/etc/firewalld` or `/var/log`.
const INNER_SCRIPT: &str = r#"set -eu
INST="$1"
mount -t tmpfs -o mode=0755,size=16m banset-fwd-run /run
mkdir -p /run/dbus /run/firewalld
mount --bind "$INST/run-dbus" /run/dbus
mount --bind "$INST/etc-firewalld" /etc/firewalld
mount --bind "$INST/var-log" /var/log
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
dbus-daemon --config-file="$INST/dbus.conf" --fork --nopidfile --nosyslog --print-pid=3 3>"$INST/dbus.pid"
exec firewalld --nofork --nopid --log-target=file --log-file=/var/log/firewalld
"#;

/// firewalld.conf with `FirewallBackend` set, every other line kept.
fn with_backend(conf: &str, backend: FirewallBackend) -> String {
    let line = format!("FirewallBackend={}", backend.name());
    let mut found = false;
    let mut out: Vec<String> = conf
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("FirewallBackend=") {
                found = true;
                line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// The private bus: root only, nothing activatable. `deny` comes before
/// `allow root` because the last matching rule wins.
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <deny user="*"/>
    <allow user="root"/>
  </policy>
  <policy user="root">
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_line_is_replaced_or_appended() {
        let conf = "# c\nDefaultZone=public\nFirewallBackend=nftables\n";
        assert_eq!(
            with_backend(conf, FirewallBackend::Iptables),
            "# c\nDefaultZone=public\nFirewallBackend=iptables\n"
        );
        assert_eq!(
            with_backend("DefaultZone=public\n", FirewallBackend::Nftables),
            "DefaultZone=public\nFirewallBackend=nftables\n"
        );
    }

    #[test]
    fn bus_denies_before_allowing_root() {
        let c = bus_config(Path::new("/tmp/x/s"));
        let deny = c.find(r#"<deny user="*"/>"#).unwrap();
        let allow = c.find(r#"<allow user="root"/>"#).unwrap();
        assert!(deny < allow, "{c}");
        assert!(c.contains("<listen>unix:path=/tmp/x/s</listen>"));
    }

    /// The instance really is isolated: it runs, firewall-cmd reaches it
    /// over the private bus, its rules are in its namespace only, and the
    /// host's ruleset is the same before and after.
    #[test]
    fn instance_runs_isolated_and_cleans_up() {
        if skip_unless_available("instance_runs_isolated_and_cleans_up") {
            return;
        }
        let host_before = crate::netns::host_network_snapshot().unwrap();
        for backend in FirewallBackend::ALL {
            let (dir, netns) = {
                let mut fw = Firewalld::start(backend).unwrap();
                assert_eq!(fw.state().as_deref(), Some("RUNNING"));
                assert_eq!(fw.firewall_cmd(&["--state"]).unwrap().trim(), "running");
                let conf = fs::read_to_string(fw.dir.join("etc-firewalld/firewalld.conf")).unwrap();
                assert!(conf.contains(&format!("FirewallBackend={}", backend.name())));
                // firewalld's zone rules exist in its namespace...
                let inside = match backend {
                    FirewallBackend::Nftables => fw.run("nft", &["list", "tables"]).unwrap(),
                    FirewallBackend::Iptables => fw.run("iptables", &["-S"]).unwrap(),
                };
                assert!(
                    inside.contains("firewalld") || inside.contains("INPUT_direct"),
                    "{inside}"
                );
                fw.restart().unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(fw.state().as_deref(), Some("RUNNING"));
                (fw.dir.clone(), fw.netns().to_string())
            };
            assert!(!dir.exists(), "{} left behind", dir.display());
            assert!(!Path::new("/run/netns").join(&netns).exists());
        }
        assert_eq!(crate::netns::host_network_snapshot().unwrap(), host_before);
    }
}
