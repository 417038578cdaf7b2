//! What banset says to firewalld and how it reads the answers: the names on
//! the bus, the direct rule of a set, and firewalld's error codes. Pure, so
//! it is unit-tested without a bus.

use banset_core::{ErrorKind, Family, SetPolicy, SetSpec};

/// firewalld's well-known bus name.
pub const SERVICE: &str = "org.fedoraproject.FirewallD1";
/// The runtime object.
pub const PATH: &str = "/org/fedoraproject/FirewallD1";
/// The permanent configuration object.
pub const CONFIG_PATH: &str = "/org/fedoraproject/FirewallD1/config";
/// The main interface, which carries the `Reloaded` signal.
pub const MAIN_INTERFACE: &str = "org.fedoraproject.FirewallD1";
/// Runtime direct rules.
pub const DIRECT_INTERFACE: &str = "org.fedoraproject.FirewallD1.direct";
/// Permanent direct rules.
pub const CONFIG_DIRECT_INTERFACE: &str = "org.fedoraproject.FirewallD1.config.direct";
/// The one D-Bus error name firewalld uses; the code is in the message.
pub const EXCEPTION: &str = "org.fedoraproject.FirewallD1.Exception";

/// The table of every banset rule.
pub const TABLE: &str = "filter";
/// The chain banset's rules go into. firewalld puts a direct rule for the
/// built-in `INPUT` into its own `INPUT_direct` (iptables backend), or into
/// iptables-nft's `INPUT` next to its nftables table (nftables backend);
/// either way the packet meets it on input, and firewalld owns the chain.
pub const CHAIN: &str = "INPUT";
/// Direct rules of equal priority keep their order; banset needs no other.
pub const PRIORITY: i32 = 0;

/// One firewalld direct rule, as `addRule`/`removeRule`/`queryRule` take it
/// (signature `sssias`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectRule {
    /// `ipv4` or `ipv6`.
    pub ipv: &'static str,
    /// The address family of the kernel set the rule matches.
    pub family: Family,
    /// iptables arguments after the chain: the set match, ports, comment,
    /// target.
    pub args: Vec<String>,
}

impl DirectRule {
    /// The body of a direct-rule call: `(ipv, table, chain, priority, args)`.
    pub fn call_args(&self) -> (&str, &str, &str, i32, Vec<&str>) {
        (
            self.ipv,
            TABLE,
            CHAIN,
            PRIORITY,
            self.args.iter().map(String::as_str).collect(),
        )
    }

