//! CLI tests on the ipset backend: the real `banset` binary against the real
//! kernel, each in a fresh network namespace, checked with `ipset save` and
//! `iptables -S` as independent oracles.

// Network namespaces and nft/ipset are Linux.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common::kernel_test;

/// A CLI sandbox whose new sets go to the ipset backend by default.
fn sandbox(test: &str) -> common::Sandbox {
    common::Sandbox::new(&format!("ipset-{test}")).with_config("[defaults]\nbackend = \"ipset\"\n")
}

fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed for the ipset tests: {e}"))
}

/// The oracle: `ipset save SET` as (entry, timeout left); `None` when the
/// entry has timeout 0 (permanent). Empty if the set does not exist.
fn ipset_members(set: &str) -> BTreeMap<String, Option<u64>> {
    let out = tool("ipset", &["save", set]);
    let mut members = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"add") {
            continue;
        }
        let timeout = words
            .iter()
            .position(|w| *w == "timeout")
            .and_then(|i| words.get(i + 1))
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|t| *t > 0);
        members.insert(words[2].to_string(), timeout);
    }
    members
}

fn set_exists(set: &str) -> bool {
    tool("ipset", &["list", "-n", set]).status.success()
}

fn iptables_rules(program: &str) -> String {
    String::from_utf8(tool(program, &["-w", "-S", "INPUT"]).stdout).unwrap()
}

const CAP: u64 = 2_147_483;

#[test]
fn the_one_liner_on_ipset_creates_sets_and_one_hook_rule_each() {
    kernel_test("ipset_one_liner", || {
        let s = sandbox("oneliner");
        s.ok(&["add", "f2b-postfix", "192.0.2.13", "--timeout", "604800"]);
        s.ok(&["add", "f2b-postfix", "192.0.2.13", "--timeout", "604800"]);
        assert!(set_exists("f2b-postfix") && set_exists("f2b-postfix6"));
        let v4 = ipset_members("f2b-postfix");
        let left = v4["192.0.2.13"].expect("a timeout");
        assert!(left <= 604_800 && left > 604_700, "{left}");
        let rules = iptables_rules("iptables");
        assert_eq!(
            rules.matches("--match-set f2b-postfix src").count(),
            1,
            "exactly one rule, even after two adds:\n{rules}"
        );
        assert!(rules.contains("-j DROP"), "{rules}");
        assert_eq!(
            iptables_rules("ip6tables")
                .matches("--match-set f2b-postfix6 src")
                .count(),
            1
        );
        assert_eq!(
            s.run(&["test", "f2b-postfix", "192.0.2.13"]).status.code(),
            Some(0)
        );
        assert_eq!(
            s.run(&["test", "f2b-postfix", "192.0.2.14"]).status.code(),
            Some(1)
        );
        s.ok(&["destroy", "f2b-postfix"]);
        assert!(!set_exists("f2b-postfix") && !set_exists("f2b-postfix6"));
        assert!(!iptables_rules("iptables").contains("f2b-postfix"));
    });
}

/// A year-long ban: the kernel gets ipset's cap, the ledger keeps the year,
/// and `sync` re-arms an entry whose kernel timeout ran short.
#[test]
fn sync_re_arms_a_ban_longer_than_the_kernel_cap() {
    kernel_test("ipset_long_ban", || {
        let s = sandbox("long");
        s.ok(&["add", "f2b-recidive", "198.51.100.7", "--timeout", "365d"]);
        let left = ipset_members("f2b-recidive")["198.51.100.7"].unwrap();
        assert!(left <= CAP && left > CAP - 100, "capped: {left}");
        let listed = s.json(&["list", "f2b-recidive", "--json"]);
        let m = &listed[0]["members"][0];
        assert_eq!(
            m["deadline"].as_i64().unwrap() - m["start"].as_i64().unwrap(),
            365 * 86_400,
            "the ledger keeps the true deadline"
        );
        // the kernel entry has run down (simulated: shortened behind banset's back)
        let shortened = tool(
            "ipset",
            &[
                "add",
                "-exist",
                "f2b-recidive",
                "198.51.100.7",
                "timeout",
                "100",
            ],
        );
        assert!(shortened.status.success());
        let left = ipset_members("f2b-recidive")["198.51.100.7"].unwrap();
        assert!((90..=100).contains(&left), "shortened: {left}");
        s.ok(&["sync"]);
        let left = ipset_members("f2b-recidive")["198.51.100.7"].unwrap();
        assert!(left > CAP - 100, "re-armed to the cap: {left}");
        // permanent is timeout 0 in the kernel
        s.ok(&["add", "f2b-recidive", "198.51.100.8", "--timeout", "-1"]);
        assert_eq!(ipset_members("f2b-recidive")["198.51.100.8"], None);
    });
}

