//! CLI tests: the real `banset` binary, run as a user would, against the real
//! kernel. Each kernel test runs in a fresh network namespace (the binary is
//! spawned from a thread that unshared its own), checks the kernel with the
//! independent oracle `nft -j`, and leaves the host's ruleset alone.
//!
//! They live in the `banset` package because only there does Cargo hand a
//! test the path of the freshly built binary; the harness they use is
//! banset-tests'.

// Network namespaces and nft/ipset are Linux.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;

use std::process::{Command, Stdio};
use std::time::Duration;

use banset_tests::netns::{self, Reach, VethPair};
use serde_json::Value;

mod common;

use common::{kernel_test, Sandbox};

/// The oracle: `nft -j list set inet banset NAME` as (element, expires in
/// seconds); an empty map if the set does not exist.
fn nft_set(set: &str) -> BTreeMap<String, Option<u64>> {
    let out = Command::new("nft")
        .args(["-j", "list", "set", "inet", "banset", set])
        .output()
        .expect("nft must be installed for the kernel tests");
    let mut members = BTreeMap::new();
    if !out.status.success() {
        return members;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for item in v["nftables"].as_array().unwrap() {
        let Some(elems) = item["set"]["elem"].as_array() else {
            continue;
        };
        for e in elems {
            // `{"elem": {"val": V, "expires": N}}` for a member with a
            // timeout, the bare value V for a permanent one.
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
            members.insert(key, expires);
        }
    }
    members
}

/// The whole ruleset as JSON with the ever-changing `expires` fields taken
/// out: what "nothing changed" compares.
fn kernel_snapshot() -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("expires");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let out = Command::new("nft")
        .args(["-j", "list", "ruleset"])
        .output()
        .unwrap();
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    strip(&mut v);
    v
}

/// The ledger as `list --json` shows it, without the kernel's countdown.
fn ledger_snapshot(s: &Sandbox) -> Value {
    let mut v = s.json(&["list", "--json"]);
    for set in v.as_array_mut().unwrap() {
        for m in set["members"].as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("expires_in");
        }
    }
    v
}

