//! What changes between a set's stored spec and a requested one, and
//! whether the set can change in place (keeping every ban).
//!
//! One function, [`SpecChange::between`], answers for every caller: `banset
//! set-options`, `add`/`create` refusing options that differ, the daemon's
//! reload and `watch --check`. The blocking rule (ports, protocol, block
//! type) and the member bound (maxelem) change in place: each backend swaps
//! its rule or rebuilds its set atomically ([`crate::Backend::change_set`]).
//! The rest is fixed when the set is made, for reasons [`Refused`] says;
//! the policy too ([`crate::SetPolicy`]): switched in place, every ban
//! would at once become a pass, and every home address a ban.

use std::fmt;

use crate::spec::{Hook, SetSpec};

/// One option that differs, old value first, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The option's name as `create` spells it (`ports`, `maxelem`, ...).
    pub option: &'static str,
    /// The stored value.
    pub old: String,
    /// The requested value.
    pub new: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.option, self.old, self.new)
    }
}

/// A difference that cannot be applied in place, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// What differs.
    pub difference: Difference,
    /// Why it cannot change while the set keeps its bans.
    pub why: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.difference, self.why)
    }
}

/// The differences between a stored spec and a requested one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecChange {
    /// Changes the backends apply in place, keeping every ban.
    pub in_place: Vec<Difference>,
    /// Changes that cannot be applied in place.
    pub refused: Vec<Refused>,
}

impl SpecChange {
    /// Compares `old` (the ledger's) with `new` (what was asked).
    pub fn between(old: &SetSpec, new: &SetSpec) -> SpecChange {
        let mut change = SpecChange::default();
        let mut refuse = |option, old: String, new: String, why| {
            change.refused.push(Refused {
                difference: Difference { option, old, new },
                why,
            })
        };
        if old.name != new.name {
            refuse(
                "name",
                old.name.to_string(),
                new.name.to_string(),
                "a set keeps its name",
            );
        }
        if old.backend != new.backend {
            refuse(
                "backend",
                old.backend.to_string(),
                new.backend.to_string(),
                "the bans live in the old firewall; destroy the set and create it on the new one",
            );
        }
        if old.families != new.families {
            refuse(
                "family",
                old.families.name().into(),
                new.families.name().into(),
                "the kernel sets are made per family; destroy and re-create the set",
            );
        }
        if old.prefixes != new.prefixes {
            refuse(
                "prefixes",
                old.prefixes.to_string(),
                new.prefixes.to_string(),
                "the kernel set's type (hash:ip or hash:net, interval flag) is fixed when it is made; destroy and re-create the set",
            );
        }
        if old.timeout != new.timeout {
            refuse(
                "timeout",
                old.timeout.to_string(),
                new.timeout.to_string(),
                "the kernel set's default timeout is fixed when it is made; give bans their own with `add --timeout`, or destroy and re-create the set",
            );
        }
        if old.policy != new.policy {
            refuse(
                "policy",
                old.policy.name().into(),
                new.policy.name().into(),
                "the members would change meaning (the banned would become the only ones allowed, or the other way round); destroy the set and create it with the new policy",
            );
        }
        if old.max_elements != new.max_elements {
            change.in_place.push(Difference {
                option: "maxelem",
                old: show_max(old.max_elements),
                new: show_max(new.max_elements),
            });
        }
        diff_hooks(old.hook.as_ref(), new.hook.as_ref(), &mut change);
        change
    }

    /// Nothing differs.
    pub fn is_empty(&self) -> bool {
        self.in_place.is_empty() && self.refused.is_empty()
    }

    /// Whether the blocking rule differs (ports, protocol, block type, hook
    /// on or off, firewalld's permanent flag).
    pub fn hook_changes(&self) -> bool {
        self.in_place.iter().any(|d| d.option != "maxelem")
    }

    /// Whether the member bound differs.
    pub fn max_elements_changes(&self) -> bool {
        self.in_place.iter().any(|d| d.option == "maxelem")
    }

    /// Every difference, those refused first: `family both -> inet, ports
    /// 25 -> 22`.
    pub fn describe(&self) -> String {
        let refused = self.refused.iter().map(|r| &r.difference);
        join(&refused.chain(&self.in_place).collect::<Vec<_>>())
    }

