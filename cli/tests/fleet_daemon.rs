//! The fleet's daemons under failure, across hosts (network namespaces
//! around a private PostgreSQL: banset_tests::fleet_hosts):
//! - a daemon killed (SIGKILL) while it applies a large catch-up, as soon
//!   as the first kernel batch of it landed (between a page's kernel apply
//!   and the commit of its cursor when the kill is quick enough; the test
//!   says which it hit): the restarted daemon ends with every ban once in
//!   kernel, ledger and history, none lost;
//! - hosts whose clocks are an hour off (libfaketime on the publishing
//!   `banset add` and on the pulling daemon): the kernel's remaining times
//!   are the ban's, not an hour more or less.
//!
//! The oracles: `nft -j` in each namespace, and the ledger read with
//! SQLite directly.

use std::path::Path;
use std::time::{Duration, Instant};

use banset_fleet::{ConnectOptions, FleetClient, Publish, Status};
use banset_tests::fleet_hosts::{Change, FleetHosts, FleetOptions, Host};
use banset_tests::postgres::skip_unless_postgres;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");
const ENGINE_UP: &str = "fleet: engine up";
/// Debian's libfaketime (package libfaketime).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn start(test: &str, hosts: usize) -> Option<FleetHosts> {
    if skip_unless_postgres(test) {
        return None;
    }
    let mut options = FleetOptions::new(hosts, BANSET);
    options.config = "[fleet]\n".into();
    options.setup = vec![vec![
        "create".into(),
        "ssh".into(),
        "--timeout".into(),
        "1d".into(),
    ]];
    options.quota = Some(100_000);
    Some(FleetHosts::start(&options).expect("starting the fleet"))
}

