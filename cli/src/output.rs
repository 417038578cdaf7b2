//! Standard output: buffered, and a closed pipe ends the command quietly.

use std::io::{BufWriter, IsTerminal, StdoutLock, Write};
use std::time::Instant;

use anyhow::Result;
use banset_core::{format_duration, SetName, SetSpec, UnreadableRow};

pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// Writes `value` as JSON and a newline.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = stdout();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Lines saying which ledger rows of `set` could not be read and were
/// skipped, and how to remove them; at most ten rows are named, so a
/// ledger full of bad rows cannot flood the terminal or the journal.
pub fn unreadable_rows_lines(set: &SetName, rows: &[UnreadableRow]) -> Vec<String> {
    const NAMED: usize = 10;
    let mut lines: Vec<String> = rows
        .iter()
        .take(NAMED)
        .map(|r| {
            format!(
                "{set}: skipped unreadable ledger row {r}; banset del {set} {:?} removes it",
                r.text
            )
        })
        .collect();
    if rows.len() > NAMED {
        lines.push(format!(
            "{set}: and {} more unreadable ledger rows (banset list {set} shows them; banset flush {set} removes every row)",
            rows.len() - NAMED
        ));
    }
    lines
}

/// `f2b-postfix: nftables, IPv4+IPv6, timeout 7d, tcp ports 25,465 drop`.
use banset_core::SetPolicy;

pub fn describe_spec(spec: &SetSpec) -> String {
    let families = match spec.families {
        banset_core::Families::Inet => "IPv4",
        banset_core::Families::Inet6 => "IPv6",
        banset_core::Families::Both => "IPv4+IPv6",
    };
    let hook = match &spec.hook {
        None => "no rule".to_string(),
        Some(h) => {
            let proto = h
                .protocol
                .map(|p| format!("{} ", p.name()))
                .unwrap_or_default();
            let ports = if h.ports.is_empty() {
                format!("{proto}all ports")
            } else {
                let list: Vec<String> = h.ports.iter().map(|p| p.to_string()).collect();
                format!("{proto}ports {}", list.join(","))
            };
            let block = match h.block {
                banset_core::BlockType::Drop => "drop",
                banset_core::BlockType::Reject => "reject",
            };
            let saved = if h.permanent { ", permanent" } else { "" };
            match spec.policy {
                SetPolicy::Ban => format!("{block} {ports}{saved}"),
                SetPolicy::AllowOnly => {
                    format!("allow-only: {block} non-members on {ports}{saved}")
                }
            }
        }
    };
    let hook = match (spec.policy, &spec.hook) {
        (SetPolicy::AllowOnly, None) => format!("allow-only, {hook}"),
        _ => hook,
    };
    format!(
        "{}: {}, {families}{}, timeout {}, {hook}",
        spec.name,
        spec.backend,
        if spec.prefixes { " with prefixes" } else { "" },
        spec.timeout
    )
}

/// `6d23h59m12s` or `permanent`.
pub fn remaining(secs: Option<u64>) -> String {
    match secs {
        Some(s) => format_duration(s),
        None => "permanent".into(),
    }
}

/// Progress for long bulk work, on stderr and only when it is a terminal:
/// scripts and fail2ban see nothing.
pub struct Progress {
    start: Instant,
    enabled: bool,
}

/// Below this many targets the work is too quick to be worth a line.
const PROGRESS_THRESHOLD: usize = 10_000;

impl Progress {
    pub fn new(work_items: usize, quiet: bool) -> Progress {
        Progress {
            start: Instant::now(),
            enabled: !quiet && work_items >= PROGRESS_THRESHOLD && std::io::stderr().is_terminal(),
        }
    }

    pub fn step(&self, what: &str) {
        if self.enabled {
            eprint!("\rbanset: {what} ...\x1b[K");
        }
    }

    pub fn done(&self, what: &str) {
        if self.enabled {
            eprintln!(
                "\rbanset: {what} in {:.2} s\x1b[K",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// `n` and the noun, singular for one: "1 address", "2 addresses".
pub fn counted(n: impl TryInto<u64>, one: &str, many: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    format!("{n} {}", if n == 1 { one } else { many })
}
