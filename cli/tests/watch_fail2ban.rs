//! `banset watch` on a fail2ban configuration: a copy of the installed
//! `/etc/fail2ban` with a `jail.local` enabling sshd on a temp log; the real
//! binary bans into nftables in its own network namespace (checked with
//! `nft -j`). Skips when fail2ban is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{append, kernel_test, nft_members, syslog_date, wait_until, Sandbox};

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
fn every_stock_fail2ban_jail_loads_when_enabled() {
    let test = "every_stock_fail2ban_jail_loads_when_enabled";
    if !fail2ban_installed(test) {
        return;
    }
    let sb = Sandbox::new("f2b-all");
    let log = sb.dir().join("any.log");
    append(&log, &[]);
    let dir = sb.dir().join("fail2ban");
    copy_dir(Path::new(FAIL2BAN), &dir);
    let jail_conf = std::fs::read_to_string(dir.join("jail.conf")).unwrap();
    let jails: Vec<&str> = jail_conf
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.strip_suffix(']'))
        .filter(|j| !matches!(*j, "INCLUDES" | "DEFAULT"))
        .collect();
    assert!(jails.len() >= 80, "{jails:?}");
    let local: String = jails
        .iter()
        .map(|j| {
            format!(
                "[{j}]\nenabled = true\nbackend = polling\nlogpath = {}\n\n",
                log.display()
            )
        })
        .collect();
    std::fs::write(dir.join("jail.local"), local).unwrap();
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
    for j in jails.iter().filter(|j| **j != "recidive") {
        assert!(
            stdout.contains(&format!("jail {j}: filter ")),
            "jail {j} missing:\n{stdout}"
        );
    }
    // fail2ban's recidive jail reads fail2ban's own log, which no one
    // writes once banset takes over: banset's recidive counts its own bans.
    assert!(
        stdout.contains("recidive: 5 bans in 86400s ban for 7d in set f2b-recidive\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("jail recidive: filter"), "{stdout}");
    assert!(
        stdout.contains("jail recidive: reads fail2ban's own log, which banset does not write; banset counts its own bans instead"),
        "{stdout}"
    );
    // Service names resolve (slapd's ldap,ldaps).
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("set f2b-slapd: ") && l.ends_with("tcp ports 389,636")),
        "{stdout}"
    );
    // asterisk bans through a tcp and a udp action: the one rule of its
    // set must cover both, so it blocks every port.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("set f2b-asterisk: ") && l.ends_with("drop all ports")),
        "{stdout}"
    );
    // A notice all jails share is one line.
    let shared = stdout
        .lines()
        .filter(|l| l.contains("not one rule per address"))
        .count();
    assert!(shared <= 3, "{stdout}");
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
        // slapd's filter is multi-line: a failed bind names no address;
        // the connection's ACCEPT line, up to 20 lines earlier, does.
        let slapd_log = sb.dir().join("slapd.log");
        append(&slapd_log, &[]);
        append(
            &dir.join("jail.local"),
            &[format!(
                "\n[slapd]\nenabled = true\nbackend = polling\nmaxretry = 1\nlogpath = {}",
                slapd_log.display()
            )],
        );
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
        // Dated now: a line older than the jail's findtime is not counted.
        let date = syslog_date(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
        );
        let slapd = |conn: u32, what: &str| format!("{date} ldap slapd[1183]: conn={conn} {what}");
        append(
            &slapd_log,
            &[
                slapd(
                    7,
                    "fd=21 ACCEPT from IP=203.0.113.20:45011 (IP=0.0.0.0:636)",
                ),
                slapd(
                    8,
                    "fd=22 ACCEPT from IP=203.0.113.21:45012 (IP=0.0.0.0:636)",
                ),
                slapd(7, "op=0 BIND dn=\"uid=a,dc=example\" method=128"),
                slapd(8, "op=0 BIND dn=\"uid=b,dc=example\" method=128"),
                // A wrong password on connection 8, a good one on 7.
                slapd(8, "op=0 RESULT tag=97 err=49 text="),
                slapd(7, "op=0 RESULT tag=97 err=0 text="),
            ],
        );
        assert!(
            wait_until(|| nft_members("f2b-slapd_v4") == ["203.0.113.21"]),
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
        assert!(!out.contains("ban 203.0.113.20"), "{out}");
    });
}

