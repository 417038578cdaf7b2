//! Set planning: which sets the jails need, and what the daemon does with
//! each at start and on reload (`watch --check` says the same). Pure
//! decisions over the config and the ledger; `sets` carries them out.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use banset_core::{SetName, SetSpec, SpecChange};
use banset_watch::config::Settings;

use crate::config::Config;
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
