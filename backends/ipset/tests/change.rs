//! A set's options change in place: the iptables rule moves to other ports
//! (the new rule goes in before the old one leaves) and the set gets a new
//! maxelem through a filled temporary set and `SWAP`, while every ban and
//! the time it has left stay. Proved with packets over a veth pair and with
//! `iptables -S` and `ipset save` as oracles.

#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use banset_core::{Backend, BlockType, Hook, PortRange, Protocol};
use banset_ipset::IpsetBackend;
use banset_tests::netns::{self, Reach, VethPair};
use common::{entry, input_rules, oracle, set_names, spec};

const PROBE: Duration = Duration::from_millis(1_500);

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
    pair.connect_tcp_from(IpAddr::V4(VethPair::CLIENT_V4), dst, PROBE)
}

#[test]
fn changed_ports_block_the_new_port_and_free_the_old_keeping_every_ban() {
    if netns::skip_unless_root("ipset change ports") {
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
    let mut old = spec("chg");
    old.hook = Some(hook_on(old_port.port(), BlockType::Drop));
    let b = pair.server().enter(|| {
        let b = IpsetBackend::open().expect("open backend");
        b.ensure_set(&old).unwrap();
        b.add(
            &old,
            &[
                entry(&VethPair::CLIENT_V4.to_string(), Some(3600)),
                entry("192.0.2.7", None),
                entry("198.51.100.0/24", Some(1800)),
                entry("2001:db8::1", Some(900)),
            ],
        )
        .unwrap();
        b
    });
    assert_eq!(connect(&pair, old_port), Reach::TimedOut);
    assert_eq!(connect(&pair, new_port), Reach::Connected);
    let before = pair.server().enter(|| (oracle("chg"), oracle("chg6")));

    let mut new = old.clone();
    new.hook = Some(hook_on(new_port.port(), BlockType::Reject));
    new.max_elements = Some(5000);
    pair.server()
        .enter(|| b.change_set(&old, &new))
        .expect("change ports, blocktype and maxelem");

    assert_eq!(connect(&pair, new_port), Reach::Refused, "new port rejects");
    assert_eq!(connect(&pair, old_port), Reach::Connected, "old port free");
    let (after, rules, names) = pair.server().enter(|| {
        (
            (oracle("chg"), oracle("chg6")),
            input_rules("iptables"),
            set_names(),
        )
    });
    assert_eq!(names, ["chg", "chg6"], "no temporary set left");
    assert_eq!(rules.len(), 1, "one rule, the new one: {rules:?}");
    assert!(
        rules[0].contains(&format!("--dports {}", new_port.port())) && rules[0].contains("REJECT"),
        "{rules:?}"
    );
    for (was, is) in [(&before.0, &after.0), (&before.1, &after.1)] {
        let (was, is) = (was.as_ref().unwrap(), is.as_ref().unwrap());
        assert!(is.create.contains("maxelem 5000"), "{}", is.create);
        let targets =
            |s: &common::OracleSet| s.members.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
        assert_eq!(targets(was), targets(is), "every ban kept");
        for ((t, w), (_, i)) in was.members.iter().zip(&is.members) {
            match (w, i) {
                // ipset lists a permanent member without a timeout (or 0).
                (None | Some(0), None | Some(0)) => {}
                // Never longer, only the seconds the test took shorter.
                (Some(w), Some(i)) => assert!(i <= w && w - i <= 30, "{t}: {w} -> {i}"),
                other => panic!("{t}: timeout {other:?}"),
            }
        }
    }
    pair.server().enter(|| b.destroy(&new)).unwrap();
}
