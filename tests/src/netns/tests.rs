//! The harness itself, as root (each test skips itself otherwise). These
//! pin the properties kernel tests rely on without checking them: isolation
//! from the host, children sharing the thread's namespace, clean-up on
//! panic, and a packet path whose outcome a firewall rule decides.

use std::ffi::CString;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};

use super::*;

const PROBE: Duration = Duration::from_secs(1);

/// The namespace of the calling thread, as the kernel names it (`net:[N]`).
fn current_netns() -> String {
    std::fs::read_link("/proc/thread-self/ns/net")
        .expect("reading /proc/thread-self/ns/net")
        .to_string_lossy()
        .into_owned()
}

/// Looks an interface up through a socket of the calling thread's
/// namespace, not through a child process.
fn interface_index(name: &str) -> u32 {
    let name = CString::new(name).unwrap();
    // SAFETY: name is a valid NUL-terminated string for the call.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

fn has_nft() -> bool {
    Command::new("nft").arg("--version").output().is_ok()
}

#[test]
fn a_new_netns_is_separate_and_holds_only_an_up_loopback() {
    if skip_unless_root("a_new_netns_is_separate_and_holds_only_an_up_loopback") {
        return;
    }
    let host = current_netns();
    let (inside, links, loopback) = in_new_netns(|| {
        let links = run_checked(Command::new("ip").args(["-o", "link", "show"])).unwrap();
        // A TCP connection over 127.0.0.1 works only with lo up.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let loopback = TcpStream::connect_timeout(&listener.local_addr().unwrap(), PROBE).map(drop);
        (
            current_netns(),
            String::from_utf8(links.stdout).unwrap(),
            loopback,
        )
    });
    assert_ne!(inside, host, "the closure ran in the host namespace");
    let names: Vec<&str> = links.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(names, ["lo"], "links in a new namespace: {links}");
    assert!(links.contains("UP"), "lo is not up: {links}");
    loopback.expect("connecting over the new namespace's loopback");
    assert_eq!(
        current_netns(),
        host,
        "the test thread left the host namespace"
    );
}

#[test]
fn processes_spawned_in_a_new_netns_share_it() {
    if skip_unless_root("processes_spawned_in_a_new_netns_share_it") {
        return;
    }
    let link = "bt-child0";
    assert_eq!(
        interface_index(link),
        0,
        "{link} already exists on the host"
    );
    let seen_by_thread = in_new_netns(|| {
        // Made by a child process; looked up by this thread's own socket.
        run_checked(Command::new("ip").args([
            "link",
            "add",
            link,
            "type",
            "veth",
            "peer",
            "name",
            "bt-child1",
        ]))
        .unwrap();
        interface_index(link)
    });
    assert_ne!(
        seen_by_thread, 0,
        "a link made by a child process is not in the thread's namespace"
    );
    assert_eq!(
        interface_index(link),
        0,
        "the child's link leaked to the host"
    );
    let host_links = run_checked(Command::new("ip").args(["-o", "link", "show"])).unwrap();
    assert!(!String::from_utf8_lossy(&host_links.stdout).contains(link));
}

#[test]
fn a_panic_in_a_new_netns_reaches_the_caller() {
    if skip_unless_root("a_panic_in_a_new_netns_reaches_the_caller") {
        return;
    }
    let host = current_netns();
    let payload = panic::catch_unwind(|| in_new_netns(|| panic!("inner failure 42")))
        .expect_err("the panic was swallowed");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inner failure 42"));
    assert_eq!(current_netns(), host);
}

#[test]
fn a_veth_pair_carries_tcp_in_both_families() {
    if skip_unless_root("a_veth_pair_carries_tcp_in_both_families") {
        return;
    }
    let pair = VethPair::new().unwrap();
    assert_ne!(
        pair.server().enter(current_netns),
        pair.client().enter(current_netns)
    );
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, PROBE).unwrap(),
        Reach::Connected
    );
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, PROBE).unwrap(),
        Reach::Connected
    );
    // A port nobody listens on answers with a reset.
    let closed = pair
        .listen_tcp(VethPair::SERVER_V4.into())
        .unwrap()
        .local_addr()
        .unwrap();
    assert_eq!(pair.connect_tcp(closed, PROBE), Reach::Refused);
    // The client's own address is not the server's: the listener is in the
    // server namespace only.
    let wrong = SocketAddr::new(VethPair::CLIENT_V4.into(), closed.port());
    assert_eq!(pair.connect_tcp(wrong, PROBE), Reach::Refused);
    let routes = pair.client().ip(&["route", "show"]).unwrap();
    assert!(routes.contains("10.199.0.0/24"), "{routes}");
}

