//! `PfBackend`: the [`Backend`] trait over the table ioctls and the rule.

use banset_core::batch_check;
use banset_core::errno::{EACCES, EINVAL, ENODEV, ENOENT, ENOMEM, EPERM, ESRCH};
use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, KernelEntry,
    RuleSightings, SetHealth, SetPolicy, SetSpec, Target,
};

use crate::msg::{PfrAddr, PfrTable};
use crate::rule::{self, Pfctl, Runner};
use crate::sys::{self, OpenError};
use crate::table::{self, Device, TableError};

/// banset's pf backend: one persistent table per set in anchor
/// `banset/NAME`, holding IPv4 and IPv6 together, and the set's blocking
/// rule in the same anchor; see the crate docs.
#[derive(Debug)]
pub struct PfBackend {
    dev: Box<dyn Device>,
    pfctl: Box<dyn Runner>,
    /// When each set's rule was last seen in place by `health`.
    rules_seen: RuleSightings,
}

impl PfBackend {
    /// Opens `/dev/pf` (root only). Off FreeBSD this fails with
    /// [`ErrorKind::Unsupported`]; without the pf module with
    /// [`ErrorKind::Unavailable`].
    pub fn open() -> Result<PfBackend, BackendError> {
        let dev = sys::open().map_err(|e| match e {
            OpenError::Unsupported => BackendError::new(
                ErrorKind::Unsupported,
                "open /dev/pf",
                "pf exists only on FreeBSD",
            ),
            OpenError::Errno(ENOENT | ENODEV) => BackendError::new(
                ErrorKind::Unavailable,
                "open /dev/pf",
                "pf is not loaded: `kldload pf` (and `sysrc pf_enable=YES` to keep it)",
            ),
            OpenError::Errno(EPERM | EACCES) => BackendError::new(
                ErrorKind::Permission,
                "open /dev/pf",
                "permission denied; run as root",
            ),
            OpenError::Errno(errno) => BackendError::from_errno(errno, "open /dev/pf"),
        })?;
        Ok(PfBackend::with_parts(dev, Box::new(Pfctl)))
    }

    /// A backend over any device and `pfctl`: the real ones, or models of
    /// them in tests.
    pub(crate) fn with_parts(dev: Box<dyn Device>, pfctl: Box<dyn Runner>) -> PfBackend {
        PfBackend {
            dev,
            pfctl,
            rules_seen: RuleSightings::default(),
        }
    }

    fn run_pfctl(&self, args: &[String], stdin: Option<&str>) -> Result<String, BackendError> {
        let outcome = self.pfctl.run(args, stdin)?;
        if outcome.success() {
            Ok(outcome.stdout)
        } else {
            Err(rule::failure(args, &outcome))
        }
    }

    /// Whether the set's rule, in the shape of its policy, is loaded in its
    /// anchor. An anchor that does not exist (nothing of the set is
    /// loaded) holds no rule; pfctl says so with the kernel's EINVAL for
    /// the unknown ruleset.
    fn rule_present(&self, spec: &SetSpec) -> Result<bool, BackendError> {
        let name = spec.name.as_str();
        Ok(self
            .anchor_rules(spec)?
            .is_some_and(|shown| rule::shows_rule_for(&shown, name, spec.policy)))
    }

    /// Whether any rule of the set's anchor uses its table, whatever its
    /// shape: what `destroy` and a rule's removal clear.
    fn any_rule_present(&self, spec: &SetSpec) -> Result<bool, BackendError> {
        let name = spec.name.as_str();
        Ok(self
            .anchor_rules(spec)?
            .is_some_and(|shown| rule::shows_any_rule_for(&shown, name)))
    }

    /// `pfctl -a banset/NAME -s rules`; `None` when the anchor does not
    /// exist.
    fn anchor_rules(&self, spec: &SetSpec) -> Result<Option<String>, BackendError> {
        let anchor = rule::anchor(spec.name.as_str());
        let args = rule::show_argv(Some(&anchor));
        let outcome = self.pfctl.run(&args, None)?;
        if outcome.success() {
            Ok(Some(outcome.stdout))
        } else if rule::no_such_anchor(&outcome.stderr) {
            Ok(None)
        } else {
            Err(rule::failure(&args, &outcome))
        }
    }

    /// The key of a set's rule sighting: the name and the policy, so a
    /// sighting of an allow-only rule never vouches for a ban rule.
    fn sighting(spec: &SetSpec) -> String {
        format!("{} {}", spec.name, spec.policy)
    }

