//! The allow-only packet test, written once for every Linux backend that
//! builds allow-only sets: over a veth pair, a member reaches port 22, a
//! non-member does not, port 80 stays open to all, the host reaches its own
//! port 22 (loopback and its own address), a member banned by a ban set is
//! dropped, IPv4 and IPv6 alike.
//!
//! The server namespace holds the backend; every backend call runs on a
//! thread inside it, because a backend may run tools (iptables) there.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use banset_core::{Backend, Hook, KernelEntry, PortRange, Protocol, SetName, SetPolicy, SetSpec};

use crate::conformance::entry;
use crate::netns::{Reach, VethPair};

/// A client address that is never a member.
pub const OUTSIDER_V4: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 3);
/// The IPv6 outsider, outside the member prefix `fd00:b5e7::/126`.
pub const OUTSIDER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xb5e7, 0, 0, 0, 0, 1, 3);

const PROBE: Duration = Duration::from_millis(1500);

/// The pair with the outsider addresses on the client, and dual-stack
/// listeners on the server's ports 22 and 80 (held by the returned value).
#[derive(Debug)]
pub struct Scene {
    pub pair: VethPair,
    _listeners: Vec<TcpListener>,
}

impl Scene {
    pub fn new() -> io::Result<Scene> {
        let pair = VethPair::new()?;
        pair.client().ip(&[
            "addr",
            "add",
            &format!("{OUTSIDER_V4}/24"),
            "dev",
            VethPair::CLIENT_IF,
        ])?;
        pair.client().ip(&[
            "addr",
            "add",
            &format!("{OUTSIDER_V6}/64"),
            "dev",
            VethPair::CLIENT_IF,
            "nodad",
        ])?;
        // `[::]` takes IPv4 too (IPV6_V6ONLY is off by default), as sshd's
        // usual listener does.
        let listeners = pair.server().enter(|| {
            [22, 80]
                .iter()
                .map(|&port| TcpListener::bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)))
                .collect::<io::Result<Vec<_>>>()
        })?;
        Ok(Scene {
            pair,
            _listeners: listeners,
        })
    }

    /// A connect from the client's `from` to the server's `port`, in `to`'s
    /// family.
    pub fn reach(&self, from: IpAddr, port: u16) -> Reach {
        let to: IpAddr = match from {
            IpAddr::V4(_) => VethPair::SERVER_V4.into(),
            IpAddr::V6(_) => VethPair::SERVER_V6.into(),
        };
        self.pair
            .connect_tcp_from(from, SocketAddr::new(to, port), PROBE)
    }

    /// A connect from the server to itself (`to`: loopback or its own
    /// address).
    pub fn reach_self(&self, to: IpAddr, port: u16) -> Reach {
        self.pair.server().enter(|| {
            match TcpStream::connect_timeout(&SocketAddr::new(to, port), PROBE) {
                Ok(_) => Reach::Connected,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => Reach::TimedOut,
                Err(e) => Reach::Failed(e.to_string()),
            }
        })
    }
}

/// `home`: allow-only on TCP port 22 (drop), on `backend`'s kind.
pub fn home_spec(backend: &dyn Backend, name: &str) -> SetSpec {
    let mut spec = SetSpec::new(SetName::new(name).expect("set name"), backend.kind());
    spec.policy = SetPolicy::AllowOnly;
    spec.hook = Some(Hook {
        ports: PortRange::parse_list("22").expect("port"),
        protocol: Some(Protocol::Tcp),
        ..Hook::default()
    });
    spec
}

/// The whole scenario against the backend `open` makes (called inside the
/// server namespace). Panics with what did not hold.
pub fn allow_only_over_veth<B: Backend + 'static>(open: fn() -> B) {
    let scene = Scene::new().expect("veth pair");
    let server = scene.pair.server();
    let b = server.enter(open);
    let call = |what: &str, f: &(dyn Fn(&B) -> Result<(), banset_core::BackendError> + Sync)| {
        server
            .enter(|| f(&b))
            .unwrap_or_else(|e| panic!("[{}] {what}: {e}", b.kind()));
    };
    let member_v4: IpAddr = VethPair::CLIENT_V4.into();
    let member_v6: IpAddr = VethPair::CLIENT_V6.into();
    let (outsider_v4, outsider_v6): (IpAddr, IpAddr) = (OUTSIDER_V4.into(), OUTSIDER_V6.into());
    let everyone = [member_v4, member_v6, outsider_v4, outsider_v6];
    for from in everyone {
        assert_eq!(scene.reach(from, 22), Reach::Connected, "{from} before");
    }

    let home = home_spec(&b, "home");
    let members: Vec<KernelEntry> = vec![
        entry(&member_v4.to_string(), None),
        entry("fd00:b5e7::/126", None),
    ];
    call("ensure_set home", &|b| b.ensure_set(&home));
    call("add members", &|b| b.add(&home, &members));
    let kind = b.kind();
    for (from, port, want) in [
        (member_v4, 22, Reach::Connected),
        (member_v6, 22, Reach::Connected),
        (outsider_v4, 22, Reach::TimedOut),
        (outsider_v6, 22, Reach::TimedOut),
        (outsider_v4, 80, Reach::Connected),
        (outsider_v6, 80, Reach::Connected),
    ] {
        assert_eq!(
            scene.reach(from, port),
            want,
            "[{kind}] {from} -> port {port}"
        );
    }
    // The host itself, over loopback and to its own address.
    for to in [
        IpAddr::from(Ipv4Addr::LOCALHOST),
        Ipv6Addr::LOCALHOST.into(),
        VethPair::SERVER_V4.into(),
        VethPair::SERVER_V6.into(),
    ] {
        assert_eq!(
            scene.reach_self(to, 22),
            Reach::Connected,
            "[{kind}] self {to}"
        );
    }

    // A ban set still drops a member.
    let mut bans = SetSpec::new(SetName::new("bans").expect("name"), kind);
    bans.prefixes = true;
    let banned = vec![entry(&member_v4.to_string(), None)];
    call("ensure_set bans", &|b| b.ensure_set(&bans));
    call("ban a member", &|b| b.add(&bans, &banned));
    assert_eq!(
        scene.reach(member_v4, 22),
        Reach::TimedOut,
        "[{kind}] banned member"
    );
    assert_eq!(
        scene.reach(member_v6, 22),
        Reach::Connected,
        "[{kind}] v6 member"
    );

    // Taking the rule away opens the port again; destroying leaves nothing.
    call("destroy bans", &|b| b.destroy(&bans));
    call("destroy home", &|b| b.destroy(&home));
    for from in everyone {
        assert_eq!(
            scene.reach(from, 22),
            Reach::Connected,
            "[{kind}] {from} after destroy"
        );
    }
}
