//! The fleet at scale, measured (bench/fleet-scale runs this; see
//! bench/README.md). Prints one `RESULT name value unit` line per number.
//!
//!     fleet_scale apply [ROWS]        # kernel apply rate of remote bans
//!     fleet_scale resync BANSET HOSTS ROWS
//!     fleet_scale snapshot BANSET ROWS
//!     fleet_scale propagation BANSET HOSTS[,HOSTS...] SAMPLES
//!
//! `apply`: `Engine::apply_fleet` on the real nftables kernel in a network
//! namespace of its own, pages of 10,000 remote rows (the puller's page),
//! ROWS in all (default 100,000); beside it the kernel's own floor, the
//! same elements added by one `nft -f` file, in the same run.
//!
//! `resync`: HOSTS hosts (banset_tests::fleet_hosts, the tests' harness)
//! take a snapshot of ROWS active bans at once, each over TCP from its
//! namespace: first the engine's side alone (`FleetClient::snapshot`),
//! then the whole round into each host's ledger and kernel
//! (`sync_round`); per-host time p50/p99, the wall time until the last
//! one is done, and the engine's CPU seconds and peak memory over each
//! (/proc of the postmaster and its children).
//!
//! `snapshot`: ROWS active bans of one host (written by the superuser in
//! one INSERT: the publish rate is bench/fleet's), and a new host catching
//! up: `sync_round` (the daemon's round) takes the snapshot path, every
//! page into ledger and kernel; then the same host pulls a delta of ROWS/10
//! more. The kernel's count is checked with `nft -j`.
//!
//! `propagation`: for each host count, every host runs `banset watch`
//! with `[fleet]`; SAMPLES addresses banned with `banset add --fleet` on
//! host 0, each stamped on arrival in every other host's kernel (`nft
//! monitor`): p50/p99 with notifications, then with the engine's
//! notification trigger off, the daemons polling every second.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banset_firewall::{Backends, NewLedger, StateDir};
use banset_fleet::sync::{sync_round, Link};
use banset_fleet::{ConnectOptions, FleetClient, FleetError, Publish, Status};

use banset_core::fleet::FleetPolicy;
use banset_core::{
    Allowlist, BackendKind, Engine, FleetPage, FleetRow, Ledger, SetName, SetSpec, SystemClock,
    Target, Timeout,
};
use banset_nftables::NftablesBackend;
use banset_tests::fleet_hosts::{percentile, FleetHosts, FleetOptions, Host};
use banset_tests::{netns, postgres};

/// The puller's page size.
const PAGE: usize = 10_000;

fn usage() -> ! {
    eprintln!(
        "usage: fleet_scale apply [ROWS] | resync BANSET HOSTS ROWS | snapshot BANSET ROWS \
         | propagation BANSET HOSTS[,HOSTS...] SAMPLES"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i)
            .map(|s| s.parse().unwrap_or_else(|_| usage()))
            .unwrap_or(default)
    };
    match args.first().map(String::as_str) {
        Some("apply") => apply(number(1, 100_000)),
        Some("propagation") => {
            let counts: Vec<usize> = args
                .get(2)
                .map(|list| {
                    list.split(',')
                        .map(|n| n.parse().unwrap_or_else(|_| usage()))
                        .collect()
                })
                .unwrap_or_else(|| vec![3, 20]);
            for hosts in counts {
                propagation(
                    args.get(1).unwrap_or_else(|| usage()),
                    hosts,
                    number(3, 100),
                );
            }
        }
        Some("snapshot") => snapshot(args.get(1).unwrap_or_else(|| usage()), number(2, 1_000_000)),
        Some("resync") => resync(
            args.get(1).unwrap_or_else(|| usage()),
            number(2, 20),
            number(3, 100_000),
        ),
        _ => usage(),
    }
}

/// Distinct IPv4 addresses from 11.0.0.0 on.
fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::from((11u32 << 24) + i as u32)
}

