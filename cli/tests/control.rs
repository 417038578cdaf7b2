//! The control socket and the commands that use it (`status JAIL`,
//! `unban`, `ban JAIL`, `control`), against the real daemon in a network
//! namespace, and their fallback to the ledger and kernel without it.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::watcher::Watcher;
use common::{append, kernel_test, nft_members, wait_until, Sandbox};
use serde_json::Value;

fn failure(addr: &str) -> String {
    format!("mx sshd[4242]: Failed password for invalid user admin from {addr} port 50022 ssh2")
}

/// A sandbox with one sshd jail (3 failures ban for 1h, set `sshd`)
/// reading `auth.log`, and its log's path.
fn sshd_sandbox(name: &str) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new(name);
    let log = sb.dir().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let sb = sb.with_config(&format!(
        "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\nmaxretry = 3\nfindtime = \"10m\"\nbantime = \"1h\"\n\n[watch]\nkeeper_interval = \"1s\"\n",
        log.display()
    ));
    (sb, log)
}

fn socket(sb: &Sandbox) -> PathBuf {
    sb.dir().join("run").join("control.sock")
}

/// A raw connection to the daemon.
struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(path: &Path) -> Client {
        let s = UnixStream::connect(path).expect("connect to the control socket");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn reply(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "no whole reply line: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    fn ask(&mut self, line: &str) -> Value {
        self.send(format!("{line}\n").as_bytes());
        self.reply()
    }
}

fn has(set: &str, addr: &str) -> bool {
    nft_members(set).iter().any(|m| m == addr)
}

