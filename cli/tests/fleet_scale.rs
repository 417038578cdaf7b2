//! The fleet end to end across hosts: each host a network namespace with
//! its own nftables, ledger and credentials, talking TCP to a private
//! PostgreSQL in a hub namespace (banset_tests::fleet_hosts). A host's
//! step is the sync round every caller runs (`banset_fleet::sync::
//! sync_round`: publish the outbox, then pull until nothing more waits),
//! run in the host's namespace on its own state directory; the oracle is
//! `nft -j` in each host's namespace.
//!
//! - partitions shorter than the retention (delta path) and longer
//!   (snapshot path): unbans made meanwhile are applied, active bans kept;
//! - races through the hosts' kernels: a ban on B and an unban on A of the
//!   same address, in both orders and at once; a re-ban after an unban;
//! - a pulling host whose clock is an hour off keeps the engine's
//!   remaining times.

use std::time::Duration;

use banset_core::fleet::FleetPolicy;
use banset_core::{
    AddOptions, AddRecord, Allowlist, BanRequest, Clock, Engine, FleetPublish, ManualClock,
    SetName, SystemClock, Target, Timeout,
};
use banset_firewall::{Backends, NewLedger, StateDir};
use banset_fleet::sync::{sync_round, Link, PullOutcome, SyncError};
use banset_fleet::{ConnectOptions, FleetClient};
use banset_tests::fleet_hosts::{FleetHosts, FleetOptions, Host};
use banset_tests::postgres::skip_unless_postgres;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");

