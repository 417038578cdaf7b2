//! Set planning: which sets the jails need, what the daemon does with
//! each at start and on reload (`watch --check` says the same), and the
//! start-up restore of every set from the ledger.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context as _, Result};
use banset_core::{SetName, SetSpec, SpecChange};
use banset_watch::config::Settings;

use super::{log, Daemon};
use crate::config::Config;
use crate::output::counted;
use crate::set_options::build_spec;

/// What the daemon does with a set the config (or a jail) names, at start
/// and on reload; `watch --check` says the same.
pub enum SetPlan {
    /// The ledger has no such set: create it from the config.
    Create,
    /// The ledger has it as the config says.
    Keep,
    /// The config's `[sets.NAME]` changes the set's rule or maxelem: the
    /// daemon changes it in place, keeping every ban. Holds what changes.
    Change(SpecChange),
    /// The ledger has it otherwise, in a way that cannot change in place
    /// (backend, family, prefixes, timeout: `SpecChange::refused` says why),
    /// or the set is only named by a jail: the daemon keeps the ledger's.
    /// Holds the ledger's spec and the differences.
    KeepLedgers(SetSpec, SpecChange),
}

/// `configured`: the config has a `[sets.NAME]` for the set; a set a jail
/// only names gets the defaults, which are no reason to change it.
pub fn set_plan(ledger: &mut banset_core::Ledger, spec: &SetSpec, configured: bool) -> SetPlan {
    match ledger
        .read()
        .and_then(|tx| tx.set_spec(&spec.name))
        .ok()
        .flatten()
    {
        None => SetPlan::Create,
        Some(existing) if existing == *spec => SetPlan::Keep,
        Some(existing) => {
            let change = SpecChange::between(&existing, spec);
            if configured && change.refused.is_empty() {
                SetPlan::Change(change)
            } else {
                SetPlan::KeepLedgers(existing, change)
            }
        }
    }
}

/// The specs of the sets jails and recidive use: `[sets.NAME]` when the
/// file has it, the defaults otherwise.
pub fn set_specs(config: &Config, settings: &Settings) -> Result<BTreeMap<SetName, SetSpec>> {
    let mut out = BTreeMap::new();
    for (name, set) in &config.sets {
        let set_name = SetName::new(name).map_err(|e| {
            crate::errors::Usage(format!("{}: sets.{name}: {e}", config.origin_name()))
        })?;
        // Detection (firewalld running?) once per start; the spec is only
        // used for a set the ledger does not have yet.
        let spec = build_spec(
            set_name.clone(),
            &set.options(),
            set.timeout,
            config,
            true,
            false,
        )
        .with_context(|| format!("{}: sets.{name}", config.origin_name()))?;
        out.insert(set_name, spec);
    }
    let mut wanted: Vec<SetName> = settings.jails.iter().map(|j| j.set.clone()).collect();
    if let Some(r) = &settings.recidive {
        wanted.push(r.set.clone());
    }
    // A jail's bans in an allow-only set would be the attackers let in.
    let banning = settings
        .jails
        .iter()
        .map(|j| (format!("jail {}", j.name), &j.set))
        .chain(
            settings
                .recidive
                .iter()
                .map(|r| ("recidive".to_string(), &r.set)),
        );
    for (who, set) in banning {
        if out.get(set).is_some_and(|s| !s.policy.is_ban()) {
            return Err(crate::errors::Usage(format!(
                "{}: {who} bans into set {set}, an allow-only set (its members are the only sources let in); give it a ban set",
                config.origin_name()
            ))
            .into());
        }
    }
    for name in wanted {
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(name.clone()) {
            slot.insert(build_spec(
                name,
                &Default::default(),
                None,
                config,
                true,
                false,
            )?);
        }
    }
    Ok(out)
}

impl Daemon<'_> {
    /// Creates the sets the config names that the ledger does not have
    /// yet, and changes in place those whose `[sets.NAME]` now asks for
    /// another rule or maxelem, keeping every ban.
    pub(super) fn ensure_sets(&mut self) {
        let specs: Vec<SetSpec> = self.specs.values().cloned().collect();
        self.allow_only.clear();
        for spec in specs {
            let configured = self.ctx.config.sets.contains_key(spec.name.as_str());
            let plan = set_plan(&mut self.ctx.fw.ledger, &spec, configured);
            // The same guard as `create` and `set-options`, never forced:
            // a config that would lock the admin out is not applied.
            let old = match &plan {
                SetPlan::Create => Some(None),
                SetPlan::Change(_) => Some(
                    self.ctx
                        .fw
                        .ledger
                        .read()
                        .ok()
                        .and_then(|tx| tx.set_spec(&spec.name).ok().flatten()),
                ),
                SetPlan::Keep | SetPlan::KeepLedgers(..) => None,
            };
            if let Some(old) = old {
                if let Err(e) = crate::lockout::guard(self.ctx, old.as_ref(), &spec, &[], false) {
                    log!("set {}: not applied: {e:#}", spec.name);
                    continue;
                }
            }
            match plan {
                SetPlan::Create => match self.ctx.engine().create(&spec) {
                    Ok(_) => log!("created set {}", spec.name),
                    Err(e) => log!("set {}: cannot create it: {e}", spec.name),
                },
                SetPlan::Change(change) => match self.ctx.engine().change_set(&spec) {
                    Ok(_) => log!(
                        "set {}: changed in place ({}), every ban kept",
                        spec.name,
                        change.describe_in_place()
                    ),
                    Err(e) => log!(
                        "set {}: cannot change it to the config's, keeping the ledger's: {e}",
                        spec.name
                    ),
                },
                SetPlan::KeepLedgers(_, change) if configured => {
                    log!(
                        "set {}: the config's set cannot be applied in place, keeping the ledger's: {}",
                        spec.name,
                        change.describe_refused()
                    );
                }
                SetPlan::KeepLedgers(..) | SetPlan::Keep => {}
            }
            let in_ledger = self
                .ctx
                .fw
                .ledger
                .read()
                .ok()
                .and_then(|tx| tx.set_spec(&spec.name).ok().flatten());
            if in_ledger.is_some_and(|s| !s.policy.is_ban()) {
                log!(
                    "set {}: an allow-only set in the ledger; the jails' bans into it are refused (they would let the attacker in): give them a ban set",
                    spec.name
                );
                self.allow_only.insert(spec.name.clone());
            }
        }
    }

    /// Start-up: bring every kernel set back to the ledger (one batch per
    /// set), so a reboot or a firewall restart loses nothing.
    pub(super) fn restore(&mut self) {
        let started = Instant::now();
        // Set by set: one that fails is logged and retried by the keeper,
        // and does not stop the others from coming back.
        let (synced, added) = self.keeper.sync_every_set(self.ctx, &mut self.errors);
        log!(
            "restored {} from the ledger ({} re-added) in {:.0} ms",
            counted(synced, "set", "sets"),
            counted(added, "ban", "bans"),
            started.elapsed().as_secs_f64() * 1e3
        );
        // glibc keeps the memory of the ledger's and the kernel's listings
        // otherwise, and a daemon's resident size is what admins watch.
        crate::sys::release_free_memory();
    }
}