    /// The rule as `firewall-cmd --direct --get-all-rules` prints it, which
    /// is also what an admin types to remove it by hand.
    pub fn shown(&self) -> String {
        format!(
            "{} {TABLE} {CHAIN} {PRIORITY} {}",
            self.ipv,
            self.args
                .iter()
                .map(|a| if a.contains(' ') {
                    format!("{a:?}")
                } else {
                    a.clone()
                })
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

/// firewalld's name for a family.
pub fn ipv(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// The direct rules of a set, one per family, IPv4 first; none when the set
/// has no hook. The match and target are the ipset backend's own
/// (`banset_ipset::hook_rule_for`), so a set reads the same under both
/// backends. `Err` explains a hook iptables cannot express.
///
/// An allow-only set is a direct rule too (`! -i lo ... -m set !
/// --match-set SET src ... -j DROP`), not a firewalld zone with the ipsets
/// as sources, the way admins did it by hand. A zone binds its sources:
/// every packet from a member would then be handled by banset's zone, its
/// services and policy instead of the zone the admin configured (the one
/// that opens 25, 80, ...), and "only members reach 22" also needs 22
/// taken out of every other zone, which is the admin's configuration,
/// not banset's. The direct rule blocks non-members on the set's ports and
/// nothing else, passes loopback, never accepts (so the zones, and ban
/// sets, still apply to members), and is restored after a reload by the
/// same keeper that restores ban sets' rules.
pub fn direct_rules(spec: &SetSpec) -> Result<Vec<DirectRule>, banset_ipset::TooManyPorts> {
    direct_rules_with(spec, spec.policy)
}

/// The direct rules the set would have under the other policy: a rule of
/// that shape is the wrong one (health says Incomplete; `ensure_set` and
/// `destroy` remove it). Empty when the hook does not build.
pub fn other_policy_rules(spec: &SetSpec) -> Vec<DirectRule> {
    let other = match spec.policy {
        SetPolicy::Ban => SetPolicy::AllowOnly,
        SetPolicy::AllowOnly => SetPolicy::Ban,
    };
    direct_rules_with(spec, other).unwrap_or_default()
}

fn direct_rules_with(
    spec: &SetSpec,
    policy: SetPolicy,
) -> Result<Vec<DirectRule>, banset_ipset::TooManyPorts> {
    let Some(hook) = &spec.hook else {
        return Ok(Vec::new());
    };
    spec.families
        .list()
        .iter()
        .map(|&family| {
            let set = banset_ipset::kernel_set_name(spec, family);
            Ok(DirectRule {
                ipv: ipv(family),
                family,
                args: banset_ipset::hook_rule_for(&set, hook, policy)?,
            })
        })
        .collect()
}

/// A refusal by firewalld: `org.fedoraproject.FirewallD1.Exception` with
/// the message `CODE: detail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    /// `ALREADY_ENABLED`, `INVALID_IPSET`, ...
    pub code: String,
    /// The rest of the message, on one line.
    pub detail: String,
}

impl Exception {
    /// Splits firewalld's message. A message without a code (older
    /// versions, or a Python error passed through) keeps all its text in
    /// `detail` under the code `UNKNOWN_ERROR`, firewalld's own catch-all.
    pub fn parse(message: &str) -> Exception {
        let one_line = |s: &str| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        };
        match message.split_once(':') {
            Some((code, rest))
                if !code.is_empty()
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit()) =>
            {
                Exception {
                    code: code.to_string(),
                    detail: one_line(rest),
                }
            }
            _ => Exception {
                code: "UNKNOWN_ERROR".to_string(),
                detail: one_line(message),
            },
        }
    }

    /// What the code means to banset.
    pub fn kind(&self) -> ErrorKind {
        let code = self.code.as_str();
        match code {
            "ALREADY_ENABLED" | "ALREADY_SET" | "NAME_CONFLICT" => ErrorKind::Exists,
            "NOT_ENABLED" => ErrorKind::NotFound,
            "NOT_AUTHORIZED" | "ACCESS_DENIED" => ErrorKind::Permission,
            // Not (fully) running: a failed start or reload refuses changes
            // until the configuration is fixed; panic mode drops everything.
            "NOT_RUNNING" | "RUNNING_BUT_FAILED" | "PANIC_MODE" => ErrorKind::Unavailable,
            "NOT_OF_TYPE" | "BUILTIN_CHAIN" | "IPSET_WITH_TIMEOUT" => ErrorKind::Invalid,
            _ if code.starts_with("INVALID_") || code.starts_with("MISSING_") => ErrorKind::Invalid,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banset_core::{BackendKind, BlockType, Families, Hook, PortRange, SetName};

    fn spec(name: &str) -> SetSpec {
        SetSpec::new(SetName::new(name).unwrap(), BackendKind::Firewalld)
    }

    #[test]
    fn one_rule_per_family_naming_its_kernel_set() {
        let rules = direct_rules(&spec("f2b")).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0].shown(),
            "ipv4 filter INPUT 0 -m set --match-set f2b src -m comment --comment \"banset f2b\" -j DROP"
        );
        assert_eq!(rules[1].ipv, "ipv6");
        assert!(rules[1].args.contains(&"f2b6".to_string()));
        let (ipv, table, chain, prio, args) = rules[0].call_args();
        assert_eq!((ipv, table, chain, prio), ("ipv4", "filter", "INPUT", 0));
        assert_eq!(args[..4], ["-m", "set", "--match-set", "f2b"]);
    }

    #[test]
    fn ports_protocol_and_reject_reach_the_rule() {
        let mut s = spec("mail");
        s.families = Families::Inet6;
        s.hook = Some(Hook {
            ports: PortRange::parse_list("25,465,587").unwrap(),
            protocol: None,
            block: BlockType::Reject,
            permanent: true,
        });
        let rules = direct_rules(&s).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].shown(),
            "ipv6 filter INPUT 0 -p tcp -m set --match-set mail6 src -m multiport --dports 25,465,587 \
             -m comment --comment \"banset mail6\" -j REJECT"
        );
        s.hook = None;
        assert!(direct_rules(&s).unwrap().is_empty());
        s.hook = Some(Hook {
            ports: PortRange::parse_list("1-2,4-5,7-8,10-11,13-14,16-17,19-20,22-23").unwrap(),
            ..Hook::default()
        });
        assert!(direct_rules(&s)
            .unwrap_err()
            .to_string()
            .contains("at most 15"));
    }

    #[test]
    fn an_allow_only_set_is_a_direct_rule_blocking_every_other_source() {
        let mut s = spec("home");
        s.policy = SetPolicy::AllowOnly;
        s.hook = Some(Hook {
            ports: PortRange::parse_list("22,587").unwrap(),
            ..Hook::default()
        });
        let rules = direct_rules(&s).unwrap();
        assert_eq!(rules.len(), 2);
        for rule in &rules {
            let shown = rule.shown();
            assert!(
                shown.contains("! -i lo") && shown.contains("-m set ! --match-set home"),
                "{shown}"
            );
            assert!(
                shown.ends_with("-j DROP") && shown.contains("--dports 22,587"),
                "{shown}"
            );
        }
        let other = other_policy_rules(&s);
        assert_eq!(
            other,
            direct_rules(&spec_with_hook(&s, SetPolicy::Ban)).unwrap()
        );
        assert!(!other[0].shown().contains("! --match-set"));
    }

    fn spec_with_hook(s: &SetSpec, policy: SetPolicy) -> SetSpec {
        SetSpec {
            policy,
            ..s.clone()
        }
    }

    #[test]
    fn exceptions_split_into_code_and_one_line_detail() {
        let e = Exception::parse(
            "COMMAND_FAILED: '/usr/sbin/iptables-restore -w -n' failed: iptables-restore v1.8.9 \
             (nf_tables): Set nosuch doesn't exist.\n\nError occurred at line: 2\n",
        );
        assert_eq!(e.code, "COMMAND_FAILED");
        assert!(!e.detail.contains('\n'), "{}", e.detail);
        assert!(
            e.detail.ends_with("Error occurred at line: 2"),
            "{}",
            e.detail
        );
        assert_eq!(e.kind(), ErrorKind::Other);
        let e = Exception::parse("INVALID_IPSET: no-such-set");
        assert_eq!(
            (e.code.as_str(), e.detail.as_str()),
            ("INVALID_IPSET", "no-such-set")
        );
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert_eq!(
            Exception::parse("ALREADY_ENABLED: x").kind(),
            ErrorKind::Exists
        );
        assert_eq!(
            Exception::parse("NOT_ENABLED: x").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            Exception::parse("NOT_AUTHORIZED: x").kind(),
            ErrorKind::Permission
        );
        assert_eq!(
            Exception::parse("RUNNING_BUT_FAILED: Changing permanent configuration is not allowed")
                .kind(),
            ErrorKind::Unavailable
        );
        let e = Exception::parse("something: went wrong");
        assert_eq!(e.code, "UNKNOWN_ERROR");
        assert_eq!(e.detail, "something: went wrong");
    }
}
