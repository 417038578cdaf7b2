//! Which kernel objects a logical banset set is made of, and their names.
//!
//! Users inspect these with `nft list table inet banset`, so the names are
//! part of the interface:
//! - table `inet banset`, base chain `input` (filter, hook input, priority
//!   -10, policy accept);
//! - `NAME_v4` / `NAME_v6`: hash sets of single addresses (flags timeout);
//! - `NAME_v4net` / `NAME_v6net`: interval sets of prefixes (flags interval,
//!   timeout), only when the set admits prefixes. Hosts stay in the hash sets
//!   because interval insertion is much costlier on older kernels (notes §3.3);
//! - `NAME_ports`: the destination ports of the hook, when it names any;
//! - one rule per address set, tagged with the comment `banset SETNAME`, which
//!   is how banset finds its own rules again;
//! - for an allow-only set instead, one rule per family, `iif != lo saddr !=
//!   @NAME_v4 saddr != @NAME_v4net ... drop`, tagged `banset NAME_v4
//!   allow-only` (the other comment is how `health` tells the two shapes
//!   apart).

use std::time::Duration;

use banset_core::{
    BlockType, Family, SetName, SetPolicy, SetSpec, Target, Timeout, MAX_TIMEOUT_SECS,
};

use crate::msg::elements::Key;
use crate::msg::objects::{
    key_type, set_flags, AllowOnlyMatch, BaseChain, RuleDef, SetDef, Verdict, NF_ACCEPT,
    NF_INET_LOCAL_IN,
};
use crate::msg::{NFPROTO_IPV4, NFPROTO_IPV6};

pub(crate) const TABLE: &str = "banset";
pub(crate) const CHAIN: &str = "input";

/// Before firewalld's and the distributions' own input chains (priority 0).
pub(crate) const CHAIN_PRIORITY: i32 = -10;

pub(crate) const BASE_CHAIN: BaseChain<'static> = BaseChain {
    table: TABLE,
    name: CHAIN,
    hook: NF_INET_LOCAL_IN,
    priority: CHAIN_PRIORITY,
    policy: NF_ACCEPT,
};

/// The longest timeout sent to the kernel. nf_tables takes u64 milliseconds
/// but refuses values whose jiffies overflow; banset's own cap (100 years)
/// is far below that, so clamping here only guards against caller mistakes.
pub(crate) const MAX_TIMEOUT_MS: u64 = MAX_TIMEOUT_SECS * 1000;

/// What an address set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holds {
    Hosts,
    Prefixes,
}

/// One kernel set holding addresses of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AddrSet {
    pub name: String,
    pub family: Family,
    pub holds: Holds,
}

impl AddrSet {
    fn new(base: &SetName, family: Family, holds: Holds) -> AddrSet {
        let suffix = match (family, holds) {
            (Family::V4, Holds::Hosts) => "v4",
            (Family::V6, Holds::Hosts) => "v6",
            (Family::V4, Holds::Prefixes) => "v4net",
            (Family::V6, Holds::Prefixes) => "v6net",
        };
        AddrSet {
            name: format!("{base}_{suffix}"),
            family,
            holds,
        }
    }

    pub fn is_interval(&self) -> bool {
        self.holds == Holds::Prefixes
    }

    pub fn flags(&self) -> u32 {
        match self.holds {
            Holds::Hosts => set_flags::TIMEOUT,
            Holds::Prefixes => set_flags::TIMEOUT | set_flags::INTERVAL,
        }
    }

