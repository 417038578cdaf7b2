//! `banset history` and `banset find` with the real binary against the real
//! kernel, in a network namespace of their own (issue 15, requirement 3):
//! bans and unbans are remembered after they end, with who, why and how
//! long; `find` says which sets hold a target now.

#![cfg(target_os = "linux")]

mod common;

use common::{kernel_test, Sandbox};

#[test]
fn history_keeps_every_ban_and_unban_after_they_end() {
    kernel_test("history_keeps", || {
        let s = Sandbox::new("history");
        s.ok(&[
            "add",
            "f2b-sshd",
            "192.0.2.1",
            "--timeout",
            "3600",
            "--comment",
            "fail2ban:sshd",
        ]);
        s.ok(&[
            "add",
            "spam",
            "192.0.2.0/24",
            "--comment",
            "listed by a human",
        ]);
        s.ok(&["del", "f2b-sshd", "192.0.2.1"]);
        s.ok(&[
            "add",
            "f2b-sshd",
            "192.0.2.1",
            "--timeout",
            "60",
            "--comment",
            "fail2ban:sshd",
        ]);
        s.ok(&["flush", "f2b-sshd"]);

        let h = s.json(&["history", "192.0.2.1", "--json"]);
        let events = h["events"].as_array().unwrap();
        let summary: Vec<(String, String, String)> = events
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["set"].as_str().unwrap().to_string(),
                    e["by"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want = [
            ("ban", "f2b-sshd", "fail2ban action (sshd)"),
            ("unban", "f2b-sshd", "admin"),
            ("ban", "f2b-sshd", "fail2ban action (sshd)"),
            ("flush", "f2b-sshd", "admin"),
        ];
        assert_eq!(
            summary,
            want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())),
            "{h}"
        );
        let first = &events[0];
        assert_eq!(
            first["until"].as_i64().unwrap() - first["at"].as_i64().unwrap(),
            3600
        );
        assert_eq!(first["reason"], "fail2ban:sshd");
        let text = s.ok(&["history", "192.0.2.1"]);
        assert!(
            text.contains("ban    f2b-sshd for 1h by fail2ban action (sshd): fail2ban:sshd"),
            "{text}"
        );

        // find: the address is no longer in f2b-sshd, but inside spam's /24
        let found = s.json(&["find", "192.0.2.1", "--json"]);
        let sets: Vec<&str> = found["found"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["set"].as_str().unwrap())
            .collect();
        assert_eq!(sets, ["spam"], "{found}");
        assert_eq!(found["found"][0]["banned"], "192.0.2.0/24");
        let out = s.run(&["find", "198.51.100.1"]);
        assert_eq!(out.status.code(), Some(1), "not banned anywhere: exit 1");
    });
}

#[test]
fn find_names_the_jail_and_since_when() {
    kernel_test("find_names", || {
        let s = Sandbox::new("find");
        s.ok(&[
            "add",
            "f2b-postfix",
            "2001:db8::7",
            "--timeout",
            "7d",
            "--comment",
            "fail2ban:postfix",
        ]);
        s.ok(&[
            "add",
            "f2b-sshd",
            "2001:db8::7",
            "--timeout",
            "never",
            "--comment",
            "jail sshd",
        ]);
        let found = s.json(&["find", "2001:db8::7", "--json"]);
        let mut jails: Vec<(&str, &str)> = found["found"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["set"].as_str().unwrap(), f["jail"].as_str().unwrap()))
            .collect();
        jails.sort();
        assert_eq!(jails, [("f2b-postfix", "postfix"), ("f2b-sshd", "sshd")]);
        assert!(found["found"][0]["since"].as_i64().unwrap() > 0);
        let text = s.ok(&["find", "2001:db8::7"]);
        assert!(text.contains("f2b-sshd, jail sshd: since "), "{text}");
        assert!(text.contains("permanent"), "{text}");
    });
}
