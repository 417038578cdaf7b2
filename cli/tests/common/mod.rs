//! What the CLI test files share: a sandbox (private state directory and
//! config) that runs the real `banset` binary, and the kernel-test wrapper.

#![allow(dead_code)] // each test file uses its own subset

pub mod watcher;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use banset_tests::netns;
use serde_json::Value;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");

/// A private state directory and config, removed on drop.
pub struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    pub fn new(test: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(format!(
            "banset-cli-{test}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("banset.toml"), "").unwrap();
        Sandbox { dir }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn with_config(self, text: &str) -> Sandbox {
        std::fs::write(self.dir.join("banset.toml"), text).unwrap();
        self
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BANSET);
        c.env_remove("BANSET_STATE_DIR")
            .env_remove("BANSET_CONFIG")
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--config")
            .arg(self.dir.join("banset.toml"))
            // Each sandbox's daemon has its own control socket.
            .env_remove("BANSET_RUNTIME_DIR")
            .arg("--runtime-dir")
            .arg(self.dir.join("run"))
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run banset")
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        stdout_of_success(args, self.run(args))
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn kernel_test(name: &str, f: impl FnOnce() + Send) {
    if netns::skip_unless_root(name) {
        return;
    }
    netns::in_new_netns(f);
}

/// Polls `cond` every 5 ms for up to 20 s: a bound against hanging, not a
/// timing assertion.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Members of an nftables set of banset's table, read with `nft -j` (the
/// oracle), sorted; empty when the set does not exist.
pub fn nft_members(set: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["-j", "list", "set", "inet", "banset", set])
        .output()
        .expect("nft must be installed for the kernel tests");
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut members = Vec::new();
    for item in v["nftables"].as_array().unwrap() {
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            // `{"elem": {"val": ..., "timeout": ...}}`, or the bare value.
            let val = e["elem"]["val"].as_str().or(e.as_str());
            members.push(val.unwrap_or_default().to_string());
        }
    }
    members.sort();
    members
}

/// Appends lines to a log file, creating it if needed.
pub fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// Unix time `t` as the local wall clock in syslog's `Mmm dd HH:MM:SS`.
pub fn syslog_date(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: localtime_r into a zeroed tm we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        assert!(!libc::localtime_r(&(t as libc::time_t), &mut tm).is_null());
        tm
    };
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon as usize], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

/// The stdout of `banset ARGS`, which must have succeeded (its stderr in
/// the failure message otherwise).
pub fn stdout_of_success(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "banset {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