    /// Forgets every sighting of the set's rule, whatever its policy.
    fn forget_sightings(&self, spec: &SetSpec) {
        for policy in SetPolicy::ALL {
            self.rules_seen.forget(&format!("{} {policy}", spec.name));
        }
    }

    /// Whether the main ruleset evaluates the set's anchor.
    fn anchor_evaluated(&self, spec: &SetSpec) -> Result<bool, BackendError> {
        let main = self.run_pfctl(&rule::show_argv(None), None)?;
        Ok(rule::main_evaluates(&main, spec.name.as_str()))
    }

    fn members(&self, spec: &SetSpec, table: &PfrTable) -> Result<Vec<Target>, BackendError> {
        let listed = table::list(&*self.dev, table).map_err(|e| list_error(e, spec))?;
        let mut out = Vec::with_capacity(listed.len());
        for a in &listed {
            let target = a.to_target().map_err(|why| {
                BackendError::new(
                    ErrorKind::Other,
                    format!("list {}", describe(spec)),
                    why.to_string(),
                )
            })?;
            out.extend(target);
        }
        Ok(out)
    }
}

impl Backend for PfBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Pf
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // pf tables have no per-entry timeout: banset's ledger expires
            // bans (`banset expire`, the daemon's keeper).
            timeouts: false,
            max_timeout: None,
            prefixes: true,
            mixed_families: true,
            // One ioctl is all or nothing, but a removal and an addition
            // are two, and a batch above net.pf.request_maxcount is cut
            // into several. Every refusal banset can foresee is checked
            // before the first one is sent.
            atomic_batches: false,
            kills_states: true,
        }
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let table = table_of(spec)?;
        if spec.hook.is_some() && !self.anchor_evaluated(spec)? {
            return Err(anchor_missing(spec));
        }
        table::create(&*self.dev, &table)
            .map_err(|e| pf_error(e, &format!("create {}", describe(spec))))?;
        if let Some(hook) = &spec.hook {
            // Loading replaces the anchor's rules: a rule of the other
            // policy's shape goes in the same pf transaction.
            if !self.rule_present(spec)? {
                let anchor = rule::anchor(spec.name.as_str());
                let text = rule::text(spec.name.as_str(), hook, spec.policy);
                self.run_pfctl(&rule::load_argv(&anchor), Some(&text))?;
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
        let table = table_of(spec)?;
        let exists = match table::count(&*self.dev, &table) {
            Ok(_) => true,
            Err(ESRCH) => false,
            Err(e) => return Err(pf_error(e, &format!("look up {}", describe(spec)))),
        };
        if spec.hook.is_none() {
            return Ok(SetHealth::of([(exists, exists)]));
        }
        self.rules_seen.health(&Self::sighting(spec), exists, || {
            let rule = self.rule_present(spec)?;
            // A rule the main ruleset never evaluates blocks nothing.
            let evaluated = self.anchor_evaluated(spec)?;
            Ok((rule, rule && evaluated))
        })
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        if changes.is_empty() {
            return Ok(());
        }
        let table = table_of(spec)?;
        let what = describe(spec);
        // 1. Every refusal before anything is sent.
        batch_check::check_with_kernel(
            spec,
            changes,
            &what,
            || {
                table::count(&*self.dev, &table)
                    .map_err(|e| pf_error(e, &format!("look up {what}")))
            },
            || self.members(spec, &table),
        )?;
        let mut adds: Vec<PfrAddr> = changes
            .add
            .iter()
            .map(|e| PfrAddr::from_target(&e.target))
            .collect();
        // 2. Send.
        if changes.flush_first {
            let r = if adds.is_empty() {
                table::clear(&*self.dev, &table)
            } else {
                table::replace(&*self.dev, &table, &mut adds)
            };
            r.map_err(|e| pf_error(e, &format!("replace the content of {what}")))?;
        } else {
            if !changes.remove.is_empty() {
                let mut removes: Vec<PfrAddr> =
                    changes.remove.iter().map(PfrAddr::from_target).collect();
                table::del(&*self.dev, &table, &mut removes)
                    .map_err(|e| pf_error(e, &format!("delete from {what}")))?;
            }
            if !adds.is_empty() {
                table::add(&*self.dev, &table, &mut adds)
                    .map_err(|e| pf_error(e, &format!("add to {what}")))?;
            }
        }
        Ok(())
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        let table = table_of(spec)?;
        Ok(self
            .members(spec, &table)?
            .into_iter()
            .map(|target| KernelEntry {
                target,
                timeout: None,
            })
            .collect())
    }

    /// Kills the target's existing states (`pfctl -k`), so an established
    /// connection is cut at once instead of living on until it closes: pf
    /// is stateful, and a state is matched before any rule. One `pfctl`
    /// run per banned target, so meant for bans as fail2ban makes them,
    /// not blocklists.
    fn kill_states(&self, target: &Target) -> Result<(), BackendError> {
        self.run_pfctl(&rule::kill_states_argv(target), None)
            .map(drop)
    }

    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let table = table_of(spec)?;
        self.forget_sightings(spec);
        // The rule first, so no rule keeps the table alive (inactive) after
        // its deletion; whatever its shape.
        if self.any_rule_present(spec)? {
            let anchor = rule::anchor(spec.name.as_str());
            self.run_pfctl(&rule::flush_argv(&anchor), None)?;
        }
        table::delete(&*self.dev, &table)
            .map_err(|e| pf_error(e, &format!("destroy {}", describe(spec))))
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        let table = table_of(spec)?;
        if target.is_host() {
            return table::matches_host(&*self.dev, &table, PfrAddr::from_target(target))
                .map_err(|e| pf_error(e, &format!("test {target} in {}", describe(spec))));
        }
        // pf tests host addresses only; a prefix is blocked when a member
        // prefix covers all of it.
        Ok(self
            .members(spec, &table)?
            .iter()
            .any(|m| m.contains(target)))
    }
}