#[test]
fn a_connect_from_a_chosen_source_uses_that_address() {
    if skip_unless_root("a_connect_from_a_chosen_source_uses_that_address") {
        return;
    }
    let pair = VethPair::new().unwrap();
    for (server, client) in [
        (
            IpAddr::from(VethPair::SERVER_V4),
            IpAddr::from(VethPair::CLIENT_V4),
        ),
        (VethPair::SERVER_V6.into(), VethPair::CLIENT_V6.into()),
    ] {
        let listener = pair.listen_tcp(server).unwrap();
        let to = listener.local_addr().unwrap();
        assert_eq!(pair.connect_tcp_from(client, to, PROBE), Reach::Connected);
        // The server saw the chosen source.
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), client);
    }
    // An address the client does not have cannot be the source.
    let listener = pair.listen_tcp(VethPair::SERVER_V4.into()).unwrap();
    let to = listener.local_addr().unwrap();
    let foreign = IpAddr::from(Ipv4Addr::new(10, 199, 0, 77));
    assert!(matches!(
        pair.connect_tcp_from(foreign, to, PROBE),
        Reach::Failed(_)
    ));
}

#[test]
fn a_firewall_in_the_server_namespace_decides_the_outcome() {
    if skip_unless_root("a_firewall_in_the_server_namespace_decides_the_outcome") {
        return;
    }
    if !has_nft() {
        eprintln!("a_firewall_in_the_server_namespace_decides_the_outcome: skipped: no nft");
        return;
    }
    let pair = VethPair::new().unwrap();
    // The reject matches TCP only: a rule on every packet from the client's
    // IPv6 address would also swallow its neighbour advertisements, and the
    // reset could then never be delivered.
    let rules = format!(
        "add table inet bt ; \
         add chain inet bt input {{ type filter hook input priority 0 ; }} ; \
         add rule inet bt input ip saddr {} drop ; \
         add rule inet bt input ip6 saddr {} meta l4proto tcp reject with tcp reset",
        VethPair::CLIENT_V4,
        VethPair::CLIENT_V6
    );
    pair.server().run("nft", &[&rules]).unwrap();
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, PROBE).unwrap(),
        Reach::TimedOut
    );
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, PROBE).unwrap(),
        Reach::Refused
    );
    let listed = pair.server().run("nft", &["list", "ruleset"]).unwrap();
    assert!(listed.contains("table inet bt"), "{listed}");
    let client_rules = pair.client().run("nft", &["list", "ruleset"]).unwrap();
    assert!(!client_rules.contains("table inet bt"), "{client_rules}");
}

#[test]
fn namespaces_are_deleted_on_drop_even_when_a_test_panics() {
    if skip_unless_root("namespaces_are_deleted_on_drop_even_when_a_test_panics") {
        return;
    }
    let mut names = Vec::new();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let pair = VethPair::new().unwrap();
        names.push(pair.server().name().to_string());
        names.push(pair.client().name().to_string());
        for name in &names {
            assert!(
                Path::new("/run/netns").join(name).exists(),
                "{name} was not made"
            );
        }
        panic!("test failure while the pair exists");
    }));
    assert!(outcome.is_err());
    assert_eq!(names.len(), 2);
    for name in &names {
        assert!(name.starts_with(NAME_PREFIX), "{name}");
        assert!(
            !Path::new("/run/netns").join(name).exists(),
            "{name} outlived its guard"
        );
    }
}

#[test]
fn namespaces_of_dead_test_processes_are_removed() {
    if skip_unless_root("namespaces_of_dead_test_processes_are_removed") {
        return;
    }
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let stale = format!("{NAME_PREFIX}{dead_pid}-0-srv");
    {
        // Made under the lock every other `ip netns` call of this process
        // takes: a parallel test's stale sweep saw this dead pid and
        // deleted the file while `ip netns add` was still binding it.
        let _turn = IP_NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        run_checked(Command::new("ip").args(["netns", "add", &stale])).unwrap();
    }
    let ours = NamedNetns::create("live").unwrap();
    let pair = VethPair::new().unwrap();
    let exists = |name: &str| Path::new("/run/netns").join(name).exists();
    let stale_left = exists(&stale);
    if stale_left {
        // Clean up before failing, so the host is not left with it.
        let _ = run_checked(Command::new("ip").args(["netns", "del", &stale]));
    }
    assert!(!stale_left, "{stale} survived");
    assert!(
        exists(ours.name()),
        "a namespace of this live process was removed"
    );
    assert!(exists(pair.server().name()));
}

