//! A set's options change in place: the blocking rule moves to other ports
//! and the set gets a new size in one netlink batch, while every ban and
//! the time it has left stay. Proved with packets over a veth pair and with
//! `nft -j` as the oracle.

#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use banset_core::{Backend, BlockType, Hook, PortRange, Protocol};
use banset_nftables::NftablesBackend;
use banset_tests::netns::{self, Reach, VethPair};
use common::*;
use serde_json::Value;

const BANNED: Ipv4Addr = VethPair::CLIENT_V4;
const PROBE: Duration = Duration::from_millis(1500);

fn hook_on(port: u16, block: BlockType) -> Hook {
    Hook {
        ports: vec![PortRange {
            first: port,
            last: port,
        }],
        protocol: Some(Protocol::Tcp),
        block,
        permanent: false,
    }
}

fn connect(pair: &VethPair, dst: SocketAddr) -> Reach {
    pair.connect_tcp_from(IpAddr::V4(BANNED), dst, PROBE)
}

/// The `size` of `inet banset SET` according to `nft -j`.
fn oracle_size(set: &str) -> Option<u64> {
    let json: Value = serde_json::from_str(&nft(&["-j", "list", "set", "inet", "banset", set]))
        .expect("nft -j output is JSON");
    json["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|o| o.get("set")))
        .and_then(|s| s["size"].as_u64())
}

#[test]
fn changed_ports_block_the_new_port_and_free_the_old_keeping_every_ban() {
    if netns::skip_unless_root("nftables change ports") {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let listen = || {
        let l = pair
            .listen_tcp(VethPair::SERVER_V4.into())
            .expect("listen in the server netns");
        let a = l.local_addr().expect("local addr");
        (l, a)
    };
    let (_old_listener, old_port) = listen();
    let (_new_listener, new_port) = listen();
    let b = pair
        .server()
        .enter(NftablesBackend::open)
        .expect("open backend");
    let mut old = spec("chg");
    old.hook = Some(hook_on(old_port.port(), BlockType::Drop));
    b.ensure_set(&old).unwrap();
    b.add(
        &old,
        &[
            entry(&BANNED.to_string(), Some(3600)),
            entry("192.0.2.7", None),
            entry("198.51.100.0/24", Some(1800)),
            entry("2001:db8::1", Some(900)),
        ],
    )
    .unwrap();
    assert_eq!(connect(&pair, old_port), Reach::TimedOut);
    assert_eq!(connect(&pair, new_port), Reach::Connected);
    let before = pair.server().enter(|| {
        (
            oracle_set("chg_v4"),
            oracle_set("chg_v4net"),
            oracle_set("chg_v6"),
        )
    });

    let mut new = old.clone();
    new.hook = Some(hook_on(new_port.port(), BlockType::Reject));
    new.max_elements = Some(5000);
    pair.server()
        .enter(|| b.change_set(&old, &new))
        .expect("change ports, blocktype and size");

    assert_eq!(connect(&pair, new_port), Reach::Refused, "new port rejects");
    assert_eq!(connect(&pair, old_port), Reach::Connected, "old port free");
    let (after, size, comments) = pair.server().enter(|| {
        (
            (
                oracle_set("chg_v4"),
                oracle_set("chg_v4net"),
                oracle_set("chg_v6"),
            ),
            oracle_size("chg_v4"),
            oracle_rule_comments(),
        )
    });
    assert_eq!(size, Some(5000), "the rebuilt set has the new size");
    assert!(pair
        .server()
        .enter(|| b.contains(&new, &t(&BANNED.to_string())))
        .unwrap());
    assert_eq!(comments.len(), 4, "one rule per address set: {comments:?}");
    for (was, is) in [
        (&before.0, &after.0),
        (&before.1, &after.1),
        (&before.2, &after.2),
    ] {
        let targets = |v: &Vec<OracleElem>| v.iter().map(|e| e.target.clone()).collect::<Vec<_>>();
        assert_eq!(targets(was), targets(is), "every ban kept");
        for (w, i) in was.iter().zip(is.iter()) {
            assert_eq!(w.timeout.is_some(), i.timeout.is_some(), "{w:?} {i:?}");
            if let (Some(we), Some(ie)) = (w.expires, i.expires) {
                // Never longer, and only the seconds the test took shorter.
                assert!(ie <= we && we - ie <= 30, "{w:?} -> {i:?}");
            }
        }
    }
}
