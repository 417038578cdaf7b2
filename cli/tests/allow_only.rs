//! Allow-only sets through the real binary (issue 20): the policy on the
//! command line and in banset.toml, what `list`, `status` and `test` say,
//! the lockout guard (an ssh session's variables, a real established TCP
//! connection in a namespace, an empty set), and the daemon putting an
//! allow-only rule back after `nft flush ruleset`.

#![cfg(target_os = "linux")]

mod common;

use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use banset_tests::netns::VethPair;
use common::watcher::Watcher;
use common::*;

fn input_chain() -> String {
    let out = Command::new("nft")
        .args(["list", "chain", "inet", "banset", "input"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ports set of `set`'s rule, as nft lists it.
fn ports_of(set: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "set", "inet", "banset", &format!("{set}_ports")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs banset with the ssh session's variables as given (and no others
/// from the test runner's own session).
fn run_as(sb: &Sandbox, ssh: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = sb.cmd(args);
    cmd.env_remove("SSH_CONNECTION").env_remove("SSH_CLIENT");
    for (k, v) in ssh {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn allow_only_set_is_built_listed_and_tested() {
    kernel_test("allow_only_set_is_built_listed_and_tested", || {
        let sb = Sandbox::new("allow-built");
        // Every port would also drop the replies to the host's own traffic.
        let out = run_as(&sb, &[], &["create", "home", "--allow-only", "--force"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("needs --ports"), "{}", stderr(&out));
        // Empty: refused unless --force, and nothing is made.
        let out = run_as(
            &sb,
            &[],
            &["create", "home", "--allow-only", "--ports", "22,587"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("home is empty"), "{}", stderr(&out));
        assert!(!input_chain().contains("home"));
        let out = run_as(
            &sb,
            &[],
            &[
                "create",
                "home",
                "--allow-only",
                "--ports",
                "22,587",
                "--force",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let chain = input_chain();
        assert!(
            chain.contains("iif != \"lo\" ip saddr != @home_v4 ip saddr != @home_v4net")
                && chain.contains("ip6 saddr != @home_v6 ip6 saddr != @home_v6net")
                && chain.contains("comment \"banset home_v4 allow-only\""),
            "{chain}"
        );
        sb.ok(&["add", "home", "192.0.2.0/24", "2001:db8::1"]);
        // A reboot: `sync` puts the allow-only rule back, not a ban rule.
        assert!(Command::new("nft")
            .args(["flush", "ruleset"])
            .status()
            .unwrap()
            .success());
        sb.ok(&["sync"]);
        assert!(
            input_chain().contains("comment \"banset home_v6 allow-only\"")
                && !input_chain().contains("comment \"banset home_v4\""),
            "{}",
            input_chain()
        );
        let prefixes = tool_out("nft", &["list", "set", "inet", "banset", "home_v4net"]);
        assert!(prefixes.contains("192.0.2.0/24"), "{prefixes}");
        let listed = sb.json(&["list", "--json"]);
        assert_eq!(listed[0]["policy"], "allow-only");
        // Members do not expire by themselves: the set's default is never.
        assert_eq!(listed[0]["timeout"], -1, "{listed}");
        assert!(listed[0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["expires_in"].is_null()));
        let status = sb.json(&["status", "--json"]);
        assert_eq!(status["sets"][0]["spec"]["policy"], "allow-only");
        let text = String::from_utf8(sb.run(&["status"]).stdout).unwrap();
        assert!(
            text.contains("allow-only: drop non-members on tcp ports 22,587"),
            "{text}"
        );
        for (target, code, says) in [
            ("192.0.2.9", 0, "would be allowed"),
            ("2001:db8::1", 0, "would be allowed"),
            ("198.51.100.1", 1, "would be dropped"),
        ] {
            let out = sb.run(&["test", "home", target]);
            assert_eq!(out.status.code(), Some(code), "{target}: {}", stderr(&out));
            assert!(stderr(&out).contains(says), "{target}: {}", stderr(&out));
        }
        // A ban set keeps its words.
        sb.ok(&["add", "bans", "198.51.100.1"]);
        let listed = sb.json(&["list", "bans", "--json"]);
        assert_eq!(listed[0]["policy"], "ban");
        // The policy cannot change in place.
        let out = sb.run(&["set-options", "home", "--policy", "ban"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("policy"), "{}", stderr(&out));
        sb.ok(&["destroy", "home"]);
        assert!(!input_chain().contains("home"), "{}", input_chain());
    });
}

#[test]
fn lockout_guard_names_the_ssh_sessions_address() {
    kernel_test("lockout_guard_names_the_ssh_sessions_address", || {
        let sb = Sandbox::new("allow-ssh");
        let session = [("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.1 22")];
        // `add` creating the set: its own targets count as members.
        let out = run_as(
            &sb,
            &session,
            &[
                "add",
                "home",
                "192.0.2.0/24",
                "--allow-only",
                "--ports",
                "22",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("lock out 198.51.100.7") && err.contains("SSH_CONNECTION"),
            "{err}"
        );
        assert!(
            !input_chain().contains("home"),
            "nothing made: {}",
            input_chain()
        );
        assert_eq!(sb.json(&["list", "--json"]).as_array().unwrap().len(), 0);
        // With the session's address in, it goes.
        let out = run_as(
            &sb,
            &session,
            &[
                "add",
                "home",
                "192.0.2.0/24",
                "198.51.100.7",
                "--allow-only",
                "--ports",
                "22",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        // More ports: a session to 587 from a non-member (SSH_CLIENT) is refused,
        // then forced.
        let other = [("SSH_CLIENT", "203.0.113.9 40000 587")];
        let out = run_as(&sb, &other, &["set-options", "home", "--ports", "22,587"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("lock out 203.0.113.9"),
            "{}",
            stderr(&out)
        );
        assert!(!ports_of("home").contains("587"), "{}", ports_of("home"));
        // A session on a port the set already restricted is no news.
        let old = [("SSH_CLIENT", "203.0.113.9 40000 22")];
        let out = run_as(&sb, &old, &["set-options", "home", "--ports", "22,587"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run_as(
            &sb,
            &other,
            &["set-options", "home", "--ports", "22,587,993", "--force"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(ports_of("home").contains("993"), "{}", ports_of("home"));
    });
}

#[test]
fn lockout_guard_sees_a_real_established_connection() {
    if banset_tests::netns::skip_unless_root("lockout_guard_sees_a_real_established_connection") {
        return;
    }
    let pair = VethPair::new().unwrap();
    let listener = pair
        .server()
        .enter(|| TcpListener::bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 22)))
        .unwrap();
    let server: SocketAddr = (VethPair::SERVER_V4, 22).into();
    let conn = pair
        .client()
        .enter(|| TcpStream::connect_timeout(&server, Duration::from_secs(5)))
        .unwrap();
    let sb = Sandbox::new("allow-established");
    // banset runs in the server's namespace, where the connection is
    // established (to [::]:22, as ::ffff:10.199.0.2).
    let run = |args: &'static [&'static str]| pair.server().enter(|| run_as(&sb, &[], args));
    let out = run(&["add", "home", "10.199.0.9", "--allow-only", "--ports", "22"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("lock out {}:", VethPair::CLIENT_V4))
            && err.contains("an established connection to port 22"),
        "{err}"
    );
    // Another port is not guarded by this connection.
    let out = run(&["add", "web", "10.199.0.9", "--allow-only", "--ports", "80"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["add", "home", "10.199.0.2", "--allow-only", "--ports", "22"]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop((conn, listener));
}

#[test]
fn the_daemon_restores_an_allow_only_rule_and_refuses_a_config_that_locks_out() {
    kernel_test("the_daemon_restores_an_allow_only_rule", || {
        let sb = Sandbox::new("allow-daemon");
        let log = sb.dir().join("auth.log");
        std::fs::write(&log, "").unwrap();
        let sb = sb.with_config(&format!(
            "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\n\n\
             [sets.office]\npolicy = \"allow-only\"\nports = [2222]\n\n\
             [watch]\nkeeper_interval = \"1s\"\n",
            log.display()
        ));
        sb.ok(&["add", "home", "192.0.2.1", "--allow-only", "--ports", "22"]);
        let w = Watcher::start(&sb);
        // The config's empty allow-only set is not made: the same guard as
        // `create`, never forced.
        assert!(
            wait_until(|| w.output().contains("set office: not applied")),
            "{}",
            w.output()
        );
        assert!(w.output().contains("office is empty"), "{}", w.output());
        assert!(!input_chain().contains("office"), "{}", input_chain());

        let flushed = Instant::now();
        assert!(Command::new("nft")
            .args(["flush", "ruleset"])
            .status()
            .unwrap()
            .success());
        assert!(
            wait_until(|| input_chain().contains("ip saddr != @home_v4")
                && nft_members("home_v4") == ["192.0.2.1"]),
            "{}",
            w.output()
        );
        // Measured, not asserted (the issue asks for "within a second").
        eprintln!(
            "allow-only rule back {:?} after the flush",
            flushed.elapsed()
        );
        drop(w);
    });
}

/// A jail's bans in an allow-only set would be the attackers let in: the
/// config that says so is refused, and a set the ledger has as allow-only
/// takes no jail bans.
#[test]
fn a_jail_cannot_ban_into_an_allow_only_set() {
    let sb = Sandbox::new("allow-jail-config");
    let log = sb.dir().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let jail = format!(
        "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\nmaxretry = 1\nset = \"home\"\n\n\
         [watch]\nkeeper_interval = \"1s\"\n",
        log.display()
    );
    let sb = sb.with_config(&format!(
        "{jail}\n[sets.home]\npolicy = \"allow-only\"\nports = [22]\n"
    ));
    let out = sb.run(&["watch", "--check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("jail sshd bans into set home, an allow-only set"),
        "{}",
        stderr(&out)
    );

    kernel_test("a_jail_cannot_ban_into_an_allow_only_set", || {
        let sb = sb.with_config(&jail);
        sb.ok(&["add", "home", "192.0.2.1", "--allow-only", "--ports", "22"]);
        // `ban JAIL` without a daemon: the same refusal.
        let out = sb.run(&["ban", "sshd", "203.0.113.8"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("jail sshd bans into set home, an allow-only set"),
            "{}",
            stderr(&out)
        );
        let w = Watcher::start(&sb);
        // And through the daemon's socket.
        let out = sb.run(&["ban", "sshd", "203.0.113.8"]);
        assert!(!out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("an allow-only set"),
            "{}",
            stderr(&out)
        );
        assert!(
            wait_until(|| w
                .output()
                .contains("set home: an allow-only set in the ledger")),
            "{}",
            w.output()
        );
        append(
            &log,
            &["mx sshd[4242]: Failed password for invalid user admin from 203.0.113.7 port 50022 ssh2".into()],
        );
        assert!(
            wait_until(|| w
                .output()
                .contains("not banning 203.0.113.7 (jail sshd): set home is an allow-only set")),
            "{}",
            w.output()
        );
        assert_eq!(nft_members("home_v4"), ["192.0.2.1"]);
        drop(w);
    });
}

fn tool_out(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// On ipset the rule is iptables' and ip6tables': a flushed ruleset and
/// destroyed ipsets (a reboot) come back, allow-only, with the daemon
/// running; `sync` alone does the same.
#[test]
fn ipset_allow_only_rules_come_back_after_a_flush() {
    kernel_test("ipset_allow_only_rules_come_back", || {
        let sb = Sandbox::new("allow-ipset");
        let log = sb.dir().join("auth.log");
        std::fs::write(&log, "").unwrap();
        let sb = sb.with_config(&format!(
            "[defaults]\nbackend = \"ipset\"\n\n\
             [jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\n\n\
             [watch]\nkeeper_interval = \"1s\"\n",
            log.display()
        ));
        let out = run_as(
            &sb,
            &[],
            &[
                "add",
                "home",
                "192.0.2.1",
                "2001:db8::/64",
                "--allow-only",
                "--ports",
                "22",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let rules = |program| {
            let listing = tool_out(program, &["-w", "-S", "INPUT"]);
            listing.lines().any(|l| {
                l.contains("! -i lo")
                    && l.contains("! --match-set home")
                    && l.contains("banset home")
                    && l.contains("allow-only")
            })
        };
        assert!(rules("iptables") && rules("ip6tables"));
        let gone = || {
            assert!(Command::new("nft")
                .args(["flush", "ruleset"])
                .status()
                .unwrap()
                .success());
            for set in ["home", "home6"] {
                assert!(Command::new("ipset")
                    .args(["destroy", set])
                    .status()
                    .unwrap()
                    .success());
            }
            assert!(!rules("iptables"));
        };
        gone();
        sb.ok(&["sync"]);
        assert!(rules("iptables") && rules("ip6tables"));
        assert!(tool_out("ipset", &["save", "home"]).contains("192.0.2.1"));

        let w = Watcher::start(&sb);
        gone();
        assert!(
            wait_until(|| rules("iptables")
                && rules("ip6tables")
                && tool_out("ipset", &["save", "home6"]).contains("2001:db8::/64")),
            "{}",
            w.output()
        );
        drop(w);
    });
}

/// The daemon's reload adding ports to an allow-only set goes through the
/// guard too: refused for an empty set (logged, the set kept as it was),
/// applied once it has members.
#[test]
fn a_reload_adding_ports_to_an_allow_only_set_is_guarded() {
    kernel_test(
        "a_reload_adding_ports_to_an_allow_only_set_is_guarded",
        || {
            let sb = Sandbox::new("allow-reload");
            let log = sb.dir().join("auth.log");
            std::fs::write(&log, "").unwrap();
            let config = |ports: &str| {
                format!(
                    "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\n\n\
                 [sets.home]\npolicy = \"allow-only\"\nports = [{ports}]\n\n\
                 [watch]\nkeeper_interval = \"1s\"\n",
                    log.display()
                )
            };
            let sb = sb.with_config(&config("22"));
            sb.ok(&["create", "home", "--allow-only", "--ports", "22", "--force"]);
            let w = Watcher::start(&sb);
            let sb = sb.with_config(&config("22, 587"));
            // `watch --check` says what the reload will do.
            let checked = sb.ok(&["watch", "--check"]);
            assert!(
                checked.contains("not applied: allow-only set home is empty"),
                "{checked}"
            );
            w.signal(libc::SIGHUP);
            assert!(
                wait_until(|| w.output().contains("set home: not applied")
                    && w.output().contains("home is empty")),
                "{}",
                w.output()
            );
            assert!(!ports_of("home").contains("587"), "{}", ports_of("home"));
            sb.ok(&["add", "home", "192.0.2.1"]);
            w.signal(libc::SIGHUP);
            assert!(
                wait_until(|| ports_of("home").contains("587")),
                "{}",
                w.output()
            );
            drop(w);
        },
    );
}

/// Taking members out can lock out as surely as adding ports: `del` of the
/// ssh session's address and `flush` of an allow-only set are refused
/// unless `--force`; a ban set's `del` and `flush` are as before.
#[test]
fn del_and_flush_of_an_allow_only_set_are_guarded() {
    kernel_test("del_and_flush_of_an_allow_only_set_are_guarded", || {
        let sb = Sandbox::new("allow-del");
        let session = [("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.1 22")];
        let out = run_as(
            &sb,
            &session,
            &[
                "add",
                "home",
                "198.51.100.7",
                "192.0.2.0/24",
                "--allow-only",
                "--ports",
                "22",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run_as(&sb, &session, &["del", "home", "198.51.100.7"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("lock out 198.51.100.7"),
            "{}",
            stderr(&out)
        );
        assert_eq!(nft_members("home_v4"), ["198.51.100.7"], "nothing removed");
        // Another member goes without a word.
        let out = run_as(&sb, &session, &["del", "home", "192.0.2.0/24"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let out = run_as(&sb, &[], &["flush", "home"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("last members"), "{}", stderr(&out));
        assert_eq!(nft_members("home_v4"), ["198.51.100.7"]);
        let out = run_as(&sb, &session, &["flush", "home", "--force"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(nft_members("home_v4").is_empty());
        // Ban sets: unchanged.
        sb.ok(&["add", "bans", "198.51.100.7"]);
        let out = run_as(&sb, &session, &["del", "bans", "198.51.100.7"]);
        assert!(out.status.success(), "{}", stderr(&out));
    });
}