#[test]
fn the_socket_is_roots_0600_and_a_symlink_or_someone_elses_socket_is_refused() {
    kernel_test("control_socket_perms", || {
        let (sb, _log) = sshd_sandbox("control-perms");
        let w = Watcher::start(&sb);
        let meta = std::fs::symlink_metadata(socket(&sb)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(meta.uid(), 0);
        let dir = std::fs::metadata(sb.dir().join("run")).unwrap();
        assert_eq!(
            dir.permissions().mode() & 0o077,
            0,
            "runtime dir open to others"
        );
        // A second daemon on the same runtime directory does not take it.
        let hello = Client::connect(&socket(&sb)).ask(r#"{"v":1,"id":1,"op":"hello"}"#);
        assert_eq!(hello["ok"], true, "{hello}");
        assert_eq!(hello["id"], 1);
        assert_eq!(hello["daemon"], true);
        w.stop();
        assert!(!socket(&sb).exists(), "the daemon left its socket behind");

        std::os::unix::fs::symlink(sb.dir().join("elsewhere"), socket(&sb)).unwrap();
        let out = sb.run(&["watch"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("is a symlink"),
            "{err}"
        );
        assert!(!sb.dir().join("elsewhere").exists());
        std::fs::remove_file(socket(&sb)).unwrap();

        // Someone else's socket (a stale one, even) is not replaced.
        let other = std::os::unix::net::UnixListener::bind(socket(&sb)).unwrap();
        drop(other);
        std::os::unix::fs::lchown(socket(&sb), Some(65534), Some(65534)).unwrap();
        let out = sb.run(&["watch"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("owned by uid 65534"),
            "{err}"
        );
        assert_eq!(std::fs::symlink_metadata(socket(&sb)).unwrap().uid(), 65534);
    });
}

#[test]
fn a_hung_client_and_a_flooding_client_do_not_stall_bans_from_logs() {
    kernel_test("control_hung_and_flood", || {
        let (sb, log) = sshd_sandbox("control-flood");
        let w = Watcher::start(&sb);
        let path = socket(&sb);
        // Hangs halfway through a line, and never reads.
        let mut hung = Client::connect(&path);
        hung.send(br#"{"v":1,"op":"sta"#);
        // Idle connections up to the cap; the one past it is turned away.
        let idle: Vec<Client> = (0..30).map(|_| Client::connect(&path)).collect();
        let mut flood = Client::connect(&path);
        let mut turned_away = Client::connect(&path);
        let refused = turned_away.reply();
        assert_eq!(refused["ok"], false);
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("too many connections"),
            "{refused}"
        );
        // The flooder pipelines requests as fast as it can, on a thread.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flooding = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut answered = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let batch = r#"{"v":1,"op":"status"}"#.to_string() + "\n";
                    flood.send(batch.repeat(50).as_bytes());
                    for _ in 0..50 {
                        assert_eq!(flood.reply()["ok"], true);
                        answered += 1;
                    }
                }
                answered
            })
        };
        append(&log, &vec![failure("203.0.113.50"); 3]);
        assert!(
            wait_until(|| has("sshd_v4", "203.0.113.50")),
            "no ban while a client hung and another flooded: {}",
            w.output()
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(flooding.join().unwrap() > 0);
        // The hung client is closed once its line is late, with a reason.
        let late = hung.reply();
        assert!(
            late["error"].as_str().unwrap().contains("incomplete"),
            "{late}"
        );
        drop(idle);
        // And the daemon still answers.
        let hello = Client::connect(&path).ask(r#"{"v":1,"op":"hello"}"#);
        assert_eq!(hello["ok"], true);
    });
}

#[test]
fn a_bad_request_gets_an_error_reply_and_changes_nothing() {
    kernel_test("control_bad_request", || {
        let (sb, _log) = sshd_sandbox("control-bad");
        sb.ok(&["add", "sshd", "192.0.2.1"]);
        let w = Watcher::start(&sb);
        let before = (nft_members("sshd_v4"), sb.ok(&["list", "--json"]));
        let mut c = Client::connect(&socket(&sb));
        for (line, says) in [
            ("not json", "not JSON"),
            (r#"{"v":2,"id":"x","op":"hello"}"#, "speaks \"v\":1"),
            (r#"{"v":1,"op":"explode"}"#, "unknown op"),
            (
                r#"{"v":1,"op":"ban","set":"sshd","targets":["192.0.2.9","bogus"]}"#,
                "targets[1]",
            ),
            (
                r#"{"v":1,"op":"unban","targets":["192.0.2.1","10.0.0.0/99"]}"#,
                "targets[1]",
            ),
            (
                r#"{"v":1,"op":"unban","all":true,"set":"nope"}"#,
                "no set nope",
            ),
            (
                r#"{"v":1,"op":"ban","jail":"nope","targets":["192.0.2.9"]}"#,
                "no jail",
            ),
            (
                r#"{"v":1,"op":"ban","set":"sshd","targets":["127.0.0.1"]}"#,
                "127.0.0.1",
            ),
            (
                r#"{"v":1,"op":"flush","set":"sshd","extra":1}"#,
                "unknown field",
            ),
        ] {
            let r = c.ask(line);
            assert_eq!(r["ok"], false, "{line}: {r}");
            let e = r["error"].as_str().unwrap();
            assert!(e.contains(says), "{line}: {e}");
        }
        assert_eq!(c.ask(r#"{"v":2,"id":"x","op":"hello"}"#)["id"], "x");
        assert_eq!(
            (nft_members("sshd_v4"), sb.ok(&["list", "--json"])),
            before,
            "a refused request changed something"
        );
        // A line over 64 KiB: an error, then the connection closes.
        let long = format!(r#"{{"v":1,"op":"status","jail":"{}"}}"#, "a".repeat(70_000));
        c.send(format!("{long}\n").as_bytes());
        let r = c.reply();
        assert!(r["error"].as_str().unwrap().contains("longer than"), "{r}");
        let mut rest = Vec::new();
        let _ = c.reader.read_to_end(&mut rest);
        assert!(rest.is_empty());
        assert_eq!(nft_members("sshd_v4"), before.0);
        // `banset control` refuses it the same way, exit 2.
        let out = sb.run(&["control", r#"{"op":"ban","set":"sshd","targets":["x"]}"#]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\":false"));
        drop(w);
    });
}

/// The fields of a jail's status that do not depend on the daemon.
fn ledger_view(v: &Value) -> Value {
    let j = &v["jail"];
    serde_json::json!([
        j["name"],
        j["kind"],
        j["sets"],
        j["files"],
        j["currently_banned"],
        j["banned"]
    ])
}

#[test]
fn status_jail_shows_failures_files_and_bans_with_and_without_the_daemon() {
    kernel_test("control_status_jail", || {
        let (sb, log) = sshd_sandbox("control-status");
        // A set fed by fail2ban's banset action, known by its bans' reason.
        sb.ok(&["add", "web", "198.51.100.3", "--comment", "fail2ban:nginx"]);
        let w = Watcher::start(&sb);
        append(&log, &vec![failure("203.0.113.7"); 3]);
        append(&log, &[failure("203.0.113.8")]);
        assert!(
            wait_until(|| has("sshd_v4", "203.0.113.7")),
            "{}",
            w.output()
        );
        let live = sb.json(&["status", "sshd", "--json"]);
        assert!(
            wait_until(|| sb.json(&["status", "sshd", "--json"])["jail"]["total_failed"] == 4),
            "{live}"
        );
        let live = sb.json(&["status", "sshd", "--json"]);
        let j = &live["jail"];
        assert_eq!(live["daemon"], true);
        assert_eq!(j["currently_failed"], 1, "{live}");
        assert_eq!(j["currently_banned"], 1);
        assert_eq!(j["total_banned"], 1);
        assert_eq!(j["banned"], serde_json::json!(["203.0.113.7"]));
        assert_eq!(j["files"], serde_json::json!([log.display().to_string()]));
        let text = sb.ok(&["status", "sshd"]);
        assert!(text.contains("Status for the jail: sshd"), "{text}");
        assert!(text.contains("|  |- Total failed:\t4"), "{text}");
        assert!(text.contains("`- Banned IP list:\t203.0.113.7"), "{text}");
        let nginx_live = sb.json(&["status", "nginx", "--json"]);
        assert_eq!(nginx_live["jail"]["kind"], "fail2ban-action");
        assert_eq!(
            nginx_live["jail"]["banned"],
            serde_json::json!(["198.51.100.3"])
        );
        w.stop();

        // Without the daemon: the same bans, from the ledger; no tallies.
        let cold = sb.json(&["status", "sshd", "--json"]);
        assert_eq!(cold["daemon"], false);
        assert_eq!(
            ledger_view(&cold),
            ledger_view(&live),
            "daemon and ledger disagree"
        );
        assert_eq!(cold["jail"]["total_failed"], Value::Null);
        let cold_nginx = sb.json(&["status", "nginx", "--json"]);
        assert_eq!(ledger_view(&cold_nginx), ledger_view(&nginx_live));
        let text = sb.ok(&["status", "sshd"]);
        assert!(
            text.contains("Total failed:\tunknown (no daemon runs)"),
            "{text}"
        );
        assert!(text.contains("banset watch is not running"), "{text}");
        let out = sb.run(&["status", "nosuch"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr)
            .contains("no jail \"nosuch\" (jails: sshd, nginx)"));
    });
}

#[test]
fn unban_clears_the_failure_window_so_the_next_failure_does_not_ban() {
    kernel_test("control_unban_window", || {
        let (sb, log) = sshd_sandbox("control-unban");
        sb.ok(&["add", "other", "203.0.113.9"]);
        let w = Watcher::start(&sb);
        // Banned, in two sets.
        append(&log, &vec![failure("203.0.113.9"); 3]);
        assert!(
            wait_until(|| has("sshd_v4", "203.0.113.9")),
            "{}",
            w.output()
        );
        // Two failures of .10 counted, not banned yet.
        append(&log, &vec![failure("203.0.113.10"); 2]);
        assert!(wait_until(|| {
            sb.json(&["status", "sshd", "--json"])["jail"]["currently_failed"] == 1
        }));
        let out = sb.ok(&["unban", "203.0.113.9", "203.0.113.0/28", "--json"]);
        let r: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["unbanned"], 2, "{r}");
        assert_eq!(r["forgotten"], 1, "{r}");
        assert!(!has("sshd_v4", "203.0.113.9") && !has("other_v4", "203.0.113.9"));
        // The next failure of .10 is its first again; a sentinel read
        // after it shows it was read.
        append(&log, &[failure("203.0.113.10")]);
        append(&log, &vec![failure("203.0.113.99"); 3]);
        assert!(
            wait_until(|| has("sshd_v4", "203.0.113.99")),
            "{}",
            w.output()
        );
        assert!(!has("sshd_v4", "203.0.113.10"), "banned again at once");
        append(&log, &vec![failure("203.0.113.10"); 2]);
        assert!(
            wait_until(|| has("sshd_v4", "203.0.113.10")),
            "{}",
            w.output()
        );
        // --set narrows.
        sb.ok(&["add", "other", "203.0.113.99"]);
        sb.ok(&["unban", "203.0.113.99", "--set", "other"]);
        assert!(has("sshd_v4", "203.0.113.99") && !has("other_v4", "203.0.113.99"));
        drop(w);
    });
}

#[test]
fn unban_all_empties_every_set_with_or_without_the_daemon() {
    kernel_test("control_unban_all", || {
        let (sb, log) = sshd_sandbox("control-unban-all");
        sb.ok(&["add", "other", "192.0.2.1", "192.0.2.2"]);
        sb.ok(&["add", "sshd", "192.0.2.3"]);
        // Without the daemon: every set, by prefix, from ledger and kernel.
        let out = sb.ok(&["unban", "192.0.2.0/31", "192.0.2.3"]);
        assert!(out.contains("unbanned 2 bans"), "{out}");
        assert!(out.contains("no daemon runs"), "{out}");
        assert_eq!(nft_members("other_v4"), ["192.0.2.2"]);
        assert!(nft_members("sshd_v4").is_empty());
        sb.ok(&["add", "sshd", "192.0.2.3"]);
        let w = Watcher::start(&sb);
        append(&log, &vec![failure("203.0.113.20"); 2]);
        assert!(wait_until(|| {
            sb.json(&["status", "sshd", "--json"])["jail"]["currently_failed"] == 1
        }));
        let r: Value =
            serde_json::from_str(&sb.ok(&["unban", "--all", "--set", "other", "--json"])).unwrap();
        assert_eq!(r["unbanned"], 1, "{r}");
        assert!(nft_members("other_v4").is_empty());
        assert_eq!(nft_members("sshd_v4"), ["192.0.2.3"]);
        let r: Value = serde_json::from_str(&sb.ok(&["unban", "--all", "--json"])).unwrap();
        assert_eq!(r["unbanned"], 1, "{r}");
        assert_eq!(r["forgotten"], 1, "{r}");
        assert!(nft_members("sshd_v4").is_empty());
        let listed = sb.json(&["list", "--json"]);
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["members"].as_array().unwrap().is_empty()),
            "{listed}"
        );
        // `ban JAIL` through the daemon: the jail's set and reason.
        let out = sb.ok(&["ban", "sshd", "198.51.100.77"]);
        assert!(out.contains("banned 1 target in set sshd"), "{out}");
        assert!(has("sshd_v4", "198.51.100.77"));
        assert_eq!(
            sb.json(&["status", "sshd", "--json"])["jail"]["banned"],
            serde_json::json!(["198.51.100.77"])
        );
        drop(w);
    });
}

#[test]
fn control_stdio_serves_the_protocol_without_a_daemon() {
    kernel_test("control_stdio", || {
        let (sb, _log) = sshd_sandbox("control-stdio");
        let input = [
            r#"{"v":1,"id":1,"op":"hello"}"#,
            r#"{"v":1,"id":2,"op":"ensure","set":"f2b-web","ports":"80,443"}"#,
            r#"{"v":1,"id":3,"op":"ban","set":"f2b-web","targets":["192.0.2.5","127.0.0.1"],"timeout":600,"reason":"fail2ban:web"}"#,
            r#"{"v":1,"id":4,"op":"status","jail":"web"}"#,
            r#"nonsense"#,
            r#"{"v":1,"id":5,"op":"unban","targets":["192.0.2.5"]}"#,
        ]
        .join("\n")
            + "\n";
        let out = sb.run_stdin(&["control", "--stdio"], input.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let replies: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(replies.len(), 6, "{replies:?}");
        assert_eq!(replies[0]["daemon"], false);
        assert_eq!(replies[1]["created"], true, "{}", replies[1]);
        assert_eq!(replies[2]["banned"], 1, "{}", replies[2]);
        assert_eq!(replies[2]["refused"][0]["target"], "127.0.0.1");
        assert_eq!(
            replies[3]["jail"]["banned"],
            serde_json::json!(["192.0.2.5"])
        );
        assert_eq!(replies[4]["ok"], false);
        assert_eq!(replies[5]["unbanned"], 1, "{}", replies[5]);
        assert!(nft_members("f2b-web_v4").is_empty());
    });
}
