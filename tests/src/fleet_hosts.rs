//! A fleet on one machine: N hosts, each a network namespace with its own
//! nftables, state directory, config and credentials, joined by a veth to
//! a bridge in a hub namespace where a private PostgreSQL listens on TCP.
//! Shared by the fleet's end-to-end tests (cli/tests/fleet_*.rs) and its
//! benchmark (bench/fleet-scale), so both measure the same set-up.
//!
//! Addresses: the hub is 10.201.0.1/16 on bridge `fleetbr`; host `i` is
//! 10.201.(1 + i / 250).(1 + i % 250). Every interface and address exists
//! only inside these namespaces; the host namespace never gets one.
//!
//! Set-up runs the hosts in parallel (one thread each): on this 2-core
//! machine 20 hosts are ready in about the time of the slowest one, not
//! twenty times it; [`FleetHosts::setup_time`] says how long it took.
//!
//! Teardown is by PID and by namespace: daemons and monitors get SIGTERM
//! (SIGKILL after a bound) on drop, PostgreSQL is stopped by its PID, and
//! deleting a namespace takes its veth, addresses and ruleset with it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use banset_fleet::{Admin, ConnectOptions, Credentials, Endpoint};
use serde_json::Value;

use crate::netns::{run_checked, NamedNetns};
use crate::postgres::{self, TestPostgres, PORT};

/// The bridge in the hub namespace that every host's veth joins.
const BRIDGE: &str = "fleetbr";
/// The hub's address: where PostgreSQL listens.
pub const HUB_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// Each host's interface, inside its namespace.
pub const HOST_IF: &str = "eth0";
/// A host count above which the /16 runs out of the simple numbering.
const MAX_HOSTS: usize = 250 * 250;

/// What to build.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// How many hosts.
    pub hosts: usize,
    /// The `banset` binary every host runs.
    pub banset: PathBuf,
    /// Each host's banset.toml before any set-up command (see
    /// [`Host::write_config`] to change it later).
    pub config: String,
    /// banset commands run on every host after it joined, in order (e.g.
    /// `["create", "ssh"]`).
    pub setup: Vec<Vec<String>>,
    /// Each host's publish quota (None: the engine's default).
    pub quota: Option<i64>,
}

impl FleetOptions {
    pub fn new(hosts: usize, banset: impl Into<PathBuf>) -> FleetOptions {
        FleetOptions {
            hosts,
            banset: banset.into(),
            config: String::new(),
            setup: Vec::new(),
            quota: None,
        }
    }
}

