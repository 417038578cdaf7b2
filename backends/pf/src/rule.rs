//! The blocking rule and the `pfctl` runs around it.
//!
//! A pf table blocks nothing by itself; a rule has to refer to it. Loading
//! rules natively means pf's nvlist/netlink rule API, a large surface for
//! one line, so the rule goes in with `pfctl` (by argv, the rule text on
//! stdin), once per set, into the set's own anchor:
//!
//! ```text
//! anchor banset/f2b:   block drop in quick from <f2b> to any
//! anchor banset/smtp:  block return in quick proto tcp from <smtp> to any port { 25 465 587 }
//! anchor banset/home:  block drop in quick on ! lo0 proto tcp from ! <home> to any port { 22 587 }
//! ```
//!
//! The last is an allow-only set's: every source *not* in the table is
//! blocked on the ports. `on ! lo0` keeps the host's own traffic (to
//! itself, from any of its addresses, comes in on lo0) out of it, and `in`
//! keeps its outgoing connections to other hosts' port 22 out; the rule
//! blocks and never passes, so the admin's rules and ban sets still apply
//! to members. One rule with `! <table>`, not a `{ ! <a> ! <b> }` list:
//! pf ORs a list, so negations in one would match everything.
//!
//! One anchor per set means loading one set's rule never replaces another
//! set's (`pfctl -a A -f -` replaces the whole anchor), and `destroy`
//! flushes exactly one. The main ruleset must evaluate the anchors, which
//! only the admin's `pf.conf` can say: `anchor "banset/*"`. `quick` matters
//! because pf is last-match-wins; the text loaded never defines the table,
//! since a `table` line in a loaded ruleset would replace the table's
//! content (the bans) with the line's (nothing).
//!
//! The text and argv are pure functions (unit-tested); [`Runner`] runs them.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use banset_core::{BackendError, BlockType, ErrorKind, Hook, Protocol, SetPolicy, Target};

/// The parent anchor of every set's anchor.
pub const ANCHOR_ROOT: &str = "banset";

/// The line the admin's `pf.conf` needs so pf evaluates banset's anchors.
pub const PF_CONF_LINE: &str = "anchor \"banset/*\"";

/// The anchor of a set: `banset/NAME`.
pub fn anchor(set: &str) -> String {
    format!("{ANCHOR_ROOT}/{set}")
}

/// The rule for a set's table: drop (or answer, for `reject`) everything
/// from its members (a ban set) or from every source outside it (an
/// allow-only set), or only what goes to the hook's ports.
pub fn text(table: &str, hook: &Hook, policy: SetPolicy) -> String {
    let action = match hook.block {
        BlockType::Drop => "block drop",
        // pf's `return`: a TCP RST for TCP, ICMP unreachable otherwise.
        BlockType::Reject => "block return",
    };
    // Ports imply TCP unless the hook says otherwise (see `Hook::protocol`).
    let protocol = match (hook.protocol, hook.ports.is_empty()) {
        (Some(p), _) => Some(p),
        (None, false) => Some(Protocol::Tcp),
        (None, true) => None,
    };
    let mut rule = format!("{action} in quick");
    if policy == SetPolicy::AllowOnly {
        rule.push_str(" on ! lo0");
    }
    if let Some(p) = protocol {
        rule.push_str(&format!(" proto {}", p.name()));
    }
    rule.push_str(&format!(" from {} to any", source(table, policy)));
    if !hook.ports.is_empty() {
        // pf's `a:b` is the inclusive range.
        let ports: Vec<String> = hook.ports.iter().map(|r| r.written_with(':')).collect();
        rule.push_str(&format!(" port {{ {} }}", ports.join(" ")));
    }
    rule.push('\n');
    rule
}

/// `pfctl` arguments that load `text` (given on stdin) into `anchor`.
pub fn load_argv(anchor: &str) -> Vec<String> {
    argv(&["-q", "-a", anchor, "-f", "-"])
}

/// `pfctl` arguments that print an anchor's rules (`None`: the main
/// ruleset).
pub fn show_argv(anchor: Option<&str>) -> Vec<String> {
    match anchor {
        Some(a) => argv(&["-a", a, "-s", "rules"]),
        None => argv(&["-s", "rules"]),
    }
}

/// `pfctl` arguments that remove every rule of `anchor`.
pub fn flush_argv(anchor: &str) -> Vec<String> {
    argv(&["-q", "-a", anchor, "-F", "rules"])
}

