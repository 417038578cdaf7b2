//! The multi-host harness itself (banset_tests::fleet_hosts): hosts come
//! up joined, each with its own kernel set; a partition really cuts a host
//! off the engine and healing brings it back; the element monitor sees a
//! kernel change. The fleet's end-to-end tests stand on these.

use std::time::Duration;

use banset_tests::fleet_hosts::{Change, FleetHosts, FleetOptions};
use banset_tests::postgres::skip_unless_postgres;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");

fn options(hosts: usize) -> FleetOptions {
    let mut options = FleetOptions::new(hosts, BANSET);
    options.setup = vec![vec!["create".into(), "ssh".into()]];
    options
}

#[test]
fn fleet_hosts_join_partition_heal_monitor() {
    if skip_unless_postgres("fleet_hosts_join_partition_heal_monitor") {
        return;
    }
    let fleet = FleetHosts::start(&options(3)).unwrap();
    eprintln!(
        "{} hosts set up in {:?} ({:?})",
        fleet.hosts().len(),
        fleet.setup_time(),
        fleet.setup_phases()
    );
    for host in fleet.hosts() {
        // Joined: the engine answers this host's role over TCP.
        let status = host.banset(&["fleet", "status"]).unwrap();
        assert!(status.contains(&host.credentials.role), "{status}");
        // Its own kernel set, empty, in its own namespace.
        assert_eq!(host.nft_members("ssh").unwrap(), Vec::<String>::new());
    }

    let h0 = fleet.host(0);
    h0.partition().unwrap();
    let cut = h0.banset_output(&["fleet", "status"]).unwrap();
    assert!(
        !cut.status.success(),
        "a partitioned host still reached the engine"
    );
    h0.heal().unwrap();
    h0.banset(&["fleet", "status"]).unwrap();

    // The monitor sees a change in its host's kernel and in no other.
    let monitors: Vec<_> = fleet.hosts().iter().map(|h| h.monitor().unwrap()).collect();
    fleet.host(1).banset(&["add", "ssh", "192.0.2.7"]).unwrap();
    let seen = monitors[1].wait_for(Duration::from_secs(20), |e| {
        e.change == Change::Added && e.set == "ssh" && e.value == "192.0.2.7"
    });
    assert!(seen.is_some(), "{:?}", monitors[1].events());
    assert_eq!(
        fleet.host(1).nft_members("ssh").unwrap(),
        vec!["192.0.2.7".to_string()]
    );
    assert!(
        monitors[0].events().is_empty(),
        "{:?}",
        monitors[0].events()
    );
    assert!(fleet.host(2).nft_members("ssh").unwrap().is_empty());
}