/// The running fleet. Fields drop in order: hosts (daemons, namespaces)
/// first, then the engine, then the hub's namespace.
pub struct FleetHosts {
    hosts: Vec<Host>,
    pg: TestPostgres,
    admin: Admin,
    _hub: NamedNetns,
    dir: PathBuf,
    setup_time: Duration,
    phases: Vec<(&'static str, Duration)>,
}

impl FleetHosts {
    /// Builds the hub, the engine and `options.hosts` hosts (see the
    /// module docs). Needs root and PostgreSQL 15: callers check
    /// [`postgres::skip_unless_postgres`] first.
    pub fn start(options: &FleetOptions) -> io::Result<FleetHosts> {
        if options.hosts > MAX_HOSTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("at most {MAX_HOSTS} hosts"),
            ));
        }
        let started = Instant::now();
        let dir = std::env::temp_dir().join(format!(
            "banset-fleet-hosts-{}-{}",
            std::process::id(),
            NEXT_FLEET.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let hub = NamedNetns::create("hub")?;
        hub.ip(&[
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ])?;
        hub.ip(&["addr", "add", &format!("{HUB_ADDR}/16"), "dev", BRIDGE])?;
        hub.ip(&["link", "set", BRIDGE, "up"])?;
        // initdb is the slowest single step (about a second): the hosts'
        // namespaces are built meanwhile.
        let hub_ref = &hub;
        let (pg, built) = std::thread::scope(|scope| {
            let pg = scope.spawn(|| postgres::in_netns(hub_ref, &HUB_ADDR.to_string(), None));
            let built: Vec<io::Result<(NamedNetns, Ipv4Addr)>> = (0..options.hosts)
                .map(|i| scope.spawn(move || wire_host(hub_ref, i)))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().expect("a host's set-up thread panicked"))
                .collect();
            (pg.join().expect("the engine's thread panicked"), built)
        });
        let pg = pg?;
        let mut phases = vec![("namespaces and engine", started.elapsed())];
        let mut admin =
            Admin::connect(&ConnectOptions::plain(pg.superuser_dsn())).map_err(io::Error::other)?;
        admin.init().map_err(io::Error::other)?;
        let endpoint =
            Endpoint::new(&HUB_ADDR.to_string(), PORT, "postgres").map_err(io::Error::other)?;
        let mut hosts = Vec::with_capacity(options.hosts);
        for (i, wired) in built.into_iter().enumerate() {
            let (ns, addr) = wired?;
            let name = format!("h{i}");
            let credentials = admin
                .add_host(&name, options.quota)
                .map_err(io::Error::other)?;
            let host_dir = dir.join(&name);
            fs::create_dir_all(host_dir.join("state"))?;
            fs::write(host_dir.join("banset.toml"), &options.config)?;
            hosts.push(Host {
                dsn: endpoint.dsn(&credentials.role, &credentials.password),
                name,
                addr,
                credentials,
                ns,
                dir: host_dir,
                banset: options.banset.clone(),
                daemon: None,
            });
        }
        phases.push(("roles", started.elapsed()));
        // Joining and the set-up commands are processes in each host's
        // namespace that talk to the engine: in parallel too.
        std::thread::scope(|scope| {
            let threads: Vec<_> = hosts
                .iter()
                .map(|host| scope.spawn(move || host.join_and_set_up(&options.setup)))
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a host's join thread panicked"))
                .collect::<io::Result<Vec<()>>>()
        })?;
        phases.push(("joined and set up", started.elapsed()));
        Ok(FleetHosts {
            hosts,
            pg,
            admin,
            _hub: hub,
            dir,
            setup_time: started.elapsed(),
            phases,
        })
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn hosts_mut(&mut self) -> &mut [Host] {
        &mut self.hosts
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    pub fn host_mut(&mut self, i: usize) -> &mut Host {
        &mut self.hosts[i]
    }

    /// The engine (to kill, restart, or read its log and PID).
    pub fn pg(&self) -> &TestPostgres {
        &self.pg
    }

    pub fn pg_mut(&mut self) -> &mut TestPostgres {
        &mut self.pg
    }

    /// The owner's connection (retention, quotas, revocation).
    pub fn admin(&mut self) -> &mut Admin {
        &mut self.admin
    }

    /// A new owner's connection, for after an engine restart.
    pub fn reconnect_admin(&mut self) -> io::Result<()> {
        self.admin = Admin::connect(&ConnectOptions::plain(self.pg.superuser_dsn()))
            .map_err(io::Error::other)?;
        Ok(())
    }

    /// psql as the superuser on the engine's socket (the oracle's view of
    /// the shared table); stdout trimmed.
    pub fn psql_super(&self, sql: &str) -> io::Result<String> {
        let out = self.pg.psql("postgres", None, sql)?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "psql {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Moves the shared rows matching `condition` `age` into the past, as
    /// if written then (a host away longer than the retention). The stamp
    /// trigger would set changed_at back to now(), hence the replica role.
    pub fn age_rows(&self, condition: &str, age: &str) -> io::Result<()> {
        self.psql_super(&format!(
            "SET session_replication_role = replica; \
             UPDATE banset_fleet.bans SET changed_at = changed_at - interval '{age}', \
                 deadline = deadline - interval '{age}' WHERE {condition}"
        ))
        .map(drop)
    }

    /// How long [`FleetHosts::start`] took, hosts joined and set up.
    pub fn setup_time(&self) -> Duration {
        self.setup_time
    }

    /// When each phase of [`FleetHosts::start`] ended, from its start.
    pub fn setup_phases(&self) -> &[(&'static str, Duration)] {
        &self.phases
    }

    /// Bans `addresses` one after the other on host `from` with `banset
    /// add SET ADDRESS --fleet` and returns, for each address and each
    /// other host, how long it took from the command's start to the
    /// address's arrival in that host's kernel (stamped by a [`Monitor`]
    /// there, no polling). An error names the host an address never
    /// reached within `bound`, with its daemon's log. The last word is the
    /// oracle's: every address is in every kernel (`nft -j`).
    pub fn propagation(
        &self,
        from: usize,
        set: &str,
        addresses: &[String],
        bound: Duration,
    ) -> io::Result<Vec<Duration>> {
        let monitors = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != from)
            .map(|(_, host)| Ok((host, host.monitor()?)))
            .collect::<io::Result<Vec<_>>>()?;
        let mut samples = Vec::with_capacity(addresses.len() * monitors.len());
        for address in addresses {
            let t0 = Instant::now();
            self.hosts[from].banset(&["add", set, address, "--fleet"])?;
            for (host, monitor) in &monitors {
                let seen = monitor.wait_for(bound, |e| {
                    e.change == Change::Added && e.set == set && &e.value == address
                });
                let Some(seen) = seen else {
                    return Err(io::Error::other(format!(
                        "{address} never reached {} in {bound:?}; its daemon: {}",
                        host.name,
                        host.daemon_log()
                    )));
                };
                samples.push(seen.at.saturating_duration_since(t0));
            }
        }
        for host in &self.hosts {
            let members = host.nft_members(set)?;
            if let Some(missing) = addresses.iter().find(|a| !members.contains(a)) {
                return Err(io::Error::other(format!(
                    "{missing} is not in {}'s kernel: {members:?}",
                    host.name
                )));
            }
        }
        Ok(samples)
    }

    /// Starts every host's daemon at once (see [`Host::start_daemon`]).
    pub fn start_daemons(&mut self, args: &[&str], ready: &str) -> io::Result<()> {
        std::thread::scope(|scope| {
            let threads: Vec<_> = self
                .hosts
                .iter_mut()
                .map(|host| scope.spawn(move || host.start_daemon(args, ready)))
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a daemon's start thread panicked"))
                .collect::<io::Result<Vec<()>>>()
                .map(drop)
        })
    }
}

impl std::fmt::Debug for FleetHosts {
    // By hand: the owner's connection has no Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetHosts")
            .field("hosts", &self.hosts)
            .field("pg", &self.pg)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for FleetHosts {
    fn drop(&mut self) {
        // Daemons first, in parallel: each may wait for its own SIGTERM.
        std::thread::scope(|scope| {
            for host in &mut self.hosts {
                scope.spawn(move || host.stop_daemon());
            }
        });
        let _ = fs::remove_dir_all(&self.dir);
    }
}

static NEXT_FLEET: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Host `i`'s address on the hub's /16.
pub fn host_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 201, (1 + i / 250) as u8, (1 + i % 250) as u8)
}

/// Host `i`'s namespace, wired to the hub's bridge and up.
fn wire_host(hub: &NamedNetns, i: usize) -> io::Result<(NamedNetns, Ipv4Addr)> {
    let ns = NamedNetns::create(&format!("h{i}"))?;
    let hub_end = format!("fh{i}");
    // Made from the hub with the peer placed straight in the host's
    // namespace: neither end ever exists in the host namespace.
    hub.ip(&[
        "link",
        "add",
        &hub_end,
        "type",
        "veth",
        "peer",
        "name",
        HOST_IF,
        "netns",
        ns.name(),
    ])?;
    hub.ip(&["link", "set", &hub_end, "master", BRIDGE, "up"])?;
    let addr = host_addr(i);
    ns.ip(&["addr", "add", &format!("{addr}/16"), "dev", HOST_IF])?;
    ns.ip(&["link", "set", HOST_IF, "up"])?;
    wait_up(&ns, HOST_IF)?;
    Ok((ns, addr))
}

/// Waits (bounded) until `ifname` in `ns` is operationally up: a SYN sent
/// before is dropped and only retried after a second.
fn wait_up(ns: &NamedNetns, ifname: &str) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = ns.ip(&["-o", "link", "show", "dev", ifname])?;
        if shown.contains("state UP") || shown.contains(",LOWER_UP") && shown.contains("UP,") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{ifname} in {} is not up after 10 s: {}",
                ns.name(),
                shown.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One host of the fleet.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    pub addr: Ipv4Addr,
    pub credentials: Credentials,
    /// The DSN this host joined with (TCP to the hub, no TLS).
    pub dsn: String,
    ns: NamedNetns,
    dir: PathBuf,
    banset: PathBuf,
    daemon: Option<Daemon>,
}