/// The table of a set: `NAME` in anchor `banset/NAME`.
fn table_of(spec: &SetSpec) -> Result<PfrTable, BackendError> {
    let name = spec.name.as_str();
    PfrTable::new(&rule::anchor(name), name, 0).map_err(|why| {
        BackendError::new(ErrorKind::Invalid, format!("set {name}"), why.to_string())
    })
}

/// `pf table banset/f2b/f2b` reads oddly; messages say `pf table <f2b> (anchor banset/f2b)`.
fn describe(spec: &SetSpec) -> String {
    format!(
        "pf table <{}> (anchor {})",
        spec.name,
        rule::anchor(spec.name.as_str())
    )
}

fn anchor_missing(spec: &SetSpec) -> BackendError {
    BackendError::new(
        ErrorKind::Unavailable,
        format!("set {}", spec.name),
        format!(
            "pf's main ruleset does not evaluate banset's anchors, so its rules would block \
             nothing: add the line `{}` to /etc/pf.conf (before your pass rules) and reload it \
             with `pfctl -f /etc/pf.conf`",
            rule::PF_CONF_LINE
        ),
    )
}

fn list_error(e: TableError, spec: &SetSpec) -> BackendError {
    match e {
        TableError::Errno(errno) => pf_error(errno, &format!("list {}", describe(spec))),
        TableError::TooLarge { count, max } => BackendError::new(
            ErrorKind::Other,
            format!("list {}", describe(spec)),
            format!(
                "the table holds {count} entries and one request may list at most {max} \
                 (net.pf.request_maxcount); raise it with `sysctl net.pf.request_maxcount={count}`"
            ),
        ),
    }
}

/// Maps an errno from a table ioctl, by number (pf_table.c's meanings).
fn pf_error(errno: i32, what: &str) -> BackendError {
    match errno {
        ESRCH => BackendError::new(ErrorKind::NotFound, what, "the table does not exist"),
        ENOMEM => BackendError::new(
            ErrorKind::SetFull,
            what,
            "pf is out of table entries (its `set limit table-entries`, 200,000 by default, is \
             shared by every table); raise it in /etc/pf.conf",
        ),
        EPERM | EACCES => BackendError::new(
            ErrorKind::Permission,
            what,
            "permission denied (a `const` table, or not root)",
        ),
        ENODEV => BackendError::new(
            ErrorKind::Other,
            what,
            "the kernel's struct pfr_addr has another size than banset's: this FreeBSD's pf \
             ABI is not one banset knows",
        ),
        EINVAL => BackendError::new(
            ErrorKind::Invalid,
            what,
            "pf refused the request as invalid (a table name, an address, or more entries than \
             net.pf.request_maxcount)",
        ),
        errno => BackendError::from_errno(errno, what),
    }
}

mod change;
#[cfg(test)]
mod tests;
