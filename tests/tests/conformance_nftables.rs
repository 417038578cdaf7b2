//! The conformance suite against the real kernel's nftables, each check in a
//! fresh network namespace (so the host's ruleset is never touched).

#![cfg(target_os = "linux")]

use banset_nftables::NftablesBackend;
use banset_tests::netns;

banset_tests::conformance_tests!(|check| {
    if netns::skip_unless_root(check.name) {
        return;
    }
    netns::in_new_netns(|| {
        let backend = NftablesBackend::open().expect("open nftables netlink socket");
        check.run(&backend, "bt-");
    });
});
