//! A set's rule and maxelem changed in place over D-Bus: the new direct
//! rules (runtime, and saved for a permanent hook) are added before the old
//! ones are removed, so a banned source is matched by one or the other at
//! every moment; a new maxelem rebuilds the kernel ipsets through the ipset
//! backend (filled temporary set, `SWAP`), keeping every member and the
//! time it has left.

use banset_core::{Backend, BackendError, SetSpec};

use super::{kernel_spec, layers, rules_of, FirewalldBackend, Layer};
use crate::msg::DirectRule;

impl FirewalldBackend {
    pub(super) fn change_in_place(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        let before = placed(old)?;
        let after = placed(new)?;
        let mut added: Vec<&(DirectRule, Layer)> = Vec::new();
        for placed in after.iter().filter(|p| !before.contains(p)) {
            if let Err(e) = self.add_rule(new, &placed.0, placed.1) {
                for (rule, layer) in added {
                    let _ = self.remove_rule(new, rule, *layer);
                }
                return Err(e);
            }
            added.push(placed);
        }
        for (rule, layer) in before.iter().filter(|p| !after.contains(p)) {
            self.remove_rule(old, rule, *layer)?;
        }
        if old.max_elements != new.max_elements {
            self.ipset
                .change_set(&kernel_spec(old), &kernel_spec(new))?;
        }
        Ok(())
    }
}

/// Every direct rule of `spec` with the layer it lives in.
fn placed(spec: &SetSpec) -> Result<Vec<(DirectRule, Layer)>, BackendError> {
    let rules = if spec.hook.is_some() {
        rules_of(spec)?
    } else {
        Vec::new()
    };
    Ok(rules
        .into_iter()
        .flat_map(|r| layers(spec).iter().map(move |&l| (r.clone(), l)))
        .collect())
}