    /// `ports 25 -> 22, maxelem 65536 -> 100000`.
    pub fn describe_in_place(&self) -> String {
        join(&self.in_place)
    }

    /// Every refused difference with its reason, `; `-separated.
    pub fn describe_refused(&self) -> String {
        self.refused
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_max(m: Option<u32>) -> String {
    m.map_or_else(|| "none".into(), |m| m.to_string())
}

fn diff_hooks(old: Option<&Hook>, new: Option<&Hook>, change: &mut SpecChange) {
    let push = |change: &mut SpecChange, option, old: String, new: String| {
        change.in_place.push(Difference { option, old, new })
    };
    match (old, new) {
        (None, None) => {}
        (Some(_), None) => push(change, "hook", "on".into(), "off (--no-hook)".into()),
        (None, Some(_)) => push(change, "hook", "off (--no-hook)".into(), "on".into()),
        (Some(a), Some(b)) => {
            if a.ports != b.ports {
                push(change, "ports", show_ports(a), show_ports(b));
            }
            if a.protocol != b.protocol {
                let show = |h: &Hook| h.protocol.map_or("all", |p| p.name()).to_string();
                push(change, "protocol", show(a), show(b));
            }
            if a.block != b.block {
                push(change, "blocktype", show_block(a), show_block(b));
            }
            if a.permanent != b.permanent {
                push(
                    change,
                    "permanent",
                    a.permanent.to_string(),
                    b.permanent.to_string(),
                );
            }
        }
    }
}

fn show_ports(h: &Hook) -> String {
    if h.ports.is_empty() {
        "all".into()
    } else {
        join(&h.ports)
    }
}

fn show_block(h: &Hook) -> String {
    match h.block {
        crate::spec::BlockType::Drop => "drop".into(),
        crate::spec::BlockType::Reject => "reject".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BackendKind, BlockType, Families, PortRange, Protocol};
    use crate::{SetName, Timeout};

    fn spec() -> SetSpec {
        SetSpec::new(SetName::new("s").unwrap(), BackendKind::Memory)
    }

    #[test]
    fn describe_names_every_difference_refused_first() {
        let old = spec();
        let mut new = spec();
        new.max_elements = Some(10);
        new.families = Families::Inet;
        assert_eq!(
            SpecChange::between(&old, &new).describe(),
            "family both -> inet, maxelem 1048576 -> 10"
        );
    }

    #[test]
    fn same_spec_is_no_change() {
        assert!(SpecChange::between(&spec(), &spec()).is_empty());
    }

    #[test]
    fn rule_and_maxelem_change_in_place() {
        let old = spec();
        let mut new = spec();
        new.max_elements = Some(10);
        new.hook = Some(Hook {
            ports: PortRange::parse_list("22,25").unwrap(),
            protocol: Some(Protocol::Tcp),
            block: BlockType::Reject,
            permanent: false,
        });
        let c = SpecChange::between(&old, &new);
        assert!(c.refused.is_empty(), "{c:?}");
        assert!(c.hook_changes() && c.max_elements_changes());
        assert_eq!(
            c.describe_in_place(),
            "maxelem 1048576 -> 10, ports all -> 22, 25, protocol all -> tcp, blocktype drop -> reject"
        );
        let mut off = spec();
        off.hook = None;
        let c = SpecChange::between(&old, &off);
        assert!(c.hook_changes() && !c.max_elements_changes());
    }

    #[test]
    fn fixed_options_are_refused_with_why() {
        let old = spec();
        let mut new = spec();
        new.backend = BackendKind::Nftables;
        new.families = Families::Inet;
        new.prefixes = false;
        new.timeout = Timeout::Secs(60);
        new.policy = crate::SetPolicy::AllowOnly;
        let c = SpecChange::between(&old, &new);
        assert!(c.in_place.is_empty());
        let options: Vec<&str> = c.refused.iter().map(|r| r.difference.option).collect();
        assert_eq!(
            options,
            ["backend", "family", "prefixes", "timeout", "policy"]
        );
        assert!(c.describe_refused().contains("policy ban -> allow-only"));
        assert!(c.describe_refused().contains("destroy"), "{c:?}");
    }
}
