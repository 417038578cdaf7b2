//! The deny rule, and the `ipfw` command runs that manage it (and, on
//! FreeBSD 15, the tables: see `tables::Command`).
//!
//! ```text
//! ipfw -q add 50 deny ip from table(f2b) to any // banset f2b
//! ipfw -q add 51 reset tcp from table(smtp) to any dst-port 25,465,587 // banset smtp
//! ipfw -q add 52 deny tcp from not table(home) to any dst-port 22,587 in not via lo0 // banset home
//! ```
//!
//! The last is an allow-only set's: every source *not* in the table is
//! denied on the ports. `in` keeps the host's own outgoing connections to
//! other hosts' port 22 out of it (ipfw sees each packet going out too),
//! `not via lo0` its traffic to itself (from any of its addresses, it
//! passes lo0). It denies and never allows, so the admin's later rules
//! and ban sets still apply to members.
//!
//! Loading rules natively is a large API for one rule per set, so the rule
//! goes in with `ipfw` by argv. Its place matters: ipfw runs rules in
//! number order and the first match decides, so the rule must come before
//! the first rule that accepts traffic or keeps state (`check-state`,
//! `keep-state`): a deny after `check-state` would let an established
//! connection from a banned source live on. banset takes the first free
//! number from [`RULE_BASE`] below that barrier (or, when the barrier is
//! lower, the highest free number under it). The comment `// banset NAME`
//! marks the rule as banset's, so `destroy` never removes an admin's rule.
//!
//! Pure functions (unit-tested) build the argv and read `ipfw list`;
//! [`Runner`] runs the command.

use std::collections::BTreeSet;
use std::fmt;
use std::process::{Command, Stdio};

use banset_core::{BackendError, BlockType, ErrorKind, Hook, Protocol, SetPolicy};

/// Where banset starts looking for a free rule number: below the 100s
/// where `rc.firewall` starts, above the single digits admins use.
pub const RULE_BASE: u32 = 50;

/// ipfw's default rule, which every ruleset ends with.
pub const DEFAULT_RULE: u32 = 65_535;

/// The comment that marks a set's rule, as `ipfw list` prints it.
pub fn comment(set: &str) -> String {
    format!("// banset {set}")
}

/// The rule after its number: action, protocol, source table (or every
/// source outside it, for an allow-only set), ports, comment.
pub fn body(table: &str, hook: &Hook, policy: SetPolicy) -> Vec<String> {
    // Ports imply TCP unless the hook says otherwise (see `Hook::protocol`).
    let protocol = match (hook.protocol, hook.ports.is_empty()) {
        (Some(p), _) => Some(p),
        (None, false) => Some(Protocol::Tcp),
        (None, true) => None,
    };
    let mut out: Vec<String> = match (hook.block, protocol) {
        (BlockType::Drop, _) => vec!["deny".into()],
        // A TCP reset answers TCP; anything else gets ICMP port unreachable.
        (BlockType::Reject, Some(Protocol::Tcp)) => vec!["reset".into()],
        (BlockType::Reject, _) => vec!["unreach".into(), "port".into()],
    };
    out.push(protocol.map_or("ip", Protocol::name).into());
    out.push("from".into());
    if policy == SetPolicy::AllowOnly {
        out.push("not".into());
    }
    out.extend([format!("table({table})"), "to".into(), "any".into()]);
    if !hook.ports.is_empty() {
        let ports: Vec<String> = hook.ports.iter().map(|r| r.to_string()).collect();
        out.extend(["dst-port".into(), ports.join(",")]);
    }
    if policy == SetPolicy::AllowOnly {
        out.extend(["in", "not", "via", "lo0"].map(String::from));
    }
    out.extend(["//".into(), "banset".into(), table.into()]);
    out
}

/// The policy whose shape a rule of ours has: an allow-only rule's source
/// is `not table(NAME)`.
pub fn policy_of(rule: &Listed) -> SetPolicy {
    if rule.text.contains(" from not table(") {
        SetPolicy::AllowOnly
    } else {
        SetPolicy::Ban
    }
}

/// `ipfw` arguments that add the rule as number `number`.
pub fn add_argv(number: u32, body: &[String]) -> Vec<String> {
    let mut out = vec!["-q".into(), "add".into(), number.to_string()];
    out.extend(body.iter().cloned());
    out
}

/// `ipfw` arguments that list the rules.
pub fn list_argv() -> Vec<String> {
    vec!["list".into()]
}

