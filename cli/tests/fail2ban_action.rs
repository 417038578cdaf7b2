//! End-to-end tests of `contrib/fail2ban/action.d/banset.conf` with the real
//! fail2ban (Debian's package): fail2ban-server runs inside a network
//! namespace of its own, with its configuration, socket, pid file, database
//! and log in a temporary directory, never the host's /etc/fail2ban nor a
//! fail2ban running on the host. Its jails watch log files the test writes
//! and ban through banset (this build's binary, with a private state
//! directory). The kernel is checked with `nft -j`, and a packet test over a
//! veth pair proves the banned source is dropped.
//!
//! They need root and fail2ban; without root they skip, saying so. Without
//! fail2ban they skip too, except under CI (`CI=true`), where its absence is
//! a failure: `.ci/run` installs it.

// Network namespaces (the shared sandbox) are Linux.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use banset_tests::netns::{self, NamedNetns, Reach, VethPair};
use serde_json::Value;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");
const ACTION_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/fail2ban/action.d");
/// Where Debian's package puts the stock filters this test copies.
const STOCK_FILTERS: &str = "/etc/fail2ban/filter.d";
const STOCK_ACTIONS: &str = "/etc/fail2ban/action.d";

/// How long fail2ban may take to notice a log line or finish a command.
/// A deadline for waiting, never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

/// The same for work fail2ban does once per ticket, for 10,000 tickets.
const THOUSANDS_PATIENCE: Duration = Duration::from_secs(1800);

fn skip(test: &str) -> bool {
    if netns::skip_unless_root(test) {
        return true;
    }
    let installed = Path::new("/usr/bin/fail2ban-server").exists()
        && Path::new(STOCK_FILTERS).join("sshd.conf").exists();
    if !installed {
        assert!(
            std::env::var("CI").is_err(),
            "fail2ban is not installed, and CI must run the fail2ban tests (apt-get install fail2ban)"
        );
        eprintln!("{test}: skipped: fail2ban is not installed (apt-get install fail2ban)");
        return true;
    }
    false
}

/// A private fail2ban: configuration, socket, database and logs in a
/// temporary directory; the server a child of the test, inside `netns`.
struct Fail2ban<'a> {
    netns: &'a NamedNetns,
    dir: PathBuf,
    server: Option<Child>,
}