/// Bug 9: a fail2ban jail's `sendmail-whois-lines` sends fail2ban's mail,
/// with the whois output and the lines that made the ban, to the action's
/// mail command run by argv; and `[jails.sshd]` in banset.toml with only
/// `on_ban` adds it to fail2ban's sshd jail instead of replacing the jail.
#[test]
fn fail2ban_sendmail_whois_lines_mails_the_ban_and_toml_on_ban_adds_to_the_jail() {
    let test = "fail2ban_sendmail_whois_lines_mails_the_ban_and_toml_on_ban_adds_to_the_jail";
    if !fail2ban_installed(test) {
        return;
    }
    kernel_test(test, || {
        use std::os::unix::fs::PermissionsExt;
        let sb = Sandbox::new("f2b-mail");
        let log = sb.dir().join("auth.log");
        append(&log, &[]);
        let dir = fail2ban_dir(&sb, &log);
        let bin = sb.dir().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let (argv_out, mail_out, notify_out) = (
            sb.dir().join("sendmail.argv"),
            sb.dir().join("sendmail.stdin"),
            sb.dir().join("notify.argv"),
        );
        let exe = |path: &Path, text: String| {
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let sendmail = bin.join("fake-sendmail");
        exe(
            &sendmail,
            format!(
                "#!/bin/sh\ncat > '{mail}.tmp'\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\" >> '{argv}'; done\nmv '{mail}.tmp' '{mail}'\n",
                mail = mail_out.display(),
                argv = argv_out.display()
            ),
        );
        // Found in PATH, as fail2ban's action finds it.
        exe(
            &bin.join("whois"),
            "#!/bin/sh\necho \"netname: FAKE-NET for $1\"\n".into(),
        );
        let notify = bin.join("notify");
        exe(
            &notify,
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\" >> '{}'; done\n",
                notify_out.display()
            ),
        );
        append(
            &dir.join("jail.local"),
            &[format!(
                "maxretry = 2\naction = %(action_)s\n         sendmail-whois-lines[sender=\"banset@<fq-hostname>\", dest=\"admin@example.org\", sendername=\"Banset Test\", mailcmd=\"'{}' -f <sender> <dest>\"]",
                sendmail.display()
            )],
        );
        let sb = sb.with_config(&format!(
            "[fail2ban]\ndir = \"{}\"\n\n[jails.sshd]\non_ban = [\"{}\", \"merged\"]\n",
            dir.display(),
            notify.display()
        ));
        let check = sb.run(&["watch", "--check"]);
        let check_out = String::from_utf8_lossy(&check.stdout).into_owned()
            + &String::from_utf8_lossy(&check.stderr);
        assert!(check.status.success(), "{check_out}");
        assert!(
            !check_out.contains("defines it too"),
            "the addition replaced the jail: {check_out}"
        );
        for expected in [
            format!("  on_ban: {}\n", notify.display()),
            format!(
                "  mail: sendmail-whois-lines to admin@example.org through {}\n",
                sendmail.display()
            ),
        ] {
            assert!(check_out.contains(&expected), "{check_out}");
        }
        let err_path = sb.dir().join("watch.log");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = sb
            .cmd(&["watch"])
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let output = || std::fs::read_to_string(&err_path).unwrap_or_default();
        assert!(
            wait_until(|| output().contains("watching:")),
            "{}",
            output()
        );
        let hostile = "mx sshd[4242]: Failed password for invalid user $(reboot)`id`; from 203.0.113.77 port 50022 ssh2";
        append(&log, &[sshd_fail("203.0.113.77"), hostile.to_string()]);
        assert!(
            wait_until(|| mail_out.exists() && notify_out.exists()),
            "{}",
            output()
        );
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let host = host.trim();
        assert_eq!(
            std::fs::read_to_string(&argv_out).unwrap(),
            format!("[-f]\n[banset@{host}]\n[admin@example.org]\n")
        );
        let mail = std::fs::read_to_string(&mail_out).unwrap();
        assert_eq!(
            mail,
            format!(
                "Subject: [Fail2Ban] sshd: banned 203.0.113.77 from {host}\n\
                 From: Banset Test <banset@{host}>\n\
                 To: admin@example.org\n\
                 \n\
                 Hi,\n\
                 \n\
                 The IP 203.0.113.77 has just been banned by Fail2Ban after\n\
                 2 attempts against sshd.\n\
                 \n\
                 Here is more information about 203.0.113.77 :\n\
                 \n\
                 netname: FAKE-NET for 203.0.113.77\n\
                 \n\
                 Lines containing failures of 203.0.113.77 (max 1000)\n  {}\n  {hostile}\n\
                 \n\
                 Regards,\n\
                 \n\
                 Fail2Ban\n",
                sshd_fail("203.0.113.77")
            )
        );
        assert_eq!(
            std::fs::read_to_string(&notify_out).unwrap(),
            "[merged]\n[203.0.113.77]\n[sshd]\n[f2b-sshd]\n[3600]\n[2]\n"
        );
        assert_eq!(nft_members("f2b-sshd_v4"), ["203.0.113.77"]);
    });
}