/// `ipfw` arguments that delete every rule numbered `number`.
pub fn delete_argv(number: u32) -> Vec<String> {
    vec!["-q".into(), "delete".into(), number.to_string()]
}

/// One line of `ipfw list`: `00050 deny ip from table(f2b) to any // banset f2b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The rule number.
    pub number: u32,
    /// The rest of the line.
    pub text: String,
}

/// The rules of `ipfw list` output; lines that do not start with a number
/// are skipped.
pub fn parse_list(output: &str) -> Vec<Listed> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (num, rest) = line.split_once(char::is_whitespace)?;
            Some(Listed {
                number: num.parse().ok()?,
                text: rest.trim().to_string(),
            })
        })
        .collect()
}

/// Whether a listed rule is the set's own.
pub fn is_ours(rule: &Listed, set: &str) -> bool {
    rule.text.ends_with(&comment(set))
}

/// A rule that accepts traffic or keeps state: banset's deny must come
/// before it.
fn is_barrier(rule: &Listed) -> bool {
    if rule.number >= DEFAULT_RULE {
        return false;
    }
    let action = rule.text.split_whitespace().next().unwrap_or("");
    matches!(
        action,
        "allow" | "accept" | "pass" | "permit" | "check-state"
    ) || rule
        .text
        .split_whitespace()
        .any(|w| matches!(w, "keep-state" | "record-state" | "limit" | "check-state"))
}

/// The number for a new banset rule: the first free one from
/// [`RULE_BASE`] up to the first barrier, else the highest free one below
/// both. `Err` says why there is none.
pub fn free_number(rules: &[Listed]) -> Result<u32, NoFreeNumber> {
    let used: BTreeSet<u32> = rules.iter().map(|r| r.number).collect();
    let barrier = rules
        .iter()
        .filter(|r| is_barrier(r))
        .map(|r| r.number)
        .min()
        .unwrap_or(DEFAULT_RULE);
    (RULE_BASE..barrier)
        .find(|n| !used.contains(n))
        .or_else(|| {
            (1..RULE_BASE.min(barrier))
                .rev()
                .find(|n| !used.contains(n))
        })
        .ok_or(NoFreeNumber { barrier })
}

/// No rule number is free before the first rule that accepts traffic or
/// keeps state, where banset's deny rule must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no free ipfw rule number below rule {barrier}, the first that accepts traffic or \
     keeps state; banset's deny rule must come before it"
)]
pub struct NoFreeNumber {
    /// The first rule that accepts traffic or keeps state.
    pub barrier: u32,
}

/// How an `ipfw` run ended.
pub use banset_core::ToolOutcome as Outcome;

/// Runs `ipfw`; a trait so the backend's logic is tested with a model of
/// it on systems without ipfw.
pub trait Runner: Send + Sync + fmt::Debug {
    /// Runs `ipfw args`. Only failing to start it is an error here.
    fn run(&self, args: &[String]) -> Result<Outcome, BackendError>;
}

/// The real `ipfw`, from `PATH` (`/sbin/ipfw`).
#[derive(Debug, Default)]
pub struct Ipfw;

impl Runner for Ipfw {
    fn run(&self, args: &[String]) -> Result<Outcome, BackendError> {
        let output = Command::new("ipfw")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Other
                };
                BackendError::new(kind, shown(args), format!("cannot run ipfw: {e}"))
            })?;
        Ok(Outcome::from_output(&output))
    }
}

/// Shows an `ipfw` argv for messages.
pub fn shown(args: &[String]) -> String {
    banset_core::shown_argv("ipfw", args)
}

/// The error for an `ipfw` run that failed, with its stderr framed and
/// the kind read from `ipfw(8)`'s fixed messages.
pub fn failure(args: &[String], outcome: &Outcome) -> BackendError {
    let e = &outcome.stderr;
    let kind = if e.contains("Permission denied") || e.contains("Operation not permitted") {
        ErrorKind::Permission
    } else if e.contains("table not found") || e.contains("No such process") {
        ErrorKind::NotFound
    } else if e.contains("limit hit") {
        ErrorKind::SetFull
    } else if e.contains("Protocol not available") {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Other
    };
    banset_core::tool_failure(kind, "ipfw", args, outcome)
}

#[cfg(test)]
mod tests {
    use banset_core::PortRange;