#[test]
fn the_harness_leaves_the_host_untouched() {
    if skip_unless_root("the_harness_leaves_the_host_untouched") {
        return;
    }
    let before = host_network_snapshot().unwrap();
    in_new_netns(|| {
        run_checked(Command::new("ip").args(["link", "add", "bt-host0", "type", "dummy"]))
            .or_else(|_| {
                run_checked(Command::new("ip").args([
                    "link", "add", "bt-host0", "type", "veth", "peer", "name", "bt-host1",
                ]))
            })
            .unwrap();
        if has_nft() {
            run_checked(Command::new("nft").args(["add table inet bt_host"])).unwrap();
        }
    });
    {
        let pair = VethPair::new().unwrap();
        assert_eq!(
            pair.probe_tcp(VethPair::SERVER_V4, PROBE).unwrap(),
            Reach::Connected
        );
        if has_nft() {
            pair.server()
                .run("nft", &["add table inet bt_host"])
                .unwrap();
        }
    }
    let after = host_network_snapshot().unwrap();
    assert!(
        before.contains("## ip -o link show") && before.contains("lo"),
        "{before}"
    );
    assert_eq!(before, after, "the host's network changed");
}

#[test]
fn address_lifetimes_do_not_count_as_changes() {
    assert_eq!(
        without_lifetimes("2: eth0    inet 10.0.0.5/24 valid_lft 86000sec preferred_lft 86000sec"),
        without_lifetimes("2: eth0 inet 10.0.0.5/24 valid_lft 85990sec preferred_lft 85990sec"),
    );
    assert_ne!(
        without_lifetimes("2: eth0 inet 10.0.0.5/24 valid_lft forever"),
        without_lifetimes("2: eth0 inet 10.0.0.6/24 valid_lft forever"),
    );
}

#[test]
fn connect_errors_map_to_outcomes() {
    use std::io::Error;
    assert_eq!(Reach::from_result(Ok(())), Reach::Connected);
    for (errno, reach) in [
        (libc::ECONNREFUSED, Reach::Refused),
        (libc::ETIMEDOUT, Reach::TimedOut),
        (libc::EHOSTUNREACH, Reach::Unreachable),
        (libc::ENETUNREACH, Reach::Unreachable),
    ] {
        assert_eq!(
            Reach::from_result(Err(Error::from_raw_os_error(errno))),
            reach,
            "errno {errno}"
        );
    }
    assert!(matches!(
        Reach::from_result(Err(Error::from_raw_os_error(libc::EPERM))),
        Reach::Failed(_)
    ));
}

#[test]
fn veth_ends_know_each_other_without_neighbour_discovery() {
    // A lost ARP or neighbour solicitation delays the first packet by the
    // 1 s retransmit, as long as a probe's whole timeout: CI once read a
    // connect that should succeed as "TimedOut".
    if skip_unless_root("veth_ends_know_each_other_without_neighbour_discovery") {
        return;
    }
    let pair = VethPair::new().unwrap();
    for (ns, ifname, peer, mac) in [
        (
            pair.server(),
            VethPair::SERVER_IF,
            [
                IpAddr::from(VethPair::CLIENT_V4),
                VethPair::CLIENT_V6.into(),
            ],
            VethPair::CLIENT_MAC,
        ),
        (
            pair.client(),
            VethPair::CLIENT_IF,
            [VethPair::SERVER_V4.into(), VethPair::SERVER_V6.into()],
            VethPair::SERVER_MAC,
        ),
    ] {
        let shown = ns.ip(&["neigh", "show", "dev", ifname]).unwrap();
        for addr in peer {
            let line = shown
                .lines()
                .find(|line| line.starts_with(&format!("{addr} ")))
                .unwrap_or_else(|| panic!("no neighbour entry for {addr}: {shown}"));
            assert!(line.contains(mac) && line.contains("PERMANENT"), "{line}");
        }
        let link = ns.ip(&["-o", "link", "show", "dev", ifname]).unwrap();
        assert!(link.contains("state UP"), "{link}");
    }
}