    pub fn key_len(&self) -> usize {
        match self.family {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The rule comment that marks this set's rule as banset's.
    pub fn rule_comment(&self) -> String {
        format!("banset {}", self.name)
    }

    /// The comment of an allow-only set's rule, carried by the family's
    /// hosts set (the one rule of the family reads the prefix set too).
    fn allow_only_comment(&self) -> String {
        format!("banset {} allow-only", self.name)
    }

    /// This set's rule comment under `policy`; `None` when the set has no
    /// rule of its own (an allow-only prefix set).
    pub fn comment_for(&self, policy: SetPolicy) -> Option<String> {
        match (policy, self.holds) {
            (SetPolicy::Ban, _) => Some(self.rule_comment()),
            (SetPolicy::AllowOnly, Holds::Hosts) => Some(self.allow_only_comment()),
            (SetPolicy::AllowOnly, Holds::Prefixes) => None,
        }
    }

    /// Whether `target` belongs in this set.
    pub fn takes(&self, target: &Target) -> bool {
        target.family() == self.family
            && match self.holds {
                Holds::Hosts => target.is_host(),
                Holds::Prefixes => !target.is_host(),
            }
    }

    /// `max_elements` bounds the set (nft's `size`). An interval set keeps
    /// two elements per prefix (start and end), so it gets twice the room.
    pub fn set_def(&self, timeout: Timeout, max_elements: Option<u32>, id: u32) -> SetDef<'_> {
        SetDef {
            table: TABLE,
            name: &self.name,
            flags: self.flags(),
            key_type: match self.family {
                Family::V4 => key_type::IPV4_ADDR,
                Family::V6 => key_type::IPV6_ADDR,
            },
            key_len: self.key_len() as u32,
            timeout_ms: timeout.secs().map(|s| s.saturating_mul(1000)),
            size: max_elements.map(|m| match self.holds {
                Holds::Hosts => m,
                Holds::Prefixes => m.saturating_mul(2),
            }),
            id,
        }
    }
}

/// The destination-port set of a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortsSet {
    pub name: String,
    /// Ranges expanded, sorted, without duplicates (core caps them at 4096).
    pub ports: Vec<u16>,
}

impl PortsSet {
    pub fn set_def(&self, id: u32) -> SetDef<'_> {
        SetDef {
            table: TABLE,
            name: &self.name,
            flags: 0,
            key_type: key_type::INET_SERVICE,
            key_len: 2,
            timeout_ms: None,
            size: None,
            id,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.ports.iter().filter_map(|p| Key::new(&p.to_be_bytes()))
    }
}

/// The blocking rule's shape, shared by all address sets of a logical set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RuleShape {
    pub l4proto: Option<u8>,
    pub verdict: Verdict,
}

/// Every kernel object of one logical set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub addr_sets: Vec<AddrSet>,
    pub ports: Option<PortsSet>,
    /// `None`: the admin hooks the sets up himself; no rules.
    pub rule: Option<RuleShape>,
    pub policy: SetPolicy,
    pub timeout: Timeout,
    pub max_elements: Option<u32>,
}

impl Layout {
    pub fn of(spec: &SetSpec) -> Layout {
        let mut addr_sets = Vec::new();
        for &family in spec.families.list() {
            addr_sets.push(AddrSet::new(&spec.name, family, Holds::Hosts));
        }
        if spec.prefixes {
            for &family in spec.families.list() {
                addr_sets.push(AddrSet::new(&spec.name, family, Holds::Prefixes));
            }
        }
        let ports = spec.hook.as_ref().filter(|h| !h.ports.is_empty()).map(|h| {
            let mut ports: Vec<u16> = h.ports.iter().flat_map(|r| r.first..=r.last).collect();
            ports.sort_unstable();
            ports.dedup();
            PortsSet {
                name: format!("{}_ports", spec.name),
                ports,
            }
        });
        let rule = spec.hook.as_ref().map(|h| RuleShape {
            // Ports only exist for TCP and UDP; the core documents "ports
            // imply TCP unless told otherwise".
            l4proto: h
                .protocol
                .map(|p| p.number())
                .or_else(|| (!h.ports.is_empty()).then_some(6)),
            verdict: match h.block {
                BlockType::Drop => Verdict::Drop,
                BlockType::Reject => Verdict::Reject,
            },
        });
        Layout {
            addr_sets,
            ports,
            rule,
            policy: spec.policy,
            timeout: spec.timeout,
            max_elements: spec.max_elements,
        }
    }

    /// The set `target` goes into, if the spec admits it.
    pub fn set_for(&self, target: &Target) -> Option<usize> {
        self.addr_sets.iter().position(|s| s.takes(target))
    }

    /// Batch ids: address sets are 1.., the ports set follows.
    pub fn ports_id(&self) -> u32 {
        self.addr_sets.len() as u32 + 1
    }

    /// The rules this layout has, as (address set index, comment): none
    /// without a hook.
    pub fn rules(&self) -> Vec<(usize, String)> {
        if self.rule.is_none() {
            return Vec::new();
        }
        self.addr_sets
            .iter()
            .enumerate()
            .filter_map(|(i, set)| Some((i, set.comment_for(self.policy)?)))
            .collect()
    }

