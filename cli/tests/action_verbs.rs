//! The verbs fail2ban's action (`contrib/fail2ban/action.d/banset.conf`)
//! runs, on their own: `ensure` (actionstart, actionrepair), `check`
//! (actioncheck), `del --if-exists` (actionunban), and `add` with the
//! arguments fail2ban renders. Each runs the real binary in a fresh network
//! namespace, with `nft -j` as the oracle.

// Network namespaces (the shared sandbox) are Linux.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::{kernel_test, nft_members, Sandbox};

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().unwrap();
    assert!(out.status.success(), "nft {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ensure_creates_then_restores_every_ban_after_a_flush_ruleset() {
    kernel_test("ensure_restores", || {
        let s = Sandbox::new("ensure");
        let opts = [
            "--ports",
            "smtp,465,submission",
            "--protocol",
            "tcp",
            "--blocktype",
            "REJECT --reject-with icmp-port-unreachable",
        ];
        s.ok(&[&["ensure", "f2b-postfix"], &opts[..]].concat());
        let chain = nft(&["list", "chain", "inet", "banset", "input"]);
        assert!(
            chain.contains("ip saddr @f2b-postfix_v4 tcp dport @f2b-postfix_ports reject"),
            "{chain}"
        );
        // a second start is fine and changes nothing
        s.ok(&[&["ensure", "f2b-postfix"], &opts[..]].concat());
        assert_eq!(
            nft(&["list", "chain", "inet", "banset", "input"]),
            chain,
            "one rule per set, still"
        );
        assert_eq!(s.run(&["check", "f2b-postfix"]).status.code(), Some(0));

        s.ok(&[
            "add",
            "f2b-postfix",
            "192.0.2.1",
            "--timeout",
            "604800",
            "--since",
            "1700000000.25",
        ]);
        s.ok(&["add", "f2b-postfix", "192.0.2.2", "--timeout", "-1"]);
        // the first ban started long ago and is over: nothing to do
        assert_eq!(nft_members("f2b-postfix_v4"), ["192.0.2.2"]);

        nft(&["flush", "ruleset"]);
        let out = s.run(&["check", "f2b-postfix"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("missing from the kernel"));
        s.ok(&[&["ensure", "f2b-postfix"], &opts[..]].concat());
        assert_eq!(nft_members("f2b-postfix_v4"), ["192.0.2.2"]);
        assert_eq!(s.run(&["check", "f2b-postfix"]).status.code(), Some(0));

        // a rule deleted behind banset's back is found too
        let handles = nft(&["-a", "list", "chain", "inet", "banset", "input"]);
        let handle = handles
            .lines()
            .find(|l| l.contains("@f2b-postfix_v6 "))
            .and_then(|l| l.rsplit("handle ").next())
            .unwrap()
            .trim()
            .to_string();
        nft(&[
            "delete", "rule", "inet", "banset", "input", "handle", &handle,
        ]);
        assert_eq!(s.run(&["check", "f2b-postfix"]).status.code(), Some(1));
        s.ok(&[&["ensure", "f2b-postfix"], &opts[..]].concat());
        assert_eq!(s.run(&["check", "f2b-postfix"]).status.code(), Some(0));

        // another rule (the jail's new ports): changed in place, bans kept
        let out = s.run(&["ensure", "f2b-postfix", "--ports", "ssh"]);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("changed the rule in place") && err.contains("-> 22"),
            "{err}"
        );
        assert_eq!(nft_members("f2b-postfix_v4"), ["192.0.2.2"]);
        // options that cannot change in place: kept, with its bans, and said
        let out = s.run(&[
            "ensure",
            "f2b-postfix",
            "--ports",
            "ssh",
            "--family",
            "inet",
        ]);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("exists with other options") && err.contains("family"),
            "{err}"
        );
        assert_eq!(nft_members("f2b-postfix_v4"), ["192.0.2.2"]);
    });
}

#[test]
fn check_of_an_unknown_set_is_1_so_fail2ban_repairs_it() {
    kernel_test("check_unknown", || {
        let s = Sandbox::new("check-unknown");
        let out = s.run(&["check", "f2b-sshd"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("banset ensure f2b-sshd"));
        assert_eq!(s.run(&["check", "bad;name"]).status.code(), Some(2));
    });
}

#[test]
fn del_if_exists_is_idempotent_even_without_the_set() {
    kernel_test("del_if_exists", || {
        let s = Sandbox::new("del-if-exists");
        // without --if-exists an unknown set is the user's mistake
        assert_eq!(
            s.run(&["del", "f2b-sshd", "192.0.2.1"]).status.code(),
            Some(2)
        );
        s.ok(&["del", "f2b-sshd", "192.0.2.1", "--if-exists"]);
        s.ok(&["add", "f2b-sshd", "192.0.2.1", "2001:db8::1"]);
        for _ in 0..2 {
            s.ok(&["del", "f2b-sshd", "192.0.2.1", "--if-exists"]);
        }
        assert!(nft_members("f2b-sshd_v4").is_empty());
        assert_eq!(nft_members("f2b-sshd_v6"), ["2001:db8::1"]);
        // bad input is still refused
        assert_eq!(
            s.run(&["del", "f2b-sshd", "1.2.3.4;id", "--if-exists"])
                .status
                .code(),
            Some(2)
        );
    });
}

#[test]
fn add_no_create_refuses_a_missing_set_and_makes_nothing() {
    kernel_test("add_no_create", || {
        let s = Sandbox::new("no-create");
        let out = s.run(&["add", "f2b-sshd", "192.0.2.1", "--no-create"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no set named f2b-sshd"));
        assert!(nft_members("f2b-sshd_v4").is_empty());
        assert_eq!(s.json(&["status", "--json"])["sets"], serde_json::json!([]));
        s.ok(&["ensure", "f2b-sshd", "--ports", "ssh"]);
        s.ok(&["add", "f2b-sshd", "192.0.2.1", "--no-create"]);
        assert_eq!(nft_members("f2b-sshd_v4"), ["192.0.2.1"]);
    });
}
