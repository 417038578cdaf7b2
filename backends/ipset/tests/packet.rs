//! Packets really stop: the server namespace of a veth pair holds the ipset
//! backend's sets and iptables rules; the client's TCP connects time out
//! while it is banned and get through after the unban, and a source that
//! is not banned is never affected.

#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use banset_core::{Backend, BlockType, Hook, PortRange, Target};
use banset_ipset::IpsetBackend;
use banset_tests::netns::{self, Reach, VethPair};
use common::{entry, spec};

const PROBE: Duration = Duration::from_millis(1_500);

fn host(addr: impl Into<IpAddr>) -> Target {
    Target::host(addr.into()).unwrap()
}

#[test]
fn banned_client_is_dropped_and_unbanned_again() {
    if netns::skip_unless_root("banned_client_is_dropped_and_unbanned_again") {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let s = spec("pkt");
    let b = pair.server().enter(|| {
        let b = IpsetBackend::open().expect("open backend");
        b.ensure_set(&s).unwrap();
        b
    });
    for server in [
        IpAddr::from(VethPair::SERVER_V4),
        VethPair::SERVER_V6.into(),
    ] {
        assert_eq!(
            pair.probe_tcp(server, PROBE).unwrap(),
            Reach::Connected,
            "{server}"
        );
    }

    // The backend's socket lives in the server namespace; the iptables rule
    // was inserted there by ensure_set, run on a thread inside it.
    let client4 = host(VethPair::CLIENT_V4);
    b.add(&s, &[entry(&VethPair::CLIENT_V4.to_string(), Some(600))])
        .unwrap();
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, PROBE).unwrap(),
        Reach::TimedOut
    );
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, PROBE).unwrap(),
        Reach::Connected,
        "the client's IPv6 source is not banned"
    );

    b.del(&s, &[client4]).unwrap();
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, PROBE).unwrap(),
        Reach::Connected
    );

    // A prefix around the client, in the IPv6 set through ip6tables.
    b.add(&s, &[entry("fd00:b5e7::/64", Some(600))]).unwrap();
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, PROBE).unwrap(),
        Reach::TimedOut
    );
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, PROBE).unwrap(),
        Reach::Connected
    );
    b.flush(&s).unwrap();
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, PROBE).unwrap(),
        Reach::Connected
    );

    pair.server().enter(|| b.destroy(&s)).unwrap();
    let rules = pair
        .server()
        .run("iptables", &["-w", "-S", "INPUT"])
        .unwrap();
    assert!(!rules.contains("banset"), "{rules}");
}

#[test]
fn reject_on_the_hooked_port_only() {
    if netns::skip_unless_root("reject_on_the_hooked_port_only") {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let hooked = pair.listen_tcp(VethPair::SERVER_V4.into()).unwrap();
    let other = pair.listen_tcp(VethPair::SERVER_V4.into()).unwrap();
    let port = hooked.local_addr().unwrap().port();
    let mut s = spec("rej");
    s.hook = Some(Hook {
        ports: vec![PortRange {
            first: port,
            last: port,
        }],
        protocol: None,
        block: BlockType::Reject,
        permanent: false,
    });
    pair.server().enter(|| {
        let b = IpsetBackend::open().expect("open backend");
        b.ensure_set(&s).unwrap();
        b.add(&s, &[entry(&VethPair::CLIENT_V4.to_string(), None)])
            .unwrap();
    });
    let to = |l: &std::net::TcpListener| -> SocketAddr { l.local_addr().unwrap() };
    assert_eq!(pair.connect_tcp(to(&hooked), PROBE), Reach::Refused);
    assert_eq!(pair.connect_tcp(to(&other), PROBE), Reach::Connected);
}

/// Issue 20: only members reach an allow-only set's port (v4 and v6), other
/// ports and the host itself are unaffected, a banned member is dropped.
#[test]
fn allow_only_set_lets_only_members_reach_its_port() {
    if netns::skip_unless_root("allow_only_set_lets_only_members_reach_its_port") {
        return;
    }
    banset_tests::allow_only::allow_only_over_veth(|| IpsetBackend::open().expect("open backend"));
}
