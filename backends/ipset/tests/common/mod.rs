//! Helpers for the kernel tests: a fresh network namespace per test (from
//! banset-tests), and `ipset` / `iptables` run inside it as oracles.

#![allow(dead_code)] // each test binary uses a different subset

use std::process::Command;

use banset_core::{BackendKind, SetName, SetSpec};
#[allow(unused_imports)] // not every test binary uses both
pub use banset_tests::conformance::{entry, host as t};
use banset_tests::netns;
pub use banset_tests::netns::run;

/// Runs `body` in a fresh network namespace, or says why it is skipped.
/// Checks first that the namespace holds no sets and no rules: if it did,
/// the test would not be where it thinks it is.
pub fn in_netns(test: &str, body: impl FnOnce() + Send) {
    netns::kernel_test(test, || {
        assert_eq!(run("ipset", &["list", "-n"]), "", "fresh netns has sets");
        assert_eq!(input_rules("iptables"), Vec::<String>::new());
        body();
    });
}

/// The `-A INPUT ...` lines of `iptables -S INPUT` (or ip6tables).
pub fn input_rules(program: &str) -> Vec<String> {
    run(program, &["-w", "-S", "INPUT"])
        .lines()
        .filter(|l| l.starts_with("-A "))
        .map(String::from)
        .collect()
}

/// A set as `ipset save` shows it: the `create` line and the members, each
/// as (target, timeout left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleSet {
    pub create: String,
    pub members: Vec<(String, Option<u64>)>,
}

/// `ipset save NAME`, parsed; `None` when the set does not exist.
pub fn oracle(name: &str) -> Option<OracleSet> {
    let out = Command::new("ipset").args(["save", name]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut create = String::new();
    let mut members = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["create", ..] => create = line.to_string(),
            ["add", _, target, rest @ ..] => {
                let timeout = rest
                    .windows(2)
                    .find(|w| w[0] == "timeout")
                    .map(|w| w[1].parse::<u64>().expect("timeout is a number"));
                members.push((target.to_string(), timeout));
            }
            _ => {}
        }
    }
    members.sort();
    Some(OracleSet { create, members })
}

/// The members' targets only.
pub fn oracle_targets(name: &str) -> Vec<String> {
    oracle(name)
        .unwrap_or_else(|| panic!("set {name} does not exist"))
        .members
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Every set name in the namespace.
pub fn set_names() -> Vec<String> {
    let mut names: Vec<String> = run("ipset", &["list", "-n"])
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    names
}

pub fn spec(name: &str) -> SetSpec {
    SetSpec::new(SetName::new(name).unwrap(), BackendKind::Ipset)
}