/// Waits (bounded: a hang guard, not a timing claim) for `cond`.
fn wait_until(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// (bans, distinct targets among them, ban events, distinct targets among
/// those, remote rows) of set ssh, read from the ledger file itself.
fn ledger_counts(state: &Path) -> (i64, i64, i64, i64, i64) {
    let db = rusqlite::Connection::open(state.join("ledger.db")).unwrap();
    let one = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    (
        one("SELECT count(*) FROM bans WHERE set_name = 'ssh'"),
        one("SELECT count(DISTINCT target) FROM bans WHERE set_name = 'ssh'"),
        one("SELECT count(*) FROM ban_events WHERE kind = 'ban' AND set_name = 'ssh'"),
        one(
            "SELECT count(DISTINCT target) FROM ban_events WHERE kind = 'ban' AND set_name = 'ssh'",
        ),
        one("SELECT count(*) FROM fleet_rows WHERE set_name = 'ssh'"),
    )
}

fn cursor(state: &Path) -> Option<String> {
    let db = rusqlite::Connection::open(state.join("ledger.db")).unwrap();
    db.query_row(
        "SELECT value FROM meta WHERE key = 'fleet:cursor'",
        [],
        |r| r.get(0),
    )
    .ok()
}

/// `n` bans published by `host` through its own credentials, in batches,
/// from its namespace.
fn publish_many(host: &Host, n: usize) {
    host.ns().enter(|| {
        let mut client = FleetClient::connect(&ConnectOptions::plain(host.dsn.clone())).unwrap();
        let all: Vec<Publish> = (0..n)
            .map(|i| Publish {
                set: "ssh".into(),
                target: std::net::Ipv4Addr::from((11u32 << 24) + i as u32).to_string(),
                status: Status::Banned {
                    remaining: Some(Duration::from_secs(3600)),
                },
                jail: Some("sshd".into()),
                reason: None,
            })
            .collect();
        for batch in all.chunks(5_000) {
            client.publish(batch).unwrap();
        }
    });
}

#[test]
fn fleet_daemon_killed_mid_catch_up_restarts_without_duplicates_or_loss() {
    let Some(mut fleet) = start("fleet_daemon_killed_mid_catch_up", 2) else {
        return;
    };
    // Several pages of the puller's: the kill lands inside the catch-up.
    const N: usize = 20_000;
    // The first round (a snapshot of nothing) saves a cursor, so the
    // catch-up below is the delta path, page by page.
    fleet.host(1).banset(&["fleet", "sync", "--once"]).unwrap();
    assert!(cursor(&fleet.host(1).state_dir()).is_some());
    publish_many(fleet.host(0), N);

    let monitor = fleet.host(1).monitor().unwrap();
    fleet
        .host_mut(1)
        .spawn_daemon(&[], &[])
        .expect("starting the daemon");
    let first = monitor.wait_for(Duration::from_secs(120), |e| {
        e.change == Change::Added && e.set == "ssh"
    });
    let log = fleet.host_mut(1).kill_daemon();
    assert!(first.is_some(), "no kernel batch came: {log}");

    let host = fleet.host(1);
    let in_kernel = host.nft_members("ssh").unwrap().len();
    let (bans, ..) = ledger_counts(&host.state_dir());
    eprintln!(
        "killed with {in_kernel} bans in the kernel, {bans} in the ledger (cursor {:?}): {}",
        cursor(&host.state_dir()),
        if in_kernel as i64 > bans {
            "between a kernel batch and its commit"
        } else {
            "after a commit"
        }
    );
    assert!(
        in_kernel < N,
        "the kill came before the end of the catch-up"
    );

    fleet
        .host_mut(1)
        .start_daemon(&[], ENGINE_UP)
        .expect("restarting the daemon");
    let host = fleet.host(1);
    assert!(
        wait_until(Duration::from_secs(120), || {
            host.nft_members("ssh").map(|m| m.len()).unwrap_or(0) >= N
                && ledger_counts(&host.state_dir()).0 >= N as i64
        }),
        "the restart caught up: kernel {}, ledger {:?}; {}",
        host.nft_members("ssh").unwrap().len(),
        ledger_counts(&host.state_dir()),
        host.daemon_log()
    );
    // Every ban once: kernel, ledger, remote rows and one ban event each.
    let n = N as i64;
    let members = host.nft_members("ssh").unwrap();
    assert_eq!(members.len(), N, "kernel");
    assert_eq!(ledger_counts(&host.state_dir()), (n, n, n, n, n));
}

#[test]
fn fleet_hosts_an_hour_off_keep_remaining_times() {
    if !Path::new(FAKETIME).exists() {
        eprintln!(
            "fleet_hosts_an_hour_off: skipped: {FAKETIME} missing (apt-get install libfaketime)"
        );
        return;
    }
    let Some(mut fleet) = start("fleet_hosts_an_hour_off", 3) else {
        return;
    };
    // Host 0's clock is right, host 1's an hour behind, host 2's an hour
    // ahead: each host's daemon and commands run under its clock (the
    // monotonic clock stays true, as a wrong wall clock leaves it).
    let clocks = [None, Some("-1h"), Some("+1h")];
    let faked = |offset: Option<&'static str>| -> Vec<(&'static str, &'static str)> {
        match offset {
            None => Vec::new(),
            Some(offset) => vec![
                ("LD_PRELOAD", FAKETIME),
                ("FAKETIME", offset),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ],
        }
    };
    for (i, offset) in clocks.into_iter().enumerate() {
        let host = fleet.host_mut(i);
        host.spawn_daemon(&[], &faked(offset)).unwrap();
        host.wait_daemon_log(ENGINE_UP, Duration::from_secs(60))
            .unwrap();
    }
    // The skew took: `fleet status` on host 1, under its clock, sees the
    // engine an hour ahead (else this test would prove nothing).
    let status = fleet
        .host(1)
        .command(&["fleet", "status"])
        .envs(faked(clocks[1]))
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("engine clock: 3") && l.contains("ahead of this host's")),
        "{status}"
    );
    // A 10-minute ban published by each host, on its own clock.
    let published = Instant::now();
    for (i, offset) in clocks.into_iter().enumerate() {
        let host = fleet.host(i);
        let target = format!("198.51.100.{}", i + 1);
        let out = host
            .command(&["add", "ssh", &target, "--timeout", "10m", "--fleet"])
            .envs(faked(offset))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            host.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every host holds the three, each with about 600 s left: never 600 s plus
    // or minus the hour (the slack is the time since, and 30 s more for a
    // loaded machine).
    for host in fleet.hosts() {
        let mut seen = Default::default();
        let arrived = wait_until(Duration::from_secs(60), || {
            seen = host.nft_elements("ssh").unwrap();
            seen.len() == 3
        });
        assert!(
            arrived,
            "{}: {seen:?}; engine: {:?}; status: {:?}; {}",
            host.name,
            fleet.psql_super("SELECT origin, target, banned, deadline - now(), changed_by, txid, seq FROM banset_fleet.bans"),
            host.banset_output(&["fleet", "status"]).map(|o| String::from_utf8_lossy(&o.stdout).into_owned()),
            host.daemon_log()
        );
        let least = 570 - published.elapsed().as_secs().min(570);
        for (target, left) in &seen {
            assert!(
                matches!(left, Some(s) if (least..=600).contains(s)),
                "{}: {target} has {left:?} s left, not about 600: {seen:?}",
                host.name
            );
        }
    }
}
