//! The conformance suite against the real kernel's ipset (and the iptables
//! hook rule), each check in a fresh network namespace, so the host's sets
//! and rules are never touched.

#![cfg(target_os = "linux")]

use banset_ipset::IpsetBackend;
use banset_tests::netns;

banset_tests::conformance_tests!(|check| {
    if netns::skip_unless_root(check.name) {
        return;
    }
    netns::in_new_netns(|| {
        let backend = IpsetBackend::open().expect("open ipset netlink socket");
        check.run(&backend, "bt-");
    });
});