impl<'a> Fail2ban<'a> {
    /// `jails` is the jail.conf text after `[DEFAULT]`'s common lines;
    /// `{dir}` in it stands for the temporary directory.
    fn new(test: &str, netns: &'a NamedNetns, defaults: &str, jails: &str) -> Fail2ban<'a> {
        let dir = std::env::temp_dir().join(format!("banset-f2b-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["conf/action.d", "conf/filter.d", "state"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for action in ["banset.conf", "banset-allports.conf", "banset.py"] {
            std::fs::copy(
                Path::new(ACTION_DIR).join(action),
                dir.join("conf/action.d").join(action),
            )
            .unwrap();
        }
        for filter in ["common.conf", "sshd.conf", "postfix.conf", "recidive.conf"] {
            std::fs::copy(
                Path::new(STOCK_FILTERS).join(filter),
                dir.join("conf/filter.d").join(filter),
            )
            .unwrap();
        }
        for log in ["auth.log", "mail.log", "fail2ban-seen.log"] {
            std::fs::write(dir.join(log), "").unwrap();
        }
        let d = dir.display().to_string();
        std::fs::write(
            dir.join("conf/fail2ban.conf"),
            format!(
                "[Definition]\nloglevel = INFO\nlogtarget = {d}/fail2ban.log\n\
                 syslogsocket = auto\nsocket = {d}/f2b.sock\npidfile = {d}/f2b.pid\n\
                 dbfile = {d}/f2b.sqlite3\ndbpurgeage = 1d\nallowipv6 = auto\n"
            ),
        )
        .unwrap();
        // Every banset call goes through this wrapper, which records its
        // arguments: the restart test counts the calls.
        let wrapper = dir.join("banset");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {d}/calls.log\n\
                 exec {BANSET} --state-dir {d}/state --config /dev/null \"$@\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        // What the users' setups change in .local files: DROP instead of
        // REJECT.
        std::fs::write(
            dir.join("conf/action.d/banset.local"),
            format!(
                "[Init]\nbanset = {d}/banset\nblocktype = DROP\n\
                 fail2ban_db = {d}/f2b.sqlite3\n"
            ),
        )
        .unwrap();
        // the stock nftables action, for switching from it
        std::fs::copy(
            Path::new(STOCK_ACTIONS).join("nftables.conf"),
            dir.join("conf/action.d/nftables.conf"),
        )
        .unwrap();
        let f2b = Fail2ban {
            netns,
            dir,
            server: None,
        };
        f2b.write_jails(defaults, jails);
        f2b
    }

    /// (Re)writes jail.conf: the common `[DEFAULT]` lines, `defaults`, then
    /// `jails` with `{dir}` standing for the temporary directory.
    fn write_jails(&self, defaults: &str, jails: &str) {
        let d = self.dir.display().to_string();
        std::fs::write(
            self.dir.join("conf/jail.conf"),
            format!(
                "[DEFAULT]\nbackend = polling\nmode = normal\n\
                 filter = %(__name__)s[mode=%(mode)s]\n\
                 port = 0:65535\nprotocol = tcp\nchain = INPUT\n\
                 banaction = banset\nbanaction_allports = banset-allports\n\
                 action = %(banaction)s[port=\"%(port)s\", protocol=\"%(protocol)s\", chain=\"%(chain)s\"]\n\
                 {defaults}\n{}",
                jails.replace("{dir}", &d)
            ),
        )
        .unwrap();
    }

    fn conf(&self) -> String {
        self.dir.join("conf").display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts fail2ban-server in the foreground (so the test owns the
    /// process) and waits until it answers and `jails` are up.
    fn start(&mut self, jails: &[&str]) {
        assert!(self.server.is_none(), "already started");
        let log = std::fs::File::create(self.path("server.out")).unwrap();
        let child = self
            .netns
            .command("fail2ban-server")
            .args(["-f", "-x", "-c", &self.conf()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start fail2ban-server");
        self.server = Some(child);
        wait_until("fail2ban-server answers", || {
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "fail2ban-server exited ({status}): {}",
                    std::fs::read_to_string(self.path("server.out")).unwrap_or_default()
                );
            }
            self.client(&["ping"]).status.success()
        });
        for jail in jails {
            wait_until(&format!("jail {jail} runs"), || {
                self.client(&["status", jail]).status.success()
            });
        }
    }

    /// `fail2ban-client stop`, then waits for the server to exit.
    fn stop(&mut self) {
        let out = self.client(&["stop"]);
        assert!(out.status.success(), "fail2ban-client stop: {}", text(&out));
        let mut child = self.server.take().expect("not started");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fail2ban-server did not exit after stop");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self, args: &[&str]) -> Output {
        self.netns
            .command("fail2ban-client")
            .args(["-c", &self.conf()])
            .args(args)
            .output()
            .expect("run fail2ban-client")
    }

    fn client_ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert!(
            out.status.success(),
            "fail2ban-client {args:?}: {}\n--- fail2ban.log:\n{}",
            text(&out),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The addresses a jail has banned, per `fail2ban-client status`.
    fn banned(&self, jail: &str) -> Vec<String> {
        let out = self.client_ok(&["status", jail]);
        out.lines()
            .find_map(|l| l.split_once("Banned IP list:"))
            .map(|(_, list)| list.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    }

    fn currently_banned(&self, jail: &str) -> usize {
        let out = self.client_ok(&["status", jail]);
        out.lines()
            .find_map(|l| l.split_once("Currently banned:"))
            .map(|(_, n)| n.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no count in {out}"))
    }

    fn append(&self, file: &str, lines: &[String]) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(file))
            .unwrap();
        for line in lines {
            writeln!(f, "{line}").unwrap();
        }
    }

    fn banset(&self, args: &[&str]) -> Output {
        self.netns
            .command(BANSET)
            .arg("--state-dir")
            .arg(self.path("state"))
            .args(["--config", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    }

    /// banset calls made since the last [`Fail2ban::forget_calls`], by verb.
    fn calls(&self) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(self.path("calls.log")).unwrap_or_default();
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let verb = line.split_whitespace().next().unwrap_or("").to_string();
            *counts.entry(verb).or_insert(0) += 1;
        }
        counts
    }

    fn forget_calls(&self) {
        let _ = std::fs::remove_file(self.path("calls.log"));
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path("fail2ban.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The oracle: `nft -j list set inet banset SET` in the namespace, as
    /// element -> seconds until it expires (`None`: permanent).
    fn nft_set(&self, set: &str) -> BTreeMap<String, Option<u64>> {
        let out = self
            .netns
            .command("nft")
            .args(["-j", "list", "set", "inet", "banset", set])
            .output()
            .unwrap();
        let mut members = BTreeMap::new();
        if !out.status.success() {
            return members;
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        for item in v["nftables"].as_array().unwrap() {
            for e in item["set"]["elem"].as_array().into_iter().flatten() {
                let (val, expires) = match e.get("elem") {
                    Some(inner) => (
                        inner["val"].clone(),
                        inner.get("expires").and_then(Value::as_u64),
                    ),
                    None => (e.clone(), None),
                };
                members.insert(val.as_str().unwrap_or_default().to_string(), expires);
            }
        }
        members
    }

    fn nft_count(&self, set: &str) -> usize {
        self.nft_set(set).len()
    }
}

impl Drop for Fail2ban<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = self.client(&["stop"]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("fail2ban test files kept in {}", self.dir.display());
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_within(PATIENCE, what, done);
}

/// [`wait_until`] with a longer bound, for fail2ban's work per ticket over
/// thousands of tickets on a busy machine.
fn wait_within(patience: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The local time as syslog writes it (`Nov 21 12:34:56`), which is how
/// fail2ban reads the sshd and postfix lines: lines must be recent to count.
fn syslog_now() -> String {
    date("+%b %e %H:%M:%S")
}

/// fail2ban's own log time stamp, for recidive's lines.
fn fail2ban_now() -> String {
    date("+%Y-%m-%d %H:%M:%S,000")
}

fn date(format: &str) -> String {
    let out = Command::new("date").arg(format).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn sshd_failures(addr: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{} mail sshd[{}]: Failed password for root from {addr} port {} ssh2",
                syslog_now(),
                4000 + i,
                50000 + i
            )
        })
        .collect()
}

/// The line the users' postfix authors fought: a client that leaves without
/// authenticating. Only `mode = aggressive` (through ddos) matches it.
fn postfix_ddos(addr: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{} mail postfix/smtpd[{}]: disconnect from unknown[{addr}] ehlo=1 auth=0/1 quit=1 commands=2/3",
                syslog_now(),
                7000 + i
            )
        })
        .collect()
}

fn close_to(got: Option<u64>, want: u64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no timeout, wanted ~{want}"));
    assert!(
        got <= want && got + 120 >= want,
        "{what}: expires in {got} s, wanted ~{want} s"
    );
}

/// A listener on a fixed port of the server's address, in its namespace.
fn listen_on(pair: &VethPair, addr: IpAddr, port: u16) -> TcpListener {
    pair.server()
        .enter(|| TcpListener::bind(SocketAddr::new(addr, port)))
        .unwrap_or_else(|e| panic!("listen on {addr}:{port}: {e}"))
}

const JAILS: &str = r#"
[sshd]
enabled = true
port = ssh
logpath = {dir}/auth.log
ignoreip = 127.0.0.0/8 192.168.0.0/16 172.16.0.0/16 192.0.2.96/28

[postfix]
enabled = true
mode = aggressive
maxretry = 2
port = smtp,465,submission
filter = postfix[mode=%(mode)s]
logpath = {dir}/mail.log

[recidive]
enabled = true
logpath = {dir}/fail2ban-seen.log
banaction = %(banaction_allports)s
bantime = 1w
findtime = 1d
action = %(banaction)s
"#;

/// The users' defaults: a week's ban after 3 failures within a day, and
/// their private ranges never banned.
const USERS_DEFAULTS: &str = "bantime = 604800\nfindtime = 86400\nmaxretry = 3\n\
    ignoreip = 127.0.0.0/8 10.0.0.0/8 192.168.0.0/16 172.16.0.0/16\n";

/// The whole life of a ban through fail2ban: the jails' sets and rules at
/// start, log lines to a ban in the kernel, the banned source's packets
/// dropped on the jail's port only, the ignore lists, postfix in aggressive
/// mode, recidive on every port, both families in one set, unban, a ban
/// after `nft flush ruleset` bringing every ban back, and fail2ban's own
/// check and repair after banset lost the set.
#[test]
fn fail2ban_bans_drops_and_unbans_through_banset() {
    if skip("fail2ban_bans_drops_and_unbans") {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let mut f2b = Fail2ban::new("life", pair.server(), USERS_DEFAULTS, JAILS);
    f2b.start(&["sshd", "postfix", "recidive"]);

    // actionstart made every jail's set and rule
    let rules = pair
        .server()
        .run("nft", &["list", "table", "inet", "banset"])
        .unwrap();
    for rule in [
        "ip saddr @f2b-sshd_v4 tcp dport @f2b-sshd_ports drop",
        "ip6 saddr @f2b-postfix_v6 tcp dport @f2b-postfix_ports drop",
        "ip saddr @f2b-recidive_v4 drop",
    ] {
        assert!(rules.contains(rule), "{rule}:\n{rules}");
    }
    let ports = |set: &str| {
        pair.server()
            .run("nft", &["list", "set", "inet", "banset", set])
            .unwrap()
    };
    assert!(ports("f2b-sshd_ports").contains("elements = { 22 }"));
    assert!(ports("f2b-postfix_ports").contains("elements = { 25, 465, 587 }"));
    assert!(!rules.contains("f2b-recidive_ports"), "{rules}");

    let t = Duration::from_millis(800);
    let ssh = listen_on(&pair, VethPair::SERVER_V4.into(), 22);
    let other = listen_on(&pair, VethPair::SERVER_V4.into(), 0);
    let ssh_addr = ssh.local_addr().unwrap();
    let other_addr = other.local_addr().unwrap();
    assert_eq!(pair.connect_tcp(ssh_addr, t), Reach::Connected);

    let client = VethPair::CLIENT_V4.to_string();
    // 192.0.2.100 is in this jail's ignoreip; its lines come first, so by
    // the time the client is banned they have been read
    f2b.append("auth.log", &sshd_failures("192.0.2.100", 5));
    f2b.append("auth.log", &sshd_failures(&client, 3));
    wait_until("the client is banned in the kernel", || {
        f2b.nft_set("f2b-sshd_v4").contains_key(&client)
    });
    let sshd = f2b.nft_set("f2b-sshd_v4");
    close_to(sshd[&client], 604_800, "sshd ban");
    assert!(!sshd.contains_key("192.0.2.100"), "{sshd:?}");
    assert_eq!(f2b.banned("sshd"), std::slice::from_ref(&client));

    // dropped on the jail's port, and only there
    assert_eq!(pair.connect_tcp(ssh_addr, t), Reach::TimedOut);
    assert_eq!(pair.connect_tcp(other_addr, t), Reach::Connected);

    // postfix, aggressive, maxretry 2; 10.1.2.3 is in the users' ignoreip
    f2b.append("mail.log", &postfix_ddos("10.1.2.3", 4));
    f2b.append("mail.log", &postfix_ddos("192.0.2.20", 2));
    wait_until("postfix bans 192.0.2.20", || {
        f2b.nft_set("f2b-postfix_v4").contains_key("192.0.2.20")
    });
    assert_eq!(f2b.banned("postfix"), ["192.0.2.20"]);
    assert!(!f2b.nft_set("f2b-postfix_v4").contains_key("10.1.2.3"));

    // recidive: three bans elsewhere within a day -> a week on every port
    let seen: Vec<String> = (0..3)
        .map(|_| {
            format!(
                "{} fail2ban.actions        [1]: NOTICE  [sshd] Ban 198.51.100.7",
                fail2ban_now()
            )
        })
        .collect();
    f2b.append("fail2ban-seen.log", &seen);
    wait_until("recidive bans 198.51.100.7", || {
        f2b.nft_set("f2b-recidive_v4").contains_key("198.51.100.7")
    });
    close_to(
        f2b.nft_set("f2b-recidive_v4")["198.51.100.7"],
        604_800,
        "recidive ban",
    );

    // IPv6 goes to the same logical set, and a manual ban may be a prefix
    f2b.client_ok(&["set", "sshd", "banip", "2001:db8::5", "203.0.113.0/24"]);
    assert!(f2b.nft_set("f2b-sshd_v6").contains_key("2001:db8::5"));
    let out = pair
        .server()
        .run("nft", &["list", "set", "inet", "banset", "f2b-sshd_v4net"])
        .unwrap();
    assert!(out.contains("203.0.113.0/24"), "{out}");

    // unban through fail2ban
    f2b.client_ok(&["set", "sshd", "unbanip", &client]);
    assert!(!f2b.nft_set("f2b-sshd_v4").contains_key(&client));
    assert_eq!(pair.connect_tcp(ssh_addr, t), Reach::Connected);
    // an unban of an address the kernel no longer holds is no error
    let out = f2b.banset(&["del", "f2b-sshd", "2001:db8::5"]);
    assert!(out.status.success(), "{}", text(&out));
    f2b.client_ok(&["set", "sshd", "unbanip", "2001:db8::5"]);
    assert!(
        !f2b.log_tail().contains("Failed to execute unban"),
        "{}",
        f2b.log_tail()
    );

    // someone flushes the ruleset: check says so, and the next ban brings
    // back every ban of the jail, not only the new one
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.30"]);
    pair.server().run("nft", &["flush", "ruleset"]).unwrap();
    assert_eq!(f2b.banset(&["check", "f2b-sshd"]).status.code(), Some(1));
    f2b.client_ok(&["set", "sshd", "banip", &client]);
    let sshd = f2b.nft_set("f2b-sshd_v4");
    assert!(
        sshd.contains_key("192.0.2.30") && sshd.contains_key(&client),
        "{sshd:?}"
    );
    assert_eq!(f2b.banset(&["check", "f2b-sshd"]).status.code(), Some(0));
    assert_eq!(pair.connect_tcp(ssh_addr, t), Reach::TimedOut);

    // banset loses the set altogether (ledger and kernel): the next ban
    // fails, fail2ban runs actioncheck, then actionrepair, which creates the
    // set again and takes the jail's active bans from fail2ban's database;
    // then fail2ban retries the ban
    let out = f2b.banset(&["destroy", "f2b-sshd"]);
    assert!(out.status.success(), "{}", text(&out));
    f2b.forget_calls();
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.31"]);
    let sshd = f2b.nft_set("f2b-sshd_v4");
    for addr in ["192.0.2.30", "192.0.2.31", client.as_str()] {
        assert!(sshd.contains_key(addr), "{addr}: {sshd:?}");
    }
    close_to(sshd["192.0.2.30"], 604_800, "a repaired ban keeps its end");
    let calls = f2b.calls();
    assert_eq!(
        calls.keys().map(String::as_str).collect::<Vec<_>>(),
        ["add", "check", "ensure"],
        "{calls:?}"
    );
    assert_eq!(pair.connect_tcp(ssh_addr, t), Reach::TimedOut);

    f2b.stop();
    // onstop = keep: the bans outlive fail2ban, in the kernel and the ledger
    assert!(f2b.nft_set("f2b-sshd_v4").contains_key(&client));
    assert_eq!(pair.connect_tcp(ssh_addr, t), Reach::TimedOut);
}

/// A restart with 10,000 bans keeps every one in the kernel and makes no
/// banset call per ban: the stop's flush empties the set in one call and
/// actionstop puts back fail2ban's active bans in one more, actionstart
/// checks the set in one call, and the restored tickets' actionban is a
/// shell test that calls no banset.
#[test]
fn fail2ban_restart_with_10000_bans_keeps_them_without_re_adding_each() {
    if skip("fail2ban_restart_with_10000_bans") {
        return;
    }
    let ns = NamedNetns::create("f2b-restart").expect("network namespace");
    let jail = "[sshd]\nenabled = true\nport = ssh\nlogpath = {dir}/auth.log\n";
    let mut f2b = Fail2ban::new("restart", &ns, USERS_DEFAULTS, jail);
    f2b.start(&["sshd"]);

    let addrs: Vec<String> = (0..10_000u32)
        .map(|i| {
            let a = (11u32 << 24) + i;
            std::net::Ipv4Addr::from(a).to_string()
        })
        .collect();
    for chunk in addrs.chunks(1000) {
        let mut args = vec!["set", "sshd", "banip"];
        args.extend(chunk.iter().map(String::as_str));
        f2b.client_ok(&args);
    }
    // `banip` queues the tickets and returns: fail2ban's action thread
    // bans them after it.
    wait_within(
        THOUSANDS_PATIENCE,
        "fail2ban banned the 10,000 addresses",
        || {
            f2b.currently_banned("sshd") == 10_000
                && f2b.nft_count("f2b-sshd_v4") == 10_000
                && f2b.calls().get("add") == Some(&10_000)
        },
    );
    let before = f2b.nft_set("f2b-sshd_v4");

    f2b.forget_calls();
    f2b.stop();
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 10_000, "kept while stopped");
    f2b.start(&["sshd"]);
    // fail2ban runs the action's shell test for every restored ticket
    // (norestored = false, see banset.conf): one fork each
    wait_within(
        THOUSANDS_PATIENCE,
        "fail2ban restored its 10,000 tickets",
        || f2b.currently_banned("sshd") == 10_000,
    );
    let calls = f2b.calls();
    assert_eq!(
        calls.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ensure", "flush"],
        "a restart runs no ban or unban per address: {calls:?}"
    );
    let after = f2b.nft_set("f2b-sshd_v4");
    assert_eq!(after.len(), 10_000);
    // the bans kept their ends: none was given a fresh week. fail2ban
    // keeps ban times in whole seconds and the kernel shows what is left
    // rounded down, so an end may come back up to a second or two later
    // than the kernel showed; a fresh week would be the restart's length
    // (several seconds) later for every address.
    for (addr, left) in &after {
        let was = before[addr].expect("a timeout");
        assert!(
            left.expect("a timeout") <= was + 2,
            "{addr}: {left:?} > {was} + 2"
        );
    }

    // fail2ban still drives new bans and unbans
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.44"]);
    f2b.client_ok(&["set", "sshd", "unbanip", "11.0.0.1"]);
    wait_until("the new ban reaches the kernel", || {
        f2b.nft_set("f2b-sshd_v4").contains_key("192.0.2.44")
    });
    assert!(!f2b.nft_set("f2b-sshd_v4").contains_key("11.0.0.1"));
    f2b.stop();
}

/// `onstop = remove` behaves like fail2ban's stock actions: stopping empties
/// and removes the set (one call each, no unban per address), and a start
/// bans the restored tickets again. With `bantime = -1` every ban is
/// permanent in the kernel.
#[test]
fn fail2ban_onstop_remove_clears_the_set_and_restores_at_start() {
    if skip("fail2ban_onstop_remove") {
        return;
    }
    let ns = NamedNetns::create("f2b-remove").expect("network namespace");
    // bantime -1: permanent bans, which fail2ban never unbans itself
    let jail = "[sshd]\nenabled = true\nport = ssh\nlogpath = {dir}/auth.log\n\
                bantime = -1\naction = banset[port=ssh, onstop=remove]\n";
    let mut f2b = Fail2ban::new("remove", &ns, USERS_DEFAULTS, jail);
    f2b.start(&["sshd"]);
    f2b.client_ok(&[
        "set",
        "sshd",
        "banip",
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::3",
    ]);
    let v4 = f2b.nft_set("f2b-sshd_v4");
    assert_eq!(v4.len(), 2);
    assert!(v4.values().all(Option::is_none), "permanent: {v4:?}");
    f2b.forget_calls();
    f2b.stop();
    let calls = f2b.calls();
    assert_eq!(
        calls.keys().map(String::as_str).collect::<Vec<_>>(),
        ["destroy", "flush"],
        "{calls:?}"
    );
    let ruleset = ns.run("nft", &["list", "ruleset"]).unwrap();
    assert!(!ruleset.contains("f2b-sshd"), "{ruleset}");
    f2b.start(&["sshd"]);
    wait_until("the restored bans are back in the kernel", || {
        f2b.nft_count("f2b-sshd_v4") == 2 && f2b.nft_count("f2b-sshd_v6") == 1
    });
    assert!(f2b.nft_set("f2b-sshd_v4").values().all(Option::is_none));
    f2b.stop();
}

/// The switch an admin makes: a jail that banned with fail2ban's stock
/// nftables action gets `banaction = banset` and a restart. The bans
/// fail2ban restores are enforced by banset from the first start, with
/// their original ends, though fail2ban skips the action for them.
#[test]
fn switching_a_jail_from_nftables_to_banset_keeps_its_bans() {
    if skip("switching_from_nftables") {
        return;
    }
    let ns = NamedNetns::create("f2b-switch").expect("network namespace");
    let jail = |banaction: &str| {
        format!("[sshd]\nenabled = true\nport = ssh\nlogpath = {{dir}}/auth.log\nbanaction = {banaction}\n")
    };
    let mut f2b = Fail2ban::new("switch", &ns, USERS_DEFAULTS, &jail("nftables"));
    f2b.start(&["sshd"]);
    f2b.client_ok(&[
        "set",
        "sshd",
        "banip",
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::3",
    ]);
    let stock = ns
        .run(
            "nft",
            &["list", "set", "inet", "f2b-table", "addr-set-sshd"],
        )
        .unwrap();
    assert!(stock.contains("192.0.2.1"), "{stock}");
    f2b.stop();

    f2b.write_jails(USERS_DEFAULTS, &jail("banset"));
    f2b.forget_calls();
    f2b.start(&["sshd"]);
    wait_until("fail2ban restored its tickets", || {
        f2b.currently_banned("sshd") == 3
    });
    let v4 = f2b.nft_set("f2b-sshd_v4");
    assert_eq!(v4.keys().collect::<Vec<_>>(), ["192.0.2.1", "192.0.2.2"]);
    close_to(v4["192.0.2.1"], 604_800, "a restored ban keeps its end");
    assert!(f2b.nft_set("f2b-sshd_v6").contains_key("2001:db8::3"));
    let calls = f2b.calls();
    assert_eq!(
        calls.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ensure"],
        "{calls:?}"
    );
    f2b.stop();
}

/// Bug: after a fail2ban restart (`onstop = keep`), `unbanip` reported
/// success while the kernel kept dropping the address. fail2ban skipped the
/// action for restored tickets (`norestored = true`), and fail2ban 1.0 runs
/// an action's unban only once that action has banned something of the
/// address's family since the jail started, so the unban never reached
/// banset.
#[test]
fn fail2ban_unbanip_after_restart_unbans_in_the_kernel() {
    if skip("fail2ban_unbanip_after_restart") {
        return;
    }
    let ns = NamedNetns::create("f2b-unbanip").expect("network namespace");
    let jail = "[sshd]\nenabled = true\nport = ssh\nlogpath = {dir}/auth.log\n";
    let mut f2b = Fail2ban::new("unbanip", &ns, USERS_DEFAULTS, jail);
    f2b.start(&["sshd"]);
    f2b.client_ok(&[
        "set",
        "sshd",
        "banip",
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::3",
    ]);
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 2);
    f2b.stop();
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 2, "kept while stopped");
    assert_eq!(f2b.nft_count("f2b-sshd_v6"), 1, "kept while stopped");
    f2b.start(&["sshd"]);
    wait_until("fail2ban restored its tickets", || {
        f2b.currently_banned("sshd") == 3
    });

    // the first thing after the restart is an unban: no new ban came first
    f2b.client_ok(&["set", "sshd", "unbanip", "192.0.2.1", "2001:db8::3"]);
    let v4 = f2b.nft_set("f2b-sshd_v4");
    assert_eq!(v4.keys().collect::<Vec<_>>(), ["192.0.2.2"], "{v4:?}");
    assert_eq!(f2b.nft_count("f2b-sshd_v6"), 0);
    let listed = f2b.banset(&["list", "f2b-sshd"]);
    assert!(
        !text(&listed).contains("192.0.2.1"),
        "the ledger forgot it too: {}",
        text(&listed)
    );
    f2b.stop();
}

/// Bug: `fail2ban-client unban --all` left the kernel untouched: with
/// `onstop = keep` actionflush was `true` (fail2ban runs it on a stop as
/// well), and after a restart fail2ban did not run it at all (see
/// `fail2ban_unbanip_after_restart_unbans_in_the_kernel`).
#[test]
fn fail2ban_unban_all_empties_the_kernel_sets() {
    if skip("fail2ban_unban_all") {
        return;
    }
    let ns = NamedNetns::create("f2b-unbanall").expect("network namespace");
    let jail = "[sshd]\nenabled = true\nport = ssh\nlogpath = {dir}/auth.log\n";
    let mut f2b = Fail2ban::new("unbanall", &ns, USERS_DEFAULTS, jail);
    f2b.start(&["sshd"]);
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.1", "2001:db8::3"]);
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 1);
    f2b.client_ok(&["unban", "--all"]);
    assert_eq!(f2b.currently_banned("sshd"), 0);
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 0, "unban --all, no restart");
    assert_eq!(f2b.nft_count("f2b-sshd_v6"), 0, "unban --all, no restart");

