//! `banset watch` end to end: the real binary follows a log file in a temp
//! dir and bans into real nftables sets, each test in its own network
//! namespace; plus `--check` and `regex-test`, which need no kernel.

// The shared sandbox uses network namespaces, which are Linux.
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::watcher::Watcher;
use common::{append, kernel_test, nft_members, syslog_date, wait_until, Sandbox};
use serde_json::Value;

fn nft_timeout(set: &str, member: &str) -> Option<u64> {
    let out = Command::new("nft")
        .args(["-j", "list", "set", "inet", "banset", set])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    for item in v["nftables"].as_array()? {
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            if e["elem"]["val"].as_str() == Some(member) {
                return e["elem"]["timeout"].as_u64();
            }
        }
    }
    None
}

fn sshd_fail(addr: &str) -> String {
    format!("mx sshd[4242]: Failed password for invalid user admin from {addr} port 50022 ssh2")
}

/// A config with one sshd jail on `log`, which is created (empty) when it
/// does not exist: a jail whose logpath matches no file is refused, as
/// fail2ban refuses it.
fn config(log: &Path, extra: &str) -> String {
    if !log.exists() {
        std::fs::write(log, "").unwrap();
    }
    format!(
        "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\nmaxretry = 3\nfindtime = \"10m\"\nbantime = \"1h\"\n{extra}\n[watch]\nkeeper_interval = \"1s\"\n",
        log.display()
    )
}

#[test]
fn bans_from_a_log_file_across_rotation_and_never_a_forged_address() {
    kernel_test(
        "bans_from_a_log_file_across_rotation_and_never_a_forged_address",
        || {
            let sb = Sandbox::new("watch-rotation");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, ""));
            append(&log, &[]);
            let w = Watcher::start(&sb);
            // Two failures, the log rotates (rename + create), the third lands in
            // the new file: three within findtime make the ban.
            append(&log, &[sshd_fail("203.0.113.7"), sshd_fail("203.0.113.7")]);
            append(&log, &["mx sshd[1]: Failed password for invalid user 6.6.6.6 from 198.51.100.44 port 22 ssh2".into()]);
            std::fs::rename(&log, sb.dir().join("auth.log.1")).unwrap();
            append(
                &log,
                &[
                    sshd_fail("203.0.113.7"),
                    sshd_fail("2001:db8::77"),
                    sshd_fail("2001:db8::77"),
                    sshd_fail("2001:db8::77"),
                ],
            );
            assert!(
                wait_until(|| nft_members("sshd_v4") == ["203.0.113.7"]),
                "{}",
                w.output()
            );
            assert!(
                wait_until(|| nft_members("sshd_v6") == ["2001:db8::77"]),
                "{}",
                w.output()
            );
            // copytruncate in the middle of another attacker's run
            append(&log, &[sshd_fail("192.0.2.55"), sshd_fail("192.0.2.55")]);
            assert!(wait_until(|| w.output().contains("watching:")));
            std::thread::sleep(Duration::from_millis(100));
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&log)
                .unwrap();
            append(&log, &[sshd_fail("192.0.2.55")]);
            assert!(
                wait_until(|| nft_members("sshd_v4").contains(&"192.0.2.55".to_string())),
                "{}",
                w.output()
            );
            let out = w.stop();
            assert!(!out.contains("6.6.6.6"), "a forged address was used: {out}");
            assert!(!nft_members("sshd_v4").contains(&"6.6.6.6".to_string()));
            assert!(
                out.contains("ban 203.0.113.7 jail=sshd set=sshd for 1h after 3 failures"),
                "{out}"
            );
            // The ledger agrees with the kernel.
            let listed = sb.json(&["list", "sshd", "--json"]);
            assert_eq!(
                listed[0]["members"].as_array().unwrap().len(),
                3,
                "{listed}"
            );
        },
    );
}

/// Issue 13.1 from the attacker's side: `logger -t sshd` with `from
/// 0.0.0.0` banned it, and its ledger row then broke every list and sync.
#[test]
fn log_lines_from_unspecified_addresses_ban_nothing_and_list_still_works() {
    kernel_test("log_lines_from_unspecified_addresses", || {
        let sb = Sandbox::new("watch-unspecified");
        let log = sb.dir().join("auth.log");
        let sb = sb.with_config(&config(&log, ""));
        append(&log, &[]);
        let w = Watcher::start(&sb);
        let mut lines = Vec::new();
        for addr in [
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "255.255.255.255",
            "ff02::1",
        ] {
            for _ in 0..3 {
                lines.push(sshd_fail(addr));
            }
        }
        // Read after the others: once it is banned, they were all seen.
        for _ in 0..3 {
            lines.push(sshd_fail("203.0.113.9"));
        }
        append(&log, &lines);
        assert!(
            wait_until(|| nft_members("sshd_v4") == ["203.0.113.9"]),
            "{}",
            w.output()
        );
        assert!(nft_members("sshd_v6").is_empty());
        let out = w.stop();
        assert!(
            !out.contains("ban 0.0.0.0") && !out.contains("ban ::"),
            "{out}"
        );
        let out = sb.run(&["list"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("unreadable"));
        sb.ok(&["sync"]);
    });
}

#[test]
fn a_restart_resumes_where_it_stopped_and_counts_no_line_twice() {
    kernel_test(
        "a_restart_resumes_where_it_stopped_and_counts_no_line_twice",
        || {
            let sb = Sandbox::new("watch-resume");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, ""));
            append(&log, &vec![sshd_fail("203.0.113.1"); 5]);
            let w = Watcher::start(&sb);
            // History before the first start is not news.
            append(&log, &[sshd_fail("203.0.113.9"), sshd_fail("203.0.113.9")]);
            assert!(wait_until(|| sb
                .ok(&["status", "--json"])
                .contains("\"lines\":2")));
            w.stop();
            // Written while the daemon was down: read after the restart.
            append(&log, &[sshd_fail("203.0.113.9")]);
            let w = Watcher::start(&sb);
            // Had the two old lines been counted again, this would be a ban.
            assert!(
                wait_until(|| sb.ok(&["status", "--json"]).contains("\"lines\":1")),
                "{}",
                w.output()
            );
            assert!(
                nft_members("sshd_v4").is_empty(),
                "{:?}",
                nft_members("sshd_v4")
            );
            append(&log, &[sshd_fail("203.0.113.9"), sshd_fail("203.0.113.9")]);
            assert!(
                wait_until(|| nft_members("sshd_v4") == ["203.0.113.9"]),
                "{}",
                w.output()
            );
            assert!(!nft_members("sshd_v4").contains(&"203.0.113.1".to_string()));
        },
    );
}

#[test]
fn lines_older_than_findtime_as_of_now_do_not_count_and_status_counts_them() {
    kernel_test(
        "lines_older_than_findtime_as_of_now_do_not_count_and_status_counts_them",
        || {
            let sb = Sandbox::new("watch-too-old");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, ""));
            append(&log, &[]);
            let w = Watcher::start(&sb);
            // Three failures dated ten days ago (a backlog read after
            // downtime), findtime 10 minutes, maxretry 3: fail2ban ignores
            // them, and so must banset.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let old = syslog_date(now - 10 * 86_400);
            append(
                &log,
                &vec![format!("{old} {}", sshd_fail("203.0.113.20")); 3],
            );
            assert!(
                wait_until(|| sb.ok(&["status", "--json"]).contains("\"too_old\":3")),
                "{}",
                w.output()
            );
            assert!(
                nft_members("sshd_v4").is_empty(),
                "{:?}",
                nft_members("sshd_v4")
            );
            let status = sb.ok(&["status"]);
            assert!(
                status.contains("3 lines older than 10m when read, not counted"),
                "{status}"
            );
            // Current failures of the same address still count from zero.
            append(&log, &vec![sshd_fail("203.0.113.20"); 2]);
            assert!(wait_until(|| sb
                .ok(&["status", "--json"])
                .contains("\"lines\":5")));
            assert!(nft_members("sshd_v4").is_empty());
            append(&log, &[sshd_fail("203.0.113.20")]);
            assert!(
                wait_until(|| nft_members("sshd_v4") == ["203.0.113.20"]),
                "{}",
                w.output()
            );
        },
    );
}

#[test]
fn sighup_reloads_without_losing_counts_and_a_bad_config_is_refused() {
    kernel_test(
        "sighup_reloads_without_losing_counts_and_a_bad_config_is_refused",
        || {
            let sb = Sandbox::new("watch-hup");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, ""));
            append(&log, &[]);
            let w = Watcher::start(&sb);
            append(
                &log,
                &[sshd_fail("198.51.100.3"), sshd_fail("198.51.100.3")],
            );
            assert!(wait_until(|| sb
                .ok(&["status", "--json"])
                .contains("\"failures\":2")));
            // A broken file is refused; the running configuration stays.
            std::fs::write(
                sb.dir().join("banset.toml"),
                "[jails.sshd]\nfilter = \"nope\"\n",
            )
            .unwrap();
            w.signal(libc::SIGHUP);
            assert!(
                wait_until(|| w.output().contains("reload refused")),
                "{}",
                w.output()
            );
            // A good one (bantime changed) is taken, counts kept.
            std::fs::write(
                sb.dir().join("banset.toml"),
                config(&log, "").replace("\"1h\"", "\"2h\""),
            )
            .unwrap();
            w.signal(libc::SIGHUP);
            assert!(
                wait_until(|| w.output().contains("reloaded:")),
                "{}",
                w.output()
            );
            append(&log, &[sshd_fail("198.51.100.3")]);
            assert!(
                wait_until(|| nft_members("sshd_v4") == ["198.51.100.3"]),
                "{}",
                w.output()
            );
            let t = nft_timeout("sshd_v4", "198.51.100.3").unwrap();
            assert!(t > 3600 && t <= 7200, "{t}");
        },
    );
}

