//! `banset replace` from feeds (issue 20): a CIDR list and a registry's
//! delegated statistics, merged; the shrink guard against a truncated
//! download; a malformed line applies nothing. Each test runs in its own
//! network namespace; membership is asked of the kernel through
//! `banset test` and counted in the ledger by `status --json`.

#![cfg(target_os = "linux")]

mod common;

use common::{kernel_test, Sandbox};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/fixtures/delegated-apnic-sample"
);

fn active(s: &Sandbox) -> u64 {
    s.json(&["status", "--json"])["sets"][0]["active_bans"]
        .as_u64()
        .unwrap()
}

/// Whether `banset test SET TARGET` says member (exit 0) or not (exit 1).
fn member(s: &Sandbox, set: &str, target: &str) -> bool {
    match s.run(&["test", set, target]).status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("test {set} {target}: exit {other:?}"),
    }
}

/// Runs and insists on exit 2; returns stderr.
fn refused(s: &Sandbox, args: &[&str]) -> String {
    let out = s.run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

#[test]
fn replace_from_a_registry_file_holds_the_countrys_merged_prefixes() {
    kernel_test("replace_rir", || {
        let s = Sandbox::new("replace_rir");
        s.ok(&["create", "jp"]);
        s.ok(&["replace", "jp", "--rir", SAMPLE, "--country", "jp"]);
        // 18 JP address records, 14 prefixes once split and merged
        // (core/tests/fixtures/delegated-apnic-sample.JP).
        assert_eq!(active(&s), 14);
        for inside in [
            "1.0.16.1",
            "43.224.0.1",
            "43.224.0.3",
            "133.1.2.3",
            "2001:200:1::1",
        ] {
            assert!(member(&s, "jp", inside), "{inside}");
        }
        // CN's neighbour, the address before an odd count, another country.
        for outside in ["1.0.8.1", "43.224.0.0", "43.224.0.4", "2001:250::1"] {
            assert!(!member(&s, "jp", outside), "{outside}");
        }
    });
}

#[test]
fn an_ipv4_set_takes_a_registry_files_ipv4_part_and_says_so() {
    kernel_test("replace_rir_v4", || {
        let s = Sandbox::new("replace_rir_v4");
        s.ok(&["create", "jp4", "--family", "inet"]);
        let out = s.run(&["replace", "jp4", "--rir", SAMPLE, "--country", "JP"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("left out 4 entries"), "{err}");
        assert_eq!(active(&s), 10);
    });
}

#[test]
fn replace_refuses_a_list_that_shrank_past_max_shrink_and_changes_nothing() {
    kernel_test("replace_shrink", || {
        let s = Sandbox::new("replace_shrink");
        s.ok(&[
            "add",
            "feed",
            "192.0.2.1",
            "192.0.2.3",
            "192.0.2.5",
            "192.0.2.7",
        ]);
        let one = s.file("one.txt", "192.0.2.1\n");
        let one = one.to_str().unwrap();
        let err = refused(&s, &["replace", "feed", "--file", one]);
        assert!(
            err.contains("replace of feed refused")
                && err.contains("holds 4 entries and the new list 1")
                && err.contains("75% fewer")
                && err.contains("--force"),
            "{err}"
        );
        assert_eq!(active(&s), 4);
        assert!(member(&s, "feed", "192.0.2.7"));
        // A bound that allows it, then --force for an empty list.
        s.ok(&["replace", "feed", "--file", one, "--max-shrink", "75"]);
        assert_eq!(active(&s), 1);
        let empty = s.file("empty.txt", "# cut short\n");
        let empty = empty.to_str().unwrap();
        refused(&s, &["replace", "feed", "--file", empty]);
        assert!(member(&s, "feed", "192.0.2.1"));
        s.ok(&["replace", "feed", "--file", empty, "--force"]);
        assert_eq!(active(&s), 0);
        // An empty set takes any list.
        s.ok(&["replace", "feed", "--file", one]);
        assert_eq!(active(&s), 1);
    });
}

#[test]
fn a_malformed_feed_names_its_line_and_applies_nothing() {
    kernel_test("replace_malformed", || {
        let s = Sandbox::new("replace_malformed");
        s.ok(&["add", "feed", "192.0.2.1"]);
        let bad = s.file(
            "delegated",
            "2|apnic|1|2|0|0|+1000\n\
             apnic|JP|ipv4|192.0.2.0|256|0|allocated\n\
             apnic|JP|ipv4|198.51.100.0|25x|0|allocated\n",
        );
        let bad = bad.to_str().unwrap();
        let err = refused(&s, &["replace", "feed", "--rir", bad, "--country", "JP"]);
        assert!(
            err.contains("delegated: line 3: \"25x\": not a count"),
            "{err}"
        );
        let list = s.file("list.txt", "198.51.100.0/24\n198.51.100.0/33\n");
        let err = refused(&s, &["replace", "feed", "--file", list.to_str().unwrap()]);
        assert!(
            err.contains("list.txt: line 2: \"198.51.100.0/33\""),
            "{err}"
        );
        assert_eq!(active(&s), 1);
        assert!(member(&s, "feed", "192.0.2.1"));
        assert!(!member(&s, "feed", "198.51.100.1"));
        // Usage: --rir needs --country, a country is two letters, a
        // source is needed, standard input is read once.
        refused(&s, &["replace", "feed", "--rir", bad]);
        let err = refused(&s, &["replace", "feed", "--rir", bad, "--country", "JPN"]);
        assert!(err.contains("two-letter"), "{err}");
        refused(&s, &["replace", "feed"]);
        let err = refused(
            &s,
            &[
                "replace",
                "feed",
                "--rir",
                "-",
                "--file",
                "-",
                "--country",
                "JP",
            ],
        );
        assert!(err.contains("read once"), "{err}");
    });
}

#[test]
fn replace_merges_a_lists_adjacent_and_overlapping_prefixes() {
    kernel_test("replace_merge", || {
        let s = Sandbox::new("replace_merge");
        s.ok(&["create", "list"]);
        let f = s.file(
            "drop.txt",
            "; Spamhaus-style\n198.51.100.0/25 ; SBL1\n198.51.100.128/25\n198.51.100.7\n\
             203.0.113.0/24\n203.0.113.64/26\n",
        );
        s.ok(&["replace", "list", "--file", f.to_str().unwrap()]);
        assert_eq!(active(&s), 2);
        let listed = s.json(&["list", "list", "--json"]).to_string();
        assert!(
            listed.contains("198.51.100.0/24") && listed.contains("203.0.113.0/24"),
            "{listed}"
        );
    });
}

#[test]
fn an_allow_only_set_takes_loopback_and_wide_prefixes_a_ban_set_refuses() {
    kernel_test("replace_allow_only", || {
        let s = Sandbox::new("replace_allow_only");
        // --no-hook: no rule, so the lockout guard has nothing to guard;
        // what is tested is what the set may hold.
        // A timeout given on purpose (an allow-only set's default is never).
        s.ok(&[
            "create",
            "home",
            "--allow-only",
            "--no-hook",
            "--force",
            "--timeout",
            "1d",
        ]);
        s.ok(&["create", "bans"]);
        let list = s.file("home.txt", "127.0.0.0/8\n10.0.0.0/7\n");
        let list = list.to_str().unwrap();
        // The set's timeout: said, since members that run out empty the
        // set.
        let out = s.run(&["replace", "home", "--file", list]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("warning: home: these members expire in 1d"),
            "{err}"
        );
        let out = s.run(&["replace", "home", "--file", list, "--timeout", "never"]);
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
        assert!(member(&s, "home", "127.0.0.1") && member(&s, "home", "11.1.1.1"));
        let err = refused(&s, &["replace", "bans", "--file", list]);
        assert!(err.contains("refusing to ban 10.0.0.0/7"), "{err}");
    });
}

#[test]
fn a_registry_file_and_a_list_of_extras_are_one_content() {
    kernel_test("replace_union", || {
        let s = Sandbox::new("replace_union");
        s.ok(&["create", "home"]);
        // The office abroad, and a block that joins JP's 1.0.16.0/20 into
        // one aligned /19.
        let extra = s.file("extra.txt", "# office\n198.51.100.7\n1.0.0.0/20\n");
        s.ok(&[
            "replace",
            "home",
            "--rir",
            SAMPLE,
            "--country",
            "JP",
            "--file",
            extra.to_str().unwrap(),
        ]);
        assert_eq!(active(&s), 15);
        let listed = s.json(&["list", "home", "--json"]).to_string();
        assert!(
            listed.contains("1.0.0.0/19") && !listed.contains("1.0.16.0/20"),
            "{listed}"
        );
        assert!(member(&s, "home", "198.51.100.7") && member(&s, "home", "133.0.0.1"));
    });
}

#[test]
fn replacing_an_allow_only_set_without_this_ssh_session_is_refused() {
    kernel_test("replace_lockout", || {
        let s = Sandbox::new("replace_lockout");
        let ssh = "198.51.100.7 50022 192.0.2.1 22";
        // With this ssh session, or outside any (whatever the test
        // runner's own environment says).
        let run_as = |session: Option<&str>, args: &[&str]| {
            let mut cmd = s.cmd(args);
            cmd.env_remove("SSH_CONNECTION").env_remove("SSH_CLIENT");
            if let Some(session) = session {
                cmd.env("SSH_CONNECTION", session);
            }
            cmd.output().unwrap()
        };
        let run = |args: &[&str]| run_as(Some(ssh), args);
        let home = s.file("home.txt", "198.51.100.0/24\n203.0.113.0/24\n");
        let home = home.to_str().unwrap();
        s.ok(&["create", "home", "--allow-only", "--no-hook"]);
        s.ok(&["replace", "home", "--file", home]);
        let out = run(&["set-options", "home", "--ports", "22"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A list without the session's address: refused, nothing changed.
        let away = s.file("away.txt", "203.0.113.0/24\n192.0.2.0/24\n");
        let away = away.to_str().unwrap();
        let out = run(&["replace", "home", "--file", away]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("would lock out 198.51.100.7"), "{err}");
        assert!(member(&s, "home", "198.51.100.7"));
        // An empty list too, whatever --max-shrink says.
        let empty = s.file("empty.txt", "");
        let out = run_as(
            None,
            &[
                "replace",
                "home",
                "--file",
                empty.to_str().unwrap(),
                "--max-shrink",
                "100",
            ],
        );
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("allow-only set home is empty"), "{err}");
        let out = run(&["replace", "home", "--file", away, "--force"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!member(&s, "home", "198.51.100.7"));
    });
}
