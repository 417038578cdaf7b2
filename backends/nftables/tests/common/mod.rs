//! Small, self-contained helpers for the kernel tests: a fresh network
//! namespace per test, and `nft` as the independent oracle.
//!
//! `unshare(CLONE_NEWNET)` moves only the calling *thread* into the new
//! namespace, so each test body runs in a thread of its own that unshares
//! first; processes it spawns (`nft`, `ip`) start in that thread's namespace.
//! The host's ruleset is never touched.

#![allow(dead_code)] // each test binary uses a different subset

use std::process::Command;
use std::time::Duration;

use banset_core::{BackendKind, KernelEntry, SetName, SetSpec, Target};
use serde_json::Value;

/// Kernel tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `body` in a thread inside a fresh network namespace. Skips, with a
/// message, when not root. Panics in `body` fail the test.
pub fn in_netns(test: &str, body: impl FnOnce() + Send + 'static) {
    if !is_root() {
        eprintln!("SKIPPED {test}: kernel tests need root (run as root or in CI)");
        return;
    }
    let handle = std::thread::Builder::new()
        .name(test.to_string())
        .spawn(move || {
            // SAFETY: unshare affects only this thread's namespaces.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            );
            // Paranoia: the fresh namespace starts empty. If it does not,
            // we are not where we think we are; stop before touching anything.
            assert_eq!(nft(&["list", "ruleset"]), "", "fresh netns is not empty");
            body();
        })
        .expect("spawn test thread");
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `nft` in the calling thread's namespace; panics with its stderr on failure.
pub fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().expect("run nft");
    assert!(
        out.status.success(),
        "nft {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nft` that may fail; returns success.
pub fn nft_ok(args: &[&str]) -> bool {
    Command::new("nft")
        .args(args)
        .output()
        .expect("run nft")
        .status
        .success()
}

/// A member as `nft -j` shows it: target text and seconds left (None = permanent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleElem {
    pub target: String,
    pub timeout: Option<u64>,
    pub expires: Option<u64>,
}

/// The members of `inet banset SET` according to `nft -j list set`.
pub fn oracle_set(set: &str) -> Vec<OracleElem> {
    let json: Value = serde_json::from_str(&nft(&["-j", "list", "set", "inet", "banset", set]))
        .expect("nft -j output is JSON");
    let set = json["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|o| o.get("set")))
        .expect("a set object");
    let mut out = Vec::new();
    for elem in set["elem"].as_array().cloned().unwrap_or_default() {
        let (val, timeout, expires) = match elem.get("elem") {
            Some(e) => (
                e["val"].clone(),
                e["timeout"].as_u64(),
                e["expires"].as_u64(),
            ),
            None => (elem.clone(), None, None),
        };
        let target = match &val {
            Value::String(s) => s.clone(),
            Value::Object(o) if o.contains_key("prefix") => {
                format!(
                    "{}/{}",
                    o["prefix"]["addr"].as_str().unwrap(),
                    o["prefix"]["len"]
                )
            }
            other => format!("{other}"),
        };
        out.push(OracleElem {
            target,
            timeout,
            expires,
        });
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

/// The rules of chain `inet banset input`: their comments, in order.
pub fn oracle_rule_comments() -> Vec<String> {
    let json: Value =
        serde_json::from_str(&nft(&["-j", "list", "chain", "inet", "banset", "input"]))
            .expect("nft -j output is JSON");
    json["nftables"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|o| o.get("rule"))
        .map(|r| r["comment"].as_str().unwrap_or("").to_string())
        .collect()
}

pub fn spec(name: &str) -> SetSpec {
    SetSpec::new(SetName::new(name).unwrap(), BackendKind::Nftables)
}

pub fn t(s: &str) -> Target {
    s.parse().unwrap()
}

pub fn entry(s: &str, secs: Option<u64>) -> KernelEntry {
    KernelEntry {
        target: t(s),
        timeout: secs.map(Duration::from_secs),
    }
}