#[test]
fn a_slow_reload_never_stops_the_loop_from_banning() {
    kernel_test("a_slow_reload_never_stops_the_loop_from_banning", || {
        let sb = Sandbox::new("watch-slow-reload");
        let log = sb.dir().join("auth.log");
        let sb = sb.with_config(&config(&log, ""));
        append(&log, &[]);
        let w = Watcher::start(&sb);
        // The config becomes a FIFO: reading it blocks until the test
        // writes it, a reload as slow as the test wants (standing for a
        // huge or hostile fail2ban tree).
        let fifo = sb.dir().join("config.fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::fs::rename(&fifo, sb.dir().join("banset.toml")).unwrap();
        w.signal(libc::SIGHUP);
        append(&log, &vec![sshd_fail("198.51.100.77"); 3]);
        let banned = wait_until(|| nft_members("sshd_v4") == ["198.51.100.77"]);
        // End the read whatever happened (a blocked loop would never stop).
        std::fs::write(sb.dir().join("banset.toml"), config(&log, "")).unwrap();
        assert!(banned, "no ban during the reload: {}", w.output());
        // A FIFO is no config the daemon trusts: the reload is refused.
        assert!(
            wait_until(|| w.output().contains("reload refused")),
            "{}",
            w.output()
        );
        let out = w.stop();
        assert!(out.contains("not a regular file"), "{out}");
    });
}

#[test]
fn repeat_offenders_get_longer_bans_and_recidive_bans_all_ports() {
    kernel_test(
        "repeat_offenders_get_longer_bans_and_recidive_bans_all_ports",
        || {
            let sb = Sandbox::new("watch-escalation");
            let log = sb.dir().join("auth.log");
            let extra = "escalation = { factor = 3, max = \"5h\" }\n[sets.sshd]\nports = \"22\"\n[recidive]\nbans = 3\nfindtime = \"1d\"\nbantime = \"1w\"\n";
            let sb = sb.with_config(&config(&log, extra));
            append(&log, &[]);
            let w = Watcher::start(&sb);
            let mut expected = Vec::new();
            for (round, want) in [(1, 3600u64), (2, 3 * 3600), (3, 5 * 3600)] {
                append(&log, &vec![sshd_fail("192.0.2.200"); 3]);
                assert!(
                    wait_until(
                        || nft_timeout("sshd_v4", "192.0.2.200").is_some_and(|t| t > want - 60)
                    ),
                    "round {round}: {:?} {}",
                    nft_timeout("sshd_v4", "192.0.2.200"),
                    w.output()
                );
                expected.push(want);
                // An admin lifts the ban; the history stays.
                sb.ok(&["del", "sshd", "192.0.2.200"]);
            }
            assert!(
                wait_until(|| nft_members("recidive_v4") == ["192.0.2.200"]),
                "{}",
                w.output()
            );
            let t = nft_timeout("recidive_v4", "192.0.2.200").unwrap();
            assert!(t > 7 * 86_400 - 60, "{t}");
            // The recidive set's rule has no port: it blocks everything.
            let rules = Command::new("nft")
                .args(["list", "chain", "inet", "banset", "input"])
                .output()
                .unwrap();
            let rules = String::from_utf8_lossy(&rules.stdout);
            let recidive_rule = rules.lines().find(|l| l.contains("@recidive_v4")).unwrap();
            assert!(!recidive_rule.contains("dport"), "{rules}");
            assert!(
                rules
                    .lines()
                    .any(|l| l.contains("@sshd_v4 ") && l.contains("dport @sshd_ports")),
                "{rules}"
            );
            drop(w);
        },
    );
}

/// The start-up restore stopped at the first set it could not sync, and a
/// ledger row it could not read stopped its set (issue 13.1): every other
/// set stayed empty after a reboot.
#[test]
fn start_up_restore_goes_on_past_a_failing_set_and_an_unreadable_row() {
    kernel_test("start_up_restore_goes_on", || {
        let sb = Sandbox::new("watch-restore-each");
        let log = sb.dir().join("auth.log");
        let sb = sb.with_config(&config(&log, ""));
        sb.ok(&["add", "f2b-a", "192.0.2.1"]);
        sb.ok(&["add", "f2b-b", "192.0.2.2"]);
        sb.ok(&["add", "f2b-c", "192.0.2.3"]);
        let db = rusqlite::Connection::open(sb.dir().join("state/ledger.db")).unwrap();
        // f2b-b on a backend this host lacks (no firewalld here); f2b-c
        // holds a row an older banset took from a log line.
        db.execute_batch(
            r#"UPDATE sets SET spec = replace(spec, '"nftables"', '"firewalld"') WHERE name = 'f2b-b';
               INSERT INTO bans (set_name, target, start) VALUES ('f2b-c', '0.0.0.0', 0);"#,
        )
        .unwrap();
        drop(db);
        assert!(Command::new("nft")
            .args(["flush", "ruleset"])
            .status()
            .unwrap()
            .success());
        append(&log, &[]);
        let w = Watcher::start(&sb);
        assert!(
            wait_until(|| nft_members("f2b-a_v4") == ["192.0.2.1"]
                && nft_members("f2b-c_v4") == ["192.0.2.3"]),
            "{}",
            w.output()
        );
        let out = w.stop();
        assert!(out.contains("sync f2b-b failed, will retry"), "{out}");
        assert!(
            out.contains(r#"f2b-c: skipped unreadable ledger row "0.0.0.0""#),
            "{out}"
        );
    });
}

#[test]
fn the_keeper_restores_a_flushed_ruleset_and_restarts_restore_from_the_ledger() {
    kernel_test(
        "the_keeper_restores_a_flushed_ruleset_and_restarts_restore_from_the_ledger",
        || {
            let sb = Sandbox::new("watch-keeper");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, ""));
            sb.ok(&[
                "add",
                "manual",
                "192.0.2.1",
                "198.51.100.0/24",
                "--timeout",
                "1d",
            ]);
            sb.ok(&["add", "short", "192.0.2.2", "--timeout", "2s"]);
            append(&log, &[]);
            let w = Watcher::start(&sb);
            let flushed = Instant::now();
            assert!(Command::new("nft")
                .args(["flush", "ruleset"])
                .status()
                .unwrap()
                .success());
            assert!(
                wait_until(|| nft_members("manual_v4") == ["192.0.2.1"]),
                "{}",
                w.output()
            );
            eprintln!("flushed ruleset restored within {:?}", flushed.elapsed());
            // The short ban runs out: the keeper says so and the ledger forgets it.
            assert!(
                wait_until(|| w.output().contains("unban 192.0.2.2 set=short")),
                "{}",
                w.output()
            );
            let out = w.stop();
            assert!(out.contains("repair manual"), "{out}");
            // Down, the firewall loses everything; the next start restores it.
            assert!(Command::new("nft")
                .args(["flush", "ruleset"])
                .status()
                .unwrap()
                .success());
            let _w = Watcher::start(&sb);
            assert_eq!(nft_members("manual_v4"), ["192.0.2.1"]);
            let v4net = Command::new("nft")
                .args(["list", "set", "inet", "banset", "manual_v4net"])
                .output()
                .unwrap();
            assert!(String::from_utf8_lossy(&v4net.stdout).contains("198.51.100.0/24"));
        },
    );
}

#[test]
fn journal_sources_follow_journalctl_and_resume_after_its_cursor() {
    // No systemd journal runs in CI or in this sandbox, so journalctl is a
    // stand-in script: it records its argv and replays a JSON file the test
    // appends to, as `journalctl -f -o json` would print.
    kernel_test(
        "journal_sources_follow_journalctl_and_resume_after_its_cursor",
        || {
            let sb = Sandbox::new("watch-journal");
            let journal = sb.dir().join("journal.json");
            let argv = sb.dir().join("argv");
            let pidfile = sb.dir().join("journalctl.pid");
            std::fs::write(&journal, "").unwrap();
            let fake = sb.file(
            "journalctl",
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\ncase \"$*\" in *--follow*) ;; *) exit 0;; esac\necho $$ > '{}'\nstart=1\nfor a in \"$@\"; do case \"$a\" in --after-cursor=c*) start=$(( ${{a#--after-cursor=c}} + 1 ));; esac; done\nexec tail -n +$start -f '{}'\n",
                argv.display(),
                pidfile.display(),
                journal.display()
            ),
        );
            std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let sb = sb.with_config(&format!(
            "[jails.mail]\nfilter = \"postfix-sasl\"\njournalmatch = [\"_SYSTEMD_UNIT=postfix@-.service\"]\nmaxretry = 2\n[watch]\njournalctl = \"{}\"\n",
            fake.display()
        ));
            let w = Watcher::start(&sb);
            assert!(wait_until(
                || std::fs::read_to_string(&argv).is_ok_and(|a| a.contains("--lines=0"))
            ));
            let entry = |n: u32, addr: &str| {
                format!(
                "{{\"__CURSOR\":\"c{n}\",\"__REALTIME_TIMESTAMP\":\"{}000000\",\"_HOSTNAME\":\"mx\",\"SYSLOG_IDENTIFIER\":\"postfix/smtpd\",\"_PID\":\"9\",\"MESSAGE\":\"warning: unknown[{addr}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\"}}",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
            )
            };
            append(
                &journal,
                &[entry(1, "203.0.113.50"), entry(2, "203.0.113.50")],
            );
            assert!(
                wait_until(|| nft_members("mail_v4") == ["203.0.113.50"]),
                "{}",
                w.output()
            );
            // journalctl dies: restarted after the last cursor seen.
            let pid: i32 = std::fs::read_to_string(&pidfile)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            // SAFETY: kill(2) on the stand-in journalctl (exec'd as tail).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            assert!(
                wait_until(|| std::fs::read_to_string(&argv)
                    .is_ok_and(|a| a.contains("--after-cursor=c2"))),
                "{}",
                w.output()
            );
            assert!(w.output().contains("restarting"), "{}", w.output());
        },
    );
}

