//! `Engine::change_set`: a set's rule and member bound change in place,
//! every ban kept (see [`SpecChange`]).

use super::{finish, heal_interrupted_removals, restore, Engine, Error, InputError};
use crate::backend::{BackendError, SetHealth};
use crate::spec::SetSpec;
use crate::spec_change::SpecChange;

impl Engine<'_> {
    /// Makes the set `new.name` what `new` says, keeping every ban and its
    /// deadline: the backend swaps the blocking rule (and rebuilds the set
    /// for a new maxelem) atomically, and the ledger stores `new` in the
    /// same transaction. Returns what changed (empty: nothing to do).
    ///
    /// Refused with [`Error::Input`], changing nothing, when an option
    /// cannot change in place ([`SpecChange::refused`] says why) or the
    /// set holds more bans than the new maxelem.
    pub fn change_set(&mut self, new: &SetSpec) -> Result<SpecChange, Error> {
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        let old = Self::spec_of(&tx, &new.name)?;
        let change = SpecChange::between(&old, new);
        if change.is_empty() {
            return Ok(change);
        }
        if !change.refused.is_empty() {
            return Err(InputError::CannotChange {
                name: new.name.clone(),
                why: change.describe_refused(),
            }
            .into());
        }
        if let Some(max) = new.max_elements {
            let (active, _) = tx.counts(&new.name, now)?;
            if active > u64::from(max) {
                return Err(InputError::TooManyForMaxelem {
                    name: new.name.clone(),
                    active,
                    max,
                }
                .into());
            }
        }
        let backend = super::backend_for(self.backends, new)?;
        let ctx = |e: BackendError| e.within(format!("change set {}", new.name));
        heal_interrupted_removals(backend, &tx, &old, self.clock)?;
        if backend.health(&old).map_err(ctx)? == SetHealth::Present {
            backend.change_set(&old, new).map_err(ctx)?;
        } else {
            // Lost from the kernel (reboot, firewall reload): the new spec
            // is built from scratch and filled from the ledger, as sync
            // would; what is left of the old one goes first.
            backend.destroy(&old).map_err(ctx)?;
            restore(backend, &tx, new, self.clock)?;
        }
        tx.put_set(new, now)?;
        if let Err(e) = finish(tx, self.dry_run) {
            // The ledger still holds the old spec: so must the kernel.
            let _ = backend.change_set(new, &old);
            return Err(e);
        }
        Ok(change)
    }
}