fn ssh() -> SetName {
    SetName::new("ssh").unwrap()
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

/// `hosts` hosts, each with set `ssh` (bans of an hour by default).
fn fleet(test: &str, hosts: usize) -> Option<FleetHosts> {
    if skip_unless_postgres(test) {
        return None;
    }
    let mut options = FleetOptions::new(hosts, BANSET);
    options.setup = vec![vec![
        "create".into(),
        "ssh".into(),
        "--timeout".into(),
        "1h".into(),
    ]];
    Some(FleetHosts::start(&options).expect("starting the fleet"))
}

/// Runs `f` with an engine on `host`'s ledger and kernel, in its
/// namespace, with `clock` as the host's clock.
fn on_host<R: Send>(
    host: &Host,
    clock: &(dyn Clock + Sync),
    f: impl FnOnce(&mut Engine<'_>) -> R + Send,
) -> R {
    host.ns().enter(|| {
        let backends = Backends::new(false);
        let mut ledger = StateDir::new(host.state_dir())
            .open_ledger(&backends, NewLedger::Always)
            .unwrap();
        let allowlist =
            Allowlist::new().with_host_addresses([Target::host(host.addr.into()).unwrap()]);
        let mut engine = Engine {
            ledger: &mut ledger,
            backends: &backends,
            clock,
            allowlist: &allowlist,
            dry_run: false,
        };
        f(&mut engine)
    })
}

/// A ban on `host`, published (`add --fleet`).
fn ban(host: &Host, target: &str) {
    on_host(host, &SystemClock, |e| {
        let record = AddRecord {
            fleet: Some(FleetPublish::default()),
            ..AddRecord::default()
        };
        e.add_recorded(
            &ssh(),
            &[BanRequest::new(t(target))],
            &AddOptions::default(),
            &record,
        )
        .unwrap();
    });
}

/// A local unban on `host`: withdraws its own published ban, holds off
/// remote ones until they end.
fn unban(host: &Host, target: &str) {
    on_host(host, &SystemClock, |e| e.del(&ssh(), &[t(target)]).unwrap());
}

/// One host's sync round (what the daemon and `fleet sync --once` run):
/// publish the outbox, then pull until nothing more waits.
fn sync_with(host: &Host, clock: &(dyn Clock + Sync)) -> Result<PullOutcome, SyncError> {
    on_host(host, clock, |e| {
        let mut link = Link::new(ConnectOptions::plain(host.dsn.clone()));
        sync_round(&mut link, e, &|name| FleetPolicy::new(name)).map(|(_, pulled)| pulled)
    })
}

fn sync(host: &Host) -> PullOutcome {
    sync_with(host, &SystemClock).unwrap_or_else(|e| panic!("{}: sync: {e}", host.name))
}

/// Everyone syncs twice: the first round publishes, the second pulls what
/// the others published in the first.
fn sync_all(fleet: &FleetHosts) {
    for _ in 0..2 {
        for host in fleet.hosts() {
            sync(host);
        }
    }
}

fn kernel(host: &Host) -> Vec<String> {
    host.nft_members("ssh").unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// h0 bans two addresses, everyone syncs; h2 is cut off; meanwhile h0
/// unbans one and h1 bans a third. Returns the fleet with h2 still cut off.
fn partition_scenario(test: &str) -> Option<FleetHosts> {
    let fleet = fleet(test, 3)?;
    let (h0, h1, h2) = (fleet.host(0), fleet.host(1), fleet.host(2));
    ban(h0, "192.0.2.1");
    ban(h0, "192.0.2.2");
    sync_all(&fleet);
    assert_eq!(kernel(h2), strings(&["192.0.2.1", "192.0.2.2"]));

    h2.partition().unwrap();
    let cut = sync_with(h2, &SystemClock);
    assert!(
        matches!(&cut, Err(e) if e.is_disconnect()),
        "a partitioned host cannot reach the engine: {cut:?}"
    );
    unban(h0, "192.0.2.1");
    ban(h1, "192.0.2.3");
    sync(h0);
    sync(h1);
    // The cut-off host still has what it had.
    assert_eq!(kernel(h2), strings(&["192.0.2.1", "192.0.2.2"]));
    Some(fleet)
}

#[test]
fn fleet_partition_shorter_than_retention_takes_the_delta() {
    let Some(fleet) = partition_scenario("fleet_partition_shorter_than_retention") else {
        return;
    };
    let h2 = fleet.host(2);
    h2.heal().unwrap();
    let pulled = sync(h2);
    assert!(
        !pulled.snapshot,
        "back within the retention: the delta path: {pulled:?}"
    );
    // The unban made meanwhile is applied, the active bans are kept.
    assert_eq!(kernel(h2), strings(&["192.0.2.2", "192.0.2.3"]));
}

#[test]
fn fleet_partition_longer_than_retention_takes_a_snapshot() {
    let Some(mut fleet) = partition_scenario("fleet_partition_longer_than_retention") else {
        return;
    };
    // Away longer than the retention: the tombstone of 192.0.2.1 aged out
    // and was purged, so h2's cursor is behind what the engine forgot.
    fleet.admin().set_retention(Duration::from_secs(1)).unwrap();
    fleet.age_rows("NOT banned", "1 hour").unwrap();
    let dsn = fleet.host(0).dsn.clone();
    let purged = fleet.host(0).ns().enter(|| {
        FleetClient::connect(&ConnectOptions::plain(dsn))
            .unwrap()
            .purge()
            .unwrap()
    });
    assert_eq!(purged, 1, "the tombstone was purged");
    let h2 = fleet.host(2);
    h2.heal().unwrap();
    let pulled = sync(h2);
    assert!(
        pulled.snapshot,
        "behind the retention: the snapshot path: {pulled:?}"
    );
    // The snapshot lacks 192.0.2.1, so the sweep took it out; the active
    // bans are kept, the new one arrived.
    assert_eq!(kernel(h2), strings(&["192.0.2.2", "192.0.2.3"]));
    // And the delta path works again after it.
    ban(fleet.host(1), "192.0.2.4");
    sync(fleet.host(1));
    let pulled = sync(h2);
    assert!(!pulled.snapshot, "{pulled:?}");
    assert_eq!(
        kernel(h2),
        strings(&["192.0.2.2", "192.0.2.3", "192.0.2.4"])
    );
}

/// The address of the races.
const X: &str = "198.51.100.9";

#[test]
fn fleet_ban_on_b_and_unban_on_a_of_one_address() {
    let Some(fleet) = fleet("fleet_ban_on_b_and_unban_on_a_of_one_address", 3) else {
        return;
    };
    let (a, b, c) = (fleet.host(0), fleet.host(1), fleet.host(2));

    // A unbans its ban before B's ban of the same address reaches it:
    // B's ban is new to A and lands there too. Everyone ends banned.
    ban(a, X);
    sync_all(&fleet);
    unban(a, X);
    ban(b, X);
    sync(a);
    sync(b);
    sync_all(&fleet);
    for host in [a, b, c] {
        assert_eq!(kernel(host), strings(&[X]), "{}: B's ban holds", host.name);
    }

    // A unbans after B's ban reached it: a local unban of a remote ban
    // holds on A until that ban ends; B's and C's kernels keep it, since
    // A's tombstone withdraws only A's own row.
    unban(a, X);
    sync_all(&fleet);
    assert_eq!(kernel(a), Vec::<String>::new(), "A's local unban holds");
    assert_eq!(kernel(b), strings(&[X]), "B's own ban");
    assert_eq!(kernel(c), strings(&[X]), "B's ban on C");
}

#[test]
fn fleet_ban_on_b_and_unban_on_a_at_once() {
    let Some(fleet) = fleet("fleet_ban_on_b_and_unban_on_a_at_once", 3) else {
        return;
    };
    let (a, b, c) = (fleet.host(0), fleet.host(1), fleet.host(2));
    ban(a, X);
    sync_all(&fleet);
    // Both change and publish at the same moment.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            unban(a, X);
            sync(a);
        });
        scope.spawn(|| {
            ban(b, X);
            sync(b);
        });
    });
    sync_all(&fleet);
    // Whatever the order, B's ban is on B and C; on A it is there unless
    // A's unban held it off, and A's kernel agrees with A's ledger.
    assert_eq!(kernel(b), strings(&[X]));
    assert_eq!(kernel(c), strings(&[X]));
    let in_ledger = on_host(a, &SystemClock, |e| {
        e.ledger
            .read()
            .unwrap()
            .bans(&ssh())
            .unwrap()
            .into_iter()
            .map(|b| b.target.to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(kernel(a), in_ledger, "A's kernel is A's ledger");
}

#[test]
fn fleet_reban_after_unban_lands_everywhere() {
    let Some(fleet) = fleet("fleet_reban_after_unban_lands_everywhere", 3) else {
        return;
    };
    let a = fleet.host(0);
    ban(a, X);
    sync_all(&fleet);
    unban(a, X);
    sync_all(&fleet);
    for host in fleet.hosts() {
        assert_eq!(
            kernel(host),
            Vec::<String>::new(),
            "{}: unbanned",
            host.name
        );
    }
    ban(a, X);
    sync_all(&fleet);
    for host in fleet.hosts() {
        assert_eq!(kernel(host), strings(&[X]), "{}: banned again", host.name);
    }
    // Unban and re-ban between two syncs: the last word wins everywhere.
    unban(a, X);
    ban(a, X);
    sync_all(&fleet);
    for host in fleet.hosts() {
        assert_eq!(kernel(host), strings(&[X]), "{}: the re-ban", host.name);
    }
}

#[test]
fn fleet_pulling_host_an_hour_off_keeps_remaining_times() {
    let Some(fleet) = fleet("fleet_pulling_host_an_hour_off", 3) else {
        return;
    };
    let (a, behind, ahead) = (fleet.host(0), fleet.host(1), fleet.host(2));
    // A ban of 10 minutes on a host with a right clock.
    on_host(a, &SystemClock, |e| {
        let record = AddRecord {
            fleet: Some(FleetPublish::default()),
            ..AddRecord::default()
        };
        let mut request = BanRequest::new(t(X));
        request.timeout = Some(Timeout::Secs(600));
        e.add_recorded(&ssh(), &[request], &AddOptions::default(), &record)
            .unwrap();
    });
    sync(a);
    for (host, offset) in [(behind, -3600), (ahead, 3600)] {
        let clock = ManualClock::new(SystemClock.now() + offset);
        sync_with(host, &clock).unwrap();
        let k = host.nft_elements("ssh").unwrap();
        // The engine said about 600 s left; the kernel counts that, never
        // 600 s plus or minus the hour (slack for a loaded machine).
        assert!(
            matches!(k.get(X), Some(Some(s)) if (500..=600).contains(s)),
            "{} ({offset:+} s): {k:?}",
            host.name
        );
        // Its keeper, on its own clock, neither drops it early nor keeps
        // it an hour late.
        on_host(host, &clock, |e| e.expire().unwrap());
        assert_eq!(kernel(host), strings(&[X]), "{}", host.name);
        clock.advance(601);
        on_host(host, &clock, |e| e.expire().unwrap());
        assert_eq!(kernel(host), Vec::<String>::new(), "{}", host.name);
    }
}