#[test]
fn journal_resume_after_a_reboot_skipped_what_was_logged_after_the_cursor_in_the_boot_before() {
    // journalctl 252 adds "this boot" by itself when it follows, so
    // `--follow --after-cursor=C` with C in the boot before the reboot
    // skipped every entry of that boot after C: failures logged between
    // the daemon's stop and the reboot were never counted (found by
    // vm-tests/systemd's reboot scenario). The stand-in filters like 252:
    // following, only entries of "this boot" (a file the test changes to
    // reboot) or of --boot=; without --follow, every boot.
    kernel_test(
        "journal_resume_after_a_reboot_skipped_what_was_logged_after_the_cursor_in_the_boot_before",
        || {
            let sb = Sandbox::new("watch-journal-reboot");
            let journal = sb.dir().join("journal.json");
            let argv = sb.dir().join("argv");
            let bootfile = sb.dir().join("boot");
            let own = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .unwrap()
                .trim()
                .replace('-', "");
            let next_boot = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
            std::fs::write(&bootfile, &own).unwrap();
            // Line N of the file is the entry with cursor cN.
            let entry = |n: u32, boot: &str, msg: &str| {
                format!(
                    "{{\"__CURSOR\":\"c{n}\",\"_BOOT_ID\":\"{boot}\",\"__REALTIME_TIMESTAMP\":\"{}000000\",\"_HOSTNAME\":\"mx\",\"SYSLOG_IDENTIFIER\":\"postfix/smtpd\",\"_PID\":\"9\",\"MESSAGE\":\"{msg}\"}}",
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
                )
            };
            let failure = |addr: &str| {
                format!("warning: unknown[{addr}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6")
            };
            std::fs::write(&journal, format!("{}\n", entry(1, &own, "started"))).unwrap();
            let fake = sb.file(
                "journalctl",
                &format!(
                    "#!/bin/sh\n\
                     boot=$(cat '{bootfile}')\n\
                     follow=no\n\
                     start=$(($(wc -l < '{journal}') + 1))\n\
                     for a in \"$@\"; do case \"$a\" in\n\
                       --follow) follow=yes;;\n\
                       --boot=*) boot=${{a#--boot=}};;\n\
                       --after-cursor=c*) start=$(( ${{a#--after-cursor=c}} + 1 ));;\n\
                       --lines=1) exec tail -n 1 '{journal}';;\n\
                     esac; done\n\
                     printf '%s\\n' \"$*\" >> '{argv}'\n\
                     [ $follow = yes ] || exec tail -n +$start '{journal}'\n\
                     n=0\n\
                     while :; do\n\
                       if IFS= read -r line; then\n\
                         n=$((n + 1))\n\
                         [ $n -lt $start ] && continue\n\
                         case \"$line\" in *\"\\\"_BOOT_ID\\\":\\\"$boot\\\"\"*) printf '%s\\n' \"$line\";; esac\n\
                       else sleep 0.1; fi\n\
                     done < '{journal}'\n",
                    argv = argv.display(),
                    bootfile = bootfile.display(),
                    journal = journal.display()
                ),
            );
            std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let sb = sb.with_config(&format!(
                "[jails.mail]\nfilter = \"postfix-sasl\"\njournalmatch = [\"_SYSTEMD_UNIT=postfix@-.service\"]\nmaxretry = 2\n[watch]\njournalctl = \"{}\"\n",
                fake.display()
            ));
            let following = |cursor: &str| {
                wait_until(|| {
                    std::fs::read_to_string(&argv).is_ok_and(|a| {
                        a.lines()
                            .any(|l| l.contains("--follow") && l.contains(cursor))
                    })
                })
            };
            let w = Watcher::start(&sb);
            assert!(following("--follow"), "{}", w.output());
            append(
                &journal,
                &[
                    entry(2, &own, &failure("203.0.113.60")),
                    entry(3, &own, &failure("203.0.113.60")),
                ],
            );
            assert!(
                wait_until(|| nft_members("mail_v4") == ["203.0.113.60"]),
                "{}",
                w.output()
            );
            let out = w.stop();
            // Logged while the daemon is down, then the reboot.
            append(
                &journal,
                &[
                    entry(4, &own, &failure("203.0.113.61")),
                    entry(5, &own, &failure("203.0.113.61")),
                    entry(6, next_boot, "started"),
                ],
            );
            std::fs::write(&bootfile, next_boot).unwrap();
            let w = Watcher::start(&sb);
            assert!(following("--after-cursor=c"), "{out}\n{}", w.output());
            assert!(
                wait_until(|| nft_members("mail_v4").contains(&"203.0.113.61".to_string())),
                "{out}\n{}\n{}",
                w.output(),
                std::fs::read_to_string(&argv).unwrap_or_default()
            );
        },
    );
}

#[test]
fn journal_follow_reads_nothing_in_a_container_that_fakes_the_boot_id() {
    // systemd-nspawn fakes the container's boot ID with a bind mount over
    // /proc/sys/kernel/random/boot_id; the unit's sandbox gives banset a
    // fresh procfs showing the host's. journalctl 252 with `--follow` and
    // neither `--boot` nor `--merge` keeps only entries of the boot ID it
    // reads from /proc, so it printed nothing, forever. The stand-in does
    // the same: the journal's entries carry another boot ID (the
    // container's, as journald stamps them) than this machine's /proc.
    kernel_test(
        "journal_follow_reads_nothing_in_a_container_that_fakes_the_boot_id",
        || {
            let sb = Sandbox::new("watch-journal-boot");
            let journal = sb.dir().join("journal.json");
            let argv = sb.dir().join("argv");
            let container_boot = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
            let entry = |n: u32, boot: &str, addr: &str| {
                format!(
                    "{{\"__CURSOR\":\"c{n}\",\"_BOOT_ID\":\"{boot}\",\"__REALTIME_TIMESTAMP\":\"{}000000\",\"_HOSTNAME\":\"mx\",\"SYSLOG_IDENTIFIER\":\"postfix/smtpd\",\"_PID\":\"9\",\"MESSAGE\":\"warning: unknown[{addr}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\"}}",
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
                )
            };
            // journald's own first entry of the container's boot.
            std::fs::write(
                &journal,
                format!(
                    "{{\"__CURSOR\":\"c0\",\"_BOOT_ID\":\"{container_boot}\",\"MESSAGE\":\"Journal started\"}}\n"
                ),
            )
            .unwrap();
            let fake = sb.file(
                "journalctl",
                &format!(
                    "#!/bin/sh\n\
                     printf '%s\\n' \"$*\" >> '{argv}'\n\
                     boot=$(tr -d '-' < /proc/sys/kernel/random/boot_id)\n\
                     follow=no\n\
                     for a in \"$@\"; do case \"$a\" in --follow) follow=yes;; --boot=*) boot=${{a#--boot=}};; esac; done\n\
                     [ $follow = yes ] || exec tail -n 1 '{journal}'\n\
                     while :; do\n\
                       if IFS= read -r line; then\n\
                         case \"$line\" in *\"\\\"_BOOT_ID\\\":\\\"$boot\\\"\"*) printf '%s\\n' \"$line\";; esac\n\
                       else sleep 0.1; fi\n\
                     done < '{journal}'\n",
                    argv = argv.display(),
                    journal = journal.display()
                ),
            );
            std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            let sb = sb.with_config(&format!(
                "[jails.mail]\nfilter = \"postfix-sasl\"\njournalmatch = [\"_SYSTEMD_UNIT=postfix@-.service\"]\nmaxretry = 2\n[watch]\njournalctl = \"{}\"\n",
                fake.display()
            ));
            let w = Watcher::start(&sb);
            assert!(
                wait_until(|| std::fs::read_to_string(&argv).is_ok_and(|a| a.contains("--follow"))),
                "{}",
                w.output()
            );
            append(
                &journal,
                &[
                    entry(1, container_boot, "203.0.113.51"),
                    entry(2, container_boot, "203.0.113.51"),
                ],
            );
            assert!(
                wait_until(|| nft_members("mail_v4") == ["203.0.113.51"]),
                "{}\n{}",
                w.output(),
                std::fs::read_to_string(&argv).unwrap_or_default()
            );
            assert!(
                w.output()
                    .contains(&format!("following boot {container_boot}")),
                "{}",
                w.output()
            );
        },
    );
}