    /// The comments of the rules the set would have under the other policy:
    /// one of them in the chain means the rule has the wrong shape.
    pub fn other_policy_comments(&self) -> Vec<String> {
        let other = match self.policy {
            SetPolicy::Ban => SetPolicy::AllowOnly,
            SetPolicy::AllowOnly => SetPolicy::Ban,
        };
        self.addr_sets
            .iter()
            .filter_map(|set| set.comment_for(other))
            .collect()
    }

    /// The rule for address set `index`, when the spec has a hook (and,
    /// for an allow-only set, `index` is a hosts set: see [`Layout::rules`]).
    pub fn rule_def<'a>(&'a self, index: usize, comment: &'a str) -> Option<RuleDef<'a>> {
        let shape = self.rule?;
        let set = self.addr_sets.get(index)?;
        let allow_only = match self.policy {
            SetPolicy::Ban => None,
            SetPolicy::AllowOnly => Some(AllowOnlyMatch {
                also_not_in: self
                    .addr_sets
                    .iter()
                    .position(|s| s.family == set.family && s.holds == Holds::Prefixes)
                    .map(|i| (self.addr_sets[i].name.as_str(), i as u32 + 1)),
            }),
        };
        let (nfproto, saddr_offset, saddr_len) = match set.family {
            Family::V4 => (NFPROTO_IPV4, 12, 4),
            Family::V6 => (NFPROTO_IPV6, 8, 16),
        };
        Some(RuleDef {
            table: TABLE,
            chain: CHAIN,
            nfproto,
            saddr_offset,
            saddr_len,
            set: &set.name,
            set_id: index as u32 + 1,
            l4proto: shape.l4proto,
            dport_set: self
                .ports
                .as_ref()
                .map(|p| (p.name.as_str(), self.ports_id())),
            verdict: shape.verdict,
            comment,
            allow_only,
        })
    }
}

/// Every kernel set name a logical set can own, whatever its current spec
/// (families or prefixes may have changed since creation): `destroy` removes
/// all of them.
pub(crate) fn every_set_name(name: &SetName) -> Vec<String> {
    ["v4", "v6", "v4net", "v6net", "ports"]
        .iter()
        .map(|suffix| format!("{name}_{suffix}"))
        .collect()
}

/// The logical set a kernel set of banset's table belongs to: `f2b` for
/// `f2b_v4net`; `None` for a name banset does not make (an admin's own set
/// in the table).
pub(crate) fn owner_of(kernel_set: &str) -> Option<SetName> {
    ["_v4", "_v6", "_v4net", "_v6net", "_ports"]
        .iter()
        .find_map(|suffix| kernel_set.strip_suffix(suffix))
        .and_then(|base| SetName::new(base).ok())
}

/// The comments of every rule a logical set can own, of either policy.
pub(crate) fn every_rule_comment(name: &SetName) -> Vec<String> {
    ["v4", "v6", "v4net", "v6net"]
        .iter()
        .map(|suffix| format!("banset {name}_{suffix}"))
        .chain(
            ["v4", "v6"]
                .iter()
                .map(|suffix| format!("banset {name}_{suffix} allow-only")),
        )
        .collect()
}