/// A running `banset watch` of a host.
#[derive(Debug)]
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Host {
    pub fn ns(&self) -> &NamedNetns {
        &self.ns
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("banset.toml")
    }

    /// A file in this host's private directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write_config(&self, text: &str) -> io::Result<()> {
        fs::write(self.config_path(), text)
    }

    /// `banset ARGS` as this host: in its namespace, with its state
    /// directory, config and runtime directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.ns.command(&self.banset.to_string_lossy());
        command
            .env_remove("BANSET_STATE_DIR")
            .env_remove("BANSET_CONFIG")
            .env_remove("BANSET_RUNTIME_DIR")
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--config")
            .arg(self.config_path())
            .arg("--runtime-dir")
            .arg(self.dir.join("run"))
            .args(args);
        command
    }

    /// Runs `banset ARGS`; a failure carries the command and its stderr.
    pub fn banset(&self, args: &[&str]) -> io::Result<String> {
        let output = run_checked(&mut self.command(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `banset ARGS` and returns its output whatever the exit status.
    pub fn banset_output(&self, args: &[&str]) -> io::Result<Output> {
        self.command(args).output()
    }

    fn join_and_set_up(&self, setup: &[Vec<String>]) -> io::Result<()> {
        // The DSN goes in on stdin, as an admin pastes it (never in ps).
        let mut child = self
            .command(&["fleet", "join", "--dsn", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(self.dsn.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{}: fleet join failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        for args in setup {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.banset(&args)?;
        }
        Ok(())
    }

    /// Starts `banset watch ARGS` in the background, its stderr in a file,
    /// and waits (bounded) until that file contains `ready`.
    pub fn start_daemon(&mut self, args: &[&str], ready: &str) -> io::Result<()> {
        self.stop_daemon();
        self.spawn_daemon(args, &[])?;
        self.wait_daemon_log(ready, Duration::from_secs(60))
    }

    /// Starts `banset watch ARGS` with extra environment (e.g. libfaketime
    /// for a skewed clock) without waiting for it.
    pub fn spawn_daemon(&mut self, args: &[&str], env: &[(&str, &str)]) -> io::Result<()> {
        self.stop_daemon();
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.join(format!("watch-{n}.log"));
        let err = fs::File::create(&log)?;
        let mut watch = vec!["watch"];
        watch.extend_from_slice(args);
        let mut command = self.command(&watch);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.stdout(Stdio::null()).stderr(err).spawn()?;
        self.daemon = Some(Daemon { child, log });
        Ok(())
    }

    /// Waits (at most `bound`) until the daemon's log contains `text`; an
    /// error quotes the log (and says when the daemon died).
    pub fn wait_daemon_log(&mut self, text: &str, bound: Duration) -> io::Result<()> {
        let deadline = Instant::now() + bound;
        loop {
            if self.daemon_log().contains(text) {
                return Ok(());
            }
            let exited = match &mut self.daemon {
                Some(daemon) => daemon.child.try_wait()?,
                None => return Err(io::Error::other(format!("{}: no daemon", self.name))),
            };
            if exited.is_some() || Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{}: daemon {} before logging {text:?}: {}",
                    self.name,
                    match exited {
                        Some(status) => format!("exited ({status})"),
                        None => format!("still silent after {bound:?}"),
                    },
                    self.daemon_log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The running daemon's PID.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|d| d.child.id())
    }

    /// The daemon's stderr so far (empty without one).
    pub fn daemon_log(&self) -> String {
        self.daemon
            .as_ref()
            .and_then(|d| fs::read_to_string(&d.log).ok())
            .unwrap_or_default()
    }

    /// SIGTERM to the daemon by its PID, SIGKILL after 20 s; returns its
    /// log. Nothing without a daemon.
    pub fn stop_daemon(&mut self) -> String {
        let Some(mut daemon) = self.daemon.take() else {
            return String::new();
        };
        signal_and_reap(&mut daemon.child, libc::SIGTERM, Duration::from_secs(20));
        fs::read_to_string(&daemon.log).unwrap_or_default()
    }

    /// SIGKILL to the daemon (a crash: no cleanup runs); returns its log.
    pub fn kill_daemon(&mut self) -> String {
        let Some(mut daemon) = self.daemon.take() else {
            return String::new();
        };
        signal_and_reap(&mut daemon.child, libc::SIGKILL, Duration::from_secs(20));
        fs::read_to_string(&daemon.log).unwrap_or_default()
    }

    /// Cuts this host off the hub (its link down): a partition.
    pub fn partition(&self) -> io::Result<()> {
        self.ns.ip(&["link", "set", HOST_IF, "down"]).map(drop)
    }

    /// Ends a [`Host::partition`].
    pub fn heal(&self) -> io::Result<()> {
        self.ns.ip(&["link", "set", HOST_IF, "up"])?;
        wait_up(&self.ns, HOST_IF)
    }

    /// The members of banset's set `set` in this host's kernel (its
    /// nftables sets `SET_v4`, `SET_v6`, `SET_v4net`, `SET_v6net`), read
    /// with `nft -j` (the oracle), each with the seconds it has left
    /// (None: no timeout). Empty when the set does not exist.
    pub fn nft_elements(&self, set: &str) -> io::Result<BTreeMap<String, Option<u64>>> {
        let out = self
            .ns
            .command("nft")
            .args(["-j", "list", "table", "inet", "banset"])
            .output()?;
        if !out.status.success() {
            return Ok(BTreeMap::new());
        }
        let json: Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
        let mut members = BTreeMap::new();
        for item in json["nftables"].as_array().into_iter().flatten() {
            let kernel_set = &item["set"];
            if kernel_set["name"].as_str().and_then(banset_set) != Some(set) {
                continue;
            }
            for elem in kernel_set["elem"].as_array().into_iter().flatten() {
                if let Some((value, expires)) = element(elem) {
                    members.insert(value, expires);
                }
            }
        }
        Ok(members)
    }

    /// [`Host::nft_elements`] without the timeouts.
    pub fn nft_members(&self, set: &str) -> io::Result<Vec<String>> {
        Ok(self.nft_elements(set)?.into_keys().collect())
    }

    /// Starts recording every element added to or deleted from banset's
    /// nftables sets in this host's kernel, as it happens (`nft -j
    /// monitor`): arrival times without polling. Ready when it returns.
    pub fn monitor(&self) -> io::Result<Monitor> {
        Monitor::start(&self.ns)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

/// The banset set a kernel set of banset's table belongs to: `ssh` for
/// `ssh_v4`, `ssh_v6`, `ssh_v4net`, `ssh_v6net`; None for its other sets.
pub fn banset_set(kernel_set: &str) -> Option<&str> {
    ["_v4", "_v6", "_v4net", "_v6net"]
        .iter()
        .find_map(|suffix| kernel_set.strip_suffix(suffix))
}

/// An element of `nft -j`: a bare value, a `{"prefix": ..}`, or an
/// `{"elem": {"val": .., "expires": ..}}`.
fn element(elem: &Value) -> Option<(String, Option<u64>)> {
    let (value, expires) = match elem.get("elem") {
        Some(inner) => (&inner["val"], inner["expires"].as_u64()),
        None => (elem, None),
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let prefix = o.get("prefix")?;
            format!("{}/{}", prefix["addr"].as_str()?, prefix["len"].as_u64()?)
        }
        _ => return None,
    };
    Some((text, expires))
}

/// Signals `child` by its PID and reaps it; SIGKILL when it outlives
/// `bound`.
fn signal_and_reap(child: &mut Child, signal: i32, bound: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    // SAFETY: kill(2) on a child this harness spawned and has not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether an element arrived or left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Deleted,
}

/// One element change seen by a [`Monitor`].
#[derive(Clone, Debug)]
pub struct ElementEvent {
    pub at: Instant,
    pub change: Change,
    /// The banset set (`ssh`, not the kernel's `ssh_v4`).
    pub set: String,
    pub value: String,
}

type Events = Arc<(Mutex<Vec<ElementEvent>>, Condvar)>;

/// `nft -j monitor` in a host's namespace, read by a thread that stamps
/// each element event on arrival. Stopped by PID on drop.
#[derive(Debug)]
pub struct Monitor {
    child: Child,
    events: Events,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The table a monitor makes and deletes to know it is listening.
const PROBE_TABLE: &str = "banset_monitor_probe";

impl Monitor {
    fn start(ns: &NamedNetns) -> io::Result<Monitor> {
        let mut child = ns
            .command("nft")
            .args(["-j", "monitor"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let events: Events = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let ready = Arc::new((Mutex::new(false), Condvar::new()));
        let reader = {
            let (events, ready) = (events.clone(), ready.clone());
            std::thread::spawn(move || read_events(stdout, &events, &ready))
        };
        let mut monitor = Monitor {
            child,
            events,
            reader: Some(reader),
        };
        // nft subscribes some time after it starts; a table made and
        // deleted until the monitor reports it proves it is listening.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let _ = ns.run("nft", &["add", "table", "inet", PROBE_TABLE]);
            let _ = ns.run("nft", &["delete", "table", "inet", PROBE_TABLE]);
            let (flag, cv) = &*ready;
            let seen = cv
                .wait_timeout_while(
                    flag.lock().unwrap_or_else(|p| p.into_inner()),
                    Duration::from_millis(200),
                    |seen| !*seen,
                )
                .map(|(seen, _)| *seen)
                .unwrap_or(false);
            if seen {
                return Ok(monitor);
            }
            if Instant::now() > deadline {
                monitor.stop();
                return Err(io::Error::other(format!(
                    "nft monitor in {} reported nothing in 20 s",
                    ns.name()
                )));
            }
        }
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<ElementEvent> {
        self.events
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (at most `bound`) for the first event matching `wanted`.
    pub fn wait_for(
        &self,
        bound: Duration,
        mut wanted: impl FnMut(&ElementEvent) -> bool,
    ) -> Option<ElementEvent> {
        let (lock, cv) = &*self.events;
        let deadline = Instant::now() + bound;
        let mut events = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(found) = events.iter().find(|e| wanted(e)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            events = cv
                .wait_timeout(events, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn stop(&mut self) {
        signal_and_reap(&mut self.child, libc::SIGTERM, Duration::from_secs(5));
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_events(stdout: impl io::Read, events: &Events, ready: &(Mutex<bool>, Condvar)) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        let at = Instant::now();
        let Ok(json) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        for (key, change) in [("add", Change::Added), ("delete", Change::Deleted)] {
            let Some(object) = json.get(key) else {
                continue;
            };
            if object["table"]["name"].as_str() == Some(PROBE_TABLE) {
                *ready.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
                ready.1.notify_all();
            }
            let Some(el) = object.get("element") else {
                continue;
            };
            if el["table"].as_str() != Some("banset") {
                continue;
            }
            let Some(set) = el["name"].as_str().and_then(banset_set) else {
                continue;
            };
            let found: Vec<ElementEvent> = el["elem"]["set"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(element)
                .map(|(value, _)| ElementEvent {
                    at,
                    change,
                    set: set.to_owned(),
                    value,
                })
                .collect();
            if !found.is_empty() {
                let (lock, cv) = &**events;
                lock.lock().unwrap_or_else(|p| p.into_inner()).extend(found);
                cv.notify_all();
            }
        }
    }
}

/// p-th percentile (0..=100) of `samples`, nearest rank; None when empty.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}