#[test]
fn sync_restores_after_ipset_flush_and_destroy_behind_our_back() {
    kernel_test("ipset_sync", || {
        let s = sandbox("sync");
        s.ok(&["add", "hooked", "192.0.2.1", "--timeout", "1h"]);
        s.ok(&["add", "hooked", "2001:db8::1", "--timeout", "never"]);
        assert!(tool("ipset", &["flush", "hooked"]).status.success());
        assert!(ipset_members("hooked").is_empty());
        s.ok(&["sync"]);
        let left = ipset_members("hooked")["192.0.2.1"].unwrap();
        assert!(left > 3_500 && left <= 3_600, "{left}");
        assert_eq!(ipset_members("hooked6")["2001:db8::1"], None);

        s.ok(&["create", "bare", "--no-hook", "--timeout", "1d"]);
        s.ok(&["add", "bare", "192.0.2.2", "192.0.2.3"]);
        assert!(tool("ipset", &["destroy", "bare"]).status.success());
        assert!(!set_exists("bare"));
        s.ok(&["sync", "bare"]);
        assert_eq!(ipset_members("bare").len(), 2);
    });
}

#[test]
fn replace_swaps_atomically_and_bad_input_changes_nothing() {
    kernel_test("ipset_replace", || {
        let s = sandbox("replace");
        s.ok(&["create", "hosts", "--no-prefixes"]);
        s.ok(&["add", "hosts", "192.0.2.1", "192.0.2.2"]);
        let f = s.file("new.txt", "192.0.2.2\n192.0.2.3\n");
        s.ok(&["replace", "hosts", "--file", f.to_str().unwrap()]);
        assert_eq!(
            ipset_members("hosts").keys().collect::<Vec<_>>(),
            ["192.0.2.2", "192.0.2.3"]
        );
        let sets = String::from_utf8(tool("ipset", &["list", "-n"]).stdout).unwrap();
        assert_eq!(sets.lines().count(), 2, "no temporary set left: {sets}");

        let before = (ipset_members("hosts"), iptables_rules("iptables"));
        for (args, needle) in [
            (&["add", "hosts", "2001:db8::/64"][..], "--prefixes"),
            (&["add", "hosts", "192.0.2.0/24"], "--prefixes"),
            (
                &["add", "a234567890123456789012345678901", "192.0.2.9"],
                "at most 30",
            ),
        ] {
            let out = s.run(args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
            assert_eq!((ipset_members("hosts"), iptables_rules("iptables")), before);
        }
    });
}

#[test]
fn a_full_ipset_set_names_its_maxelem_and_records_nothing() {
    kernel_test("ipset_full", || {
        let s = sandbox("full");
        s.ok(&["create", "small", "--maxelem", "2", "--family", "inet"]);
        s.ok(&["add", "small", "192.0.2.1", "192.0.2.2"]);
        let out = s.run(&["add", "small", "192.0.2.3"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("small") && err.contains("maxelem 2"), "{err}");
        assert_eq!(s.json(&["status", "--json"])["sets"][0]["active_bans"], 2);
        assert_eq!(ipset_members("small").len(), 2);
    });
}

/// Concurrent first bans into a set that does not exist yet: the set and its
/// rule are created once (the ledger's write lock serialises `iptables -C`
/// then `-I`), and every ban lands.
#[test]
fn concurrent_first_bans_create_one_rule_and_lose_nothing() {
    kernel_test("ipset_concurrent", || {
        let s = sandbox("concurrent");
        let children: Vec<_> = (0..16u32)
            .map(|p| {
                let mut args = vec!["add".to_string(), "busy".into()];
                args.extend((1..=50u32).map(|i| format!("10.{p}.0.{i}")));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                s.cmd(&args)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(ipset_members("busy").len(), 800);
        assert_eq!(
            iptables_rules("iptables")
                .matches("--match-set busy src")
                .count(),
            1
        );
        assert_eq!(
            iptables_rules("ip6tables")
                .matches("--match-set busy6 src")
                .count(),
            1
        );
    });
}

#[test]
fn set_options_on_ipset_swaps_the_rule_and_the_set_keeping_every_ban() {
    kernel_test("ipset_set_options", || {
        let s = sandbox("set-options");
        s.ok(&["create", "web", "--ports", "25"]);
        s.ok(&["add", "web", "192.0.2.1", "--timeout", "2h"]);
        s.ok(&["add", "web", "2001:db8::/64", "--timeout", "permanent"]);
        let (v4, v6) = (ipset_members("web"), ipset_members("web6"));
        // A dry run says what it would do and changes nothing.
        let out = s.run(&["--dry-run", "set-options", "web", "--ports", "22"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("would change set web in place"));
        assert!(iptables_rules("iptables").contains("--dports 25 "));
        s.ok(&["set-options", "web", "--ports", "22", "--maxelem", "70000"]);
        let rules = iptables_rules("iptables");
        assert_eq!(rules.matches("--match-set web src").count(), 1, "{rules}");
        assert!(rules.contains("--dports 22 "), "{rules}");
        let saved = String::from_utf8_lossy(&tool("ipset", &["save", "web"]).stdout).into_owned();
        assert!(saved.contains("maxelem 70000"), "{saved}");
        assert_eq!(ipset_members("web6"), v6, "the permanent prefix stays");
        let now = ipset_members("web");
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            v4.keys().collect::<Vec<_>>()
        );
        let (was, is) = (v4["192.0.2.1"].unwrap(), now["192.0.2.1"].unwrap());
        assert!(is <= was && was - is < 30, "{was} -> {is}");
        assert_eq!(
            tool("ipset", &["list", "-n"]).stdout.len(),
            "web\nweb6\n".len()
        );
        s.ok(&["destroy", "web"]);
        assert!(!iptables_rules("iptables").contains("web"));
    });
}
