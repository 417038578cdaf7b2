//! Packets really stop: a server namespace (this test's fresh netns) and a
//! client namespace joined by a veth pair, 10.200.0.0/24 inside them only.
//! The client connects over TCP from two source addresses; banning one must
//! drop its SYNs while the other still gets through.

#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use banset_core::{Backend, BlockType, Hook};
use banset_nftables::NftablesBackend;
use common::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
const BANNED: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 3);

/// Deletes the named client namespace however the test ends.
struct NamedNetns(String);

impl NamedNetns {
    fn create(tag: &str) -> NamedNetns {
        let name = format!("banset-test-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        NamedNetns(name)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Connected,
    /// An RST or ICMP unreachable came back (`reject`).
    Refused,
    /// Nothing came back (`drop`).
    TimedOut,
}

/// A TCP connect from `src` inside namespace `ns`, on a thread that joins it.
fn connect_from(ns: &str, src: Ipv4Addr, dst: SocketAddrV4) -> Outcome {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let netns = File::open(&path).expect("open client netns");
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        tcp_connect(src, dst, Duration::from_millis(1500))
    })
    .join()
    .expect("client thread")
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = addr.port().to_be();
    sa.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sa
}

/// std cannot bind a source address before connecting, hence libc.
fn tcp_connect(src: Ipv4Addr, dst: SocketAddrV4, timeout: Duration) -> Outcome {
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned by this function;
    // every pointer refers to a live local of the stated length.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let local = sockaddr(SocketAddrV4::new(src, 0));
        let rc = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "bind {src}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(dst);
        let rc = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        let outcome = if rc == 0 {
            Outcome::Connected
        } else {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let ready = libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int);
            if ready == 0 {
                Outcome::TimedOut
            } else {
                let mut err: libc::c_int = 0;
                let mut err_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut err_len,
                );
                match err {
                    0 => Outcome::Connected,
                    libc::ECONNREFUSED | libc::EHOSTUNREACH => Outcome::Refused,
                    other => panic!("connect: {}", std::io::Error::from_raw_os_error(other)),
                }
            }
        };
        libc::close(fd);
        outcome
    }
}

/// Server side in this thread's namespace, client side in a named one.
fn wire_up(client: &NamedNetns) -> TcpListener {
    ip(&["link", "set", "lo", "up"]);
    ip(&[
        "link", "add", "bs0", "type", "veth", "peer", "name", "bc0", "netns", &client.0,
    ]);
    ip(&["addr", "add", "10.200.0.1/24", "dev", "bs0"]);
    ip(&["link", "set", "bs0", "up"]);
    for args in [
        &["addr", "add", "10.200.0.2/24", "dev", "bc0"][..],
        &["addr", "add", "10.200.0.3/24", "dev", "bc0"],
        &["link", "set", "bc0", "up"],
        &["link", "set", "lo", "up"],
    ] {
        let mut full = vec!["-n", client.0.as_str()];
        full.extend_from_slice(args);
        ip(&full);
    }
    // The kernel completes handshakes into the backlog; no accept needed.
    TcpListener::bind(SocketAddrV4::new(SERVER, 0)).expect("listen in the server netns")
}

fn port_of(listener: &TcpListener) -> SocketAddrV4 {
    match listener.local_addr().expect("local addr") {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("{other}"),
    }
}

#[test]
fn banned_source_is_dropped_and_unbanned_again() {
    in_netns("packet_drop", || {
        let client = NamedNetns::create("drop");
        let listener = wire_up(&client);
        let dst = port_of(&listener);
        assert_eq!(connect_from(&client.0, BANNED, dst), Outcome::Connected);

        let b = NftablesBackend::open().unwrap();
        let s = spec("pkt");
        b.ensure_set(&s).unwrap();
        b.add(&s, &[entry("10.200.0.2", Some(600))]).unwrap();
        assert_eq!(connect_from(&client.0, BANNED, dst), Outcome::TimedOut);
        assert_eq!(connect_from(&client.0, OTHER, dst), Outcome::Connected);

        b.del(&s, &[t("10.200.0.2")]).unwrap();
        assert_eq!(connect_from(&client.0, BANNED, dst), Outcome::Connected);

        // A prefix covering both clients, from the interval set.
        b.add(&s, &[entry("10.200.0.0/30", Some(600))]).unwrap();
        assert_eq!(connect_from(&client.0, BANNED, dst), Outcome::TimedOut);
        assert_eq!(connect_from(&client.0, OTHER, dst), Outcome::TimedOut);
        b.flush(&s).unwrap();
        assert_eq!(connect_from(&client.0, OTHER, dst), Outcome::Connected);
    });
}

#[test]
fn reject_answers_on_the_hooked_port_only() {
    in_netns("packet_reject", || {
        let client = NamedNetns::create("reject");
        let listener = wire_up(&client);
        let dst = port_of(&listener);
        let other_listener =
            TcpListener::bind(SocketAddrV4::new(SERVER, 0)).expect("second listener");
        let other_dst = port_of(&other_listener);

        let b = NftablesBackend::open().unwrap();
        let mut s = spec("rej");
        s.hook = Some(Hook {
            ports: vec![banset_core::PortRange {
                first: dst.port(),
                last: dst.port(),
            }],
            protocol: None,
            block: BlockType::Reject,
        });
        b.ensure_set(&s).unwrap();
        b.add(&s, &[entry("10.200.0.2", None)]).unwrap();
        assert_eq!(connect_from(&client.0, BANNED, dst), Outcome::Refused);
        assert_eq!(
            connect_from(&client.0, BANNED, other_dst),
            Outcome::Connected
        );
        assert_eq!(connect_from(&client.0, OTHER, dst), Outcome::Connected);
    });
}