fn apply(rows: usize) {
    if netns::skip_unless_root("fleet_scale apply") {
        std::process::exit(1);
    }
    netns::in_new_netns(|| {
        let dir = std::env::temp_dir().join(format!("banset-fleet-scale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let backend = NftablesBackend::open().unwrap();
        let set = SetName::new("fleet").unwrap();
        let mut spec = SetSpec::new(set.clone(), BackendKind::Nftables);
        spec.timeout = Timeout::Secs(7 * 86_400);
        spec.max_elements = Some(u32::try_from(rows * 2).unwrap_or(u32::MAX).max(1 << 20));
        let mut ledger = Ledger::open(&dir.join("ledger.db")).unwrap();
        let allowlist = Allowlist::new();
        let mut engine = Engine {
            ledger: &mut ledger,
            backends: &backend,
            clock: &SystemClock,
            allowlist: &allowlist,
            dry_run: false,
        };
        engine.create(&spec).unwrap();
        let policy = FleetPolicy::new("bench");
        let pages: Vec<FleetPage> = (0..rows)
            .collect::<Vec<_>>()
            .chunks(PAGE)
            .enumerate()
            .map(|(n, chunk)| FleetPage {
                rows: chunk
                    .iter()
                    .map(|&i| FleetRow {
                        origin: "other".into(),
                        set: set.clone(),
                        target: Target::parse(&address(i).to_string()).unwrap(),
                        banned: true,
                        remaining: Some(86_400),
                        by_admin: false,
                    })
                    .collect(),
                cursor: Some(format!("c{n}")),
                ..FleetPage::default()
            })
            .collect();
        let started = Instant::now();
        let mut banned = 0;
        for page in &pages {
            banned += engine.apply_fleet(page, &policy).unwrap().banned;
        }
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(banned, rows, "every remote ban applied");
        println!("RESULT apply_rows {rows} rows");
        println!("RESULT apply_time {secs:.2} s");
        println!("RESULT apply_rate {:.0} bans/s", rows as f64 / secs);
        engine.destroy(&set).unwrap();

        // The floor: the same elements in one nft transaction.
        nft_floor(rows);
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

fn nft_floor(rows: usize) {
    let mut script =
        String::from("add table inet floor\nadd set inet floor s { type ipv4_addr; flags timeout; size 4194304; }\n");
    for chunk in (0..rows).collect::<Vec<_>>().chunks(PAGE) {
        script.push_str("add element inet floor s { ");
        for (n, &i) in chunk.iter().enumerate() {
            if n > 0 {
                script.push_str(", ");
            }
            script.push_str(&format!("{} timeout 86400s", address(i)));
        }
        script.push_str(" }\n");
    }
    let started = Instant::now();
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success(), "nft -f");
    let secs = started.elapsed().as_secs_f64();
    println!("RESULT nft_file_time {secs:.2} s");
    println!("RESULT nft_file_rate {:.0} elements/s", rows as f64 / secs);
    netns::run("nft", &["delete", "table", "inet", "floor"]);
}

/// A [`FleetHosts`] for a benchmark: `hosts` hosts with set `fleet`,
/// room for twice the quota (or the default).
fn fleet(banset: &str, hosts: usize, quota: Option<i64>) -> FleetHosts {
    if postgres::skip_unless_postgres("fleet_scale") {
        std::process::exit(1);
    }
    let mut options = FleetOptions::new(hosts, banset);
    let room = quota.map_or(1 << 20, |q| (q * 2).max(1 << 20));
    options.setup = vec![vec![
        "create".into(),
        "fleet".into(),
        "--maxelem".into(),
        room.to_string(),
    ]];
    options.quota = quota;
    let fleet = FleetHosts::start(&options).expect("starting the fleet");
    println!(
        "RESULT setup_{hosts}_hosts {:.2} s",
        fleet.setup_time().as_secs_f64()
    );
    fleet
}

fn publish(i: usize) -> Publish {
    Publish {
        set: "fleet".into(),
        target: address(i).to_string(),
        status: Status::Banned {
            remaining: Some(Duration::from_secs(7 * 86_400)),
        },
        jail: Some("sshd".into()),
        reason: None,
    }
}

/// Publishes `rows` bans as `host`, from its namespace, in batches.
fn publish_bulk(host: &Host, rows: usize) {
    host.ns().enter(|| {
        let mut client = FleetClient::connect(&ConnectOptions::plain(host.dsn.clone())).unwrap();
        for chunk in (0..rows).collect::<Vec<_>>().chunks(5_000) {
            let batch: Vec<Publish> = chunk.iter().map(|&i| publish(i)).collect();
            client.publish(&batch).unwrap();
        }
    });
}

fn resync(banset: &str, hosts: usize, rows: usize) {
    let quota = i64::try_from(rows * 2).ok();
    let fleet = fleet(banset, hosts, quota);
    publish_bulk(fleet.host(0), rows);
    // The engine's side alone: every host reads the snapshot at once.
    let engine_only = |host: &Host| {
        host.ns().enter(|| {
            let t = Instant::now();
            let mut client =
                FleetClient::connect(&ConnectOptions::plain(host.dsn.clone())).unwrap();
            let mut seen = 0;
            client
                .snapshot(PAGE, |page| {
                    seen += page.len();
                    Ok::<_, FleetError>(())
                })
                .unwrap();
            assert_eq!(seen, rows, "{}: every active ban", host.name);
            t.elapsed().as_secs_f64()
        })
    };
    // The whole round at once: each host's snapshot into its ledger and
    // kernel (host 0's own rows are skipped there).
    let whole = |host: &Host| {
        let (secs, pulled, took_snapshot) = sync_host(host);
        assert!(
            took_snapshot && pulled == rows,
            "{}: the whole snapshot",
            host.name
        );
        secs
    };
    println!("RESULT resync_hosts {hosts} hosts x {rows} rows");
    for (what, each) in [
        ("engine", &engine_only as &(dyn Fn(&Host) -> f64 + Sync)),
        ("round", &whole),
    ] {
        let usage = EngineUsage::start(fleet.pg().pid().expect("the engine runs"));
        let started = Instant::now();
        let times: Vec<Duration> = std::thread::scope(|scope| {
            let threads: Vec<_> = fleet
                .hosts()
                .iter()
                .map(|host| scope.spawn(move || Duration::from_secs_f64(each(host))))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let wall = started.elapsed().as_secs_f64();
        let (cpu, peak) = usage.stop();
        let p = |q| percentile(&times, q).unwrap().as_secs_f64();
        println!(
            "RESULT resync_{what} wall {wall:.2} s, per host p50 {:.2} s, p99 {:.2} s",
            p(50.0),
            p(99.0)
        );
        println!(
            "RESULT resync_{what}_engine {cpu:.1} s CPU, {:.0} MB peak PSS",
            peak as f64 / 1024.0
        );
    }
}

/// The engine's CPU time and peak memory over a phase, from /proc: CPU
/// is the postmaster's own, its reaped children's (backends that ended)
/// and its live children's; memory the PSS summed over all of them,
/// sampled every 200 ms.
struct EngineUsage {
    postmaster: i32,
    children_before: usize,
    cpu_before: f64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
}

impl EngineUsage {
    fn start(postmaster: i32) -> EngineUsage {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let pss: u64 = engine_pids(postmaster).into_iter().map(pss_kb).sum();
                    peak.fetch_max(pss, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        EngineUsage {
            postmaster,
            children_before: engine_pids(postmaster).len(),
            cpu_before: engine_cpu(postmaster),
            peak,
            stop,
            sampler,
        }
    }

    /// (CPU seconds, peak PSS in kB) while the phase's connections stay.
    fn stop_now(self) -> (f64, u64) {
        let cpu = engine_cpu(self.postmaster) - self.cpu_before;
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.sampler.join();
        (cpu, self.peak.load(Ordering::Relaxed))
    }

    /// (CPU seconds, peak PSS in kB).
    fn stop(self) -> (f64, u64) {
        // A backend's CPU joins the postmaster's children's time once it
        // ended and was reaped: wait (bounded) for the phase's to go.
        let deadline = Instant::now() + Duration::from_secs(10);
        while engine_pids(self.postmaster).len() > self.children_before && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let cpu = engine_cpu(self.postmaster) - self.cpu_before;
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.sampler.join();
        (cpu, self.peak.load(Ordering::Relaxed))
    }
}

/// Fields of /proc/PID/stat after the command name.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn engine_pids(postmaster: i32) -> Vec<i32> {
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // After the name: state, ppid, ...
        if stat_fields(pid).and_then(|f| f.get(1)?.parse::<i32>().ok()) == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

fn engine_cpu(postmaster: i32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks = |pid: i32, with_children: bool| -> u64 {
        // After the name: utime is field 14 of stat, i.e. index 11 here;
        // stime 12, cutime 13, cstime 14.
        let Some(f) = stat_fields(pid) else { return 0 };
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(11) + n(12) + if with_children { n(13) + n(14) } else { 0 }
    };
    let total: u64 = engine_pids(postmaster)
        .into_iter()
        .map(|pid| ticks(pid, pid == postmaster))
        .sum();
    total as f64 / tick
}

fn pss_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// `count` active bans of host `origin` from address `from` on, written by
/// the superuser in one statement (the stamp trigger still stamps them).
fn insert_bans(fleet: &FleetHosts, origin: &Host, from: usize, count: usize) {
    let started = Instant::now();
    fleet
        .psql_super(&format!(
            "INSERT INTO banset_fleet.bans (origin, set_name, target, banned, deadline, jail) \
             SELECT '{}', 'fleet', host('11.0.0.0'::inet + i), true, now() + interval '7 days', 'sshd' \
             FROM generate_series({from}, {}) AS i",
            origin.credentials.role,
            from + count - 1
        ))
        .expect("inserting the bans");
    eprintln!(
        "inserted {count} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// One `sync_round` of `host` (the daemon's round) on its ledger and
/// kernel, in its namespace: (seconds, rows pulled, took the snapshot).
fn sync_host(host: &Host) -> (f64, usize, bool) {
    host.ns().enter(|| {
        let backends = Backends::new(false);
        let mut ledger = StateDir::new(host.state_dir())
            .open_ledger(&backends, NewLedger::Always)
            .unwrap();
        let allowlist = Allowlist::new();
        let mut engine = Engine {
            ledger: &mut ledger,
            backends: &backends,
            clock: &SystemClock,
            allowlist: &allowlist,
            dry_run: false,
        };
        let mut link = Link::new(ConnectOptions::plain(host.dsn.clone()));
        let started = Instant::now();
        let (_, pulled) = sync_round(&mut link, &mut engine, &|name| FleetPolicy::new(name))
            .unwrap_or_else(|e| panic!("{}: sync: {e}", host.name));
        (
            started.elapsed().as_secs_f64(),
            pulled.rows,
            pulled.snapshot,
        )
    })
}

fn snapshot(banset: &str, rows: usize) {
    let quota = i64::try_from(rows * 2).ok();
    let fleet = fleet(banset, 2, quota);
    let (origin, newcomer) = (fleet.host(0), fleet.host(1));
    insert_bans(&fleet, origin, 0, rows);
    let usage = EngineUsage::start(fleet.pg().pid().expect("the engine runs"));
    let (secs, pulled, took_snapshot) = sync_host(newcomer);
    let (cpu, peak) = usage.stop();
    assert!(took_snapshot, "a new host takes the snapshot path");
    assert_eq!(pulled, rows, "every active ban pulled");
    let in_kernel = newcomer.nft_elements("fleet").unwrap().len();
    assert_eq!(in_kernel, rows, "every ban in the kernel (nft -j)");
    println!("RESULT snapshot_rows {rows} bans");
    println!("RESULT snapshot_catch_up {secs:.2} s (engine to kernel and ledger)");
    println!("RESULT snapshot_rate {:.0} bans/s", rows as f64 / secs);
    println!("RESULT snapshot_engine_cpu {cpu:.1} s");
    println!(
        "RESULT snapshot_engine_peak_pss {:.0} MB",
        peak as f64 / 1024.0
    );

    let delta = (rows / 10).max(1);
    insert_bans(&fleet, origin, rows, delta);
    let (secs, pulled, took_snapshot) = sync_host(newcomer);
    assert!(!took_snapshot, "a known cursor takes the delta path");
    assert_eq!(pulled, delta);
    println!("RESULT delta_rows {delta} bans");
    println!("RESULT delta_catch_up {secs:.2} s");
    println!("RESULT delta_rate {:.0} bans/s", delta as f64 / secs);
}

fn propagation(banset: &str, hosts: usize, samples: usize) {
    if postgres::skip_unless_postgres("fleet_scale propagation") {
        std::process::exit(1);
    }
    let bound = Duration::from_secs(60);
    for notifications in [true, false] {
        let mut options = FleetOptions::new(hosts, banset);
        options.config = "[fleet]\npoll_interval = \"1s\"\n".into();
        options.setup = vec![vec!["create".into(), "fleet".into()]];
        let mut fleet = FleetHosts::start(&options).expect("starting the fleet");
        fleet
            .start_daemons(&[], "fleet: engine up")
            .expect("every daemon reaches the engine");
        if !notifications {
            fleet
                .psql_super("ALTER TABLE banset_fleet.bans DISABLE TRIGGER bans_notify")
                .unwrap();
        }
        let addresses: Vec<String> = (0..samples).map(|i| address(i).to_string()).collect();
        let usage = EngineUsage::start(fleet.pg().pid().expect("the engine runs"));
        let started = Instant::now();
        let times = fleet
            .propagation(0, "fleet", &addresses, bound)
            .expect("every ban reaches every host");
        let wall = started.elapsed().as_secs_f64();
        let (cpu, _) = usage.stop_now();
        let how = if notifications { "notify" } else { "poll_1s" };
        let ms = |p| percentile(&times, p).unwrap().as_secs_f64() * 1000.0;
        println!(
            "RESULT propagation_{hosts}_hosts_{how} p50 {:.0} ms, p99 {:.0} ms ({} arrivals)",
            ms(50.0),
            ms(99.0),
            times.len()
        );
        println!(
            "RESULT engine_cpu_{hosts}_hosts_{how} {:.1}% of a core ({cpu:.1} s over {wall:.1} s, {hosts} daemons)",
            100.0 * cpu / wall
        );
    }
}