/// `pfctl` arguments that kill the states from `target` (an address or a
/// network), as blocklistd and SSHGuard do after a ban.
pub fn kill_states_argv(target: &Target) -> Vec<String> {
    vec!["-q".into(), "-k".into(), target.to_string()]
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The rule's source: the table, or everything outside it.
fn source(table: &str, policy: SetPolicy) -> String {
    match policy {
        SetPolicy::Ban => format!("<{table}>"),
        SetPolicy::AllowOnly => format!("! <{table}>"),
    }
}

/// Whether `pfctl -a ANCHOR -s rules` output holds a rule of `policy`'s
/// shape using the table. pfctl prints a loaded rule in its own words (one
/// line per port, service names for ports), so the source is what is
/// matched: `from <T>` for a ban set, `from ! <T>` for an allow-only one,
/// which never contains the other.
pub fn shows_rule_for(output: &str, table: &str, policy: SetPolicy) -> bool {
    let reference = format!("from {} ", source(table, policy));
    output.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("block") && l.contains(&reference)
    })
}

/// Whether the anchor's rules use the table at all, in either shape (what
/// `destroy` and a rule's removal must clear).
pub fn shows_any_rule_for(output: &str, table: &str) -> bool {
    SetPolicy::ALL
        .iter()
        .any(|&policy| shows_rule_for(output, table, policy))
}

/// Whether the main ruleset (`pfctl -s rules`) evaluates the set's anchor:
/// `anchor "banset/*"` or `anchor "banset/NAME"`.
pub fn main_evaluates(output: &str, set: &str) -> bool {
    let wanted = [
        format!("anchor \"{ANCHOR_ROOT}/*\""),
        format!("anchor \"{}\"", anchor(set)),
    ];
    output.lines().any(|l| {
        let l = l.trim_start();
        wanted.iter().any(|w| {
            l.strip_prefix(w.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        })
    })
}

/// Whether `pfctl -a ANCHOR -s rules` failed because the anchor does not
/// exist: pf answers `DIOCGETRULES` for an unknown ruleset with `EINVAL`
/// (or `ENOENT`, depending on the release), which pfctl prints.
pub fn no_such_anchor(stderr: &str) -> bool {
    stderr.contains("Invalid argument")
        || stderr.contains("No such file or directory")
        || stderr.contains("does not exist")
}

/// How a `pfctl` run ended.
pub use banset_core::ToolOutcome as Outcome;

/// Runs `pfctl`; a trait so the backend's logic is tested with a model of
/// it on systems without pf.
pub trait Runner: Send + Sync + fmt::Debug {
    /// Runs `pfctl args`, writing `stdin` to it when given. Only failing to
    /// start it is an error here.
    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<Outcome, BackendError>;
}

/// The real `pfctl`, from `PATH` (`/sbin/pfctl`).
#[derive(Debug, Default)]
pub struct Pfctl;

impl Runner for Pfctl {
    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<Outcome, BackendError> {
        let mut cmd = Command::new("pfctl");
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Other
            };
            BackendError::new(kind, shown(args), format!("cannot run pfctl: {e}"))
        })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A failed write shows up as pfctl's own error below.
            let _ = pipe.write_all(text.as_bytes());
        }
        let output = child
            .wait_with_output()
            .map_err(|e| BackendError::new(ErrorKind::Other, shown(args), e.to_string()))?;
        Ok(Outcome::from_output(&output))
    }
}

/// Shows a `pfctl` argv for messages.
pub fn shown(args: &[String]) -> String {
    banset_core::shown_argv("pfctl", args)
}

/// The error for a `pfctl` run that failed, with its stderr framed.
pub fn failure(args: &[String], outcome: &Outcome) -> BackendError {
    let kind = if outcome.stderr.contains("Permission denied")
        || outcome.stderr.contains("Operation not permitted")
    {
        ErrorKind::Permission
    } else {
        ErrorKind::Other
    };
    banset_core::tool_failure(kind, "pfctl", args, outcome)
}

#[cfg(test)]
mod tests {
    use banset_core::PortRange;

    use super::*;

    #[test]
    fn plain_drop() {
        assert_eq!(
            text("f2b", &Hook::default(), SetPolicy::Ban),
            "block drop in quick from <f2b> to any\n"
        );
        assert_eq!(anchor("f2b"), "banset/f2b");
        assert_eq!(
            load_argv("banset/f2b"),
            ["-q", "-a", "banset/f2b", "-f", "-"]
        );
        assert_eq!(
            flush_argv("banset/f2b"),
            ["-q", "-a", "banset/f2b", "-F", "rules"]
        );
        assert_eq!(show_argv(None), ["-s", "rules"]);
    }

