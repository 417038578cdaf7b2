//! CLI tests on the firewalld backend: the real `banset` binary against a
//! real firewalld, isolated in the server side of a veth pair (own network
//! and mount namespaces, private bus; `banset_tests::firewalld`), for both
//! firewall backends. Packets from the client namespace prove what blocks.

// firewalld and network namespaces are Linux.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Output;
use std::time::Duration;

use banset_tests::firewalld::{skip_unless_available, FirewallBackend, Firewalld};
use banset_tests::netns::{Reach, VethPair};

const BANSET: &str = env!("CARGO_BIN_EXE_banset");
const CONNECT: Duration = Duration::from_millis(1500);

/// `banset args` in firewalld's namespace, on its bus, with a private
/// state directory and an empty config (so the backend is detected).
fn banset(fw: &Firewalld, s: &common::Sandbox, args: &[&str]) -> Output {
    let std_cmd = s.cmd(args);
    let mut cmd = fw.command(BANSET);
    // Not the runner's ssh session: the allow-only lockout guard reads it.
    cmd.env_remove("BANSET_STATE_DIR")
        .env_remove("BANSET_CONFIG")
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_CLIENT")
        .args(std_cmd.get_args());
    cmd.output().expect("run banset")
}

fn ok(fw: &Firewalld, s: &common::Sandbox, args: &[&str]) -> String {
    common::stdout_of_success(args, banset(fw, s, args))
}

#[test]
fn ban_reload_sync_unban_destroy_over_a_veth_pair() {
    if skip_unless_available("cli_firewalld_veth") {
        return;
    }
    for backend in FirewallBackend::ALL {
        eprintln!("FirewallBackend={}", backend.name());
        let pair = VethPair::new().unwrap();
        let fw = Firewalld::start_in(pair.server(), backend).unwrap();
        let s = common::Sandbox::new(&format!("firewalld-{}", backend.name()));
        let server = IpAddr::V4(VethPair::SERVER_V4);
        let listener = fw.listen_ssh_port(server).unwrap();
        let to = SocketAddr::new(server, listener.local_addr().unwrap().port());
        assert_eq!(pair.connect_tcp(to, CONNECT), Reach::Connected);
        let before = fw.snapshot().unwrap();
        let client = VethPair::CLIENT_V4.to_string();

        // A connection open before the ban, to pin down what a ban does to
        // it (notes/firewalld.md §5).
        let mut live_client = pair
            .client()
            .enter(|| TcpStream::connect_timeout(&to, CONNECT))
            .unwrap();
        // The probe above left its own (closed) connection in the queue.
        let mut live_server = loop {
            let (stream, peer) = listener.accept().unwrap();
            if peer == live_client.local_addr().unwrap() {
                break stream;
            }
        };
        live_server.set_read_timeout(Some(CONNECT)).unwrap();
        live_client.write_all(b"a").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(live_server.read(&mut buf).unwrap(), 1, "before the ban");

        // No --backend, no config: firewalld is running, so it is chosen.
        ok(&fw, &s, &["add", "fwd-ssh", &client, "--timeout", "1h"]);
        live_client.write_all(b"x").unwrap();
        let passed = live_server.read(&mut buf).is_ok_and(|n| n == 1);
        match backend {
            // iptables-nft's INPUT, where the direct rule lands, has no
            // conntrack accept before it.
            FirewallBackend::Nftables => assert!(!passed, "open connection should be cut"),
            // firewalld accepts established traffic before INPUT_direct.
            FirewallBackend::Iptables => assert!(passed, "open connection should live on"),
        }
        drop((live_client, live_server));
        let status = ok(&fw, &s, &["status", "--json"]);
        assert!(status.contains("\"firewalld\""), "{status}");
        assert!(fw
            .firewall_cmd(&["--direct", "--get-all-rules"])
            .unwrap()
            .contains("--match-set fwd-ssh src"));
        assert_eq!(pair.connect_tcp(to, CONNECT), Reach::TimedOut);

        // A reload keeps the entry but drops the rule: the client gets in.
        fw.reload().unwrap();
        assert!(fw
            .run("ipset", &["list", "fwd-ssh"])
            .unwrap()
            .contains(&client));
        assert_eq!(pair.connect_tcp(to, CONNECT), Reach::Connected);
        let sync = banset(&fw, &s, &["sync"]);
        assert!(sync.status.success());
        let said = String::from_utf8_lossy(&sync.stderr);
        assert!(said.contains("re-created set and rule"), "{said}");
        assert_eq!(pair.connect_tcp(to, CONNECT), Reach::TimedOut);

        ok(&fw, &s, &["del", "fwd-ssh", &client]);
        assert_eq!(pair.connect_tcp(to, CONNECT), Reach::Connected);
        ok(&fw, &s, &["destroy", "fwd-ssh"]);
        assert_eq!(fw.snapshot().unwrap(), before);
        drop(listener);
    }
}