/// An element timeout in ms: `None` (permanent) is an explicit 0, which the
/// kernel reads as "never" even in a set with a default timeout. A positive
/// duration below 1 ms is rounded up, because 0 would make it permanent.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> u64 {
    match timeout {
        None => 0,
        Some(d) => u64::try_from(d.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_TIMEOUT_MS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banset_core::{BackendKind, Families, Hook, PortRange, Protocol};

    fn spec() -> SetSpec {
        SetSpec::new(SetName::new("f2b").unwrap(), BackendKind::Nftables)
    }

    #[test]
    fn default_spec_has_four_sets_and_four_rules() {
        let layout = Layout::of(&spec());
        let names: Vec<&str> = layout.addr_sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["f2b_v4", "f2b_v6", "f2b_v4net", "f2b_v6net"]);
        assert!(layout.ports.is_none());
        let comment = layout.addr_sets[1].rule_comment();
        let rule = layout.rule_def(1, &comment).unwrap();
        assert_eq!(
            (rule.nfproto, rule.saddr_offset, rule.saddr_len),
            (10, 8, 16)
        );
        assert_eq!((rule.set, rule.set_id, rule.l4proto), ("f2b_v6", 2, None));
        assert_eq!(rule.verdict, Verdict::Drop);
        assert_eq!(rule.comment, "banset f2b_v6");
        let def = layout.addr_sets[2].set_def(layout.timeout, layout.max_elements, 3);
        assert_eq!(def.flags, set_flags::INTERVAL | set_flags::TIMEOUT);
        assert_eq!(def.timeout_ms, Some(86_400_000));
    }

    #[test]
    fn targets_go_to_their_set() {
        let layout = Layout::of(&spec());
        let at = |s: &str| layout.set_for(&s.parse().unwrap());
        assert_eq!(at("1.2.3.4"), Some(0));
        assert_eq!(at("2001:db8::1"), Some(1));
        assert_eq!(at("10.0.0.0/8"), Some(2));
        assert_eq!(at("2001:db8::/32"), Some(3));
        let mut s = spec();
        s.families = Families::Inet;
        s.prefixes = false;
        let layout = Layout::of(&s);
        assert_eq!(layout.addr_sets.len(), 1);
        assert_eq!(layout.set_for(&"2001:db8::1".parse().unwrap()), None);
        assert_eq!(layout.set_for(&"10.0.0.0/8".parse().unwrap()), None);
    }

    #[test]
    fn hook_with_ports_implies_tcp_and_a_ports_set() {
        let mut s = spec();
        s.hook = Some(Hook {
            ports: PortRange::parse_list("25,465,6000-6002,25").unwrap(),
            protocol: None,
            block: BlockType::Reject,
            permanent: false,
        });
        let layout = Layout::of(&s);
        let ports = layout.ports.as_ref().unwrap();
        assert_eq!(ports.name, "f2b_ports");
        assert_eq!(ports.ports, [25, 465, 6000, 6001, 6002]);
        assert_eq!(ports.keys().next().unwrap().as_bytes(), [0, 25]);
        let rule = layout.rule_def(0, "c").unwrap();
        assert_eq!(rule.l4proto, Some(6));
        assert_eq!(rule.dport_set, Some(("f2b_ports", 5)));
        assert_eq!(rule.verdict, Verdict::Reject);

        s.hook.as_mut().unwrap().protocol = Some(Protocol::Udp);
        assert_eq!(Layout::of(&s).rule_def(0, "c").unwrap().l4proto, Some(17));
        s.hook = None;
        assert!(Layout::of(&s).rule_def(0, "c").is_none());
    }

    #[test]
    fn allow_only_has_one_rule_per_family_reading_both_sets() {
        let mut s = spec();
        s.policy = SetPolicy::AllowOnly;
        let layout = Layout::of(&s);
        let rules = layout.rules();
        assert_eq!(
            rules,
            [
                (0, "banset f2b_v4 allow-only".to_string()),
                (1, "banset f2b_v6 allow-only".to_string())
            ]
        );
        let v6 = layout.rule_def(1, &rules[1].1).unwrap();
        assert_eq!((v6.set, v6.set_id), ("f2b_v6", 2));
        assert_eq!(v6.allow_only.unwrap().also_not_in, Some(("f2b_v6net", 4)));
        assert!(layout
            .other_policy_comments()
            .contains(&"banset f2b_v4net".to_string()));
        let ban = Layout::of(&spec());
        assert!(ban.rule_def(0, "c").unwrap().allow_only.is_none());
        assert_eq!(ban.rules().len(), 4);
        assert_eq!(
            ban.other_policy_comments(),
            ["banset f2b_v4 allow-only", "banset f2b_v6 allow-only"]
        );
        // Without prefixes, the hosts set alone decides.
        s.prefixes = false;
        let layout = Layout::of(&s);
        assert_eq!(
            layout
                .rule_def(0, "c")
                .unwrap()
                .allow_only
                .unwrap()
                .also_not_in,
            None
        );
        // Without a hook, no rule of either shape.
        s.hook = None;
        assert!(Layout::of(&s).rules().is_empty());
        for c in ["banset x_v4 allow-only", "banset x_v6 allow-only"] {
            assert!(every_rule_comment(&SetName::new("x").unwrap()).contains(&c.to_string()));
        }
    }

    #[test]
    fn element_timeouts() {
        assert_eq!(timeout_ms(None), 0);
        assert_eq!(timeout_ms(Some(Duration::from_secs(60))), 60_000);
        assert_eq!(timeout_ms(Some(Duration::from_micros(10))), 1);
        assert_eq!(timeout_ms(Some(Duration::MAX)), MAX_TIMEOUT_MS);
    }

    #[test]
    fn every_name_covers_all_shapes() {
        let name = SetName::new("x").unwrap();
        assert_eq!(every_set_name(&name).len(), 5);
        assert!(every_rule_comment(&name).contains(&"banset x_v6net".to_string()));
    }
}