    #[test]
    fn ports_imply_tcp_and_ranges_use_colons() {
        let hook = Hook {
            ports: PortRange::parse_list("smtp,465,submission,6000-6010").unwrap(),
            protocol: None,
            block: BlockType::Reject,
            ..Hook::default()
        };
        assert_eq!(
            text("smtp", &hook, SetPolicy::Ban),
            "block return in quick proto tcp from <smtp> to any port { 25 465 587 6000:6010 }\n"
        );
        let udp = Hook {
            protocol: Some(Protocol::Udp),
            ..Hook::default()
        };
        assert_eq!(
            text("dns", &udp, SetPolicy::Ban),
            "block drop in quick proto udp from <dns> to any\n"
        );
    }

    #[test]
    fn rules_are_recognised_as_pfctl_prints_them() {
        let shown = "block drop in quick proto tcp from <smtp> to any port = smtp\n\
                     block drop in quick proto tcp from <smtp> to any port = submission\n";
        let ban = SetPolicy::Ban;
        assert!(shows_rule_for(shown, "smtp", ban));
        assert!(!shows_rule_for(shown, "smt", ban));
        assert!(!shows_rule_for("pass in from <smtp> to any\n", "smtp", ban));
        assert!(!shows_rule_for("", "smtp", ban));
        assert!(!shows_rule_for(shown, "smtp", SetPolicy::AllowOnly));
        assert!(shows_any_rule_for(shown, "smtp"));
    }

    #[test]
    fn an_allow_only_rule_blocks_every_source_outside_the_table() {
        let hook = Hook {
            ports: PortRange::parse_list("ssh,submission").unwrap(),
            ..Hook::default()
        };
        assert_eq!(
            text("home", &hook, SetPolicy::AllowOnly),
            "block drop in quick on ! lo0 proto tcp from ! <home> to any port { 22 587 }\n"
        );
        assert_eq!(
            text("home", &Hook::default(), SetPolicy::AllowOnly),
            "block drop in quick on ! lo0 from ! <home> to any\n"
        );
        // As pfctl prints it back: one line per port, service names.
        let shown = "block drop in quick on ! lo0 proto tcp from ! <home> to any port = ssh\n\
                     block drop in quick on ! lo0 proto tcp from ! <home> to any port = submission\n";
        assert!(shows_rule_for(shown, "home", SetPolicy::AllowOnly));
        assert!(!shows_rule_for(shown, "home", SetPolicy::Ban));
        assert!(!shows_rule_for(shown, "hom", SetPolicy::AllowOnly));
        assert!(shows_any_rule_for(shown, "home"));
        // Table names that are prefixes of each other stay apart.
        assert!(!shows_rule_for(
            "block drop in quick from ! <home2> to any\n",
            "home",
            SetPolicy::AllowOnly
        ));
    }

    #[test]
    fn the_main_ruleset_must_evaluate_our_anchors() {
        let main = "scrub in all fragment reassemble\nanchor \"banset/*\" all\npass all flags S/SA keep state\n";
        assert!(main_evaluates(main, "f2b"));
        assert!(main_evaluates("anchor \"banset/f2b\" all\n", "f2b"));
        assert!(!main_evaluates("anchor \"banset/f2b\" all\n", "other"));
        assert!(!main_evaluates("anchor \"banset/f2b-x\" all\n", "f2b"));
        assert!(!main_evaluates("anchor \"f2b/*\" all\npass all\n", "f2b"));
        assert!(!main_evaluates("", "f2b"));
    }

    #[test]
    fn a_missing_anchor_is_told_apart_from_other_failures() {
        assert!(no_such_anchor("pfctl: DIOCGETRULES: Invalid argument"));
        assert!(!no_such_anchor("pfctl: /dev/pf: Permission denied"));
    }

    #[test]
    fn kill_states_names_the_target() {
        let t: Target = "198.51.100.0/24".parse().unwrap();
        assert_eq!(kill_states_argv(&t), ["-q", "-k", "198.51.100.0/24"]);
    }

    #[test]
    fn failures_frame_stderr() {
        let outcome = Outcome {
            code: Some(1),
            stdout: String::new(),
            stderr: "pfctl: /dev/pf: Permission denied".into(),
        };
        let e = failure(&load_argv("banset/x"), &outcome);
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(e.context(), "pfctl -q -a banset/x -f -");
        assert!(e
            .detail()
            .starts_with("exit status 1; pfctl said:\n---\npfctl: /dev/pf"));
    }
}
