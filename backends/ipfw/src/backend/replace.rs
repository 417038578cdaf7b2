//! `banset replace` on ipfw: the new content fills a temporary table of
//! the same type and limit, which is then swapped with the live one
//! (`IP_FW_TABLE_XSWAP`, `ipfw table A swap B`) and destroyed. The rule
//! matches against the live table throughout and sees the old entries or
//! the new ones, never an empty or half-filled table: flushing and then
//! adding would let everyone in through a ban set and lock everyone out
//! of an allow-only one for that moment.

use banset_core::{BackendError, SetSpec, Target};

use super::IpfwBackend;

/// Put before a set's name to name its temporary table. Set names start
/// with a letter or digit, so no set's table can have this name; and the
/// name is derived, not random, so a table left by a replace that died
/// half-way is found and removed by the next one.
pub(super) const TEMP_PREFIX: &str = "_banset_swap.";

/// The temporary table of table `name`: at most 13 + 30 bytes, within
/// ipfw's 63.
pub(super) fn temp_table(name: &str) -> String {
    format!("{TEMP_PREFIX}{name}")
}

impl IpfwBackend {
    /// Replaces the entries of table `name` (set `spec`'s) with `adds`.
    pub(super) fn replace(
        &self,
        spec: &SetSpec,
        name: &str,
        adds: &[Target],
    ) -> Result<(), BackendError> {
        if adds.is_empty() {
            // One call empties the table at once; nothing to swap in.
            return self.tables.flush(name);
        }
        let temp = temp_table(name);
        // A leftover of a replace that died half-way holds stale entries.
        self.tables.destroy(&temp)?;
        self.tables.create(&temp, spec.max_elements.unwrap_or(0))?;
        let filled = self
            .tables
            .add(&temp, adds)
            .and_then(|()| self.tables.swap(name, &temp));
        // After the swap the temporary table holds the old entries; after
        // a failure, part of the new ones. Either way it goes, and the
        // first error is the one to report.
        let cleanup = self.tables.destroy(&temp);
        filled.and(cleanup)
    }
}
