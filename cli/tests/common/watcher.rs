//! A running `banset watch` for the daemon tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{wait_until, Sandbox};

/// A running `banset watch`, stopped (SIGTERM, then wait) on drop; its
/// stderr goes to a file the test can read.
pub struct Watcher {
    pub child: Child,
    pub log: PathBuf,
}

impl Watcher {
    pub fn start(sb: &Sandbox) -> Watcher {
        Watcher::start_cmd(sb, sb.cmd(&["watch"]))
    }

    /// Starts `cmd` (a `watch` command of `sb`) and waits until it watches.
    pub fn start_cmd(sb: &Sandbox, mut cmd: Command) -> Watcher {
        // A daemon without its own runtime directory would serve the
        // host's /run/banset/control.sock, and two tests (or a real daemon)
        // would take it from each other.
        let own_runtime_dir = cmd.get_args().any(|a| a == "--runtime-dir")
            || cmd
                .get_envs()
                .any(|(k, v)| k == "BANSET_RUNTIME_DIR" && v.is_some());
        if !own_runtime_dir {
            cmd.env("BANSET_RUNTIME_DIR", sb.dir().join("run"));
        }
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = sb.dir().join(format!("watch-{n}.log"));
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(err).spawn().unwrap();
        let w = Watcher { child, log };
        assert!(
            wait_until(|| w.output().contains("watching:")),
            "watch did not start: {}",
            w.output()
        );
        w
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
        self.output()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}
