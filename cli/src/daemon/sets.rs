//! Set planning: which sets the jails need, what the daemon does with
//! each at start and on reload (`watch --check` says the same), and the
//! start-up restore of every set from the ledger.

use std::time::Instant;

use banset_core::SetSpec;

use super::logging::log;
use super::set_plan::{set_plan, SetPlan};
use super::state::Daemon;
use crate::output::counted;

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
