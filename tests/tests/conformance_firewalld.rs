//! The conformance suite against the firewalld backend, under a real
//! firewalld isolated in its own network and mount namespaces with a
//! private bus (`banset_tests::firewalld`), once for each firewall firewalld
//! can drive. One instance per firewall runs every check (`run_all`), each
//! on its own set, which is destroyed afterwards: a check's direct rule must
//! be gone before the next one starts, or `destroy` failed.

// firewalld and network namespaces are Linux.
#![cfg(target_os = "linux")]

use banset_firewalld::{Bus, FirewalldBackend};
use banset_tests::conformance;
use banset_tests::firewalld::{self, FirewallBackend, Firewalld};

fn run(backend: FirewallBackend, test: &str) {
    if firewalld::skip_unless_available(test) {
        return;
    }
    let fw = Firewalld::start(backend).unwrap_or_else(|e| panic!("start firewalld: {e}"));
    fw.enter(|| {
        let b = FirewalldBackend::open_on(Bus::Address(fw.bus_address())).expect("open backend");
        conformance::run_all(&b, "bt-");
    });
    // Every check destroyed its set: no direct rule and no ipset is left.
    let rules = fw.firewall_cmd(&["--direct", "--get-all-rules"]).unwrap();
    assert_eq!(rules.trim(), "", "direct rules left behind");
    let sets = fw.run("ipset", &["list", "-n"]).unwrap();
    assert_eq!(sets.trim(), "", "ipsets left behind");
}

#[test]
fn conformance_under_firewalld_nftables() {
    run(
        FirewallBackend::Nftables,
        "conformance_under_firewalld_nftables",
    );
}

#[test]
fn conformance_under_firewalld_iptables() {
    run(
        FirewallBackend::Iptables,
        "conformance_under_firewalld_iptables",
    );
}