    // and after a restart, with only restored tickets
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.5", "2001:db8::6"]);
    f2b.stop();
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 1, "kept while stopped");
    f2b.start(&["sshd"]);
    wait_until("fail2ban restored its tickets", || {
        f2b.currently_banned("sshd") == 2
    });
    f2b.client_ok(&["unban", "--all"]);
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 0, "unban --all after restart");
    assert_eq!(f2b.nft_count("f2b-sshd_v6"), 0, "unban --all after restart");
    f2b.stop();
}

/// The Python action (`banset.py`), one `banset control --stdio` child for
/// the jail's life: bans in the kernel, and after a restart `unbanip` and
/// `unban --all` reach the kernel, with no banset process per ban.
#[test]
fn fail2ban_python_action_unbans_after_restart_and_on_unban_all() {
    if skip("fail2ban_python_action") {
        return;
    }
    let ns = NamedNetns::create("f2b-py").expect("network namespace");
    let jail = "[sshd]\nenabled = true\nport = ssh\nlogpath = {dir}/auth.log\n\
                action = banset.py[port=ssh, banset={dir}/banset, socket={dir}/none.sock]\n";
    let mut f2b = Fail2ban::new("py", &ns, USERS_DEFAULTS, jail);
    f2b.start(&["sshd"]);
    f2b.client_ok(&[
        "set",
        "sshd",
        "banip",
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::3",
    ]);
    wait_until("the bans reach the kernel", || {
        f2b.nft_count("f2b-sshd_v4") == 2 && f2b.nft_count("f2b-sshd_v6") == 1
    });
    close_to(
        f2b.nft_set("f2b-sshd_v4")["192.0.2.1"],
        604_800,
        "the jail's bantime",
    );
    f2b.stop();
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 2, "kept while stopped");
    f2b.start(&["sshd"]);
    wait_until("fail2ban restored its tickets", || {
        f2b.currently_banned("sshd") == 3
    });
    f2b.client_ok(&["set", "sshd", "unbanip", "192.0.2.1"]);
    let v4 = f2b.nft_set("f2b-sshd_v4");
    assert_eq!(v4.keys().collect::<Vec<_>>(), ["192.0.2.2"], "{v4:?}");
    f2b.client_ok(&["unban", "--all"]);
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 0, "unban --all after restart");
    assert_eq!(f2b.nft_count("f2b-sshd_v6"), 0, "unban --all after restart");
    let calls = f2b.calls();
    assert_eq!(
        calls.keys().map(String::as_str).collect::<Vec<_>>(),
        ["control"],
        "only the long-lived child: {calls:?}"
    );
    assert_eq!(calls["control"], 2, "one child per start: {calls:?}");
    f2b.stop();
}

