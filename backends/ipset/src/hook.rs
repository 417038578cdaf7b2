//! The blocking rule: one `iptables` (IPv4) or `ip6tables` (IPv6) rule per
//! kernel set, at the top of `INPUT`:
//!
//! ```text
//! iptables -w -I INPUT 1 -p tcp -m set --match-set f2b src \
//!     -m multiport --dports 25,465,587 -m comment --comment "banset f2b" -j DROP
//! ```
//!
//! An allow-only set's rule blocks every source NOT in the set, never on
//! loopback, and carries another comment so the two shapes are told apart:
//!
//! ```text
//! iptables -w -I INPUT 1 ! -i lo -p tcp -m set ! --match-set home src \
//!     -m multiport --dports 22,587 -m comment --comment "banset home allow-only" -j DROP
//! ```
//!
//! A set blocks nothing by itself, and native nftables rules cannot refer to
//! an ipset, so the rule goes through iptables (on current distributions the
//! nft-based one, whose xt_set compatibility match reads the ipset). The
//! tools are run by argv, never through a shell, with `-w` so that a
//! concurrent firewall change makes them wait instead of fail. The comment
//! marks the rule as banset's: `-C` and `-D` match it exactly, so a rule an
//! admin wrote by hand for the same set is never taken for ours.
//!
//! The argv is built by pure functions (unit-tested); [`run`] executes it.

use std::process::Command;

use banset_core::{BackendError, BlockType, ErrorKind, Family, Hook, Protocol, SetPolicy, SetSpec};

use crate::layout::KernelSet;

/// The chain the rule goes into.
pub const CHAIN: &str = "INPUT";

/// iptables' multiport match takes at most 15 ports, a range counting as two
/// (`XT_MULTI_PORTS`).
pub const MAX_MULTIPORT: usize = 15;

/// The tool for a family.
pub fn program(family: Family) -> &'static str {
    match family {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    }
}

/// What to do with the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `-C`: exit 0 when the rule exists, 1 when not.
    Check,
    /// `-I INPUT 1`: insert at the top, before distribution rules that
    /// accept established or allowed traffic.
    Insert,
    /// `-D`: delete one matching rule.
    Delete,
}

/// The comment that marks a rule as banset's, naming the kernel set (and
/// the policy, when it is not ban).
pub fn comment(set: &str, policy: SetPolicy) -> String {
    match policy {
        SetPolicy::Ban => format!("banset {set}"),
        SetPolicy::AllowOnly => format!("banset {set} {}", policy.name()),
    }
}

/// The kernel sets named by banset's rules in `iptables -S INPUT` output:
/// `f2b` for `-A INPUT -m set --match-set f2b src -m comment --comment
/// "banset f2b" -j DROP`. Lines without banset's comment are someone else's.
pub fn commented_sets(listing: &str) -> Vec<String> {
    const MARK: &str = "--comment \"banset ";
    listing
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(MARK)? + MARK.len()..];
            let name = &rest[..rest.find('"')?];
            let name = name.strip_suffix(" allow-only").unwrap_or(name);
            (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| name.to_string())
        })
        .collect()
}

/// A hook whose ports do not fit one iptables multiport match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "iptables' multiport match takes at most {MAX_MULTIPORT} ports (a range counts as two); \
     the hook lists {slots}: use fewer ports or ranges"
)]
pub struct TooManyPorts {
    /// The slots the hook's ports take (a range counts as two).
    pub slots: usize,
}

/// The rule's match and target, without the action and chain. Fails when
/// the hook's ports do not fit one multiport match.
pub fn rule_spec(set: &str, hook: &Hook, policy: SetPolicy) -> Result<Vec<String>, TooManyPorts> {
    let mut rule: Vec<String> = Vec::new();
    if policy == SetPolicy::AllowOnly {
        // The host's own traffic, whatever its address, comes in on lo.
        rule.extend(["!", "-i", "lo"].map(String::from));
    }
    // Ports imply TCP unless the hook says otherwise (see `Hook::protocol`).
    let protocol = match (hook.protocol, hook.ports.is_empty()) {
        (Some(p), _) => Some(p),
        (None, false) => Some(Protocol::Tcp),
        (None, true) => None,
    };
    if let Some(p) = protocol {
        rule.extend(["-p".into(), p.name().into()]);
    }
    rule.extend(["-m", "set"].map(String::from));
    if policy == SetPolicy::AllowOnly {
        rule.push("!".into());
    }
    rule.extend(["--match-set", set, "src"].map(String::from));
    if !hook.ports.is_empty() {
        let slots: usize = hook
            .ports
            .iter()
            .map(|r| if r.first == r.last { 1 } else { 2 })
            .sum();
        if slots > MAX_MULTIPORT {
            return Err(TooManyPorts { slots });
        }
        let ports: Vec<String> = hook.ports.iter().map(|r| r.written_with(':')).collect();
        rule.extend([
            "-m".into(),
            "multiport".into(),
            "--dports".into(),
            ports.join(","),
        ]);
    }
    rule.extend([
        "-m".into(),
        "comment".into(),
        "--comment".into(),
        comment(set, policy),
    ]);
    rule.extend([
        "-j".into(),
        match hook.block {
            BlockType::Drop => "DROP",
            BlockType::Reject => "REJECT",
        }
        .into(),
    ]);
    Ok(rule)
}

