//! banset as the firewall backend of sshguard (`banset sshg-fw SET`) and as
//! blocklistd's control program (`banset blocklistd-helper`, or argv[0]
//! `control`).
//!
//! sshguard is tested twice: with the real sshguard (Debian's package: its
//! own parser and blocker, as sshguard's start script chains them, fed an
//! sshd log, inside a network namespace with a veth pair to prove the drop),
//! and by feeding the line protocol directly for what sshguard itself would
//! take minutes to send (release, flush, bad lines). blocklistd is FreeBSD's
//! and NetBSD's, so its protocol is fed directly, argument by argument as
//! blocklistd's run.c builds it. `nft -j` is the oracle throughout.

// Network namespaces (the shared sandbox) are Linux.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use banset_tests::netns::{self, NamedNetns, Reach, VethPair};
use common::{kernel_test, Sandbox};
use serde_json::Value;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");
const SSHGUARD: &str = "/usr/libexec/sshguard";
const PATIENCE: Duration = Duration::from_secs(60);

/// The oracle: every member of the kernel sets of logical set `set`
/// (`_v4`, `_v6`, `_v4net`, `_v6net`) in the calling thread's namespace,
/// or in `ns` when given.
fn members(ns: Option<&NamedNetns>, set: &str) -> BTreeMap<String, Option<u64>> {
    let mut all = BTreeMap::new();
    for suffix in ["_v4", "_v6", "_v4net", "_v6net"] {
        let name = format!("{set}{suffix}");
        let args = ["-j", "list", "set", "inet", "banset", &name];
        let out = match ns {
            Some(ns) => ns.command("nft").args(args).output(),
            None => Command::new("nft").args(args).output(),
        }
        .expect("nft must be installed for the kernel tests");
        if !out.status.success() {
            continue;
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        for item in v["nftables"].as_array().unwrap() {
            for e in item["set"]["elem"].as_array().into_iter().flatten() {
                let (val, expires) = match e.get("elem") {
                    Some(inner) => (
                        inner["val"].clone(),
                        inner.get("expires").and_then(Value::as_u64),
                    ),
                    None => (e.clone(), None),
                };
                let key = match &val {
                    Value::String(s) => s.clone(),
                    Value::Object(o) if o.contains_key("prefix") => format!(
                        "{}/{}",
                        o["prefix"]["addr"].as_str().unwrap(),
                        o["prefix"]["len"]
                    ),
                    other => panic!("unexpected nft element {other}"),
                };
                all.insert(key, expires);
            }
        }
    }
    all
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `banset sshg-fw` with its standard input ours to write.
struct SshgFw {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl SshgFw {
    fn spawn(s: &Sandbox, args: &[&str]) -> SshgFw {
        let mut child = s
            .cmd(&[&["sshg-fw"], args].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn banset sshg-fw");
        let stdin = child.stdin.take();
        SshgFw {
            child: Some(child),
            stdin,
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("input still open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the input (sshguard exiting) and returns the backend's end.
    fn finish(mut self) -> Output {
        drop(self.stdin.take());
        let child = self.child.take().expect("running");
        child.wait_with_output().unwrap()
    }
}

impl Drop for SshgFw {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn sshg_fw_speaks_sshguards_protocol() {
    kernel_test("sshg_fw_protocol", || {
        let s = Sandbox::new("sshg-proto");
        let mut fw = SshgFw::spawn(&s, &["sshguard"]);
        // sshguard sends the attacker's address and its subnet size; the
        // backend applies the mask. One line per write, and several in one
        // write (a batch), mixed with lines to skip.
        fw.send("block 192.0.2.7 4 24\n");
        fw.send(
            "block 2001:db8::1:2 6 64\nblock 198.51.100.9 4 32 100\n\
             block not-an-address 4 32\nblock 127.0.0.1 4 32\nblock 203.0.113.5 4 32\n",
        );
        wait_until("the blocks are in the kernel", || {
            members(None, "sshguard").len() == 4
        });
        let set = members(None, "sshguard");
        for want in [
            "192.0.2.0/24",
            "2001:db8::/64",
            "198.51.100.9",
            "203.0.113.5",
        ] {
            // sshguard owns the timing: no kernel timeout
            assert_eq!(set.get(want), Some(&None), "{want}: {set:?}");
        }
        fw.send("release 192.0.2.7 4 24\nrelease 203.0.113.5 4 32\n");
        wait_until("the releases are applied", || {
            members(None, "sshguard").len() == 2
        });
        fw.send("flush\n");
        wait_until("flush empties the set", || {
            members(None, "sshguard").is_empty()
        });
        // flushonexit: blocks are lifted when sshguard goes away
        fw.send("flushonexit\nblock 192.0.2.99 4 32\n");
        wait_until("the block is in", || {
            members(None, "sshguard").contains_key("192.0.2.99")
        });
        let out = fw.finish();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert!(members(None, "sshguard").is_empty());
        let err = stderr_of(&out);
        assert!(err.contains("not-an-address"), "{err}");
        assert!(err.contains("127.0.0.1"), "{err}");
        // banset's ledger agrees with the kernel
        assert_eq!(s.json(&["status", "--json"])["sets"][0]["active_bans"], 0);
    });
}

#[test]
fn sshg_fw_without_flushonexit_keeps_blocks_and_stops_on_unknown_commands() {
    kernel_test("sshg_fw_exit_codes", || {
        let s = Sandbox::new("sshg-exit");
        let mut fw = SshgFw::spawn(&s, &["sshguard", "--timeout", "1d"]);
        fw.send("block 192.0.2.1 4 32\nreboot now\nblock 192.0.2.2 4 32\n");
        let out = fw.finish();
        // the stock backends' code for an invalid command; lines after it
        // are not run, the block before it stays (no flushonexit)
        assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains("reboot"), "{}", stderr_of(&out));
        let set = members(None, "sshguard");
        assert_eq!(set.keys().collect::<Vec<_>>(), ["192.0.2.1"]);
        let left = set["192.0.2.1"].expect("--timeout gives a kernel timeout");
        assert!(left <= 86_400 && left > 86_000, "{left}");

        // a backend that cannot start is exit 69, as sshguard expects
        let out = s.run(&["sshg-fw", "other", "--ports", "70000"]);
        assert_eq!(out.status.code(), Some(69));
        assert!(
            stderr_of(&out).contains("Could not initialize firewall")
                && stderr_of(&out).contains("70000"),
            "{}",
            stderr_of(&out)
        );

        // a long line without a newline is refused, not buffered forever
        let mut fw = SshgFw::spawn(&s, &["sshguard"]);
        fw.send(&"x".repeat(100_000));
        fw.send("\nblock 192.0.2.3 4 32\n");
        // and so is one that arrives whole, newline included
        fw.send(&format!("block 192.0.2.4 4 32 {}\n", "9".repeat(1000)));
        let out = fw.finish();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let set = members(None, "sshguard");
        assert!(
            set.contains_key("192.0.2.3") && !set.contains_key("192.0.2.4"),
            "{set:?}"
        );
        assert_eq!(stderr_of(&out).matches("longer than 512 bytes").count(), 2);
    });
}

/// A stop signal reaches sshg-fw while it waits for input (its stdin still
/// open, as while sshguard's blocker lives): the loop ends at once and
/// flushonexit lifts the blocks, through the one signal mechanism the
/// daemon uses too (signal-hook's self-pipe, polled beside stdin).
#[test]
fn sshg_fw_stops_on_term_while_waiting_for_input_and_flushes() {
    kernel_test("sshg_fw_term", || {
        let s = Sandbox::new("sshg-term");
        let mut fw = SshgFw::spawn(&s, &["sshguard"]);
        fw.send("flushonexit\nblock 192.0.2.7 4 32\n");
        let start = Instant::now();
        while !members(None, "sshguard").contains_key("192.0.2.7") {
            assert!(start.elapsed() < PATIENCE, "the block never arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = fw.child.take().expect("running");
        let pid = child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        // stdin stays open: only the signal can end the read
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert!(members(None, "sshguard").is_empty());
    });
}

/// The real sshguard: its parser reads sshd's log lines and its blocker
/// decides, exactly as `sshguard` chains them with `BACKEND="banset sshg-fw
/// sshguard"`, in the server namespace of a veth pair.
#[test]
fn real_sshguard_blocks_through_banset_and_flushes_on_exit() {
    if netns::skip_unless_root("real_sshguard") {
        return;
    }
    if !Path::new(SSHGUARD).join("sshg-blocker").exists() {
        assert!(
            std::env::var("CI").is_err(),
            "sshguard is not installed, and CI must run this test (apt-get install sshguard)"
        );
        eprintln!("real_sshguard: skipped: sshguard is not installed (apt-get install sshguard)");
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let s = Sandbox::new("sshguard-real");
    let server = pair.server();
    let mut parser = server
        .command(&format!("{SSHGUARD}/sshg-parser"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sshg-parser");
    let mut blocker = server
        .command(&format!("{SSHGUARD}/sshg-blocker"))
        // sshguard.conf's defaults: THRESHOLD 30 (three sshd failures),
        // BLOCK_TIME 120, DETECTION_TIME 1800
        .args([
            "-a", "30", "-p", "120", "-s", "1800", "-n", "32", "-N", "128",
        ])
        .stdin(Stdio::from(parser.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("sshg-blocker");
    let sandbox_flags = s.cmd(&[]);
    let backend = server
        .command(BANSET)
        .args(sandbox_flags.get_args())
        .args(["sshg-fw", "sshguard"])
        .stdin(Stdio::from(blocker.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("banset sshg-fw");

    let t = Duration::from_millis(800);
    let listener: TcpListener = server
        .enter(|| TcpListener::bind(SocketAddr::new(IpAddr::V4(VethPair::SERVER_V4), 0)))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(pair.connect_tcp(addr, t), Reach::Connected);

    let now = String::from_utf8(
        Command::new("date")
            .arg("+%b %e %H:%M:%S")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut log = parser.stdin.take().unwrap();
    for i in 0..4 {
        writeln!(
            log,
            "{} mail sshd[{}]: Failed password for root from {} port {} ssh2",
            now.trim(),
            100 + i,
            VethPair::CLIENT_V4,
            40000 + i
        )
        .unwrap();
    }
    log.flush().unwrap();
    let client = VethPair::CLIENT_V4.to_string();
    wait_until("sshguard blocks the client", || {
        members(Some(server), "sshguard").contains_key(&client)
    });
    assert_eq!(pair.connect_tcp(addr, t), Reach::TimedOut);

    // sshguard exits: the parser's input ends, the blocker ends, and the
    // backend lifts every block (the blocker sent flushonexit at start)
    drop(log);
    let _ = parser.wait();
    let _ = blocker.wait();
    let out = backend.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(members(Some(server), "sshguard").is_empty());
    assert_eq!(pair.connect_tcp(addr, t), Reach::Connected);
}

/// blocklistd's calls: `control add RULE PROTO ADDR MASK PORT [ID]`, `rem
/// ... ID`, `flush RULE`; the first line of stdout is all it reads.
fn control(s: &Sandbox, args: &[&str]) -> Output {
    let dir = s.cmd(&[]);
    let flags: Vec<String> = dir
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // blocklistd runs the program it is given with argv[0] = "control" and
    // cannot add arguments, so the state directory comes from the
    // environment, which blocklistd passes on.
    Command::new(BANSET)
        .arg0("control")
        .env("BANSET_STATE_DIR", &flags[1])
        .env("BANSET_CONFIG", &flags[3])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn blocklistd_helper_adds_removes_and_flushes_per_rule_and_port() {
    kernel_test("blocklistd_helper", || {
        let s = Sandbox::new("blocklistd");
        // sshd on tcp/22; the id blocklistd passes on add is empty
        let out = control(
            &s,
            &["add", "blocklistd", "tcp", "192.0.2.9", "32", "22", ""],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "OK\n",
            "{}",
            stderr_of(&out)
        );
        // a dual-stack socket's IPv4-mapped address becomes the IPv4 one
        let out = control(
            &s,
            &["add", "blocklistd", "tcp", "::ffff:192.0.2.10", "128", "22"],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "OK\n",
            "{}",
            stderr_of(&out)
        );
        // the subcommand name works as well as argv[0]
        let out = s.run(&[
            "blocklistd-helper",
            "add",
            "blocklistd",
            "udp",
            "2001:db8::7",
            "64",
            "53",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "OK\n",
            "{}",
            stderr_of(&out)
        );

        let ssh = members(None, "blocklistd-tcp-22");
        assert_eq!(
            ssh.keys().collect::<Vec<_>>(),
            ["192.0.2.10", "192.0.2.9"],
            "{ssh:?}"
        );
        assert_eq!(ssh["192.0.2.9"], None, "blocklistd owns expiry");
        assert!(members(None, "blocklistd-udp-53").contains_key("2001:db8::/64"));
        let rules = String::from_utf8(
            Command::new("nft")
                .args(["list", "chain", "inet", "banset", "input"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(
            rules
                .contains("ip saddr @blocklistd-tcp-22_v4 tcp dport @blocklistd-tcp-22_ports drop"),
            "{rules}"
        );
        assert!(
            rules.contains("udp dport @blocklistd-udp-53_ports"),
            "{rules}"
        );

        // rem with the id add printed; twice is fine, so is an unknown set
        for _ in 0..2 {
            let out = control(
                &s,
                &["rem", "blocklistd", "tcp", "192.0.2.9", "32", "22", "OK"],
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "OK\n",
                "{}",
                stderr_of(&out)
            );
        }
        let out = control(
            &s,
            &["rem", "blocklistd", "tcp", "192.0.2.9", "32", "2222", "OK"],
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n");
        assert!(!members(None, "blocklistd-tcp-22").contains_key("192.0.2.9"));

        // hostile or broken input: no output (blocklistd's failure), the
        // reason on stderr, nothing changed
        let before = members(None, "blocklistd-tcp-22");
        for bad in [
            &["add", "blocklistd", "tcp", "192.0.2.1;reboot", "32", "22"][..],
            &["add", "blocklistd", "icmp", "192.0.2.1", "32", "22"],
            &["add", "blocklistd", "tcp", "192.0.2.1", "40", "22"],
            &["add", "blocklistd", "tcp", "127.0.0.1", "32", "22"],
            &["add", "../etc", "tcp", "192.0.2.1", "32", "22"],
            &["add", "blocklistd"],
            &["remove", "blocklistd"],
        ] {
            let out = control(&s, bad);
            assert!(out.stdout.is_empty(), "{bad:?}: {:?}", out.stdout);
            assert_ne!(out.status.code(), Some(0), "{bad:?}");
            assert!(!stderr_of(&out).is_empty(), "{bad:?}");
        }
        assert_eq!(members(None, "blocklistd-tcp-22"), before);

        // flush empties every set of the rule, and only those
        s.ok(&["add", "other", "198.51.100.1"]);
        let out = control(&s, &["flush", "blocklistd"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "OK\n",
            "{}",
            stderr_of(&out)
        );
        assert!(members(None, "blocklistd-tcp-22").is_empty());
        assert!(members(None, "blocklistd-udp-53").is_empty());
        assert!(members(None, "other").contains_key("198.51.100.1"));
    });
}
