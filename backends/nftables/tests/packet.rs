//! Packets really stop: a server and a client namespace joined by a veth
//! pair (banset-tests' `VethPair`, private addresses inside them only). The
//! client connects over TCP from two source addresses; banning one must
//! drop its SYNs while the other still gets through.

#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use banset_core::{Backend, BlockType, Hook};
use banset_nftables::NftablesBackend;
use banset_tests::netns::{self, Reach, VethPair};
use common::*;

const BANNED: Ipv4Addr = VethPair::CLIENT_V4;
/// A second client address, in the same /30 as [`BANNED`].
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 3);
const PROBE: Duration = Duration::from_millis(1500);

/// The pair, with [`OTHER`] added to the client.
fn wire_up() -> VethPair {
    let pair = VethPair::new().expect("veth pair");
    pair.client()
        .ip(&[
            "addr",
            "add",
            &format!("{OTHER}/24"),
            "dev",
            VethPair::CLIENT_IF,
        ])
        .expect("second client address");
    pair
}

fn listen(pair: &VethPair) -> (TcpListener, SocketAddr) {
    let listener = pair
        .listen_tcp(VethPair::SERVER_V4.into())
        .expect("listen in the server netns");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

fn connect(pair: &VethPair, src: Ipv4Addr, dst: SocketAddr) -> Reach {
    pair.connect_tcp_from(IpAddr::V4(src), dst, PROBE)
}

/// The backend, its socket opened in the server namespace.
fn backend(pair: &VethPair) -> NftablesBackend {
    pair.server()
        .enter(NftablesBackend::open)
        .expect("open backend")
}

#[test]
fn banned_source_is_dropped_and_unbanned_again() {
    if netns::skip_unless_root("packet_drop") {
        return;
    }
    let pair = wire_up();
    let (_listener, dst) = listen(&pair);
    assert_eq!(connect(&pair, BANNED, dst), Reach::Connected);

    let b = backend(&pair);
    let s = spec("pkt");
    b.ensure_set(&s).unwrap();
    b.add(&s, &[entry(&BANNED.to_string(), Some(600))]).unwrap();
    assert_eq!(connect(&pair, BANNED, dst), Reach::TimedOut);
    assert_eq!(connect(&pair, OTHER, dst), Reach::Connected);

    b.del(&s, &[t(&BANNED.to_string())]).unwrap();
    assert_eq!(connect(&pair, BANNED, dst), Reach::Connected);

    // A prefix covering both clients, from the interval set.
    b.add(&s, &[entry("10.199.0.0/30", Some(600))]).unwrap();
    assert_eq!(connect(&pair, BANNED, dst), Reach::TimedOut);
    assert_eq!(connect(&pair, OTHER, dst), Reach::TimedOut);
    b.flush(&s).unwrap();
    assert_eq!(connect(&pair, OTHER, dst), Reach::Connected);
}

#[test]
fn reject_answers_on_the_hooked_port_only() {
    if netns::skip_unless_root("packet_reject") {
        return;
    }
    let pair = wire_up();
    let (_listener, dst) = listen(&pair);
    let (_other_listener, other_dst) = listen(&pair);

    let b = backend(&pair);
    let mut s = spec("rej");
    s.hook = Some(Hook {
        ports: vec![banset_core::PortRange {
            first: dst.port(),
            last: dst.port(),
        }],
        protocol: None,
        block: BlockType::Reject,
        permanent: false,
    });
    b.ensure_set(&s).unwrap();
    b.add(&s, &[entry(&BANNED.to_string(), None)]).unwrap();
    assert_eq!(connect(&pair, BANNED, dst), Reach::Refused);
    assert_eq!(connect(&pair, BANNED, other_dst), Reach::Connected);
    assert_eq!(connect(&pair, OTHER, dst), Reach::Connected);
}

/// Issue 20: only members reach an allow-only set's port (v4 and v6), other
/// ports and the host itself are unaffected, a banned member is dropped.
#[test]
fn allow_only_set_lets_only_members_reach_its_port() {
    if netns::skip_unless_root("allow_only_set_lets_only_members_reach_its_port") {
        return;
    }
    banset_tests::allow_only::allow_only_over_veth(|| {
        NftablesBackend::open().expect("open backend")
    });
}