fn nft_ruleset() -> String {
    String::from_utf8(
        Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

fn close_to(got: Option<u64>, want: u64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no timeout, wanted ~{want}"));
    assert!(
        got <= want && got + 10 >= want,
        "{what}: expires in {got}, wanted ~{want}"
    );
}

#[test]
fn the_one_liner_creates_everything_in_the_kernel_and_the_ledger() {
    kernel_test("the_one_liner", || {
        let s = Sandbox::new("oneliner");
        s.ok(&["add", "f2b-postfix", "1.2.3.4", "--timeout", "604800"]);
        let rules = nft_ruleset();
        for needle in [
            "table inet banset",
            "set f2b-postfix_v4",
            "set f2b-postfix_v6",
            "type filter hook input priority filter - 10; policy accept;",
            "ip saddr @f2b-postfix_v4 drop",
            "ip6 saddr @f2b-postfix_v6 drop",
        ] {
            assert!(rules.contains(needle), "{needle:?} missing from:\n{rules}");
        }
        let v4 = nft_set("f2b-postfix_v4");
        assert_eq!(v4.keys().collect::<Vec<_>>(), ["1.2.3.4"]);
        close_to(v4["1.2.3.4"], 604_800, "1.2.3.4");
        let listed = s.json(&["list", "f2b-postfix", "--json"]);
        let m = &listed[0]["members"][0];
        assert_eq!(m["target"], "1.2.3.4");
        assert_eq!(m["in_ledger"], true);
        assert_eq!(
            m["deadline"].as_i64().unwrap() - m["start"].as_i64().unwrap(),
            604_800
        );
        // the same one-liner again refreshes, never fails, never duplicates
        s.ok(&["add", "f2b-postfix", "1.2.3.4", "--timeout", "604800"]);
        assert_eq!(nft_ruleset().matches("@f2b-postfix_v4 ").count(), 1);
    });
}

#[test]
fn every_verb_on_ipv4_and_ipv6_addresses_and_prefixes() {
    kernel_test("every_verb", || {
        let s = Sandbox::new("verbs");
        s.ok(&["create", "web", "--timeout", "1h", "--ports", "80,443"]);
        s.ok(&[
            "add",
            "web",
            "192.0.2.7",
            "2001:db8::7",
            "198.51.100.0/24",
            "2001:db8:1::/48",
        ]);
        s.ok(&["add", "web", "203.0.113.9", "--timeout", "never"]);
        let v4 = nft_set("web_v4");
        close_to(v4["192.0.2.7"], 3_600, "default timeout");
        assert_eq!(v4["203.0.113.9"], None, "never = no expiry");
        assert!(nft_set("web_v4net").contains_key("198.51.100.0/24"));
        assert!(nft_set("web_v6net").contains_key("2001:db8:1::/48"));
        assert!(nft_set("web_v6").contains_key("2001:db8::7"));

        for (target, code) in [
            ("192.0.2.7", 0),
            ("198.51.100.200", 0),
            ("2001:db8:1:2::3", 0),
            ("192.0.2.8", 1),
            ("2001:db8::8", 1),
        ] {
            let out = s.run(&["test", "web", target]);
            assert_eq!(out.status.code(), Some(code), "test {target}");
        }

        let listed = s.json(&["list", "--json"]);
        assert_eq!(listed[0]["members"].as_array().unwrap().len(), 5);
        let status = s.json(&["status", "--json"]);
        assert_eq!(status["sets"][0]["active_bans"], 5);
        assert_eq!(status["sets"][0]["permanent_bans"], 1);
        assert_eq!(status["sets"][0]["kernel_members"], 5);

        s.ok(&["del", "web", "192.0.2.7", "198.51.100.0/24", "192.0.2.99"]);
        assert!(!nft_set("web_v4").contains_key("192.0.2.7"));
        assert!(nft_set("web_v4net").is_empty());
        assert_eq!(s.run(&["test", "web", "192.0.2.7"]).status.code(), Some(1));

        s.ok(&["flush", "web"]);
        assert!(nft_set("web_v4").is_empty() && nft_set("web_v6").is_empty());
        assert!(nft_ruleset().contains("@web_v4"), "flush keeps the rule");

        s.ok(&["destroy", "web"]);
        assert!(!nft_ruleset().contains("web_v4"));
        assert_eq!(s.run(&["test", "web", "1.1.1.1"]).status.code(), Some(2));
    });
}

#[test]
fn sync_restores_a_deleted_table_with_remaining_times() {
    kernel_test("sync_restores", || {
        let s = Sandbox::new("sync");
        s.ok(&["add", "f2b-sshd", "192.0.2.1", "--timeout", "7d"]);
        s.ok(&["add", "f2b-sshd", "2001:db8::1", "--timeout", "permanent"]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let since = (now - 3_600).to_string();
        s.ok(&[
            "add",
            "f2b-sshd",
            "192.0.2.2",
            "--timeout",
            "2h",
            "--since",
            &since,
        ]);
        let del = Command::new("nft")
            .args(["delete", "table", "inet", "banset"])
            .status()
            .unwrap();
        assert!(del.success());
        assert!(nft_set("f2b-sshd_v4").is_empty());
        let status = s.json(&["status", "--json"]);
        assert!(status["sets"][0]["health"]
            .as_str()
            .unwrap()
            .starts_with("missing"));

        s.ok(&["sync"]);
        let v4 = nft_set("f2b-sshd_v4");
        close_to(v4["192.0.2.1"], 604_800, "192.0.2.1 after sync");
        close_to(v4["192.0.2.2"], 3_600, "192.0.2.2 keeps its original end");
        assert_eq!(nft_set("f2b-sshd_v6").get("2001:db8::1"), Some(&None));
        assert!(nft_ruleset().contains("ip saddr @f2b-sshd_v4 drop"));
    });
}

/// A zero-byte `ledger.db` (a full disk, a bad restore) used to be taken for
/// a new ledger: `sync` exited 0 and the daemon then emptied every kernel
/// set. It must be refused, naming the file, with the kernel untouched,
/// every time; `adopt` then records the kernel's members in a new ledger.
#[test]
fn zero_byte_ledger_beside_kernel_objects_is_refused() {
    kernel_test("zero_byte_ledger", || {
        let s = Sandbox::new("zeroledger");
        s.ok(&[
            "add",
            "keep",
            "192.0.2.1",
            "198.51.100.0/24",
            "--timeout",
            "1h",
        ]);
        s.ok(&["add", "keep", "2001:db8::1", "--timeout", "permanent"]);
        let kernel_before = (
            nft_set("keep_v4"),
            nft_set("keep_v4net"),
            nft_set("keep_v6"),
        );
        assert_eq!(
            kernel_before.0.len() + kernel_before.1.len() + kernel_before.2.len(),
            3
        );
        let ledger = s.dir().join("state/ledger.db");
        std::fs::File::create(&ledger).unwrap(); // truncates to 0 bytes

        for verb in [&["sync"][..], &["list"], &["add", "keep", "192.0.2.9"]] {
            let out = s.run(verb);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(3),
                "{verb:?} must be refused: {err}"
            );
            assert!(
                err.contains(&ledger.display().to_string())
                    && err.contains("keep")
                    && err.contains("banset adopt"),
                "{verb:?}: the refusal names the file, the kernel set and the way out: {err}"
            );
            let kernel_now = (
                nft_set("keep_v4").into_keys().collect::<Vec<_>>(),
                nft_set("keep_v4net").into_keys().collect::<Vec<_>>(),
                nft_set("keep_v6").into_keys().collect::<Vec<_>>(),
            );
            assert_eq!(
                kernel_now,
                (
                    kernel_before.0.keys().cloned().collect(),
                    kernel_before.1.keys().cloned().collect(),
                    kernel_before.2.keys().cloned().collect()
                ),
                "{verb:?} changed the kernel"
            );
        }

        s.ok(&["adopt"]);
        let listed = s.json(&["list", "keep", "--json"]);
        let members = listed[0]["members"].as_array().unwrap();
        assert_eq!(members.len(), 3, "{listed}");
        for m in members {
            assert_eq!(m["in_ledger"], true, "{m}");
            let permanent = m["target"] == "2001:db8::1";
            assert_eq!(m["deadline"].is_null(), permanent, "{m}");
        }
        // The adopted ledger is a real one: sync keeps every member.
        s.ok(&["sync"]);
        assert_eq!(
            nft_set("keep_v4").len() + nft_set("keep_v4net").len() + nft_set("keep_v6").len(),
            3
        );
    });
}

/// Runs `f` with a tmpfs of `size` (e.g. `1024k`) on `dir`, in a mount
/// namespace of this thread's own: processes it spawns see the small disk,
/// the host never does. Call it on a thread that ends with the test (the
/// kernel-test thread).
fn on_a_small_disk(dir: &std::path::Path, size: &str, f: impl FnOnce()) {
    // SAFETY: unshare takes flags only and changes this thread's mount
    // namespace (CLONE_NEWNS implies a private fs context for the thread).
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        panic!("unshare(CLONE_NEWNS): {}", std::io::Error::last_os_error());
    }
    let mount = |args: &[&str]| {
        let st = Command::new("mount").args(args).status().unwrap();
        assert!(st.success(), "mount {args:?}");
    };
    // Nothing mounted here may propagate to the host.
    mount(&["--make-rprivate", "/"]);
    std::fs::create_dir_all(dir).unwrap();
    mount(&[
        "-t",
        "tmpfs",
        "-o",
        &format!("size={size}"),
        "tmpfs",
        dir.to_str().unwrap(),
    ]);
    f();
    let _ = Command::new("umount").arg(dir).status();
}

/// Writes a file until the disk is full.
fn fill_disk(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

/// On a full disk an `add` failed with exit 3 (the ledger commit failed)
/// but left its members in the kernel. A failed command must leave the
/// kernel as it was; once space is back, everything works again.
#[test]
fn a_failed_add_on_a_full_disk_leaves_the_kernel_as_it_was() {
    kernel_test("full_disk", || {
        let s = Sandbox::new("fulldisk");
        let state = s.dir().join("state");
        on_a_small_disk(&state, "1024k", || {
            let list: String = (0..1500u32)
                .map(|i| format!("10.0.{}.{}\n", i >> 8, i & 255))
                .collect();
            let file = s.file("list.txt", &list);
            s.ok(&["add", "full", "--file", file.to_str().unwrap()]);
            let before = nft_set("full_v4");
            let filler = state.join("filler");
            fill_disk(&filler);

            let big: String = (0..3000u32)
                .map(|i| format!("10.2.{}.{}\n", i >> 8, i & 255))
                .collect();
            let big = s.file("big.txt", &big);
            // One ban (kernel, then ledger) and a bulk add (both at once).
            for args in [
                &["add", "full", "192.0.2.99"][..],
                &["add", "full", "--file", big.to_str().unwrap()],
            ] {
                let out = s.run(args);
                assert_eq!(
                    out.status.code(),
                    Some(3),
                    "{args:?} on a full disk: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let now = nft_set("full_v4");
                let extra: Vec<&String> = now.keys().filter(|k| !before.contains_key(*k)).collect();
                let lost: Vec<&String> = before.keys().filter(|k| !now.contains_key(*k)).collect();
                assert!(
                    extra.is_empty() && lost.is_empty(),
                    "{args:?} failed but changed the kernel: {} added (first {:?}), {} removed",
                    extra.len(),
                    extra.first(),
                    lost.len()
                );
            }
            std::fs::remove_file(&filler).unwrap();
            s.ok(&["sync"]);
            s.ok(&["add", "full", "192.0.2.100"]);
            assert_eq!(nft_set("full_v4").len(), before.len() + 1);
        });
    });
}

/// A write that fails for lack of space is not followed by a checkpoint,
/// and banset leaves small WALs alone: the WAL only grew, and a process
/// that keeps its ledger open (the daemon) never gave its space back, so
/// its writes kept failing. Once space is back, the next write folds it.
#[test]
fn a_ledger_that_hit_a_full_disk_folds_its_wal_once_space_returns() {
    kernel_test("full_disk_wal", || {
        let s = Sandbox::new("fullwal");
        let state = s.dir().join("state");
        on_a_small_disk(&state, "1024k", || {
            let path = state.join("ledger.db");
            let wal = state.join("ledger.db-wal");
            let set = banset_core::SetName::new("w").unwrap();
            let mut ledger = banset_core::Ledger::open(&path).unwrap();
            let tx = ledger.begin().unwrap();
            tx.put_set(
                &banset_core::SetSpec::new(set.clone(), banset_core::BackendKind::Memory),
                0,
            )
            .unwrap();
            tx.commit().unwrap();
            let filler = state.join("filler");
            fill_disk(&filler);
            // Ban after ban, as the daemon does, until the disk says no.
            let mut full = false;
            for i in 0..100_000u32 {
                let tx = ledger.begin().unwrap();
                let ban = banset_core::NewBan {
                    target: banset_core::Target::parse(&format!(
                        "10.{}.{}.{}",
                        i >> 16,
                        (i >> 8) & 255,
                        i & 255
                    ))
                    .unwrap(),
                    start: 0,
                    deadline: None,
                    reason: None,
                };
                let written = tx.upsert_bans(&set, &[ban], 0).and_then(|()| tx.commit());
                if written.is_err() {
                    full = true;
                    break;
                }
            }
            assert!(full, "the disk never filled up");
            assert!(std::fs::metadata(&wal).unwrap().len() > 0);
            std::fs::remove_file(&filler).unwrap();
            let tx = ledger.begin().unwrap();
            drop(tx);
            assert_eq!(
                std::fs::metadata(&wal).unwrap().len(),
                0,
                "the WAL is folded into the database once there is room"
            );
        });
    });
}

/// A bulk add held the ledger's write lock for its whole length, so the
/// daemon's bans (and any other writer) waited behind it: 30.8 s for a
/// million addresses, and a failed ban past the 120 s busy timeout. Bulk
/// adds commit in chunks; a ban started once the first chunk is in must be
/// recorded while the bulk add is still under way.
#[test]
fn a_ban_does_not_wait_behind_a_bulk_add() {
    kernel_test("ban_during_bulk", || {
        let s = Sandbox::new("banbulk");
        let n = 200_000u32;
        s.ok(&["create", "bulk", "--family", "inet", "--maxelem", "300000"]);
        s.ok(&["create", "other", "--family", "inet"]);
        let list: String = (0..n)
            .map(|i| format!("10.{}.{}.{}\n", i >> 16, (i >> 8) & 255, i & 255))
            .collect();
        let file = s.file("bulk.txt", &list);
        let mut bulk = s
            .cmd(&["add", "bulk", "--file", file.to_str().unwrap()])
            .spawn()
            .unwrap();
        // Read straight from the ledger: `status` would list the kernel set
        // too, which takes longer than the ban.
        let mut ledger = banset_core::Ledger::open(&s.dir().join("state/ledger.db")).unwrap();
        let set = banset_core::SetName::new("bulk").unwrap();
        let mut recorded = || -> u64 { ledger.read().unwrap().counts(&set, 0).unwrap().0 };
        assert!(
            common::wait_until(|| recorded() > 0 || bulk.try_wait().unwrap().is_some()),
            "the bulk add never recorded anything"
        );
        s.ok(&["add", "other", "192.0.2.1"]);
        let when_banned = recorded();
        assert!(bulk.wait().unwrap().success());
        assert!(
            when_banned < u64::from(n),
            "the ban was recorded only after the whole bulk add ({when_banned} of {n})"
        );
        let status = s.json(&["status", "--json"]);
        for set in status["sets"].as_array().unwrap() {
            assert_eq!(set["active_bans"], set["kernel_members"], "{set}");
        }
        assert_eq!(recorded(), u64::from(n));
        assert!(nft_set("other_v4").contains_key("192.0.2.1"));
    });
}

#[test]
fn an_add_after_a_flush_ruleset_repairs_every_ban() {
    kernel_test("add_repairs", || {
        let s = Sandbox::new("repair");
        s.ok(&["add", "f2b-x", "192.0.2.1", "192.0.2.2"]);
        assert!(Command::new("nft")
            .args(["flush", "ruleset"])
            .status()
            .unwrap()
            .success());
        let out = s.run(&["add", "f2b-x", "192.0.2.3"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("restored"));
        let v4 = nft_set("f2b-x_v4");
        assert_eq!(v4.len(), 3, "{v4:?}");
    });
}

#[test]
fn expire_forgets_bans_that_are_over() {
    kernel_test("expire", || {
        let s = Sandbox::new("expire");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let since = (now - 598).to_string();
        s.ok(&[
            "add",
            "s",
            "192.0.2.1",
            "--timeout",
            "600",
            "--since",
            &since,
        ]);
        s.ok(&["add", "s", "192.0.2.2", "--timeout", "1h"]);
        std::thread::sleep(Duration::from_secs(3));
        let expired = s.json(&["expire", "--json"]);
        assert_eq!(expired[0]["removed"], serde_json::json!(["192.0.2.1"]));
        let status = s.json(&["status", "--json"]);
        assert_eq!(status["sets"][0]["active_bans"], 1);
        assert_eq!(nft_set("s_v4").keys().collect::<Vec<_>>(), ["192.0.2.2"]);
    });
}

/// Runs SQL on a sandbox's ledger behind banset's back.
fn ledger_sql(s: &Sandbox, sql: &str) {
    rusqlite::Connection::open(s.dir().join("state/ledger.db"))
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// The poison of issue 13.1: a `0.0.0.0` row (what one log line left in the
/// ledger and the kernel) made every list and sync of its set exit 3, and
/// a sync after `nft flush ruleset` stopped at that set.
#[test]
fn unreadable_row_does_not_stop_list_or_sync() {
    kernel_test("unreadable_row", || {
        let s = Sandbox::new("unreadable");
        s.ok(&["add", "f2b-a", "192.0.2.1"]);
        s.ok(&["add", "f2b-b", "192.0.2.2"]);
        s.ok(&["add", "f2b-c", "192.0.2.3"]);
        ledger_sql(
            &s,
            "INSERT INTO bans (set_name, target, start) VALUES ('f2b-b', '0.0.0.0', 0);",
        );
        assert!(Command::new("nft")
            .args([
                "add",
                "element",
                "inet",
                "banset",
                "f2b-b_v4",
                "{ 0.0.0.0 }"
            ])
            .status()
            .unwrap()
            .success());

        let out = s.run(&["list"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(r#"f2b-b: skipped unreadable ledger row "0.0.0.0""#),
            "{stderr}"
        );
        let listed = s.json(&["list", "--json"]);
        let b = &listed.as_array().unwrap()[1];
        assert_eq!(b["set"], "f2b-b");
        assert_eq!(b["unreadable_rows"][0]["text"], "0.0.0.0");
        assert!(listed[0].get("unreadable_rows").is_none());

        // A reboot or `nft flush ruleset`: every set comes back.
        assert!(Command::new("nft")
            .args(["flush", "ruleset"])
            .status()
            .unwrap()
            .success());
        let out = s.run(&["sync"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("unreadable ledger row"), "{stderr}");
        for (set, member) in [
            ("f2b-a_v4", "192.0.2.1"),
            ("f2b-b_v4", "192.0.2.2"),
            ("f2b-c_v4", "192.0.2.3"),
        ] {
            let got = nft_set(set);
            assert_eq!(got.keys().collect::<Vec<_>>(), [member], "{set}");
        }

        // del removes the row by its text; the set reads clean after.
        s.ok(&["del", "f2b-b", "0.0.0.0"]);
        let out = s.run(&["list"]);
        assert!(out.status.success());
        assert!(!String::from_utf8_lossy(&out.stderr).contains("unreadable"));
        assert_eq!(nft_set("f2b-b_v4").len(), 1);
        // And it can no longer get in.
        let out = s.run(&["add", "f2b-b", "0.0.0.0"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            r#"banset: invalid address "0.0.0.0": the unspecified address cannot be banned"#
        );
    });
}

/// `sync` of every set goes on past one that fails and names it.
#[test]
fn sync_continues_past_a_failing_set_and_reports_each() {
    kernel_test("sync_continues", || {
        let s = Sandbox::new("sync_continues");
        s.ok(&["add", "f2b-a", "192.0.2.1"]);
        s.ok(&["add", "f2b-b", "192.0.2.2"]);
        s.ok(&["add", "f2b-c", "192.0.2.3"]);
        // A set on a backend this host cannot reach (no firewalld here).
        ledger_sql(
            &s,
            r#"UPDATE sets SET spec = replace(spec, '"nftables"', '"firewalld"') WHERE name = 'f2b-b';"#,
        );
        assert!(Command::new("nft")
            .args(["flush", "ruleset"])
            .status()
            .unwrap()
            .success());
        let out = s.run(&["sync"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("banset: sync f2b-b: "), "{stderr}");
        assert_eq!(nft_set("f2b-a_v4").len(), 1);
        assert_eq!(nft_set("f2b-c_v4").len(), 1);
        let out = s.run(&["sync", "--json"]);
        assert_eq!(out.status.code(), Some(3));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["set"], "f2b-a");
        assert!(v[1]["error"].as_str().unwrap().contains("firewalld"), "{v}");
        assert_eq!(v[2]["set"], "f2b-c");
    });
}

/// A set on the memory backend blocked nothing while the ledger said its
/// bans were in force; it is for `--dry-run` only.
#[test]
fn the_memory_backend_is_refused_outside_dry_run() {
    let s = Sandbox::new("memory_backend");
    let out = s.run(&["create", "x", "--backend", "memory"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "banset: --backend memory: the memory backend keeps bans inside this one banset process \
         and never puts them in the kernel; use it with --dry-run, or choose one of: nftables, \
         ipset, firewalld"
    );
    let s = s.with_config("[defaults]\nbackend = \"memory\"\n");
    let out = s.run(&["add", "x", "192.0.2.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("banset: defaults.backend memory: "));
    s.ok(&["--dry-run", "add", "x", "192.0.2.1"]);
    s.ok(&["--dry-run", "create", "y", "--backend", "memory"]);
    assert_eq!(s.json(&["list", "--json"]), serde_json::json!([]));
}

/// `add --file /dev/zero` grew to 3 GB looking for the end of a line.
#[test]
fn add_file_with_an_endless_line_is_refused_naming_file_and_line() {
    let s = Sandbox::new("endless_line");
    let out = s.run(&["add", "x", "--file", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "banset: /dev/zero: line 1: longer than 4096 bytes (a line holds one address and an optional # comment)"
    );
    let mut huge = b"192.0.2.1\n".to_vec();
    huge.resize(huge.len() + (64 << 20), b' ');
    let mut child = s
        .cmd(&["add", "x", "--file", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // banset stops reading at the bound: the rest of the write is refused
    // with a broken pipe, which is the point.
    let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), &huge);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input: line 2: longer than"));
}

/// Every bad input gets one clear line naming it, exit 2, and changes
/// nothing in the kernel or the ledger.
#[test]
fn bad_input_is_refused_with_one_line_and_changes_nothing() {
    kernel_test("bad_input", || {
        let s = Sandbox::new("bad");
        s.ok(&["add", "good", "192.0.2.1"]);
        s.ok(&["create", "v4only", "--family", "inet"]);
        let bad_file = s.file("bad.txt", "192.0.2.5\n192.0.2.300\n");
        let bad_file = bad_file.to_str().unwrap();
        let cases: &[(&[&str], &str)] = &[
            (&["add", "good", "192.0.2.256"], "192.0.2.256"),
            (&["add", "good", "example.com"], "example.com"),
            (&["add", "good", "fe80::1%eth0"], "zone"),
            (&["add", "good", "1.2.3.4/33"], "1.2.3.4/33"),
            (
                &["add", "good", "192.0.2.9", "1.2.3.4;reboot"],
                "1.2.3.4;reboot",
            ),
            (
                &["add", "a234567890123456789012345678901", "1.2.3.4"],
                "at most 30",
            ),
            (&["add", "bad name", "1.2.3.4"], "bad name"),
            (&["add", "bad/name", "1.2.3.4"], "bad/name"),
            (&["add", "-x", "1.2.3.4"], "-x"),
            (
                &["add", "good", "192.0.2.9", "--since", "yesterday"],
                "yesterday",
            ),
            (&["add", "good", "192.0.2.9", "--bogus"], "--bogus"),
            (&["add", "good", "192.0.2.9", "--timeout", "0"], "zero"),
            (&["add", "good", "192.0.2.9", "--timeout", "-5"], "-5"),
            (&["add", "good", "192.0.2.9", "--timeout", "soon"], "soon"),
            (&["add", "v4only", "2001:db8::1"], "only IPv4"),
            (&["add", "good", "127.0.0.1"], "loopback"),
            (&["add", "good", "0.0.0.0/0"], "--force"),
            (&["add", "good", "--file", bad_file], "line 2"),
            (&["create", "good2", "--ports", "25,99999"], "99999"),
            (&["del", "nosuchset", "1.2.3.4"], "no set named nosuchset"),
            (
                &["add", "good", "192.0.2.9", "--kill-states"],
                "--kill-states needs a pf set",
            ),
            (
                &["add", "new", "192.0.2.9", "--backend", "pf"],
                "backend pf is not available in this build of banset (available: nftables, ipset, firewalld)",
            ),
        ];
        let before = (kernel_snapshot(), ledger_snapshot(&s));
        for (args, needle) in cases {
            let out = s.run(args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            let first = err.lines().next().unwrap_or("");
            assert!(first.contains(needle), "{args:?}: {err}");
            assert_eq!(
                err.lines().filter(|l| !l.starts_with("hint:")).count(),
                1,
                "{args:?}: more than one line: {err}"
            );
            assert!(first.starts_with("banset: "), "{args:?}: {err}");
            let after = (kernel_snapshot(), ledger_snapshot(&s));
            assert_eq!(after, before, "{args:?} changed something");
        }
    });
}

#[test]
fn concurrent_adds_from_32_processes_all_land() {
    kernel_test("concurrent_adds", || {
        let s = Sandbox::new("concurrent");
        s.ok(&["create", "busy"]);
        let children: Vec<_> = (0..32u32)
            .map(|p| {
                let targets: Vec<String> = (0..100u32)
                    .map(|i| format!("10.{p}.{}.{}", i / 256, i % 256 + 1))
                    .collect();
                let mut args = vec!["add".to_string(), "busy".into()];
                args.extend(targets);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                s.cmd(&args).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "a concurrent add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(nft_set("busy_v4").len(), 3_200);
        let status = s.json(&["status", "--json"]);
        assert_eq!(status["sets"][0]["active_bans"], 3_200);
    });
}

/// A bulk add killed at a random moment: afterwards `sync` makes ledger and
/// kernel agree exactly, whichever side the kill interrupted.
#[test]
fn kill_9_during_a_bulk_add_then_sync_agrees_exactly() {
    kernel_test("kill_9", || {
        let s = Sandbox::new("kill9");
        s.ok(&["create", "bulk"]);
        let list: String = (0..100_000u32)
            .map(|i| format!("11.{}.{}.{}\n", i >> 16, (i >> 8) & 255, i & 255))
            .collect();
        let path = s.file("bulk.txt", &list);
        let path = path.to_str().unwrap();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        for round in 0..3u32 {
            // a different moment each round: early, middle, late
            let delay_ms = u64::from((seed >> (round * 8)) % 200 + round * 150);
            let mut child = s.cmd(&["add", "bulk", "--file", path]).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            s.ok(&["sync", "bulk"]);
            let status = s.json(&["status", "--json"]);
            let ledger = status["sets"][0]["active_bans"].as_u64().unwrap();
            let kernel = nft_set("bulk_v4");
            assert_eq!(
                kernel.len() as u64,
                ledger,
                "round {round} (killed after {delay_ms} ms): kernel and ledger differ"
            );
            let listed = s.json(&["list", "bulk", "--json"]);
            let strangers = listed[0]["members"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["in_ledger"] != true)
                .count();
            assert_eq!(
                strangers, 0,
                "round {round}: kernel members missing from the ledger"
            );
            s.ok(&["flush", "bulk"]);
        }
    });
}

#[test]
fn replace_swaps_the_content_atomically() {
    kernel_test("replace", || {
        let s = Sandbox::new("replace");
        s.ok(&["add", "r", "192.0.2.1", "192.0.2.2"]);
        let f = s.file(
            "new.txt",
            "# new content\n192.0.2.2\n192.0.2.3\n2001:db8::3\n",
        );
        s.ok(&["replace", "r", "--file", f.to_str().unwrap()]);
        // Adjacent entries of a list are merged (issue 20): the set takes
        // prefixes, so .2 and .3 are one /31, and no host is left.
        assert_eq!(
            nft_set("r_v4net").keys().collect::<Vec<_>>(),
            ["192.0.2.2/31"]
        );
        assert!(nft_set("r_v4").is_empty());
        assert!(nft_set("r_v6").contains_key("2001:db8::3"));
        let bad = s.file("bad.txt", "192.0.2.9\n::1\n");
        assert_eq!(
            s.run(&["replace", "r", "--file", bad.to_str().unwrap()])
                .status
                .code(),
            Some(2)
        );
        assert_eq!(nft_set("r_v4net").len(), 1);
    });
}

#[test]
fn bulk_add_from_standard_input_and_dry_run() {
    kernel_test("stdin_dry_run", || {
        let s = Sandbox::new("stdin");
        let out = s.run_stdin(&["add", "b", "--file", "-"], b"192.0.2.1\n192.0.2.2\n");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(nft_set("b_v4").len(), 2);
        let out = s.run(&["--dry-run", "add", "b", "192.0.2.3"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(nft_set("b_v4").len(), 2, "dry run touched the kernel");
        assert_eq!(s.json(&["status", "--json"])["sets"][0]["active_bans"], 2);
        let out = s.run(&["--dry-run", "add", "newset", "192.0.2.3"]);
        assert!(out.status.success());
        assert!(!nft_ruleset().contains("newset"));
    });
}

#[test]
fn ignore_list_from_the_config_is_honoured() {
    kernel_test("ignore_list", || {
        let s = Sandbox::new("ignore").with_config("ignore = [\"192.0.2.0/24\"]\n");
        let out = s.run(&["add", "x", "192.0.2.77"]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("192.0.2.77") && err.contains("ignore list"),
            "{err}"
        );
        s.ok(&["add", "x", "198.51.100.1"]);
    });
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    kernel_test("broken_pipe", || {
        let s = Sandbox::new("pipe");
        let list: String = (0..20_000u32)
            .map(|i| format!("11.0.{}.{}\n", i >> 8, i & 255))
            .collect();
        let path = s.file("many.txt", &list);
        s.ok(&["add", "p", "--file", path.to_str().unwrap()]);
        let mut child = s
            .cmd(&["list", "p"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away at once
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// The proof that matters: traffic from a banned source is dropped, other
/// sources pass, and the unbanned source passes again.
#[test]
fn a_banned_source_is_dropped_over_a_veth_pair() {
    if netns::skip_unless_root("a_banned_source_is_dropped") {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let s = Sandbox::new("veth");
    let in_server = |args: &[&str]| {
        let out = pair.server().enter(|| s.run(args));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let t = Duration::from_millis(800);
    let client4 = VethPair::CLIENT_V4.to_string();
    let client6 = VethPair::CLIENT_V6.to_string();
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, t).unwrap(),
        Reach::Connected
    );

    in_server(&["add", "f2b-postfix", &client4, "--timeout", "604800"]);
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, t).unwrap(),
        Reach::TimedOut
    );
    // the same client over IPv6 is another source: not banned
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, t).unwrap(),
        Reach::Connected
    );

    in_server(&["add", "f2b-postfix", &client6]);
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, t).unwrap(),
        Reach::TimedOut
    );

    in_server(&["del", "f2b-postfix", &client4, &client6]);
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, t).unwrap(),
        Reach::Connected
    );
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V6, t).unwrap(),
        Reach::Connected
    );

    // a prefix covering the client drops it too (a /31 that leaves out the
    // server's own address, which the allowlist would refuse)
    in_server(&["add", "f2b-postfix", "10.199.0.2/31"]);
    assert_eq!(
        pair.probe_tcp(VethPair::SERVER_V4, t).unwrap(),
        Reach::TimedOut
    );
    // and the allowlist keeps the host from banning itself
    let out = pair
        .server()
        .enter(|| s.run(&["add", "f2b-postfix", "10.199.0.0/30"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("address of this host"));
}

#[test]
fn a_full_set_is_exit_3_naming_the_set_and_its_maxelem_and_records_nothing() {
    kernel_test("full_set", || {
        let s = Sandbox::new("full");
        s.ok(&["create", "small", "--maxelem", "2"]);
        s.ok(&["add", "small", "192.0.2.1", "192.0.2.2"]);
        let out = s.run(&["add", "small", "192.0.2.3"]);
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("set small is full (maxelem 2)"), "{err}");
        assert_eq!(s.json(&["status", "--json"])["sets"][0]["active_bans"], 2);
        assert_eq!(nft_set("small_v4").len(), 2);
        // refreshing members of a full set still works
        s.ok(&["add", "small", "192.0.2.1", "--timeout", "2d"]);
    });
}

/// `value` without the keys that count down by themselves (`expires` in
/// nft's JSON, `expires_in` in `list --json`).
fn without_countdowns(mut value: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.retain(|k, _| k != "expires" && k != "expires_in");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

/// Bug 8: `--dry-run` planned against an empty stand-in kernel, so it said
/// "set was missing from the kernel; restored it" and `sync` re-created
/// everything. It reads the real kernel and ledger, says what would change
/// (each line marked), and changes neither.
#[test]
fn dry_run_reads_the_real_kernel_and_ledger_and_changes_neither() {
    kernel_test("dry_run_reads_the_real_kernel_and_ledger", || {
        let s = Sandbox::new("dryrun-real");
        s.ok(&["add", "d", "192.0.2.1", "192.0.2.2", "2001:db8::7"]);
        // The oracles: the kernel as nft prints it, the ledger file's bytes
        // and banset's own listing of it.
        // Both oracles print the seconds a member has left, which tick
        // down between two reads on a slow machine: compared without them.
        let kernel = || {
            let out = Command::new("nft")
                .args(["-j", "list", "ruleset"])
                .output()
                .unwrap()
                .stdout;
            without_countdowns(serde_json::from_slice(&out).unwrap())
        };
        let ledger_db = s.dir().join("state").join("ledger.db");
        let ledger = || {
            (
                std::fs::read(&ledger_db).unwrap(),
                without_countdowns(serde_json::from_str(&s.ok(&["list", "--json"])).unwrap()),
            )
        };
        let dry = |args: &[&str]| {
            let mut all = vec!["--dry-run"];
            all.extend_from_slice(args);
            let out = s.run(&all);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{args:?}: {err}");
            err
        };

        // Against the kernel as it is: one new address would be added, the
        // banned one is only refreshed, nothing is created.
        let (k0, l0) = (kernel(), ledger());
        let err = dry(&["add", "d", "192.0.2.3"]);
        assert!(
            err.contains("banset: dry run: would add 1 to set d: 192.0.2.3"),
            "{err}"
        );
        assert!(
            !err.contains("create") && !err.contains("restored"),
            "{err}"
        );
        let err = dry(&["sync"]);
        assert!(!err.contains("would"), "nothing to change: {err}");
        assert_eq!(kernel(), k0, "dry-run add changed the kernel");
        assert!(ledger() == l0, "dry-run add changed the ledger");

        // The kernel loses everything: the dry run says what sync would
        // restore, and restores nothing.
        assert!(Command::new("nft")
            .args(["flush", "ruleset"])
            .status()
            .unwrap()
            .success());
        let (k1, l1) = (kernel(), ledger());
        let err = dry(&["sync"]);
        for expected in [
            "banset: dry run: would create the kernel objects of set d and its blocking rule (nftables)",
            "banset: dry run: would add 3 to set d: ",
            "banset: dry run: d: would re-create set and rule, re-add 3, refresh 0, remove 0, forget 0 expired",
        ] {
            assert!(err.contains(expected), "wanted {expected:?} in: {err}");
        }
        for line in err.lines() {
            assert!(line.starts_with("banset: dry run: "), "unmarked: {line}");
        }
        let err = dry(&["add", "d", "192.0.2.3"]);
        assert!(
            err.contains("set d is missing from the kernel; would restore it"),
            "{err}"
        );
        assert!(!err.contains("restored"), "{err}");
        assert_eq!(kernel(), k1, "dry-run sync changed the kernel");
        assert!(ledger() == l1, "dry-run sync changed the ledger");

        // The real sync restores what the dry run said.
        s.ok(&["sync"]);
        assert_eq!(nft_set("d_v4").len(), 2);
        assert_eq!(nft_set("d_v6").len(), 1);
    });
}

/// The elements of the hook's port set and the verdict of banset's rules,
/// from `nft -j` (the oracle).
fn nft_hook(set: &str) -> (Vec<String>, Vec<String>) {
    let out = Command::new("nft")
        .args([
            "-j",
            "list",
            "set",
            "inet",
            "banset",
            &format!("{set}_ports"),
        ])
        .output()
        .unwrap();
    let ports = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| {
            v["nftables"]
                .as_array()?
                .iter()
                .find_map(|o| o["set"]["elem"].as_array().cloned())
        })
        .unwrap_or_default()
        .iter()
        .map(|p| p.to_string())
        .collect();
    let out = Command::new("nft")
        .args(["-j", "list", "chain", "inet", "banset", "input"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdicts = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter(|r| r["comment"].as_str().is_some_and(|c| c.contains(set)))
        .map(|r| {
            let last = r["expr"].as_array().and_then(|e| e.last()).cloned();
            last.map(|e| e.as_object().unwrap().keys().next().unwrap().clone())
                .unwrap_or_default()
        })
        .collect();
    (ports, verdicts)
}

#[test]
fn add_with_other_ports_on_an_existing_set_is_not_silently_ignored() {
    kernel_test("add_with_other_ports_is_not_ignored", || {
        let s = Sandbox::new("add-other-ports");
        s.ok(&["create", "web", "--ports", "25"]);
        let kernel = kernel_snapshot();
        let ledger = ledger_snapshot(&s);
        let out = s.run(&["add", "web", "192.0.2.1", "--ports", "22"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("ports 25 -> 22") && err.contains("banset set-options web --ports 22"),
            "{err}"
        );
        assert_eq!(kernel_snapshot(), kernel, "the kernel is as it was");
        assert_eq!(ledger_snapshot(&s), ledger, "the ledger is as it was");
        // The set's own options, or none, are fine.
        s.ok(&["add", "web", "192.0.2.1", "--ports", "25"]);
        s.ok(&["add", "web", "192.0.2.2"]);
        // create with other options says how to change them.
        let out = s.run(&["create", "web", "--ports", "22"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("set-options"), "{err}");
    });
}

#[test]
fn set_options_moves_the_rule_and_resizes_the_set_keeping_every_ban_and_its_time() {
    kernel_test("set_options_in_place", || {
        let s = Sandbox::new("set-options");
        s.ok(&["create", "web", "--ports", "25,465"]);
        s.ok(&[
            "add",
            "web",
            "192.0.2.1",
            "198.51.100.0/24",
            "--timeout",
            "2h",
        ]);
        s.ok(&["add", "web", "2001:db8::1", "--timeout", "permanent"]);
        let before: Vec<_> = ["web_v4", "web_v4net", "web_v6"]
            .iter()
            .map(|set| nft_set(set))
            .collect();
        assert_eq!(
            nft_hook("web"),
            (vec!["25".into(), "465".into()], vec!["drop".into(); 4])
        );

        let out = s.run(&[
            "set-options",
            "web",
            "--ports",
            "22",
            "--blocktype",
            "reject",
            "--maxelem",
            "5000",
        ]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains("changed set web in place (maxelem 1048576 -> 5000, ports 25, 465 -> 22, blocktype drop -> reject)"),
            "{said}"
        );
        assert_eq!(
            nft_hook("web"),
            (vec!["22".into()], vec!["reject".into(); 4])
        );
        for (set, was) in ["web_v4", "web_v4net", "web_v6"].iter().zip(&before) {
            let now = nft_set(set);
            assert_eq!(
                now.keys().collect::<Vec<_>>(),
                was.keys().collect::<Vec<_>>(),
                "{set}: every ban kept"
            );
            for (member, expires) in &now {
                match (was[member], *expires) {
                    (None, None) => {}
                    (Some(w), Some(n)) => close_to(Some(n), w, member),
                    other => panic!("{member}: {other:?}"),
                }
            }
        }
        // The ledger holds the new spec: create with it is "as asked".
        let stderr = |args: &[&str]| {
            let out = s.run(args);
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        let shown = stderr(&[
            "create",
            "web",
            "--ports",
            "22",
            "--blocktype",
            "reject",
            "--maxelem",
            "5000",
            "-v",
        ]);
        assert!(shown.contains("already exists as asked"), "{shown}");
        // Nothing to change is fine, and says so.
        let same = stderr(&["set-options", "web", "--ports", "22", "-v"]);
        assert!(same.contains("already has these options"), "{same}");
        // The rule off and on again.
        s.ok(&["set-options", "web", "--no-hook"]);
        assert_eq!(nft_hook("web"), (vec![], vec![]));
        s.ok(&["set-options", "web", "--ports", "2222"]);
        assert_eq!(
            nft_hook("web"),
            (vec!["2222".into()], vec!["drop".into(); 4])
        );
        assert_eq!(nft_set("web_v4").len(), 1);
    });
}

#[test]
fn set_options_refuses_what_cannot_change_in_place_and_says_why() {
    kernel_test("set_options_refused", || {
        let s = Sandbox::new("set-options-refused");
        s.ok(&["create", "web", "--ports", "25"]);
        s.ok(&["add", "web", "192.0.2.1", "192.0.2.2", "--timeout", "1h"]);
        let kernel = kernel_snapshot();
        let ledger = ledger_snapshot(&s);
        for (args, why) in [
            (
                &["--family", "inet6", "--ports", "22"][..],
                "family both -> inet6",
            ),
            (&["--no-prefixes"][..], "prefixes true -> false"),
            (&["--maxelem", "1"][..], "holds 2 bans"),
        ] {
            let mut argv = vec!["set-options", "web"];
            argv.extend_from_slice(args);
            let out = s.run(&argv);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(why), "{args:?}: {err}");
            assert_eq!(kernel_snapshot(), kernel, "{args:?}: kernel unchanged");
            assert_eq!(ledger_snapshot(&s), ledger, "{args:?}: ledger unchanged");
        }
        let out = s.run(&["set-options", "nosuch", "--ports", "22"]);
        assert_eq!(out.status.code(), Some(2));
    });
}

#[test]
fn ensure_with_a_jails_new_ports_changes_the_rule_in_place_keeping_the_bans() {
    kernel_test("ensure_new_ports", || {
        let s = Sandbox::new("ensure-new-ports");
        s.ok(&[
            "ensure",
            "f2b-web",
            "--ports",
            "80",
            "--protocol",
            "tcp",
            "--blocktype",
            "DROP",
        ]);
        s.ok(&["add", "f2b-web", "192.0.2.1", "--timeout", "1h"]);
        let was = nft_set("f2b-web_v4");
        // fail2ban restarted with `port = 80,443` for the jail.
        let out = s.run(&[
            "ensure",
            "f2b-web",
            "--ports",
            "80,443",
            "--protocol",
            "tcp",
            "--blocktype",
            "DROP",
        ]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains("changed the rule in place (ports 80 -> 80, 443)"),
            "{said}"
        );
        assert_eq!(
            nft_hook("f2b-web"),
            (vec!["80".into(), "443".into()], vec!["drop".into(); 4])
        );
        let now = nft_set("f2b-web_v4");
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            was.keys().collect::<Vec<_>>()
        );
        close_to(now["192.0.2.1"], was["192.0.2.1"].unwrap(), "192.0.2.1");
    });
}
