//! `banset watch` on a fail2ban configuration: a copy of the installed
//! `/etc/fail2ban` with a `jail.local` enabling sshd on a temp log; the real
//! binary bans into nftables in its own network namespace (checked with
//! `nft -j`). Skips when fail2ban is not installed.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{kernel_test, Sandbox};
use serde_json::Value;

const FAIL2BAN: &str = "/etc/fail2ban";

fn fail2ban_installed(test: &str) -> bool {
    let ok = Path::new(FAIL2BAN).join("filter.d/sshd.conf").is_file();
    if !ok {
        eprintln!("{test}: skipped: fail2ban is not installed (apt-get install fail2ban)");
    }
    ok
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A copy of fail2ban's configuration with sshd enabled on `log`.
fn fail2ban_dir(sb: &Sandbox, log: &Path) -> PathBuf {
    let dir = sb.dir().join("fail2ban");
    copy_dir(Path::new(FAIL2BAN), &dir);
    std::fs::write(
        dir.join("jail.local"),
        format!(
            "[DEFAULT]\nbanaction = nftables-multiport\nbantime = 1h\nfindtime = 1d\nmaxretry = 3\nignoreip = 127.0.0.1/8 ::1 192.0.2.0/24 gateway.example\n\n[sshd]\nenabled = true\nbackend = polling\nlogpath = {}\n",
            log.display()
        ),
    )
    .unwrap();
    dir
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

fn nft_members(set: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["-j", "list", "set", "inet", "banset", set])
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut members: Vec<String> = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["set"]["elem"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["elem"]["val"].as_str().or(e.as_str()).map(str::to_string))
        .collect();
    members.sort();
    members
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn sshd_fail(addr: &str) -> String {
    format!("mx sshd[4242]: Failed password for invalid user admin from {addr} port 50022 ssh2")
}

#[test]
fn check_lists_fail2ban_jails_and_reports_what_differs_with_file_and_line() {
    let test = "check_lists_fail2ban_jails_and_reports_what_differs_with_file_and_line";
    if !fail2ban_installed(test) {
        return;
    }
    let sb = Sandbox::new("f2b-check");
    let log = sb.dir().join("auth.log");
    append(&log, &[]);
    let dir = fail2ban_dir(&sb, &log);
    let sb = sb.with_config("");
    let out = sb
        .cmd(&["watch", "--check", "--fail2ban"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "jail sshd: filter sshd[mode=normal], 3 failures in 86400s ban for 1h in set f2b-sshd; reads {}",
            log.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("set f2b-sshd: nftables"), "{stdout}");
    assert!(stdout.contains("drop tcp ports 22"), "{stdout}");
    // A host name in ignoreip: refused with its file and line, not resolved.
    assert!(
        stdout.contains(&format!(
            "fail2ban: {}:6: jail sshd: ignoreip \"gateway.example\"",
            dir.join("jail.local").display()
        )),
        "{stdout}"
    );
    // A broken jail.local is an error naming the file and line.
    std::fs::write(dir.join("jail.local"), "[sshd]\nenabled = true\nmaxretry\n").unwrap();
    let out = sb
        .cmd(&["watch", "--check", "--fail2ban"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", dir.join("jail.local").display())),
        "{stderr}"
    );
}

#[test]
fn a_fail2ban_jail_bans_an_address_appended_to_its_log() {
    let test = "a_fail2ban_jail_bans_an_address_appended_to_its_log";
    if !fail2ban_installed(test) {
        return;
    }
    kernel_test(test, || {
        let sb = Sandbox::new("f2b-ban");
        let log = sb.dir().join("auth.log");
        append(&log, &[]);
        let dir = fail2ban_dir(&sb, &log);
        let sb = sb.with_config(&format!(
            "[fail2ban]\ndir = \"{}\"\n\n[watch]\nkeeper_interval = \"1s\"\n",
            dir.display()
        ));
        let err_path = sb.dir().join("watch.log");
        let err = std::fs::File::create(&err_path).unwrap();
        let mut child = sb
            .cmd(&["watch"])
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let output = || std::fs::read_to_string(&err_path).unwrap_or_default();
        assert!(
            wait_until(|| output().contains("watching:")),
            "{}",
            output()
        );
        append(
            &log,
            &[
                sshd_fail("203.0.113.9"),
                sshd_fail("203.0.113.9"),
                // Ignored by the jail's ignoreip.
                sshd_fail("192.0.2.10"),
                sshd_fail("192.0.2.10"),
                sshd_fail("192.0.2.10"),
                // A successful login (F-MLFGAINED) is not a failure.
                "mx sshd[4243]: Accepted publickey for admin from 203.0.113.9 port 50023 ssh2"
                    .into(),
                sshd_fail("203.0.113.9"),
            ],
        );
        assert!(
            wait_until(|| nft_members("f2b-sshd_v4") == ["203.0.113.9"]),
            "{}",
            output()
        );
        // The hook blocks ssh only, as the jail's port says.
        let rules = Command::new("nft")
            .args(["list", "table", "inet", "banset"])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout);
        assert!(
            rules
                .lines()
                .any(|l| l.contains("saddr @f2b-sshd_v4 tcp dport @f2b-sshd_ports drop")),
            "{rules}"
        );
        assert!(rules.contains("set f2b-sshd_ports {"), "{rules}");
        assert!(rules.contains("elements = { 22 }"), "{rules}");
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        let out = output();
        assert!(
            out.contains("ban 203.0.113.9 jail=sshd set=f2b-sshd for 1h after 3 failures"),
            "{out}"
        );
        assert!(!out.contains("ban 192.0.2.10"), "{out}");
    });
}