/// The full argv after the program name.
pub fn argv(action: Action, rule: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec!["-w".into()];
    match action {
        Action::Check => args.extend(["-C".into(), CHAIN.into()]),
        Action::Insert => args.extend(["-I".into(), CHAIN.into(), "1".into()]),
        Action::Delete => args.extend(["-D".into(), CHAIN.into()]),
    }
    args.extend(rule.iter().cloned());
    args
}

pub use banset_core::ToolOutcome as Outcome;

/// Shows an argv for messages, quoting words with spaces.
pub fn shown(program: &str, args: &[String]) -> String {
    banset_core::shown_argv(program, args)
}

/// Runs `program args`; only failing to start it is an error here.
pub fn run(program: &str, args: &[String]) -> Result<Outcome, BackendError> {
    let output = Command::new(program).args(args).output().map_err(|e| {
        let (kind, hint) = if e.kind() == std::io::ErrorKind::NotFound {
            (
                ErrorKind::Unavailable,
                format!(
                    "{program} is not installed; the ipset backend needs it for the blocking rule \
                     (Debian/Ubuntu: apt-get install iptables; RHEL: dnf install iptables-nft), \
                     or create the set without a hook"
                ),
            )
        } else {
            (ErrorKind::Other, format!("cannot run {program}: {e}"))
        };
        BackendError::new(kind, shown(program, args), hint)
    })?;
    Ok(Outcome::from_output(&output))
}

/// The error for a run that failed, with the tool's stderr framed.
pub fn failure(program: &str, args: &[String], outcome: &Outcome) -> BackendError {
    let kind = if outcome.stderr.contains("Permission denied")
        || outcome.stderr.contains("you must be root")
    {
        ErrorKind::Permission
    } else {
        ErrorKind::Other
    };
    banset_core::tool_failure(kind, program, args, outcome)
}

/// The hook rule of each kernel set (`None` without a hook). Refused hooks
/// are `Invalid` before anything is created.
pub fn rules_for(
    spec: &SetSpec,
    sets: &[KernelSet],
) -> Result<Vec<Option<Vec<String>>>, BackendError> {
    rules_with(spec, sets, spec.policy)
}

/// The rules each kernel set would have under the other policy: one of
/// them in `INPUT` has the wrong shape (health says Incomplete, ensure_set
/// and destroy remove it). `None` where the hook does not build.
pub fn other_policy_rules(spec: &SetSpec, sets: &[KernelSet]) -> Vec<Option<Vec<String>>> {
    let other = match spec.policy {
        SetPolicy::Ban => SetPolicy::AllowOnly,
        SetPolicy::AllowOnly => SetPolicy::Ban,
    };
    rules_with(spec, sets, other).unwrap_or_else(|_| vec![None; sets.len()])
}

fn rules_with(
    spec: &SetSpec,
    sets: &[KernelSet],
    policy: SetPolicy,
) -> Result<Vec<Option<Vec<String>>>, BackendError> {
    sets.iter()
        .map(|set| {
            spec.hook
                .as_ref()
                .map(|h| {
                    rule_spec(&set.name, h, policy).map_err(|why| {
                        BackendError::new(
                            ErrorKind::Invalid,
                            format!("hook of set {}", spec.name),
                            why.to_string(),
                        )
                    })
                })
                .transpose()
        })
        .collect()
}

/// `-C`: exit 0 present, 1 absent; anything else is an error with stderr.
pub fn rule_present(set: &KernelSet, rule: &[String]) -> Result<bool, BackendError> {
    let program = program(set.family);
    let args = argv(Action::Check, rule);
    let outcome = run(program, &args)?;
    match outcome.code {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(failure(program, &args, &outcome)),
    }
}

#[cfg(test)]
mod tests {
    use banset_core::PortRange;

    use super::*;

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn only_banset_comments_name_sets() {
        let listing = "-P INPUT ACCEPT\n\
            -A INPUT -p tcp -m set --match-set f2b src -m multiport --dports 22 -m comment --comment \"banset f2b\" -j DROP\n\
            -A INPUT -m set --match-set mine src -m comment --comment \"my own\" -j DROP\n\
            -A INPUT -m set --match-set web6 src -m comment --comment \"banset web6\" -j REJECT\n";
        assert_eq!(commented_sets(listing), ["f2b", "web6"]);
    }