#[test]
fn permanent_needs_firewalld_and_errors_exit_3_naming_set_and_code() {
    if skip_unless_available("cli_firewalld_errors") {
        return;
    }
    let mut fw = Firewalld::start(FirewallBackend::Nftables).unwrap();
    let s = common::Sandbox::new("firewalld-errors");
    let before = fw.snapshot().unwrap();

    let out = banset(
        &fw,
        &s,
        &["create", "fwd-p", "--backend", "nftables", "--permanent"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--permanent"));

    ok(
        &fw,
        &s,
        &["create", "fwd-p", "--permanent", "--ports", "smtp,465"],
    );
    let saved = fw
        .firewall_cmd(&["--permanent", "--direct", "--get-all-rules"])
        .unwrap();
    assert!(
        saved.contains("-p tcp -m set --match-set fwd-p src -m multiport --dports 25,465"),
        "{saved}"
    );
    fw.reload().unwrap();
    assert!(fw
        .firewall_cmd(&["--direct", "--get-all-rules"])
        .unwrap()
        .contains("--match-set fwd-p6 src"));

    // firewalld down: one line, the set, the cause, exit 3.
    fw.stop_firewalld();
    let out = banset(&fw, &s, &["create", "fwd-q", "--backend", "firewalld"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("fwd-q") && err.contains("firewalld is not running"),
        "{err}"
    );
    // Nothing recorded for the failed create.
    let list = ok(&fw, &s, &["list", "--json"]);
    assert!(!list.contains("fwd-q"), "{list}");
    let sets = fw.run("ipset", &["list", "-n"]).unwrap();
    assert!(!sets.contains("fwd-q"), "{sets}");
    // An existing set's bans need no firewalld.
    ok(&fw, &s, &["add", "fwd-p", "192.0.2.7"]);
    fw.start_firewalld().unwrap();

    ok(&fw, &s, &["destroy", "fwd-p"]);
    assert_eq!(fw.snapshot().unwrap(), before);
}

/// The reload self-heal with the daemon: `banset watch` (no jails: the
/// keeper alone) hears firewalld's `Reloaded` on the bus and puts the
/// direct rule back. How long the client got through is printed, never
/// asserted.
#[test]
fn watch_blocks_again_right_after_a_reload_and_a_restart() {
    if skip_unless_available("cli_firewalld_watch") {
        return;
    }
    for backend in FirewallBackend::ALL {
        eprintln!("FirewallBackend={}", backend.name());
        let pair = VethPair::new().unwrap();
        let mut fw = Firewalld::start_in(pair.server(), backend).unwrap();
        let s = common::Sandbox::new(&format!("firewalld-watch-{}", backend.name()));
        let server = IpAddr::V4(VethPair::SERVER_V4);
        let listener = fw.listen_ssh_port(server).unwrap();
        let to = SocketAddr::new(server, listener.local_addr().unwrap().port());
        let client = VethPair::CLIENT_V4.to_string();
        ok(&fw, &s, &["add", "fwd-watch", &client, "--timeout", "1h"]);
        assert_eq!(pair.connect_tcp(to, CONNECT), Reach::TimedOut);

        let log = s.dir().join("watch.log");
        let mut cmd = fw.command(BANSET);
        cmd.env_remove("BANSET_STATE_DIR")
            .env_remove("BANSET_CONFIG")
            .args(s.cmd(&["watch"]).get_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut watch = cmd.spawn().unwrap();
        let said = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !said().contains("watching:") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            said().contains("listening for firewalld reloads"),
            "{}",
            said()
        );

        for what in ["reload", "restart"] {
            let started = std::time::Instant::now();
            if what == "reload" {
                fw.reload().unwrap();
            } else {
                fw.restart().unwrap();
            }
            // firewall-cmd --reload returns once firewalld has reloaded
            // (and emitted Reloaded); a restart once it is back on the bus.
            let t = std::time::Instant::now();
            // Probe with short timeouts until the client is dropped again.
            let mut blocked = false;
            while t.elapsed() < Duration::from_secs(20) {
                if pair.connect_tcp(to, Duration::from_millis(100)) == Reach::TimedOut {
                    blocked = true;
                    break;
                }
            }
            eprintln!(
                "FirewallBackend={}: blocked again {:?} after the {what} returned ({:?} after it began; banset watch)",
                backend.name(),
                t.elapsed(),
                started.elapsed()
            );
            assert!(blocked, "still reachable after the {what}: {}", said());
        }
        assert!(said().contains("repair fwd-watch"), "{}", said());
        // SAFETY: kill(2) on our own child, before the instance drops.
        unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
        watch.wait().unwrap();
        drop(listener);
    }
}

/// Issue 20 on firewalld: an allow-only set lets only its members reach its
/// port, over real packets, under both of firewalld's firewall backends;
/// `firewall-cmd --reload` drops the direct rule (as for ban sets) and
/// `banset sync` brings it back.
#[test]
fn allow_only_set_lets_only_members_in_over_a_veth_pair() {
    if skip_unless_available("cli_firewalld_allow_only_veth") {
        return;
    }
    for backend in FirewallBackend::ALL {
        eprintln!("FirewallBackend={}", backend.name());
        let pair = VethPair::new().unwrap();
        let fw = Firewalld::start_in(pair.server(), backend).unwrap();
        let s = common::Sandbox::new(&format!("firewalld-allow-{}", backend.name()));
        let server = IpAddr::V4(VethPair::SERVER_V4);
        let listener = fw.listen_ssh_port(server).unwrap();
        let to = SocketAddr::new(server, listener.local_addr().unwrap().port());
        let before = fw.snapshot().unwrap();
        let client = VethPair::CLIENT_V4.to_string();
        let reach = || pair.connect_tcp(to, CONNECT);
        assert_eq!(reach(), Reach::Connected, "before");

        // The way the README's recipe builds it: fill first, rule last.
        ok(&fw, &s, &["create", "home", "--allow-only", "--no-hook"]);
        ok(&fw, &s, &["add", "home", "198.51.100.7"]);
        assert_eq!(reach(), Reach::Connected, "no rule yet");
        ok(&fw, &s, &["set-options", "home", "--ports", "22"]);
        let rules = fw.firewall_cmd(&["--direct", "--get-all-rules"]).unwrap();
        assert!(rules.contains("'!' --match-set home src"), "{rules}");
        assert_eq!(reach(), Reach::TimedOut, "a non-member");

        ok(&fw, &s, &["add", "home", &client]);
        assert_eq!(reach(), Reach::Connected, "a member");
        ok(&fw, &s, &["del", "home", &client]);
        assert_eq!(reach(), Reach::TimedOut, "no longer a member");

        fw.reload().unwrap();
        assert_eq!(reach(), Reach::Connected, "the reload dropped the rule");
        ok(&fw, &s, &["sync"]);
        assert_eq!(reach(), Reach::TimedOut, "sync brought it back");

        ok(&fw, &s, &["destroy", "home"]);
        assert_eq!(reach(), Reach::Connected, "destroyed");
        assert_eq!(fw.snapshot().unwrap(), before);
        drop(listener);
    }
}