/// Errors: a refused ban reaches fail2ban's log with banset's one-line
/// reason, and a banset that hangs does not make fail2ban hang.
#[test]
fn fail2ban_python_action_reports_banset_errors_and_survives_a_hung_banset() {
    if skip("fail2ban_python_action_errors") {
        return;
    }
    let ns = NamedNetns::create("f2b-pyerr").expect("network namespace");
    let jail = "[sshd]\nenabled = true\nport = ssh\nlogpath = {dir}/auth.log\n\
                action = banset.py[port=ssh, banset={dir}/banset, socket={dir}/none.sock, timeout=3]\n";
    let mut f2b = Fail2ban::new("pyerr", &ns, USERS_DEFAULTS, jail);
    f2b.start(&["sshd"]);
    // the set disappears behind fail2ban's back: banset refuses the ban
    let out = f2b.banset(&["destroy", "f2b-sshd"]);
    assert!(out.status.success(), "{}", text(&out));
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.1"]);
    wait_until("the reason reaches fail2ban's log", || {
        std::fs::read_to_string(f2b.path("fail2ban.log"))
            .unwrap_or_default()
            .contains("banset: ban of 192.0.2.1 in f2b-sshd failed: no set f2b-sshd")
    });
    f2b.stop();

    // a banset that answers nothing: fail2ban starts, bans and unbans
    // within its timeouts, and says why in its log
    let hung = f2b.path("banset");
    std::fs::write(&hung, "#!/bin/sh\nexec sleep 600\n").unwrap();
    f2b.start(&["sshd"]);
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.9"]);
    let mut unban = f2b
        .netns
        .command("fail2ban-client")
        .args(["-c", &f2b.conf(), "set", "sshd", "unbanip", "192.0.2.9"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("fail2ban answers unbanip though banset hangs", || {
        unban.try_wait().unwrap().is_some()
    });
    wait_until("the timeout reaches fail2ban's log", || {
        std::fs::read_to_string(f2b.path("fail2ban.log"))
            .unwrap_or_default()
            .contains("banset did not answer within 3")
    });
    f2b.stop();
}

/// A running `banset watch` on a fail2ban test's state directory, with its
/// control socket in `{dir}/run`; stopped (SIGTERM, then wait) on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(f2b: &Fail2ban) -> Daemon {
        std::fs::write(f2b.path("banset.toml"), "").unwrap();
        let log = f2b.path("watch.log");
        let err = std::fs::File::create(&log).unwrap();
        let child = f2b
            .netns
            .command(BANSET)
            .arg("--state-dir")
            .arg(f2b.path("state"))
            .arg("--config")
            .arg(f2b.path("banset.toml"))
            .arg("--runtime-dir")
            .arg(f2b.path("run"))
            .arg("watch")
            .env_remove("BANSET_STATE_DIR")
            .env_remove("BANSET_CONFIG")
            .env_remove("BANSET_RUNTIME_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start banset watch");
        let mut d = Daemon { child, log };
        wait_until("banset watch runs", || {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!("banset watch exited ({status}): {}", d.output());
            }
            d.output().contains("watching:")
        });
        d
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The Python action with `banset watch` running: it talks to the daemon's
/// control socket (no `banset` process at all), and its bans and unbans
/// reach the kernel through the daemon.
#[test]
fn fail2ban_python_action_bans_and_unbans_through_the_daemons_socket() {
    if skip("fail2ban_python_action_daemon") {
        return;
    }
    let ns = NamedNetns::create("f2b-pyd").expect("network namespace");
    let jail = "[sshd]\nenabled = true\nport = ssh\nlogpath = {dir}/auth.log\n\
                action = banset.py[port=ssh, banset={dir}/banset, socket={dir}/run/control.sock]\n";
    let mut f2b = Fail2ban::new("pyd", &ns, USERS_DEFAULTS, jail);
    let daemon = Daemon::start(&f2b);
    f2b.start(&["sshd"]);
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.1", "2001:db8::3"]);
    wait_until("the bans reach the kernel", || {
        f2b.nft_count("f2b-sshd_v4") == 1 && f2b.nft_count("f2b-sshd_v6") == 1
    });
    close_to(
        f2b.nft_set("f2b-sshd_v4")["192.0.2.1"],
        604_800,
        "the jail's bantime",
    );
    let out = daemon.output();
    assert!(
        out.contains("control: ensure") && out.contains("control: ban"),
        "the daemon made the set and the bans: {out}"
    );
    let status = f2b.banset(&["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    f2b.client_ok(&["set", "sshd", "unbanip", "192.0.2.1", "2001:db8::3"]);
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 0, "unbanned in the kernel");
    assert_eq!(f2b.nft_count("f2b-sshd_v6"), 0, "unbanned in the kernel");
    assert!(
        daemon.output().contains("control: unban"),
        "{}",
        daemon.output()
    );

    // a restart keeps the bans; unbanip and unban --all still reach the
    // kernel through the daemon
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.5", "192.0.2.6"]);
    wait_until("the bans reach the kernel", || {
        f2b.nft_count("f2b-sshd_v4") == 2
    });
    f2b.stop();
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 2, "kept while stopped");
    f2b.start(&["sshd"]);
    wait_until("fail2ban restored its tickets", || {
        f2b.currently_banned("sshd") == 2
    });
    f2b.client_ok(&["set", "sshd", "unbanip", "192.0.2.5"]);
    let v4 = f2b.nft_set("f2b-sshd_v4");
    assert_eq!(v4.keys().collect::<Vec<_>>(), ["192.0.2.6"], "{v4:?}");
    f2b.client_ok(&["unban", "--all"]);
    assert_eq!(f2b.nft_count("f2b-sshd_v4"), 0, "unban --all after restart");
    assert!(
        daemon.output().contains("control: flush"),
        "{}",
        daemon.output()
    );
    assert!(
        f2b.calls().is_empty(),
        "no banset process beside the daemon: {:?}",
        f2b.calls()
    );

    // the daemon stops (an upgrade) while fail2ban runs: the action's
    // connection breaks, and the next requests go to a `control --stdio`
    // child instead
    drop(daemon);
    f2b.client_ok(&["set", "sshd", "banip", "192.0.2.7"]);
    wait_until("the ban reaches the kernel without the daemon", || {
        f2b.nft_count("f2b-sshd_v4") == 1
    });
    f2b.client_ok(&["set", "sshd", "unbanip", "192.0.2.7"]);
    assert_eq!(
        f2b.nft_count("f2b-sshd_v4"),
        0,
        "unbanned without the daemon"
    );
    assert_eq!(f2b.calls().get("control"), Some(&1), "{:?}", f2b.calls());
    f2b.stop();
}