    #[test]
    fn allow_only_negates_the_match_skips_loopback_and_says_so() {
        let hook = Hook {
            ports: PortRange::parse_list("22,587").unwrap(),
            ..Hook::default()
        };
        let rule = rule_spec("home6", &hook, SetPolicy::AllowOnly).unwrap();
        assert_eq!(
            strs(&rule),
            [
                "!",
                "-i",
                "lo",
                "-p",
                "tcp",
                "-m",
                "set",
                "!",
                "--match-set",
                "home6",
                "src",
                "-m",
                "multiport",
                "--dports",
                "22,587",
                "-m",
                "comment",
                "--comment",
                "banset home6 allow-only",
                "-j",
                "DROP"
            ]
        );
        // As `iptables -S` prints it, the set is still found as banset's.
        let listing = "-A INPUT ! -i lo -p tcp -m set ! --match-set home6 src -m multiport --dports 22,587 -m comment --comment \"banset home6 allow-only\" -j DROP\n";
        assert_eq!(commented_sets(listing), ["home6"]);
    }

    #[test]
    fn plain_drop_on_every_port() {
        let rule = rule_spec("f2b", &Hook::default(), SetPolicy::Ban).unwrap();
        assert_eq!(
            strs(&argv(Action::Insert, &rule)),
            [
                "-w",
                "-I",
                "INPUT",
                "1",
                "-m",
                "set",
                "--match-set",
                "f2b",
                "src",
                "-m",
                "comment",
                "--comment",
                "banset f2b",
                "-j",
                "DROP"
            ]
        );
        assert_eq!(
            strs(&argv(Action::Check, &rule))[..3],
            ["-w", "-C", "INPUT"]
        );
        assert_eq!(
            strs(&argv(Action::Delete, &rule))[..4],
            ["-w", "-D", "INPUT", "-m"]
        );
    }

    #[test]
    fn ports_imply_tcp_and_reject() {
        let hook = Hook {
            ports: PortRange::parse_list("smtp,465,submission,6000-6010").unwrap(),
            protocol: None,
            block: BlockType::Reject,
            permanent: false,
        };
        let rule = rule_spec("f2b-postfix6", &hook, SetPolicy::Ban).unwrap();
        assert_eq!(
            strs(&rule),
            [
                "-p",
                "tcp",
                "-m",
                "set",
                "--match-set",
                "f2b-postfix6",
                "src",
                "-m",
                "multiport",
                "--dports",
                "25,465,587,6000:6010",
                "-m",
                "comment",
                "--comment",
                "banset f2b-postfix6",
                "-j",
                "REJECT"
            ]
        );
        assert_eq!(
            shown("ip6tables", &argv(Action::Check, &rule)),
            "ip6tables -w -C INPUT -p tcp -m set --match-set f2b-postfix6 src -m multiport \
             --dports 25,465,587,6000:6010 -m comment --comment \"banset f2b-postfix6\" -j REJECT"
        );
    }

    #[test]
    fn a_protocol_without_ports() {
        let hook = Hook {
            protocol: Some(Protocol::Udp),
            ..Hook::default()
        };
        let rule = rule_spec("dns", &hook, SetPolicy::Ban).unwrap();
        assert_eq!(strs(&rule)[..2], ["-p", "udp"]);
        assert!(!rule.contains(&"multiport".to_string()));
    }

    #[test]
    fn too_many_ports_for_multiport() {
        let hook = Hook {
            ports: PortRange::parse_list("1-2,3-4,5-6,7-8,9-10,11-12,13-14,15,17").unwrap(),
            ..Hook::default()
        };
        let e = rule_spec("x", &hook, SetPolicy::Ban)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 15") && e.contains("lists 16"), "{e}");
        let hook = Hook {
            ports: PortRange::parse_list("1-2,3-4,5-6,7-8,9-10,11-12,13-14,15").unwrap(),
            ..Hook::default()
        };
        assert!(
            rule_spec("x", &hook, SetPolicy::Ban).is_ok(),
            "15 slots fit"
        );
    }

    #[test]
    fn failures_frame_stderr() {
        let outcome = Outcome {
            code: Some(2),
            stderr: "iptables v1.8.9 (nf_tables): Set f2b doesn't exist.".into(),
            ..Outcome::default()
        };
        let e = failure("iptables", &["-w".to_string()], &outcome);
        assert_eq!(e.kind(), ErrorKind::Other);
        assert_eq!(e.context(), "iptables -w");
        assert!(e
            .detail()
            .starts_with("exit status 2; iptables said:\n---\niptables v1.8.9"));
        let denied = Outcome {
            code: Some(4),
            stderr: "iptables: Permission denied (you must be root).".into(),
            ..Outcome::default()
        };
        assert_eq!(
            failure("iptables", &[], &denied).kind(),
            ErrorKind::Permission
        );
    }

    #[test]
    fn program_per_family() {
        assert_eq!(program(Family::V4), "iptables");
        assert_eq!(program(Family::V6), "ip6tables");
    }
}
