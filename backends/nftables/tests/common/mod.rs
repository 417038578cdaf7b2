//! Helpers for the kernel tests: a fresh network namespace per test (from
//! banset-tests), and `nft` run inside it as the independent oracle. The
//! host's ruleset is never touched.

#![allow(dead_code)] // each test binary uses a different subset

use banset_core::{BackendKind, SetName, SetSpec};
pub use banset_tests::conformance::{entry, host as t};
use banset_tests::netns;
use serde_json::Value;

/// Runs `body` in a fresh network namespace, or says why it is skipped.
/// Checks first that the namespace has an empty ruleset: if it did not, the
/// test would not be where it thinks it is; stop before touching anything.
pub fn in_netns(test: &str, body: impl FnOnce() + Send) {
    netns::kernel_test(test, || {
        assert_eq!(nft(&["list", "ruleset"]), "", "fresh netns is not empty");
        body();
    });
}

/// Runs `nft` in the calling thread's namespace; panics with its stderr on failure.
pub fn nft(args: &[&str]) -> String {
    netns::run("nft", args)
}

/// `nft` that may fail; returns success.
pub fn nft_ok(args: &[&str]) -> bool {
    netns::succeeds("nft", args)
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