#[test]
fn check_validates_and_names_file_line_and_key() {
    let sb = Sandbox::new("watch-check");
    let log = sb.dir().join("auth.log");
    let sb = sb.with_config(&config(&log, "[sets.sshd]\nports = [22, \"2222\"]\n"));
    let out = sb.ok(&["watch", "--check"]);
    assert!(out.contains("jail sshd: filter sshd"), "{out}");
    assert!(out.contains("tcp ports 22,2222"), "{out}");
    let sb =
        sb.with_config("\n[jails.sshd]\nlogpath = [\"/var/log/auth.log\"]\nfilter = \"ssdh\"\n");
    let out = sb.run(&["watch", "--check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("banset.toml: line 4: jails.sshd.filter: unknown filter \"ssdh\""),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("banset:")).count(),
        1,
        "{err}"
    );
    let sb = sb.with_config("[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"/l\"]\nmaxrety = 3\n");
    let out = sb.run(&["watch", "--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 4"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn regex_test_reports_counts_per_regex_and_json() {
    let sb = Sandbox::new("regex-test");
    let log = sb.file(
        "auth.log",
        &[
            "Nov 21 12:00:00 mx sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
            "Nov 21 12:00:01 mx sshd[1]: Accepted publickey for bob from 192.0.2.1 port 22 ssh2: ED25519 SHA256:x",
            "2026-11-21T12:00:02.5+00:00 mx sshd[1]: Invalid user 6.6.6.6 from 2001:db8::5 port 22",
            "Nov 21 12:00:03 mx sshd[1]: Failed password for invalid user 6.6.6.6 from 203.0.113.5 port 22 ssh2",
            "garbage \u{0}\u{1}",
        ]
        .join("\n"),
    );
    let out = sb.ok(&["regex-test", log.to_str().unwrap(), "sshd"]);
    assert!(
        out.contains("Lines: 5 lines, 3 matched, 0 ignored, 2 missed"),
        "{out}"
    );
    assert!(out.contains(" 1) [2] "), "{out}");
    assert!(out.contains(" 2) [1] "), "{out}");
    assert!(out.contains("Addresses: 2 distinct"), "{out}");
    let json = sb.ok(&["regex-test", log.to_str().unwrap(), "sshd", "--json"]);
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["address"], "203.0.113.5");
    assert_eq!(lines[1]["address"], "2001:db8::5");
    assert_eq!(lines[1]["regex"], 1);
    assert_eq!(lines[2]["address"], "203.0.113.5");
    assert_eq!(lines[3]["totals"]["matched"], 3);
    assert_eq!(lines[3]["totals"]["addresses"], 2);
    let printed = sb.ok(&[
        "regex-test",
        log.to_str().unwrap(),
        r"Invalid user \S+ from <HOST>",
        "--print-matched",
    ]);
    assert!(
        printed.starts_with("2026-11-21T12:00:02.5+00:00 mx sshd[1]: Invalid user"),
        "{printed}"
    );
    let ignored = sb.ok(&[
        "regex-test",
        log.to_str().unwrap(),
        "sshd",
        "--ignoreregex",
        "invalid user",
    ]);
    assert!(ignored.contains("2 matched, 1 ignored"), "{ignored}");
    let out = sb.run(&["regex-test", log.to_str().unwrap(), "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown filter \"nosuch\""));
    let out = sb.run(&["regex-test", "/nonexistent/log", "sshd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/log"));
}

#[test]
fn check_says_the_daemon_changes_new_ports_in_place_and_keeps_what_cannot_change() {
    kernel_test(
        "check_says_the_daemon_changes_new_ports_in_place_and_keeps_what_cannot_change",
        || {
            let sb = Sandbox::new("check-kept-set");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, "[sets.sshd]\nports = \"22\"\n"));
            let out = sb.ok(&["watch", "--check"]);
            assert!(out.contains("tcp ports 22"), "{out}");
            assert!(!out.contains("not applied"), "{out}");
            sb.ok(&["create", "sshd", "--ports", "22"]);
            // The set exists as configured: nothing to say.
            let out = sb.ok(&["watch", "--check"]);
            assert!(
                !out.contains("not applied") && !out.contains("will change"),
                "{out}"
            );
            // New ports in the config: the daemon changes the set in place,
            // and --check says so (it used to show the new ports while the
            // daemon kept the old ones).
            let sb = sb.with_config(&config(&log, "[sets.sshd]\nports = \"22,2222\"\n"));
            let out = sb.ok(&["watch", "--check"]);
            assert!(out.contains("tcp ports 22,2222"), "{out}");
            assert!(
                out.contains("will change in place, keeping every ban: ports 22 -> 22, 2222"),
                "{out}"
            );
            // A change that cannot be made in place is kept, and why is said.
            let sb = sb.with_config(&config(
                &log,
                "[sets.sshd]\nports = \"22\"\nfamily = \"inet\"\n",
            ));
            let out = sb.ok(&["watch", "--check"]);
            assert!(
                out.contains("not applied: the ledger has set sshd as")
                    && out.contains("family both -> inet: the kernel sets are made per family"),
                "{out}"
            );
        },
    );
}

/// The oracle's `expires` of `member` in `set` (seconds left).
fn nft_expires(set: &str, member: &str) -> Option<u64> {
    let out = Command::new("nft")
        .args(["-j", "list", "set", "inet", "banset", set])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["nftables"].as_array()?.iter().find_map(|item| {
        item["set"]["elem"]
            .as_array()?
            .iter()
            .find(|e| e["elem"]["val"].as_str() == Some(member))
            .and_then(|e| e["elem"]["expires"].as_u64())
    })
}

/// The ports of the set's hook, from `nft -j`.
fn nft_ports(set: &str) -> Vec<u64> {
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
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut ports: Vec<u64> = v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["set"]["elem"].as_array())
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    ports.sort_unstable();
    ports
}

#[test]
fn a_reload_that_changes_a_sets_ports_applies_them_in_place_keeping_every_ban() {
    kernel_test(
        "a_reload_that_changes_a_sets_ports_applies_them_in_place_keeping_every_ban",
        || {
            let sb = Sandbox::new("watch-reload-ports");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, "[sets.sshd]\nports = \"22\"\n"));
            let w = Watcher::start(&sb);
            sb.ok(&["add", "sshd", "198.51.100.7", "--timeout", "3h"]);
            sb.ok(&["add", "sshd", "198.51.100.8", "--timeout", "permanent"]);
            let left = nft_expires("sshd_v4", "198.51.100.7").unwrap();
            assert_eq!(nft_ports("sshd"), [22]);
            // Other ports and another maxelem (which rebuilds the kernel set).
            std::fs::write(
                sb.dir().join("banset.toml"),
                config(&log, "[sets.sshd]\nports = \"22,2222\"\nmaxelem = 5000\n"),
            )
            .unwrap();
            w.signal(libc::SIGHUP);
            assert!(
                wait_until(|| w.output().contains("set sshd: changed in place")),
                "{}",
                w.output()
            );
            assert!(
                w.output()
                    .contains("(maxelem 1048576 -> 5000, ports 22 -> 22, 2222), every ban kept"),
                "{}",
                w.output()
            );
            assert_eq!(nft_ports("sshd"), [22, 2222]);
            assert_eq!(nft_members("sshd_v4"), ["198.51.100.7", "198.51.100.8"]);
            let now = nft_expires("sshd_v4", "198.51.100.7").unwrap();
            assert!(now <= left && left - now < 60, "{left} -> {now}");
            assert_eq!(
                nft_expires("sshd_v4", "198.51.100.8"),
                None,
                "still permanent"
            );
            // The ledger has the new spec: --check has nothing left to apply.
            let out = sb.ok(&["watch", "--check"]);
            assert!(
                !out.contains("will change") && !out.contains("not applied"),
                "{out}"
            );
            // The daemon bans into the changed set as before.
            append(
                &log,
                &[
                    sshd_fail("203.0.113.9"),
                    sshd_fail("203.0.113.9"),
                    sshd_fail("203.0.113.9"),
                ],
            );
            assert!(
                wait_until(|| nft_members("sshd_v4").len() == 3),
                "{}",
                w.output()
            );
            let out = w.stop();
            assert!(!out.contains("keeping the ledger's"), "{out}");
        },
    );
}

#[test]
fn counts_of_one_are_singular_in_messages() {
    let sb = Sandbox::new("singular");
    let log = sb.file("auth.log", &sshd_fail("203.0.113.5"));
    let out = sb.ok(&["regex-test", log.to_str().unwrap(), "sshd"]);
    assert!(out.contains("Lines: 1 line, 1 matched"), "{out}");
    let sb = sb.with_config(&format!(
        "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\nmaxretry = 1\nfindtime = \"10m\"\nbantime = \"1h\"\n",
        log.display()
    ));
    let out = sb.ok(&["watch", "--check"]);
    assert!(out.contains("filter sshd, 1 failure in 600s"), "{out}");
}

