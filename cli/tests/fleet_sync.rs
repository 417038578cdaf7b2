//! The fleet's sync side end to end: hosts are network namespaces (each
//! its own nftables, state directory and `banset watch`), the engine a
//! private PostgreSQL 15 on a unix socket every namespace reaches (network
//! namespaces share the file system). `nft -j` inside each namespace is
//! the oracle. Latencies are printed, never asserted.

mod common;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::process::Output;
use std::time::{Duration, Instant};

use banset_fleet::{Admin, ConnectOptions, FleetClient, Publish, Status};
use banset_tests::netns::NamedNetns;
use banset_tests::postgres::{skip_unless_postgres, TestPostgres};
use common::watcher::Watcher;
use common::Sandbox;
use serde_json::Value;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");

/// One fleet host: a namespace, a sandbox (state, config), joined.
struct Host {
    ns: NamedNetns,
    sb: Sandbox,
}

const CONFIG: &str =
    "[sets.ssh]\nbackend = \"nftables\"\ntimeout = \"1h\"\n[fleet]\npoll_interval = \"1s\"\n";

impl Host {
    /// Host `name` of the fleet on `pg`, with `config` as banset.toml.
    fn join(pg: &TestPostgres, admin: &mut Admin, name: &str, config: &str) -> Host {
        Host::join_in(NamedNetns::create(name).unwrap(), pg, admin, name, config)
    }

    /// [`Host::join`] in an existing namespace (the engine's, for the hub).
    fn join_in(
        ns: NamedNetns,
        pg: &TestPostgres,
        admin: &mut Admin,
        name: &str,
        config: &str,
    ) -> Host {
        let sb = Sandbox::new(&format!("fleet-sync-{name}")).with_config(config);
        let creds = admin.add_host(name, None).unwrap();
        // What `banset fleet join` writes (its checks are cli/tests/fleet.rs').
        let dir = sb.dir().join("state/fleet");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("host.toml"))
            .unwrap();
        let dsn = pg.dsn(&creds.role, Some(&creds.password));
        std::io::Write::write_all(
            &mut &file,
            format!("dsn = {}\n", toml_string(&dsn)).as_bytes(),
        )
        .unwrap();
        Host { ns, sb }
    }

    /// `banset ARGS` inside the host's namespace.
    fn run(&self, args: &[&str]) -> Output {
        let c = self.sb.cmd(args);
        let mut cmd = self.ns.command(BANSET);
        cmd.args(c.get_args());
        cmd.env_remove("BANSET_STATE_DIR")
            .env_remove("BANSET_CONFIG")
            .env_remove("BANSET_RUNTIME_DIR");
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        common::stdout_of_success(args, self.run(args))
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// The daemon, started in the host's namespace.
    fn watch(&self) -> Watcher {
        let c = self.sb.cmd(&["watch"]);
        let mut cmd = self.ns.command(BANSET);
        cmd.args(c.get_args());
        cmd.env_remove("BANSET_STATE_DIR")
            .env_remove("BANSET_CONFIG");
        Watcher::start_cmd(&self.sb, cmd)
    }

    /// The `ssh` set's members in this host's kernel (`nft -j`), over its
    /// address and prefix sets of both families.
    fn members(&self) -> Vec<String> {
        self.members_of("ssh")
    }

    fn members_of(&self, set: &str) -> Vec<String> {
        let mut members = Vec::new();
        for suffix in ["_v4", "_v6", "_v4net", "_v6net"] {
            let part = format!("{set}{suffix}");
            let out = self
                .ns
                .command("nft")
                .args(["-j", "list", "set", "inet", "banset", &part])
                .output()
                .unwrap();
            if !out.status.success() {
                continue;
            }
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            for item in v["nftables"].as_array().unwrap() {
                for e in item["set"]["elem"].as_array().into_iter().flatten() {
                    let val = if e["elem"].is_object() {
                        &e["elem"]["val"]
                    } else {
                        e
                    };
                    members.push(match val {
                        Value::String(s) => s.clone(),
                        v => format!(
                            "{}/{}",
                            v["prefix"]["addr"].as_str().unwrap_or(""),
                            v["prefix"]["len"]
                        ),
                    });
                }
            }
        }
        members.sort();
        members
    }

    fn has(&self, target: &str) -> bool {
        self.members().iter().any(|m| m == target)
    }
}

fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

/// Waits for `cond` up to `bound` (a bound against hanging, not a timing
/// assertion); returns how long it took.
fn wait_for(bound: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < bound {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond().then(|| start.elapsed())
}

fn engine() -> (TestPostgres, Admin) {
    let pg = TestPostgres::start().unwrap();
    let mut admin = Admin::connect(&ConnectOptions::plain(pg.superuser_dsn())).unwrap();
    admin.init().unwrap();
    (pg, admin)
}

/// A client of a host that is no banset, publishing rows by hand (the
/// "other host" of the policy tests).
fn fake_host(pg: &TestPostgres, admin: &mut Admin, name: &str) -> FleetClient {
    let c = admin.add_host(name, None).unwrap();
    FleetClient::connect(&ConnectOptions::plain(pg.dsn(&c.role, Some(&c.password)))).unwrap()
}

fn ban(target: &str, secs: u64) -> Publish {
    Publish {
        set: "ssh".into(),
        target: target.into(),
        status: Status::Banned {
            remaining: Some(Duration::from_secs(secs)),
        },
        jail: Some("sshd".into()),
        reason: None,
    }
}

fn skip(test: &str) -> bool {
    skip_unless_postgres(test) || banset_tests::netns::skip_unless_root(test)
}

#[test]
fn fleet_add_on_one_host_reaches_the_other_kernels_with_and_without_notifications() {
    if skip("fleet_add_on_one_host_reaches_the_other_kernels_with_and_without_notifications") {
        return;
    }
    let (pg, mut admin) = engine();
    let hosts: Vec<Host> = (1..=3)
        .map(|i| Host::join(&pg, &mut admin, &format!("h{i}"), CONFIG))
        .collect();
    let watchers: Vec<Watcher> = hosts.iter().map(Host::watch).collect();
    let bound = Duration::from_secs(30);
    for w in &watchers {
        assert!(
            wait_for(bound, || w.output().contains("fleet: engine up")).is_some(),
            "{}",
            w.output()
        );
    }
    // With notifications (LISTEN): from `banset add --fleet` returning.
    let mut took = Vec::new();
    for (i, addr) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .enumerate()
    {
        let out = hosts[0].run(&["add", "ssh", addr, "--fleet"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let start = Instant::now();
        assert!(hosts[0].has(addr), "local ban in the kernel at once");
        let landed = wait_for(bound, || hosts[1].has(addr) && hosts[2].has(addr));
        assert!(
            landed.is_some(),
            "round {i}: {addr} did not reach hosts 2 and 3"
        );
        took.push(start.elapsed());
    }
    println!("fleet latency with notifications (add on h1 -> in h2 and h3 kernels): {took:?}");
    // Without notifications: only the poll (1 s here) finds the change.
    pg.psql(
        "postgres",
        None,
        "ALTER TABLE banset_fleet.bans DISABLE TRIGGER bans_notify",
    )
    .unwrap();
    let mut took = Vec::new();
    for addr in ["203.0.113.11", "203.0.113.12", "203.0.113.13"] {
        hosts[1].ok(&["add", "ssh", addr, "--fleet"]);
        let start = Instant::now();
        let landed = wait_for(bound, || hosts[0].has(addr) && hosts[2].has(addr));
        assert!(
            landed.is_some(),
            "{addr} did not reach hosts 1 and 3 by polling"
        );
        took.push(start.elapsed());
    }
    println!("fleet latency by polling only (poll_interval 1 s): {took:?}");
    for w in watchers {
        let log = w.stop();
        assert!(!log.contains("panicked"), "{log}");
    }
    let status = hosts[2].json(&["fleet", "status", "--json"]);
    assert_eq!(status["host"]["outbox_pending"], 0, "{status}");
    assert_eq!(status["host"]["remote_rows"], 6, "{status}");
}

#[test]
fn fleet_local_policy_keeps_own_allowlisted_and_too_wide_out_of_the_kernel() {
    if skip("fleet_local_policy_keeps_own_allowlisted_and_too_wide_out_of_the_kernel") {
        return;
    }
    let (pg, mut admin) = engine();
    let config = format!("ignore = [\"198.51.100.7\"]\n{CONFIG}");
    let h = Host::join(&pg, &mut admin, "h1", &config);
    // This host's own address (the allowlist reads it from the kernel).
    h.ns.ip(&["addr", "add", "192.0.2.10/32", "dev", "lo"])
        .unwrap();
    h.ok(&["create", "ssh", "--backend", "nftables"]);
    let mut other = fake_host(&pg, &mut admin, "other");
    other
        .publish(&[
            ban("192.0.2.10", 600),
            ban("198.51.100.0/24", 600),
            ban("203.0.0.0/16", 600),
            ban("203.0.113.9", 600),
        ])
        .unwrap();
    let out = h.json(&["fleet", "sync", "--once", "--json"]);
    assert_eq!(out["pulled"]["applied"]["banned"], 1, "{out}");
    assert_eq!(h.members(), vec!["203.0.113.9".to_string()]);
    let status = h.json(&["fleet", "status", "--json"]);
    let s = &status["host"]["suppressed"];
    assert_eq!(
        (&s["own_address"], &s["allowlisted"], &s["too_wide"]),
        (&Value::from(1), &Value::from(1), &Value::from(1)),
        "{status}"
    );
    // Twice: nothing new, nothing counted again (the cursor moved on).
    h.ok(&["fleet", "sync", "--once"]);
    let again = h.json(&["fleet", "status", "--json"]);
    assert_eq!(again["host"]["suppressed"], status["host"]["suppressed"]);
    // A wider prefix accepted, then a snapshot: the /16 is judged again.
    std::fs::write(
        h.sb.dir().join("banset.toml"),
        format!("{config}widest_v4 = 16\n"),
    )
    .unwrap();
    let out = h.json(&["fleet", "sync", "--once", "--snapshot", "--json"]);
    assert_eq!(out["pulled"]["snapshot"], true, "{out}");
    assert!(h.has("203.0.0.0/16"), "{:?}", h.members());
    assert!(!h.has("192.0.2.10") && !h.has("198.51.100.0/24"));
}

#[test]
fn fleet_local_unban_of_a_remote_ban_holds_until_it_ends() {
    if skip("fleet_local_unban_of_a_remote_ban_holds_until_it_ends") {
        return;
    }
    let (pg, mut admin) = engine();
    let h = Host::join(&pg, &mut admin, "h1", CONFIG);
    h.ok(&["create", "ssh", "--backend", "nftables"]);
    let mut other = fake_host(&pg, &mut admin, "other");
    other.publish(&[ban("203.0.113.7", 600)]).unwrap();
    h.ok(&["fleet", "sync", "--once"]);
    assert!(h.has("203.0.113.7"));
    h.ok(&["unban", "203.0.113.7"]);
    assert!(!h.has("203.0.113.7"));
    // The other host re-asserts (a new stamp, same ban) and a third one
    // bans it too: both held off here.
    other.publish(&[ban("203.0.113.7", 900)]).unwrap();
    let mut third = fake_host(&pg, &mut admin, "third");
    third.publish(&[ban("203.0.113.7", 300)]).unwrap();
    h.ok(&["fleet", "sync", "--once"]);
    assert!(!h.has("203.0.113.7"), "held by the local unban");
    let status = h.json(&["fleet", "status", "--json"]);
    assert_eq!(status["host"]["suppressed"]["held"], 2, "{status}");
}

#[test]
fn fleet_unban_everywhere_reaches_an_origin_whose_first_pull_is_a_snapshot() {
    if skip("fleet_unban_everywhere_reaches_an_origin_whose_first_pull_is_a_snapshot") {
        return;
    }
    let (pg, mut admin) = engine();
    let a = Host::join(&pg, &mut admin, "a", CONFIG);
    let b = Host::join(&pg, &mut admin, "b", CONFIG);
    for h in [&a, &b] {
        h.ok(&["create", "ssh", "--backend", "nftables"]);
    }
    // Regression: `a` never pulled, so its first pull is a snapshot, which
    // holds active rows only; it missed the admin's tombstone of its own
    // ban and kept (and would re-assert) the ban.
    a.ok(&["add", "ssh", "203.0.113.8", "--fleet"]);
    b.ok(&["fleet", "sync", "--once"]);
    assert!(b.has("203.0.113.8"));
    // Without the admin's credentials: a clear refusal, nothing changed.
    let out = b.run(&["unban", "203.0.113.8", "--fleet"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fleet admin's credentials"), "{err}");
    assert!(b.has("203.0.113.8"));
    // What `unban --fleet` does on the admin's host (the CLI reaches the
    // engine by its public TCP endpoint, which this unix-socket engine has
    // not): the admin role withdraws every origin's row.
    let creds = admin.add_admin().unwrap();
    let mut withdraw = FleetClient::connect(&ConnectOptions::plain(
        pg.dsn(&creds.role, Some(&creds.password)),
    ))
    .unwrap();
    assert_eq!(withdraw.unban_everywhere(None, "203.0.113.8").unwrap(), 1);
    for h in [&a, &b] {
        h.ok(&["fleet", "sync", "--once"]);
        assert!(!h.has("203.0.113.8"), "{:?}", h.members());
    }
    let status = a.json(&["fleet", "status", "--json"]);
    assert_eq!(status["host"]["outbox_pending"], 0, "{status}");
}

#[test]
fn fleet_engine_killed_while_bans_arrive_loses_nothing() {
    if skip("fleet_engine_killed_while_bans_arrive_loses_nothing") {
        return;
    }
    let (mut pg, mut admin) = engine();
    let hosts: Vec<Host> = (1..=3)
        .map(|i| Host::join(&pg, &mut admin, &format!("k{i}"), CONFIG))
        .collect();
    drop(admin);
    let watchers: Vec<Watcher> = hosts.iter().map(Host::watch).collect();
    let bound = Duration::from_secs(60);
    for w in &watchers {
        assert!(wait_for(bound, || w.output().contains("fleet: engine up")).is_some());
    }
    pg.kill().unwrap();
    // 500 bans in all, on the three hosts, while the engine is down: each
    // is in its own kernel at once, queued for the fleet.
    let mut all = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let n = if i == 0 { 168 } else { 166 };
        let targets: Vec<String> = (0..n)
            .map(|j| format!("10.{}.{}.{}", 100 + i, j / 200, j % 200 + 1))
            .collect();
        let file = h.sb.file("bans.txt", &(targets.join("\n") + "\n"));
        let out = h.run(&["add", "ssh", "--file", file.to_str().unwrap(), "--fleet"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("queued for the fleet"), "{said}");
        let members = h.members();
        assert!(
            targets.iter().all(|t| members.contains(t)),
            "local bans in the kernel all along"
        );
        all.extend(targets);
    }
    assert_eq!(all.len(), 500);
    pg.restart().unwrap();
    let start = Instant::now();
    let converged = wait_for(Duration::from_secs(120), || {
        hosts.iter().all(|h| h.members().len() == 500)
    });
    let missing: Vec<(usize, usize)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (i, 500 - h.members().len().min(500)))
        .collect();
    assert!(converged.is_some(), "lost bans per host: {missing:?}");
    println!(
        "engine restarted: 500 bans on every host {:?} after the restart",
        start.elapsed()
    );
    for h in &hosts {
        let members = h.members();
        assert!(all.iter().all(|t| members.contains(t)));
    }
    drop(watchers);
    for h in &hosts {
        let status = h.json(&["fleet", "status", "--json"]);
        assert_eq!(status["host"]["outbox_pending"], 0, "{status}");
    }
}

fn sshd_fail(addr: &str) -> String {
    format!("mx sshd[4242]: Failed password for invalid user admin from {addr} port 50022 ssh2\n")
}

#[test]
fn fleet_jail_bans_are_published_per_publish_jails() {
    if skip("fleet_jail_bans_are_published_per_publish_jails") {
        return;
    }
    let (pg, mut admin) = engine();
    let dir = std::env::temp_dir().join(format!("banset-fleet-jails-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log1, log2) = (dir.join("auth.log"), dir.join("other.log"));
    std::fs::write(&log1, "").unwrap();
    std::fs::write(&log2, "").unwrap();
    let jails = format!(
        "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\nmaxretry = 1\nbantime = \"1h\"\n\
         [jails.quiet]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\nmaxretry = 1\nbantime = \"1h\"\nset = \"sshd\"\n\
         [fleet]\npublish_jails = [\"sshd\"]\npoll_interval = \"1s\"\n",
        log1.display(),
        log2.display()
    );
    let h1 = Host::join(&pg, &mut admin, "j1", &jails);
    let h2 = Host::join(
        &pg,
        &mut admin,
        "j2",
        "[sets.sshd]\nbackend = \"nftables\"\n[fleet]\npoll_interval = \"1s\"\n",
    );
    let (w1, w2) = (h1.watch(), h2.watch());
    let bound = Duration::from_secs(30);
    for w in [&w1, &w2] {
        assert!(wait_for(bound, || w.output().contains("fleet: engine up")).is_some());
    }
    // The quiet jail's ban stays here; then the sshd jail's travels.
    append(&log2, &sshd_fail("203.0.113.77"));
    assert!(wait_for(bound, || h1
        .members_of("sshd")
        .contains(&"203.0.113.77".to_string()))
    .is_some());
    append(&log1, &sshd_fail("203.0.113.7"));
    let start = Instant::now();
    let landed = wait_for(bound, || {
        h2.members_of("sshd").contains(&"203.0.113.7".to_string())
    });
    assert!(landed.is_some(), "{}\n{}", w1.output(), w2.output());
    println!("jail ban on j1 -> j2's kernel: {:?}", start.elapsed());
    // One more round on j2 for anything queued with it.
    h2.ok(&["fleet", "sync", "--once"]);
    assert_eq!(h2.members_of("sshd"), ["203.0.113.7"]);
    // A ban by hand in the jail's name (through the daemon's socket) is
    // published as the jail's own.
    h1.ok(&["ban", "sshd", "203.0.113.55"]);
    let landed = wait_for(bound, || {
        h2.members_of("sshd").contains(&"203.0.113.55".to_string())
    });
    assert!(landed.is_some(), "{}", w1.output());
    drop((w1, w2));
    let _ = std::fs::remove_dir_all(&dir);
}

fn append(path: &std::path::Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

#[test]
fn fleet_unban_fleet_on_the_hub_lifts_everywhere() {
    if skip("fleet_unban_fleet_on_the_hub_lifts_everywhere") {
        return;
    }
    // The hub is host `hub`: the engine listens on TCP in its namespace
    // (what the admin role reaches, by admin.toml's public endpoint) and
    // on a unix socket every host reaches.
    let hub_ns = NamedNetns::create("hub").unwrap();
    let pg = banset_tests::postgres::in_netns(&hub_ns, "127.0.0.1", None).unwrap();
    let mut admin = Admin::connect(&ConnectOptions::plain(pg.superuser_dsn())).unwrap();
    admin.init().unwrap();
    let hub = Host::join_in(hub_ns, &pg, &mut admin, "hub", CONFIG);
    let out = hub.run(&[
        "fleet",
        "init",
        "--dsn",
        &pg.superuser_dsn(),
        "--public-host",
        "127.0.0.1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = Host::join(&pg, &mut admin, "b", CONFIG);
    for h in [&hub, &b] {
        h.ok(&["create", "ssh", "--backend", "nftables"]);
        h.ok(&["fleet", "sync", "--once"]);
    }
    b.ok(&["add", "ssh", "203.0.113.9", "--fleet"]);
    hub.ok(&["fleet", "sync", "--once"]);
    assert!(hub.has("203.0.113.9"));
    let out = hub.ok(&["unban", "203.0.113.9", "--fleet"]);
    assert!(
        out.contains("withdrawn on every fleet host: 1 published ban"),
        "{out}"
    );
    assert!(!hub.has("203.0.113.9"));
    b.ok(&["fleet", "sync", "--once"]);
    assert!(!b.has("203.0.113.9"), "the origin dropped its own ban");
    // No hold is left on the hub: a new ban of the address by b lands.
    b.ok(&["add", "ssh", "203.0.113.9", "--fleet"]);
    hub.ok(&["fleet", "sync", "--once"]);
    assert!(hub.has("203.0.113.9"), "{:?}", hub.members());
}

#[test]
fn fleet_daemon_restart_resumes_from_its_cursor() {
    if skip("fleet_daemon_restart_resumes_from_its_cursor") {
        return;
    }
    let (pg, mut admin) = engine();
    let prom_dir = std::env::temp_dir().join(format!("banset-fleet-prom-{}", std::process::id()));
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom = prom_dir.join("banset.prom");
    let config = format!(
        "[watch]\nmetrics_file = \"{}\"\nmetrics_interval = \"1s\"\n{CONFIG}",
        prom.display()
    );
    let h = Host::join(&pg, &mut admin, "r1", &config);
    let mut other = fake_host(&pg, &mut admin, "other");
    let bound = Duration::from_secs(30);
    let w = h.watch();
    assert!(wait_for(bound, || w.output().contains("fleet: engine up")).is_some());
    other.publish(&[ban("203.0.113.20", 600)]).unwrap();
    assert!(wait_for(bound, || h.has("203.0.113.20")).is_some());
    // The fleet's metrics, beside the daemon's.
    let read = || std::fs::read_to_string(&prom).unwrap_or_default();
    assert!(
        wait_for(bound, || read().contains("banset_fleet_remote_rows 1")).is_some(),
        "{}",
        read()
    );
    assert!(
        read().contains("banset_fleet_outbox_pending 0"),
        "{}",
        read()
    );
    assert!(
        read().contains("banset_fleet_last_sync_seconds "),
        "{}",
        read()
    );
    let first = w.stop();
    assert!(
        first.contains("caught up by snapshot"),
        "the first pull: {first}"
    );
    let cursor = h.json(&["fleet", "status", "--json"])["host"]["cursor"].clone();
    assert!(cursor.is_string(), "{cursor}");
    // While it is stopped: a withdrawal and a new ban.
    other
        .publish(&[
            Publish {
                status: Status::Unbanned,
                ..ban("203.0.113.20", 0)
            },
            ban("203.0.113.21", 600),
        ])
        .unwrap();
    let w = h.watch();
    assert!(wait_for(bound, || h.has("203.0.113.21") && !h.has("203.0.113.20")).is_some());
    let second = w.stop();
    assert!(
        !second.contains("caught up by snapshot"),
        "a restart resumes by delta: {second}"
    );
    let _ = std::fs::remove_dir_all(&prom_dir);
}

/// Regression: a reload logged "restart banset watch to apply it" and kept
/// the old `[fleet]`, so a wider `widest_v4` let nothing in until a
/// restart. Now a reload applies it (a snapshot judges the remote bans
/// again), a reload without the section stops sharing, and one that
/// brings it back shares again.
#[test]
fn fleet_reload_applies_a_changed_fleet_section() {
    if skip("fleet_reload_applies_a_changed_fleet_section") {
        return;
    }
    let (pg, mut admin) = engine();
    let h = Host::join(&pg, &mut admin, "r1", CONFIG);
    h.ok(&["create", "ssh", "--backend", "nftables"]);
    let w = h.watch();
    let bound = Duration::from_secs(30);
    assert!(
        wait_for(bound, || w.output().contains("fleet: engine up")).is_some(),
        "{}",
        w.output()
    );
    let mut other = fake_host(&pg, &mut admin, "other");
    other
        .publish(&[ban("203.0.0.0/16", 600), ban("203.0.113.9", 600)])
        .unwrap();
    assert!(
        wait_for(bound, || h.has("203.0.113.9")).is_some(),
        "{}",
        w.output()
    );
    assert!(
        !h.has("203.0.0.0/16"),
        "too wide under the default widest_v4"
    );
    let config = h.sb.dir().join("banset.toml");
    let reload = |text: &str, said: &str| {
        let before = w.output().matches(said).count();
        std::fs::write(&config, text).unwrap();
        w.signal(libc::SIGHUP);
        assert!(
            wait_for(bound, || w.output().matches(said).count() > before).is_some(),
            "no {said:?} after the reload: {}",
            w.output()
        );
    };

    // Wider prefixes accepted: the /16 refused before is judged again.
    reload(&format!("{CONFIG}widest_v4 = 16\n"), "[fleet] reloaded");
    assert!(
        wait_for(bound, || h.has("203.0.0.0/16")).is_some(),
        "{:?}\n{}",
        h.members(),
        w.output()
    );

    // Without [fleet]: nothing more arrives (three polls of 1 s).
    let unshared = CONFIG.split("[fleet]").next().unwrap().to_string();
    reload(&unshared, "[fleet] removed");
    other.publish(&[ban("203.0.113.10", 600)]).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(!h.has("203.0.113.10"), "shared after [fleet] was removed");

    // Back: sharing again (by a snapshot: the policy in force while the
    // section was away is unknown to the thread).
    reload(CONFIG, "[fleet] reloaded");
    assert!(
        wait_for(bound, || h.has("203.0.113.10")).is_some(),
        "{}",
        w.output()
    );
    let log = w.stop();
    assert!(!log.contains("panicked"), "{log}");
}