    use super::*;

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn plain_deny() {
        let b = body("f2b", &Hook::default(), SetPolicy::Ban);
        assert_eq!(
            strs(&add_argv(50, &b)),
            [
                "-q",
                "add",
                "50",
                "deny",
                "ip",
                "from",
                "table(f2b)",
                "to",
                "any",
                "//",
                "banset",
                "f2b"
            ]
        );
        assert_eq!(strs(&delete_argv(50)), ["-q", "delete", "50"]);
    }

    #[test]
    fn ports_reset_and_unreach() {
        let tcp = Hook {
            ports: PortRange::parse_list("smtp,465,6000-6010").unwrap(),
            protocol: None,
            block: BlockType::Reject,
            ..Hook::default()
        };
        assert_eq!(
            strs(&body("smtp", &tcp, SetPolicy::Ban)),
            [
                "reset",
                "tcp",
                "from",
                "table(smtp)",
                "to",
                "any",
                "dst-port",
                "25,465,6000-6010",
                "//",
                "banset",
                "smtp"
            ]
        );
        let udp = Hook {
            protocol: Some(Protocol::Udp),
            block: BlockType::Reject,
            ..Hook::default()
        };
        assert_eq!(
            strs(&body("dns", &udp, SetPolicy::Ban))[..3],
            ["unreach", "port", "udp"]
        );
    }

    #[test]
    fn an_allow_only_rule_denies_every_source_outside_the_table_coming_in() {
        let hook = Hook {
            ports: PortRange::parse_list("ssh,submission").unwrap(),
            ..Hook::default()
        };
        let b = body("home", &hook, SetPolicy::AllowOnly);
        assert_eq!(
            b.join(" "),
            "deny tcp from not table(home) to any dst-port 22,587 in not via lo0 // banset home"
        );
        let listed = parse_list(&format!(
            "00052 {}\n00053 deny ip from table(home) to any // banset home\n",
            b.join(" ")
        ));
        assert!(is_ours(&listed[0], "home") && is_ours(&listed[1], "home"));
        assert_eq!(policy_of(&listed[0]), SetPolicy::AllowOnly);
        assert_eq!(policy_of(&listed[1]), SetPolicy::Ban);
        let all_ports = body("home", &Hook::default(), SetPolicy::AllowOnly);
        assert_eq!(
            all_ports.join(" "),
            "deny ip from not table(home) to any in not via lo0 // banset home"
        );
    }

    const RC_FIREWALL: &str = "\
00050 deny ip from table(f2b) to any // banset f2b
00100 allow ip from any to any via lo0
00200 deny ip from any to 127.0.0.0/8
00300 check-state :default
00400 allow tcp from any to any 22 setup keep-state :default
65535 deny ip from any to any
";

    #[test]
    fn listing_finds_our_rules_and_a_number_before_the_barrier() {
        let rules = parse_list(RC_FIREWALL);
        assert_eq!(rules.len(), 6);
        assert!(is_ours(&rules[0], "f2b"));
        assert!(!is_ours(&rules[0], "f2"));
        assert!(!is_ours(&rules[1], "f2b"));
        assert_eq!(free_number(&rules), Ok(51));
    }

    #[test]
    fn a_low_barrier_takes_the_highest_free_number_below_it() {
        let rules = parse_list(
            "00010 check-state\n00005 deny ip from any to any\n65535 allow ip from any to any\n",
        );
        assert_eq!(free_number(&rules), Ok(9));
        let full = parse_list("00001 check-state\n");
        let none = free_number(&full).unwrap_err();
        assert_eq!(none, NoFreeNumber { barrier: 1 });
        assert!(none.to_string().contains("below rule 1"));
        // Only the default rule: the base.
        assert_eq!(
            free_number(&parse_list("65535 allow ip from any to any\n")),
            Ok(50)
        );
        // An empty listing (no ipfw rules read) still has the base.
        assert_eq!(free_number(&[]), Ok(50));
    }

    #[test]
    fn failures_are_read_from_ipfw_messages() {
        let out = |stderr: &str| Outcome {
            code: Some(71),
            stdout: String::new(),
            stderr: stderr.into(),
        };
        let args = list_argv();
        assert_eq!(
            failure(&args, &out("ipfw: table not found")).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            failure(&args, &out("ipfw: limit hit")).kind(),
            ErrorKind::SetFull
        );
        let e = failure(&args, &out("ipfw: socket: Operation not permitted"));
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(e
            .detail()
            .starts_with("exit status 71; ipfw said:\n---\nipfw: socket"));
    }
}