#[test]
fn a_missing_input_file_is_a_usage_error_in_every_command() {
    // DESIGN: 2 for what the user can fix (a wrong path), 3 for kernel,
    // permission and I/O failures. regex-test said 3 for a missing log.
    let sb = Sandbox::new("missing-input");
    for args in [
        &["regex-test", "/nonexistent/log", "sshd"][..],
        &["add", "x", "--file", "/nonexistent/list", "--dry-run"],
        &["regex-test", "/etc/hostname/x", "sshd"],
    ] {
        let out = sb.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("/nonexistent") || err.contains("/etc/hostname/x"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_banset"))
        .args(["--state-dir", sb.dir().to_str().unwrap()])
        .args(["--config", "/nonexistent/banset.toml", "watch", "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("config /nonexistent/banset.toml"), "{err}");
}

#[test]
fn regex_test_runs_a_fail2ban_filter_file_with_its_mode_and_lines() {
    let sb = Sandbox::new("regex-test-f2b");
    let filter_d = sb.dir().join("f2b/filter.d");
    std::fs::create_dir_all(&filter_d).unwrap();
    std::fs::write(
        filter_d.join("common.conf"),
        "[DEFAULT]\n__prefix = \\s*\\S+ <_daemon>\\[\\d+\\]:\\s+\n",
    )
    .unwrap();
    // Multi-line (the address is on the ACCEPT line, the failure on a
    // later one), with a mode that adds a one-line failregex.
    std::fs::write(
        filter_d.join("ldapish.conf"),
        "[INCLUDES]\nbefore = common.conf\n[Definition]\n_daemon = slapd\nnormal = ^%(__prefix)sconn=(?P<_c>\\d+) ACCEPT from IP=<HOST>\\s*<SKIPLINES>%(__prefix)sconn=(?P=_c) RESULT err=49$\naggressive = <normal>\n             ^%(__prefix)sprobe from <HOST>$\nfailregex = <<mode>>\nmode = normal\nmaxlines = 5\n",
    )
    .unwrap();
    let log = sb.file(
        "slapd.log",
        &[
            "Nov 21 12:00:00 ldap slapd[1]: conn=1 ACCEPT from IP=203.0.113.7",
            "Nov 21 12:00:00 ldap slapd[1]: conn=2 ACCEPT from IP=203.0.113.8",
            "Nov 21 12:00:01 ldap slapd[1]: conn=1 BIND dn=x",
            "Nov 21 12:00:02 ldap slapd[1]: conn=1 RESULT err=49",
            "Nov 21 12:00:02 ldap slapd[1]: conn=2 RESULT err=0",
            "Nov 21 12:00:03 ldap slapd[1]: probe from 203.0.113.9",
        ]
        .join("\n"),
    );
    let file = filter_d.join("ldapish.conf");
    let out = sb.ok(&["regex-test", log.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(out.contains("Filter: ldapish (1 failregex)"), "{out}");
    assert!(
        out.contains("Lines: 6 lines, 1 matched, 0 ignored, 5 missed"),
        "{out}"
    );
    assert!(out.contains("  203.0.113.7 1"), "{out}");
    let aggressive = format!("{}[mode=aggressive]", file.display());
    let out = sb.ok(&["regex-test", log.to_str().unwrap(), &aggressive]);
    assert!(out.contains("2 matched"), "{out}");
    assert!(out.contains("  203.0.113.9 1"), "{out}");
    // A filter file outside a filter.d cannot find its includes.
    let stray = sb.file("stray.conf", "[Definition]\nfailregex = ^x <HOST>$\n");
    let out = sb.run(&["regex-test", log.to_str().unwrap(), stray.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("filter.d directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_keeper_restores_ipset_sets_and_their_rule() {
    kernel_test("the_keeper_restores_ipset_sets_and_their_rule", || {
        let sb = Sandbox::new("watch-ipset");
        let sb = sb.with_config("[sets.legacy]\nbackend = \"ipset\"\nports = \"25\"\n[watch]\nkeeper_interval = \"1s\"\n");
        // [sets.legacy] tells `add` how to create the set.
        sb.ok(&["add", "legacy", "192.0.2.9", "--timeout", "1d"]);
        let iptables = |args: &[&str]| {
            let out = Command::new("iptables").args(args).output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let rules = iptables(&["-w", "-S", "INPUT"]);
        assert!(
            rules.contains("--match-set legacy src") && rules.contains("--dports 25"),
            "{rules}"
        );
        let w = Watcher::start(&sb);
        // Someone removes the rules and destroys the sets (a firewall
        // reload). The keeper may put a rule back in between: retry.
        let mut destroyed = false;
        for _ in 0..50 {
            for tool in ["iptables", "ip6tables"] {
                while Command::new(tool)
                    .args(["-w", "-D", "INPUT", "1"])
                    .status()
                    .unwrap()
                    .success()
                {}
            }
            let ok = ["legacy", "legacy6"].iter().all(|set| {
                let st = Command::new("ipset")
                    .args(["destroy", set])
                    .stderr(Stdio::null())
                    .status();
                st.unwrap().success()
            });
            if ok {
                destroyed = true;
                break;
            }
        }
        assert!(destroyed, "could not destroy the sets: {}", w.output());
        assert!(
            wait_until(|| {
                let out = Command::new("ipset")
                    .args(["list", "legacy"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).contains("192.0.2.9 timeout")
            }),
            "{}",
            w.output()
        );
        assert!(wait_until(
            || iptables(&["-w", "-S", "INPUT"]).contains("--match-set legacy src")
        ));
        assert!(w.stop().contains("repair legacy"));
    });
}

#[test]
fn a_new_host_address_is_never_banned() {
    kernel_test("a_new_host_address_is_never_banned", || {
        let sb = Sandbox::new("watch-hostaddr");
        let log = sb.dir().join("auth.log");
        let sb = sb.with_config(&config(&log, ""));
        append(&log, &[]);
        let w = Watcher::start(&sb);
        assert!(Command::new("ip")
            .args(["addr", "add", "203.0.113.77/32", "dev", "lo"])
            .status()
            .unwrap()
            .success());
        assert!(
            wait_until(|| w.output().contains("host addresses changed")),
            "{}",
            w.output()
        );
        append(&log, &vec![sshd_fail("203.0.113.77"); 3]);
        append(&log, &vec![sshd_fail("203.0.113.78"); 3]);
        assert!(
            wait_until(|| nft_members("sshd_v4") == ["203.0.113.78"]),
            "{}",
            w.output()
        );
        assert!(!nft_members("sshd_v4").contains(&"203.0.113.77".to_string()));
    });
}

#[test]
fn the_systemd_unit_is_valid() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("the_systemd_unit_is_valid: skipped: systemd-analyze is not installed");
        return;
    };
    assert!(out.status.success());
    let sb = Sandbox::new("unit");
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contrib/systemd/banset.service"
    ))
    .unwrap();
    // Point it at the binary under test, so the check covers the ExecStart lines too.
    let unit = unit.replace("/usr/local/bin/banset", env!("CARGO_BIN_EXE_banset"));
    let path = sb.file("banset.service", &unit);
    // verify opens every `Documentation=man:` page: show it the pages this
    // binary generates, laid out as man looks for them.
    let generated = sb.dir().join("generated");
    std::fs::create_dir_all(&generated).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_banset"))
        .args(["generate", "man"])
        .arg(&generated)
        .status()
        .unwrap();
    assert!(status.success());
    let manpath = sb.dir().join("man");
    for page in std::fs::read_dir(&generated).unwrap() {
        let page = page.unwrap().path();
        let section = page.extension().unwrap().to_str().unwrap();
        let dir = manpath.join(format!("man{section}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::rename(&page, dir.join(page.file_name().unwrap())).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .env("MANPATH", &manpath)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Complaints about other units of this machine are not ours.
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("banset.service"))
        .collect();
    assert!(ours.is_empty(), "{err}");
    assert!(unit.contains("CapabilityBoundingSet=CAP_NET_ADMIN\n"));
    assert!(unit.contains("ProtectSystem=strict") && unit.contains("PrivateTmp=yes"));
    // The read-only system must still let the daemon write the textfile
    // directory the README and the sample config document.
    let documented = "/var/lib/prometheus/node-exporter";
    for doc in ["/../README.md", "/../contrib/banset.toml"] {
        let text = std::fs::read_to_string(format!("{}{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(text.contains(&format!("{documented}/banset.prom")), "{doc}");
    }
    assert!(
        unit.contains(&format!("ReadWritePaths=-{documented}\n")),
        "the unit does not let banset write {documented}"
    );
}

fn metric(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    label: Option<(&str, &str)>,
) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid exposition text")
}

#[test]
fn metrics_go_to_a_textfile_and_a_loopback_endpoint_in_prometheus_format() {
    kernel_test(
        "metrics_go_to_a_textfile_and_a_loopback_endpoint_in_prometheus_format",
        || {
            let sb = Sandbox::new("watch-metrics");
            let log = sb.dir().join("auth.log");
            let prom = sb.dir().join("banset.prom");
            let extra = format!(
            "[watch]\nmetrics_file = \"{}\"\nmetrics_interval = \"1s\"\nmetrics_listen = \"127.0.0.1:19731\"\n",
            prom.display()
        );
            let sb = sb.with_config(
                &config(&log, "").replace("[watch]\nkeeper_interval = \"1s\"\n", &extra),
            );
            append(&log, &[]);
            let w = Watcher::start(&sb);
            append(&log, &vec![sshd_fail("203.0.113.21"); 3]);
            append(&log, &[sshd_fail("203.0.113.22")]);
            assert!(
                wait_until(|| nft_members("sshd_v4") == ["203.0.113.21"]),
                "{}",
                w.output()
            );
            let read = || std::fs::read_to_string(&prom).unwrap_or_default();
            assert!(
                wait_until(|| read().contains("banset_jail_bans_total{jail=\"sshd\"} 1")),
                "{}\n{}",
                read(),
                w.output()
            );
            let scrape = parse_metrics(&read());
            assert_eq!(metric(&scrape, "banset_up", None), Some(1.0));
            assert_eq!(
                metric(&scrape, "banset_set_bans", Some(("set", "sshd"))),
                Some(1.0)
            );
            assert_eq!(
                metric(
                    &scrape,
                    "banset_jail_failures_total",
                    Some(("jail", "sshd"))
                ),
                Some(4.0)
            );
            assert_eq!(
                metric(
                    &scrape,
                    "banset_jail_failing_addresses",
                    Some(("jail", "sshd"))
                ),
                Some(1.0)
            );
            let source = log.display().to_string();
            assert_eq!(
                metric(
                    &scrape,
                    "banset_source_lines_total",
                    Some(("source", &source))
                ),
                Some(4.0)
            );
            assert_eq!(
                metric(&scrape, "banset_errors_total", Some(("kind", "ban"))),
                Some(0.0)
            );
            assert!(metric(&scrape, "banset_repairs_total", None).is_some());
            assert!(metric(&scrape, "banset_last_heal_seconds", None).is_some());
            // The same text over HTTP on loopback.
            let mut conn = std::net::TcpStream::connect("127.0.0.1:19731").unwrap();
            conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut reply = String::new();
            std::io::Read::read_to_string(&mut conn, &mut reply).unwrap();
            let (head, body) = reply.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
            let scrape = parse_metrics(body);
            assert_eq!(
                metric(&scrape, "banset_jail_bans_total", Some(("jail", "sshd"))),
                Some(1.0)
            );
        },
    );
}

#[test]
fn metrics_textfile_never_follows_a_planted_symlink_and_is_0644_under_umask_0077() {
    kernel_test(
        "metrics_textfile_never_follows_a_planted_symlink_and_is_0644_under_umask_0077",
        || {
            use std::os::unix::fs::MetadataExt;
            use std::os::unix::process::CommandExt;
            let sb = Sandbox::new("watch-metrics-symlink");
            let log = sb.dir().join("auth.log");
            // The exporter's directory belongs to another user; the victim
            // stands for the ledger or /etc/shadow.
            let textdir = sb.dir().join("node-exporter");
            std::fs::create_dir(&textdir).unwrap();
            let victim = sb.file("victim", "precious\n");
            for planted in ["banset.prom.tmp", ".banset.prom.tmp", "banset.prom"] {
                std::os::unix::fs::symlink(&victim, textdir.join(planted)).unwrap();
            }
            let prom = textdir.join("banset.prom");
            let extra = format!(
                "[watch]\nmetrics_file = \"{}\"\nmetrics_interval = \"1s\"\n",
                prom.display()
            );
            let sb = sb.with_config(
                &config(&log, "").replace("[watch]\nkeeper_interval = \"1s\"\n", &extra),
            );
            append(&log, &[]);
            let mut cmd = sb.cmd(&["watch"]);
            // SAFETY: umask(2) only, between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::umask(0o077);
                    Ok(())
                });
            }
            let w = Watcher::start_cmd(&sb, cmd);
            let is_file = || std::fs::symlink_metadata(&prom).is_ok_and(|m| m.is_file());
            assert!(wait_until(is_file), "{}", w.output());
            let out = w.stop();
            assert_eq!(
                std::fs::read_to_string(&victim).unwrap(),
                "precious\n",
                "{out}"
            );
            let meta = std::fs::symlink_metadata(&prom).unwrap();
            assert_eq!(meta.mode() & 0o7777, 0o644, "{out}");
            assert!(std::fs::read_to_string(&prom)
                .unwrap()
                .contains("banset_up 1"));
        },
    );
}

/// The ledger's meta rows of saved source positions, by source.
fn saved_positions(sb: &Sandbox) -> std::collections::BTreeMap<String, String> {
    let db = rusqlite::Connection::open(sb.dir().join("state").join("ledger.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT key, value FROM meta WHERE key LIKE 'watch.position:%'")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    rows.map(|r| {
        let (k, v) = r.unwrap();
        (k["watch.position:".len()..].to_string(), v)
    })
    .collect()
}

#[test]
fn shutdown_with_many_file_sources_is_prompt_and_saves_every_position() {
    kernel_test(
        "shutdown_with_many_file_sources_is_prompt_and_saves_every_position",
        || {
            // Stopped one after another, each source took up to a second.
            const SOURCES: usize = 40;
            let sb = Sandbox::new("watch-many-sources");
            let logs: Vec<PathBuf> = (0..SOURCES)
                .map(|i| sb.dir().join(format!("app{i}.log")))
                .collect();
            let list: Vec<String> = logs
                .iter()
                .map(|l| format!("\"{}\"", l.display()))
                .collect();
            let sb = sb.with_config(&format!(
                "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [{}]\nmaxretry = 100\n",
                list.join(", ")
            ));
            for l in &logs {
                append(l, &[]);
            }
            let mut w = Watcher::start(&sb);
            for l in &logs {
                append(l, &["mx sshd[1]: Accepted publickey for root".into()]);
            }
            assert!(
                wait_until(
                    || sb.ok(&["status", "--json"]).matches("\"lines\":1").count() == SOURCES
                ),
                "{}",
                w.output()
            );
            // Lines written just before the stop: only a save at shutdown
            // records them (the periodic one runs once a second).
            for l in &logs {
                append(l, &["mx sshd[1]: Accepted publickey for admin".into()]);
            }
            w.signal(libc::SIGTERM);
            // A failsafe, not a timing assertion: the old shutdown needed
            // about SOURCES seconds.
            let deadline = Instant::now() + Duration::from_secs(30);
            let exited = loop {
                if w.child.try_wait().unwrap().is_some() {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let out = w.output();
            if !exited {
                w.signal(libc::SIGKILL);
            }
            assert!(exited, "still stopping after 30 s: {out}");
            assert!(out.contains("stopped"), "{out}");
            let saved = saved_positions(&sb);
            for l in &logs {
                let size = std::fs::metadata(l).unwrap().len();
                let pos = saved.get(&l.display().to_string());
                assert!(
                    pos.is_some_and(|p| p.ends_with(&format!(":{size}"))),
                    "{}: saved {pos:?}, file size {size}",
                    l.display()
                );
            }
        },
    );
}

/// Issue 16: with every stock jail of fail2ban enabled (90 jails, a log
/// each) the daemon ran a thread per source, 99 threads. File sources now
/// share a few poller threads, however many there are, and each file's
/// failures still ban.
#[test]
fn many_jails_on_many_files_share_a_few_threads_and_each_still_bans() {
    kernel_test(
        "many_jails_on_many_files_share_a_few_threads_and_each_still_bans",
        || {
            const JAILS: usize = 40;
            let sb = Sandbox::new("watch-many-jails");
            let logs: Vec<PathBuf> = (0..JAILS)
                .map(|i| sb.dir().join(format!("app{i}.log")))
                .collect();
            let mut config = String::new();
            for (i, l) in logs.iter().enumerate() {
                append(l, &[]);
                config.push_str(&format!(
                    "[jails.j{i}]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\nmaxretry = 2\n\n",
                    l.display()
                ));
            }
            let sb = sb.with_config(&config);
            let w = Watcher::start(&sb);
            let threads = || {
                std::fs::read_dir(format!("/proc/{}/task", w.child.id()))
                    .unwrap()
                    .count()
            };
            // A thread per source made it JAILS + 9.
            let started = threads();
            assert!(started <= 20, "{started} threads for {JAILS} file sources");
            for (i, l) in logs.iter().enumerate() {
                let addr = format!("192.0.2.{}", i + 1);
                append(l, &[sshd_fail(&addr), sshd_fail(&addr)]);
            }
            for i in 0..JAILS {
                let addr = format!("192.0.2.{}", i + 1);
                assert!(
                    wait_until(|| nft_members(&format!("j{i}_v4")) == [addr.clone()]),
                    "j{i}: {}",
                    w.output()
                );
            }
            let busy = threads();
            assert!(busy <= 20, "{busy} threads for {JAILS} file sources");
        },
    );
}

/// Rows of the ban history (what escalation and recidive count) for `addr`.
fn ban_events(sb: &Sandbox, addr: &str) -> i64 {
    let db = rusqlite::Connection::open(sb.dir().join("state").join("ledger.db")).unwrap();
    db.query_row(
        "SELECT count(*) FROM ban_events WHERE target = ?1",
        [addr],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_crash_right_after_a_ban_does_not_count_its_lines_twice() {
    kernel_test(
        "a_crash_right_after_a_ban_does_not_count_its_lines_twice",
        || {
            let sb = Sandbox::new("watch-crash-replay");
            let log = sb.dir().join("auth.log");
            let sb = sb.with_config(&config(&log, ""));
            append(&log, &[]);
            let mut w = Watcher::start(&sb);
            // The daemon saves positions once a second, then writes its
            // status file: right after a new status file appears, the
            // periodic save is a second away.
            let status = sb.dir().join("state").join("watch-status.json");
            let stamp = || {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(&status)
                    .map(|m| (m.ino(), m.mtime_nsec()))
                    .ok()
            };
            // A first line, and its position saved: a restart resumes there.
            append(&log, &["mx sshd[1]: Accepted publickey for root".into()]);
            assert!(wait_until(|| saved_positions(&sb).len() == 1));
            let before = stamp();
            assert!(wait_until(|| stamp().is_some() && stamp() != before));
            append(&log, &vec![sshd_fail("203.0.113.50"); 3]);
            assert!(
                wait_until(|| w.output().contains("ban 203.0.113.50 ")),
                "{}",
                w.output()
            );
            // kill -9 at once: the once-a-second save of positions has
            // (almost always) not run since the ban.
            w.signal(libc::SIGKILL);
            let _ = w.child.wait();
            let w = Watcher::start(&sb);
            // Lines are read in order: once this later attacker is banned,
            // any replay of the first three lines has happened too.
            append(&log, &vec![sshd_fail("203.0.113.51"); 3]);
            assert!(
                wait_until(|| w.output().contains("ban 203.0.113.51 ")),
                "{}",
                w.output()
            );
            let out = w.stop();
            assert_eq!(ban_events(&sb, "203.0.113.50"), 1, "{out}");
            assert_eq!(ban_events(&sb, "203.0.113.51"), 1, "{out}");
            assert!(!out.contains("ban 203.0.113.50 "), "banned again: {out}");
        },
    );
}

#[test]
fn on_ban_gets_exactly_its_argv_and_a_hung_command_is_killed() {
    kernel_test(
        "on_ban_gets_exactly_its_argv_and_a_hung_command_is_killed",
        || {
            let sb = Sandbox::new("watch-notify");
            let log = sb.dir().join("auth.log");
            let out = sb.dir().join("argv.txt");
            let pids = sb.dir().join("hung.pid");
            // Prints each argument on its own line, quoted, so spaces and
            // quotes inside one argument show.
            let script = sb.file(
                "notify.sh",
                &format!(
                    "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\" >> '{}'; done\n",
                    out.display()
                ),
            );
            let hung = sb.file(
                "hung.sh",
                &format!(
                    "#!/bin/sh\necho $$ > '{}'\nexec sleep 1000\n",
                    pids.display()
                ),
            );
            for f in [&script, &hung] {
                std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .unwrap();
            }
            let sb = sb.with_config(&format!(
            "[jails.\"we.ird-jail_1\"]\nfilter = \"sshd\"\nlogpath = [\"{log}\"]\nmaxretry = 2\nbantime = \"90m\"\non_ban = [\"{script}\", \"--to\", \"root@example.org\", \"a b 'c' \\\"d\\\" $HOME;rm\"]\n\
             [jails.hung]\nfilter = \"sshd\"\nlogpath = [\"{log}\"]\nmaxretry = 5\non_ban = [\"{hung}\"]\n\
             [watch]\nnotify_timeout = \"1s\"\n",
            log = log.display(),
            script = script.display(),
            hung = hung.display(),
        ));
            append(&log, &[]);
            let w = Watcher::start(&sb);
            append(&log, &vec![sshd_fail("2001:db8::abcd"); 2]);
            let expected = "[--to]\n[root@example.org]\n[a b 'c' \"d\" $HOME;rm]\n[2001:db8::abcd]\n[we.ird-jail_1]\n[we.ird-jail_1]\n[5400]\n[2]\n";
            assert!(
                wait_until(|| std::fs::read_to_string(&out).is_ok_and(|t| t == expected)),
                "{:?}\n{}",
                std::fs::read_to_string(&out),
                w.output()
            );
            append(&log, &vec![sshd_fail("198.51.100.66"); 5]);
            assert!(
                wait_until(|| w.output().contains("killed, still running after 1 s")),
                "{}",
                w.output()
            );
            let pid: i32 = std::fs::read_to_string(&pids)
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            // SAFETY: kill(pid, 0) only asks whether the process exists.
            assert!(
                wait_until(|| unsafe { libc::kill(pid, 0) } != 0),
                "the hung command is still running"
            );
        },
    );
}

#[test]
fn json_logs_carry_the_ban_fields() {
    kernel_test("json_logs_carry_the_ban_fields", || {
        let sb = Sandbox::new("watch-jsonlog");
        let log = sb.dir().join("auth.log");
        let sb = sb.with_config(&config(&log, ""));
        append(&log, &[]);
        let stderr = sb.dir().join("json.log");
        let mut child = sb
            .cmd(&["watch", "--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let read = || std::fs::read_to_string(&stderr).unwrap_or_default();
        assert!(wait_until(|| read().contains("watching:")));
        append(&log, &vec![sshd_fail("192.0.2.123"); 3]);
        assert!(
            wait_until(|| read().contains("\"action\":\"ban\"")),
            "{}",
            read()
        );
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
        for line in read().lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(v["time"].is_number() && v["message"].is_string(), "{line}");
            if v["action"] == "ban" {
                assert_eq!(v["address"], "192.0.2.123");
                assert_eq!(v["jail"], "sshd");
                assert_eq!(v["set"], "sshd");
                assert_eq!(v["timeout"], 3600.0);
                assert_eq!(v["failures"], 3.0);
            }
        }
    });
}

/// Runs `watch` (or what `args` says) and insists it is refused with exit
/// 2 and a message holding `expected`.
fn refused(sb: &Sandbox, args: &[&str], expected: &str) {
    let out = sb.run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(expected),
        "{args:?}: wanted {expected:?} in: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

#[test]
fn refuses_a_world_writable_config_or_state_directory() {
    let sb = Sandbox::new("watch-perms");
    let log = sb.dir().join("auth.log");
    let sb = sb.with_config(&config(&log, ""));
    let cfg = sb.dir().join("banset.toml");
    chmod(&cfg, 0o666);
    refused(
        &sb,
        &["watch"],
        &format!(
            "config {}: writable by every user (mode 666; chmod o-w {}); refusing to start",
            cfg.display(),
            cfg.display()
        ),
    );
    // --check, run before the daemon by the unit, says the same.
    refused(
        &sb,
        &["watch", "--check"],
        "writable by every user (mode 666",
    );
    chmod(&cfg, 0o644);
    std::fs::create_dir_all(sb.dir().join("state")).unwrap();
    chmod(&sb.dir().join("state"), 0o777);
    refused(
        &sb,
        &["watch"],
        &format!(
            "state directory {}: writable by every user (mode 777",
            sb.dir().join("state").display()
        ),
    );
}

#[test]
fn strict_modes_refuse_group_writable_paths_other_owners_and_a_0666_ledger() {
    let sb = Sandbox::new("watch-strict");
    let log = sb.dir().join("auth.log");
    // The config two directories down, so a parent can be at fault.
    let etc = sb.dir().join("etc");
    let cfg_dir = etc.join("banset");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let on_ban = sb.file("on-ban", "#!/bin/sh\n");
    chmod(&on_ban, 0o755);
    let cfg = cfg_dir.join("banset.toml");
    std::fs::write(
        &cfg,
        config(&log, &format!("on_ban = [\"{}\"]", on_ban.display())),
    )
    .unwrap();
    let run = |expected: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_banset"))
            .env_remove("BANSET_STATE_DIR")
            .env_remove("BANSET_CONFIG")
            .arg("--state-dir")
            .arg(sb.dir().join("state"))
            .arg("--config")
            .arg(&cfg)
            .arg("watch")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "wanted {expected:?} in: {err}");
    };
    // A group-writable config, its directory, a parent directory.
    chmod(&cfg, 0o664);
    run(&format!(
        "config {}: writable by its group (mode 664; chmod g-w {})",
        cfg.display(),
        cfg.display()
    ));
    chmod(&cfg, 0o644);
    chmod(&cfg_dir, 0o775);
    run(&format!(
        "config {}: directory {} writable by its group (mode 775",
        cfg.display(),
        cfg_dir.display()
    ));
    chmod(&cfg_dir, 0o755);
    chmod(&etc, 0o777);
    run(&format!(
        "config {}: directory {} writable by every user (mode 777",
        cfg.display(),
        etc.display()
    ));
    chmod(&etc, 0o755);
    // An on_ban program anyone in its group can replace.
    chmod(&on_ban, 0o775);
    run(&format!(
        "jail sshd: on_ban {}: writable by its group (mode 775",
        on_ban.display()
    ));
    chmod(&on_ban, 0o755);
    // A ledger every user can write.
    let state = sb.dir().join("state");
    std::fs::create_dir_all(&state).unwrap();
    chmod(&state, 0o700);
    std::fs::write(state.join("ledger.db"), "").unwrap();
    chmod(&state.join("ledger.db"), 0o666);
    run(&format!(
        "ledger {}: writable by every user (mode 666",
        state.join("ledger.db").display()
    ));
    std::fs::remove_file(state.join("ledger.db")).unwrap();
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("strict_modes_refuse_...: owner cases skipped: need root to chown");
        return;
    }
    // Files of another user: the config (who would choose on_ban
    // programs run as root), the program itself, the state directory.
    for (path, what) in [(&cfg, "config"), (&on_ban, "jail sshd: on_ban")] {
        std::os::unix::fs::chown(path, Some(65534), None).unwrap();
        run(&format!(
            "{what} {}: owned by uid 65534, neither root nor banset's user (chown root {})",
            path.display(),
            path.display()
        ));
        std::os::unix::fs::chown(path, Some(0), None).unwrap();
    }
    std::os::unix::fs::chown(&cfg_dir, Some(65534), None).unwrap();
    run(&format!(
        "config {}: directory {} owned by uid 65534",
        cfg.display(),
        cfg_dir.display()
    ));
    std::os::unix::fs::chown(&cfg_dir, Some(0), None).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
    run(&format!(
        "state directory {}: owned by uid 65534",
        state.display()
    ));
}

#[test]
fn strict_modes_cover_fail2ban_files_when_watch_reads_them() {
    let sb = Sandbox::new("watch-strict-f2b");
    let f2b = sb.dir().join("fail2ban");
    std::fs::create_dir_all(f2b.join("filter.d")).unwrap();
    std::fs::write(f2b.join("jail.conf"), "[DEFAULT]\n").unwrap();
    let filter = f2b.join("filter.d").join("sshd.local");
    std::fs::write(&filter, "[Definition]\nfailregex = x <HOST>\n").unwrap();
    chmod(&filter, 0o666);
    let f2b_arg = f2b.to_str().unwrap();
    refused(
        &sb,
        &["watch", "--check", "--fail2ban", f2b_arg],
        &format!(
            "fail2ban {}: writable by every user (mode 666; chmod o-w {}); banset watch would refuse to start",
            filter.display(),
            filter.display()
        ),
    );
    chmod(&filter, 0o644);
    chmod(&f2b.join("filter.d"), 0o775);
    refused(
        &sb,
        &["watch", "--check", "--fail2ban", f2b_arg],
        &format!(
            "fail2ban {}: writable by its group (mode 775",
            f2b.join("filter.d").display()
        ),
    );
    chmod(&f2b.join("filter.d"), 0o755);
    sb.ok(&["watch", "--check", "--fail2ban", f2b_arg]);
}

#[test]
fn config_dev_null_is_an_empty_config_not_a_world_writable_file() {
    let sb = Sandbox::new("watch-devnull");
    let out = Command::new(env!("CARGO_BIN_EXE_banset"))
        .env_remove("BANSET_STATE_DIR")
        .env_remove("BANSET_CONFIG")
        .args(["--state-dir"])
        .arg(sb.dir().join("state"))
        .args(["--config", "/dev/null", "watch", "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("chmod"), "{err}");
    // The daemon itself starts on it (it used to be told `chmod o-w /dev/null`).
    kernel_test(
        "config_dev_null_is_an_empty_config_not_a_world_writable_file",
        || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_banset"));
            cmd.env_remove("BANSET_STATE_DIR")
                .env_remove("BANSET_CONFIG")
                .arg("--state-dir")
                .arg(sb.dir().join("state"))
                .args(["--config", "/dev/null", "watch"]);
            let w = Watcher::start_cmd(&sb, cmd);
            // Its socket is the sandbox's, never the host's (a test's daemon
            // once took /run/banset/control.sock from another's).
            let socket = sb.dir().join("run/control.sock");
            assert!(wait_until(|| socket.exists()), "{}", w.output());
            let out = w.stop();
            assert!(out.contains("watching: 0 jails"), "{out}");
        },
    );
}

#[test]
fn a_second_daemon_on_the_same_state_is_refused() {
    kernel_test("a_second_daemon_on_the_same_state_is_refused", || {
        let sb = Sandbox::new("watch-lock");
        let log = sb.dir().join("auth.log");
        let sb = sb.with_config(&config(&log, ""));
        let _w = Watcher::start(&sb);
        let out = sb.run(&["watch"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("another banset watch is running"));
    });
}

/// Bug 9: `[recidive]` takes `on_ban`, and `[watch] on_ban` is the default
/// of every jail (and recidive) without its own; a jail's own wins.
#[test]
fn recidive_on_ban_and_the_global_default_on_ban_run() {
    kernel_test("recidive_on_ban_and_the_global_default_on_ban_run", || {
        let sb = Sandbox::new("watch-notify-recidive");
        let log = sb.dir().join("auth.log");
        let out = sb.dir().join("argv.txt");
        let script = sb.file(
            "notify.sh",
            &format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", out.display()),
        );
        chmod(&script, 0o755);
        let s = script.display();
        let sb = sb.with_config(&format!(
            "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{log}\"]\nmaxretry = 2\n\
             [jails.own]\nfilter = \"sshd\"\nlogpath = [\"{log}\"]\nmaxretry = 2\nset = \"ownset\"\non_ban = [\"{s}\", \"own\"]\n\
             [recidive]\nbans = 2\non_ban = [\"{s}\", \"recidive\"]\n\
             [watch]\non_ban = [\"{s}\", \"default\"]\n",
            log = log.display(),
        ));
        append(&log, &[]);
        let w = Watcher::start(&sb);
        append(&log, &vec![sshd_fail("198.51.100.20"); 2]);
        let lines = || {
            let mut v: Vec<String> = std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        assert!(
            wait_until(|| lines().len() == 3),
            "{:?}\n{}",
            lines(),
            w.output()
        );
        let out = w.stop();
        assert_eq!(
            lines(),
            [
                "default 198.51.100.20 sshd sshd 3600 2",
                "own 198.51.100.20 own ownset 3600 2",
                "recidive 198.51.100.20 recidive recidive 604800 2",
            ],
            "{out}"
        );
    });
}

/// Bug 9: `watch --check` names the jail and the path of an `on_ban` or
/// `on_unban` program that is missing or not executable, for recidive and
/// the global default as for a jail.
#[test]
fn check_fails_on_a_missing_or_non_executable_notify_program() {
    let sb = Sandbox::new("watch-check-notify");
    let log = sb.dir().join("auth.log");
    append(&log, &[]);
    let good = sb.file("good.sh", "#!/bin/sh\n");
    chmod(&good, 0o755);
    let plain = sb.file("plain.sh", "#!/bin/sh\n");
    chmod(&plain, 0o644);
    let missing = sb.dir().join("missing.sh");
    let (g, p, m) = (good.display(), plain.display(), missing.display());
    for (extra, expected) in [
        (
            format!("on_unban = [\"{m}\"]\n"),
            format!("jail sshd: on_unban {m}: No such file or directory"),
        ),
        (
            format!("[recidive]\non_ban = [\"{p}\"]\n"),
            format!("jail recidive: on_ban {p}: not executable (chmod +x {p})"),
        ),
        (
            format!("[recidive]\non_ban = [\"{g}\"]\n[watch]\non_ban = [\"{m}\"]\n"),
            format!("jail sshd: on_ban {m}: No such file or directory"),
        ),
    ] {
        let sb2 = Sandbox::new("watch-check-notify-cfg");
        let sb2 = sb2.with_config(&format!(
            "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\n{extra}",
            log.display()
        ));
        let out = sb2.run(&["watch", "--check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains(&expected), "wanted {expected:?} in: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let sb = sb.with_config(&format!(
        "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{}\"]\non_ban = [\"{g}\"]\n",
        log.display()
    ));
    let out = sb.run(&["watch", "--check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_jail_whose_logpath_matches_no_file_is_refused_at_check_and_at_start() {
    let sb = Sandbox::new("watch-no-log");
    let d = sb.dir().display().to_string();
    let sb = sb.with_config(&format!(
        "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"{d}/none-*.log\", \"{d}/none.log\"]\n"
    ));
    let expected = "jail sshd: no log file matches logpath ";
    let out = sb.run(&["watch", "--check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(expected) && err.contains("none-*.log"),
        "{err}"
    );
    kernel_test(
        "a_jail_whose_logpath_matches_no_file_is_refused_at_check_and_at_start",
        || {
            let mut child = sb
                .cmd(&["watch"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let exited = wait_until(|| child.try_wait().unwrap().is_some());
            if !exited {
                let _ = child.kill();
            }
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(exited, "watch started without a log file: {err}");
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(err.contains(expected), "{err}");
        },
    );
}

#[test]
fn logpath_globs_pick_up_new_files_and_status_shows_a_vanished_one() {
    kernel_test(
        "logpath_globs_pick_up_new_files_and_status_shows_a_vanished_one",
        || {
            let sb = Sandbox::new("watch-glob");
            let logs = sb.dir().join("logs");
            std::fs::create_dir_all(&logs).unwrap();
            let first = logs.join("mail.log");
            append(&first, &[]);
            // A native logpath may be one string.
            let sb = sb.with_config(&format!(
                "[jails.sshd]\nfilter = \"sshd\"\nlogpath = \"{}\"\nmaxretry = 3\n[watch]\nkeeper_interval = \"1s\"\n",
                logs.join("mail*.log").display()
            ));
            let check = sb.ok(&["watch", "--check"]);
            assert!(check.contains("mail.log"), "{check}");
            let w = Watcher::start(&sb);
            // A file the glob matches once the daemon runs: followed, from
            // its top.
            append(&logs.join("mail-b.log"), &vec![sshd_fail("203.0.113.7"); 3]);
            assert!(
                wait_until(|| nft_members("sshd_v4") == ["203.0.113.7"]),
                "{}",
                w.output()
            );
            assert!(
                w.output().contains("new match of a logpath"),
                "{}",
                w.output()
            );
            // A followed file that vanishes: its source waits, and says so.
            std::fs::remove_file(&first).unwrap();
            assert!(
                wait_until(|| sb.ok(&["status"]).contains("waiting for the file")),
                "{}",
                sb.ok(&["status"])
            );
            assert!(sb.ok(&["status", "--json"]).contains("\"waiting\":true"));
            // Back again: read.
            append(&first, &vec![sshd_fail("203.0.113.8"); 3]);
            assert!(
                wait_until(|| nft_members("sshd_v4").contains(&"203.0.113.8".to_string())),
                "{}",
                w.output()
            );
            assert!(
                wait_until(|| !sb.ok(&["status"]).contains("waiting for the file")),
                "{}",
                sb.ok(&["status"])
            );
        },
    );
}

/// One banset.toml jail on one log: a fail2ban filter file in its
/// aggressive mode, plus a line of its own written in the filter's terms.
/// Before, this took two overlapping jails, which counted each line twice
/// for recidive.
#[test]
fn a_native_jail_runs_a_fail2ban_filter_file_with_its_mode_and_added_lines() {
    kernel_test(
        "a_native_jail_runs_a_fail2ban_filter_file_with_its_mode_and_added_lines",
        || {
            let sb = Sandbox::new("watch-native-f2b-filter");
            let filter_d = sb.dir().join("f2b/filter.d");
            std::fs::create_dir_all(&filter_d).unwrap();
            std::fs::write(
                filter_d.join("common.conf"),
                "[DEFAULT]\n__prefix_line = \\s*\\S+ <_daemon>\\[\\d+\\]:\\s+\n",
            )
            .unwrap();
            std::fs::write(
                filter_d.join("mailish.conf"),
                "[INCLUDES]\nbefore = common.conf\n[Definition]\n_daemon = smtpd\nnormal = ^%(__prefix_line)sauth failed from <HOST>$\naggressive = <normal>\n             ^%(__prefix_line)slost connection after EHLO from <HOST>$\nfailregex = <<mode>>\nmode = normal\n",
            )
            .unwrap();
            let log = sb.dir().join("mail.log");
            append(&log, &[]);
            let sb = sb.with_config(&format!(
                "[jails.mail]\nfilter = \"{}[mode=aggressive]\"\nfailregex = ['^%(__prefix_line)srelay denied for <HOST>$']\nlogpath = \"{}\"\nmaxretry = 2\n[watch]\nkeeper_interval = \"1s\"\n",
                filter_d.join("mailish.conf").display(),
                log.display()
            ));
            let check = sb.ok(&["watch", "--check"]);
            assert!(check.contains("mailish[mode=aggressive]"), "{check}");
            let w = Watcher::start(&sb);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let at = format!("{} mx smtpd[7]:", syslog_date(now));
            append(
                &log,
                &[
                    format!("{at} lost connection after EHLO from 203.0.113.30"),
                    format!("{at} lost connection after EHLO from 203.0.113.30"),
                    format!("{at} relay denied for 203.0.113.31"),
                    format!("{at} relay denied for 203.0.113.31"),
                ],
            );
            assert!(
                wait_until(|| nft_members("mail_v4") == ["203.0.113.30", "203.0.113.31"]),
                "{:?} {}",
                nft_members("mail_v4"),
                w.output()
            );
        },
    );
}
