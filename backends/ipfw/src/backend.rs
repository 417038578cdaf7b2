//! `IpfwBackend`: the [`Backend`] trait over the tables and the rule.

use std::sync::Mutex;

use banset_core::batch_check;
use banset_core::errno::ESRCH;
use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, KernelEntry,
    RuleSightings, SetHealth, SetPolicy, SetSpec, Target,
};

use crate::msg;
use crate::rule::{self, Ipfw, Runner};
use crate::sys;
use crate::tables::Tables;

/// Serialises finding a free rule number and adding the rule.
static RULE_PLACEMENT: Mutex<()> = Mutex::new(());

/// banset's ipfw backend: one address table per set (IPv4 and IPv6
/// together) and one deny rule referring to it; see the crate docs.
#[derive(Debug)]
pub struct IpfwBackend {
    tables: Box<dyn Tables>,
    ipfw: Box<dyn Runner>,
    /// When each set's rule was last seen in place by `health`.
    rules_seen: RuleSightings,
}

impl IpfwBackend {
    /// Opens the kernel's tables: `IP_FW3` on FreeBSD 11–14, the `ipfw`
    /// command on 15 and later (by `kern.osreldate`). Off FreeBSD this
    /// fails with [`ErrorKind::Unsupported`].
    pub fn open() -> Result<IpfwBackend, BackendError> {
        Ok(IpfwBackend::with_parts(sys::open_tables()?, Box::new(Ipfw)))
    }

    /// A backend over any tables and `ipfw`: the real ones, or models.
    pub(crate) fn with_parts(tables: Box<dyn Tables>, ipfw: Box<dyn Runner>) -> IpfwBackend {
        IpfwBackend {
            tables,
            ipfw,
            rules_seen: RuleSightings::default(),
        }
    }

    fn run_ipfw(&self, args: &[String]) -> Result<String, BackendError> {
        let outcome = self.ipfw.run(args)?;
        if outcome.success() {
            Ok(outcome.stdout)
        } else {
            Err(rule::failure(args, &outcome))
        }
    }

    fn rules(&self) -> Result<Vec<rule::Listed>, BackendError> {
        Ok(rule::parse_list(&self.run_ipfw(&rule::list_argv())?))
    }

    fn members(&self, spec: &SetSpec) -> Result<Vec<Target>, BackendError> {
        self.tables
            .list(table_of(spec)?)
            .map_err(|e| e.within(format!("set {}", spec.name)))
    }
}

impl Backend for IpfwBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Ipfw
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // ipfw tables have no per-entry timeout: banset's ledger
            // expires bans (`banset expire`, the daemon's keeper).
            timeouts: false,
            max_timeout: None,
            prefixes: true,
            mixed_families: true,
            // An add is atomic (IPFW_CTF_ATOMIC) and a replace swaps a
            // filled table in, but a removal and an addition are two calls
            // and large batches several.
            atomic_batches: false,
            // The deny rule comes before check-state, so an established
            // connection from a banned source is cut by the rule itself.
            kills_states: false,
        }
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let name = table_of(spec)?;
        self.tables
            .create(name, spec.max_elements.unwrap_or(0))
            .map_err(|e| e.within(format!("set {}", spec.name)))?;
        if spec.hook.is_some() {
            // Two threads picking a free number at once would pick the same
            // one, and `ipfw delete N` removes every rule numbered N. Two
            // processes creating sets at the same moment still could; the
            // daemon and fail2ban create their sets one by one.
            let _placing = RULE_PLACEMENT
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let rules = self.rules()?;
            let fits =
                |r: &rule::Listed| rule::is_ours(r, name) && rule::policy_of(r) == spec.policy;
            if !rules.iter().any(fits) {
                // None, or one of the other policy's shape: the new rule
                // goes in before the old one leaves.
                self.swap_rule(spec, &rules)?;
            }
        }
        Ok(())
    }

    fn supports_policy(&self, _policy: SetPolicy) -> bool {
        true
    }

    fn change_set(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        self.change_in_place(old, new)
    }

    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        let name = table_of(spec)?;
        let exists = self.tables.count(name)?.is_some();
        if spec.hook.is_none() {
            return Ok(SetHealth::of([(exists, exists)]));
        }
        self.rules_seen.health(&sighting(spec), exists, || {
            let rule = self
                .rules()?
                .iter()
                .any(|r| rule::is_ours(r, name) && rule::policy_of(r) == spec.policy);
            Ok((rule, rule))
        })
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        if changes.is_empty() {
            return Ok(());
        }
        let name = table_of(spec)?;
        let what = format!("ipfw table {name}");
        let ctx = |e: BackendError| e.within(format!("set {}", spec.name));
        batch_check::check_with_kernel(
            spec,
            changes,
            &what,
            || {
                self.tables
                    .count(name)?
                    .ok_or_else(|| ctx(crate::tables::ipfw_error(ESRCH, &what)))
            },
            || self.members(spec),
        )?;
        let adds: Vec<Target> = changes.add.iter().map(|e| e.target).collect();
        if changes.flush_first {
            // Atomic for the rule: see `replace`.
            return self.replace(spec, name, &adds).map_err(ctx);
        }
        if !changes.remove.is_empty() {
            self.tables.del(name, &changes.remove).map_err(ctx)?;
        }
        if !adds.is_empty() {
            self.tables.add(name, &adds).map_err(ctx)?;
        }
        Ok(())
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        Ok(self
            .members(spec)?
            .into_iter()
            .map(|target| KernelEntry {
                target,
                timeout: None,
            })
            .collect())
    }

    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let name = table_of(spec)?;
        forget_sightings(&self.rules_seen, spec);
        // The rule first: the kernel refuses to destroy a table a rule uses.
        let rules = self.rules()?;
        let mut numbers: Vec<u32> = rules
            .iter()
            .filter(|r| rule::is_ours(r, name))
            .map(|r| r.number)
            .collect();
        numbers.dedup();
        for n in numbers {
            // `ipfw delete N` removes every rule numbered N; never one of
            // the admin's that shares the number.
            if let Some(other) = rules
                .iter()
                .find(|r| r.number == n && !rule::is_ours(r, name))
            {
                return Err(BackendError::new(
                    ErrorKind::Other,
                    format!("destroy set {}", spec.name),
                    format!(
                        "rule {n} holds banset's rule and another one ({}); delete banset's by \
                         hand with `ipfw delete {n}` after saving the other",
                        other.text
                    ),
                ));
            }
            self.run_ipfw(&rule::delete_argv(n))?;
        }
        self.tables
            .destroy(name)
            .map_err(|e| e.within(format!("destroy set {}", spec.name)))
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        Ok(self.members(spec)?.iter().any(|m| m.contains(target)))
    }
}

/// The key of a set's rule sighting: the name and the policy, so a
/// sighting of an allow-only rule never vouches for a ban rule.
fn sighting(spec: &SetSpec) -> String {
    format!("{} {}", spec.name, spec.policy)
}

/// Forgets every sighting of the set's rule, whatever its policy.
fn forget_sightings(seen: &RuleSightings, spec: &SetSpec) {
    for policy in SetPolicy::ALL {
        seen.forget(&format!("{} {policy}", spec.name));
    }
}

/// The table of a set has the set's name, checked against ipfw's rules.
fn table_of(spec: &SetSpec) -> Result<&str, BackendError> {
    let name = spec.name.as_str();
    msg::check_name(name).map(|()| name).map_err(|why| {
        BackendError::new(ErrorKind::Invalid, format!("set {name}"), why.to_string())
    })
}

mod change;
mod replace;
#[cfg(test)]
mod tests;
