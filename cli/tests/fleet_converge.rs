//! Convergence through the daemons: every host of a fleet (a network
//! namespace with its own nftables, ledger and credentials, around a
//! private PostgreSQL in a hub namespace: banset_tests::fleet_hosts) runs
//! `banset watch` with `[fleet]`; `banset add SET IP --fleet` on one host
//! must put the address in every other host's kernel. Arrival is stamped
//! by `nft -j monitor` in each namespace (no polling), checked at the end
//! with `nft -j list`. The times are printed (p50/p99), never asserted:
//! the bound on each wait only keeps a broken build from hanging.

use std::time::{Duration, Instant};

use banset_tests::fleet_hosts::{percentile, FleetHosts, FleetOptions};
use banset_tests::postgres::skip_unless_postgres;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");

/// What the daemon logs once its fleet thread reached the engine.
const ENGINE_UP: &str = "fleet: engine up";
/// The bound on one address reaching every host.
const BOUND: Duration = Duration::from_secs(60);

fn start(hosts: usize, config: &str) -> FleetHosts {
    let mut options = FleetOptions::new(hosts, BANSET);
    options.config = config.to_owned();
    options.setup = vec![vec!["create".into(), "ssh".into()]];
    let mut fleet = FleetHosts::start(&options).expect("starting the fleet");
    eprintln!(
        "{hosts} hosts set up in {:.2} s ({:?})",
        fleet.setup_time().as_secs_f64(),
        fleet.setup_phases()
    );
    let started = Instant::now();
    fleet
        .start_daemons(&[], ENGINE_UP)
        .expect("every daemon reaches the engine");
    eprintln!(
        "{hosts} daemons up in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    fleet
}

fn report(what: &str, samples: &[Duration]) {
    let ms = |p| percentile(samples, p).unwrap().as_secs_f64() * 1000.0;
    eprintln!(
        "{what}: {} arrivals, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        samples.len(),
        ms(50.0),
        ms(99.0),
        ms(100.0)
    );
}

fn addresses(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("198.51.100.{i}")).collect()
}

#[test]
fn fleet_converges_on_twenty_hosts() {
    if skip_unless_postgres("fleet_converges_on_twenty_hosts") {
        return;
    }
    let fleet = start(20, "[fleet]\n");
    let samples = fleet.propagation(0, "ssh", &addresses(3), BOUND).unwrap();
    report("20 hosts, notifications", &samples);
}

#[test]
fn fleet_converges_without_notifications_within_the_poll() {
    if skip_unless_postgres("fleet_converges_without_notifications") {
        return;
    }
    let fleet = start(3, "[fleet]\npoll_interval = \"1s\"\n");
    // Notifications lost: the engine's trigger that sends them is off, so
    // only each daemon's poll finds the change.
    fleet
        .psql_super("ALTER TABLE banset_fleet.bans DISABLE TRIGGER bans_notify")
        .unwrap();
    let samples = fleet.propagation(0, "ssh", &addresses(3), BOUND).unwrap();
    report("3 hosts, polling every 1 s", &samples);
}
