//! What this host holds from other hosts: one row per (set, target,
//! origin), so that one origin's unban leaves another's ban in place; the
//! holds of local unbans; the suppressed counters and the cursor.

use rusqlite::{params, OptionalExtension};

use crate::ledger::{LedgerError, LedgerTx};
use crate::set_name::SetName;
use crate::target::Target;

/// The ledger reason of a ban the fleet made, followed by its origin: a
/// ban row with it is the fleet's to change or remove; any other reason is
/// a local ban, which a remote unban never touches.
pub const FLEET_REASON_PREFIX: &str = "fleet ";

/// The `meta` key of the puller's cursor (the engine's opaque text).
pub(crate) const CURSOR_KEY: &str = "fleet:cursor";
/// The `meta` key of the last snapshot generation.
const GENERATION_KEY: &str = "fleet:generation";
/// The `meta` key prefix of the suppressed counters.
const SUPPRESSED_PREFIX: &str = "fleet:suppressed:";

impl LedgerTx<'_> {
    /// The rows of one target, as (origin, deadline).
    pub fn fleet_rows_of(
        &self,
        set: &SetName,
        target: &Target,
    ) -> Result<Vec<(String, Option<i64>)>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT origin, deadline FROM fleet_rows WHERE set_name = ?1 AND target = ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![set.as_str(), target.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records (or replaces) one origin's ban of a target; `generation`:
    /// the snapshot that holds it, 0 for a delta.
    pub fn fleet_put_row(
        &self,
        origin: &str,
        set: &SetName,
        target: &Target,
        deadline: Option<i64>,
        generation: i64,
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "INSERT INTO fleet_rows (set_name, target, origin, deadline, gen)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (set_name, target, origin) DO UPDATE SET
                   deadline = excluded.deadline, gen = excluded.gen",
            )
            .and_then(|mut s| {
                s.execute(params![
                    set.as_str(),
                    target.to_string(),
                    origin,
                    deadline,
                    generation
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets one origin's ban of a target (its unban, or a suppressed
    /// row); absent is fine.
    pub fn fleet_drop_row(
        &self,
        origin: &str,
        set: &SetName,
        target: &Target,
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "DELETE FROM fleet_rows WHERE set_name = ?1 AND target = ?2 AND origin = ?3",
            )
            .and_then(|mut s| s.execute(params![set.as_str(), target.to_string(), origin]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A new snapshot generation (see `Engine::begin_fleet_snapshot`).
    pub fn fleet_next_generation(&self) -> Result<i64, LedgerError> {
        let old: i64 = self
            .meta(GENERATION_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let next = old.saturating_add(1);
        self.set_meta(GENERATION_KEY, &next.to_string())?;
        Ok(next)
    }

    /// Drops every remote row the snapshot of `generation` did not hold;
    /// returns the (set, target) pairs they covered, to plan again.
    pub fn fleet_sweep_rows(&self, generation: i64) -> Result<Vec<(SetName, Target)>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare("SELECT DISTINCT set_name, target FROM fleet_rows WHERE gen != ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([generation], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (set, target) = row.map_err(|e| self.err(e))?;
            if let (Ok(set), Ok(target)) = (SetName::new(&set), Target::parse(&target)) {
                out.push((set, target));
            }
        }
        self.tx
            .execute("DELETE FROM fleet_rows WHERE gen != ?1", [generation])
            .map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Forgets remote rows and holds that are over: they decide nothing
    /// any more, and would only grow the ledger.
    pub fn fleet_purge(&self, now: i64) -> Result<(), LedgerError> {
        self.tx
            .execute_batch(&format!(
                "DELETE FROM fleet_rows WHERE deadline <= {now};
                 DELETE FROM fleet_holds WHERE until <= {now};"
            ))
            .map_err(|e| self.err(e))
    }

    /// Ends the holds on `targets` of `set`.
    pub fn fleet_release(&self, set: &SetName, targets: &[Target]) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM fleet_holds WHERE set_name = ?1 AND target = ?2")
            .map_err(|e| self.err(e))?;
        for t in targets {
            stmt.execute(params![set.as_str(), t.to_string()])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Marks the ledger's ban of `target` as the fleet's.
    pub fn fleet_mark_made(&self, set: &SetName, target: &Target) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO fleet_made (set_name, target) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![set.as_str(), target.to_string()]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Whether the ledger's ban of `target` is the fleet's.
    pub fn fleet_is_made(&self, set: &SetName, target: &Target) -> Result<bool, LedgerError> {
        self.tx
            .prepare_cached("SELECT 1 FROM fleet_made WHERE set_name = ?1 AND target = ?2")
            .and_then(|mut s| {
                s.query_row(params![set.as_str(), target.to_string()], |_| Ok(()))
                    .optional()
            })
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// Forgets that the fleet made the bans of `targets`: they were
    /// removed, or a local ban took them over (a local ban is never
    /// removed by another host's unban). Nothing to do, and no statement
    /// per target, when the fleet made nothing in `set` (a bulk add).
    pub fn fleet_unmark_made(&self, set: &SetName, targets: &[Target]) -> Result<(), LedgerError> {
        if targets.is_empty() {
            return Ok(());
        }
        let any: bool = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM fleet_made WHERE set_name = ?1)")
            .and_then(|mut s| s.query_row([set.as_str()], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        if !any {
            return Ok(());
        }
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM fleet_made WHERE set_name = ?1 AND target = ?2")
            .map_err(|e| self.err(e))?;
        for t in targets {
            stmt.execute(params![set.as_str(), t.to_string()])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Holds `target` in `set` against remote bans until `until` (`None`:
    /// for good), after a local unban of a fleet ban; a longer hold stays.
    pub fn fleet_hold(
        &self,
        set: &SetName,
        target: &Target,
        until: Option<i64>,
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "INSERT INTO fleet_holds (set_name, target, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (set_name, target) DO UPDATE SET until = CASE
                   WHEN fleet_holds.until IS NULL OR excluded.until IS NULL THEN NULL
                   ELSE max(fleet_holds.until, excluded.until) END",
            )
            .and_then(|mut s| s.execute(params![set.as_str(), target.to_string(), until]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Whether a local unban holds `target` at `now`.
    pub fn fleet_held(
        &self,
        set: &SetName,
        target: &Target,
        now: i64,
    ) -> Result<bool, LedgerError> {
        let until: Option<Option<i64>> = self
            .tx
            .prepare_cached("SELECT until FROM fleet_holds WHERE set_name = ?1 AND target = ?2")
            .and_then(|mut s| {
                s.query_row(params![set.as_str(), target.to_string()], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        Ok(matches!(until, Some(None)) || until.flatten().is_some_and(|u| u > now))
    }

    /// Local unbans of `targets`: each that a fleet ban covers is held
    /// until the longest of its remote rows ends, and its rows go. Called
    /// in the unban's own transaction.
    pub fn fleet_hold_unbanned(
        &self,
        set: &SetName,
        targets: &[Target],
        now: i64,
    ) -> Result<(), LedgerError> {
        for t in targets {
            let rows = self.fleet_rows_of(set, t)?;
            if let Some(until) = super::policy::effective(rows.iter().map(|r| r.1), now) {
                self.fleet_hold(set, t, until)?;
                for (origin, _) in &rows {
                    self.fleet_drop_row(origin, set, t)?;
                }
            }
        }
        self.fleet_unmark_made(set, targets)
    }

    /// Adds `n` to a suppressed counter.
    pub fn fleet_count_suppressed(&self, name: &str, n: u64) -> Result<(), LedgerError> {
        let key = format!("{SUPPRESSED_PREFIX}{name}");
        let old: u64 = self.meta(&key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
        self.set_meta(&key, &old.saturating_add(n).to_string())
    }

    /// Every suppressed counter, by name.
    pub fn fleet_suppressed(&self) -> Result<Vec<(String, u64)>, LedgerError> {
        let mut out = Vec::new();
        for key in self.meta_keys_with_prefix(SUPPRESSED_PREFIX)? {
            let n = self.meta(&key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
            out.push((key[SUPPRESSED_PREFIX.len()..].to_string(), n));
        }
        Ok(out)
    }

    /// The puller's saved cursor; `None` before the first page (or after
    /// [`LedgerTx::fleet_forget_cursor`]): the next pull is a snapshot.
    pub fn fleet_cursor(&self) -> Result<Option<String>, LedgerError> {
        self.meta(CURSOR_KEY)
    }

    /// Forgets the cursor, so the next pull is a snapshot.
    pub fn fleet_forget_cursor(&self) -> Result<(), LedgerError> {
        self.remove_meta(CURSOR_KEY)
    }

    /// How many remote rows this host holds.
    pub fn fleet_row_count(&self) -> Result<u64, LedgerError> {
        self.tx
            .query_row("SELECT count(*) FROM fleet_rows", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::Ledger;
    use crate::set_name::SetName;
    use crate::target::Target;

    #[test]
    fn a_local_unban_holds_until_the_longest_remote_row_ends() {
        let mut l = Ledger::open_in_memory().unwrap();
        let set = SetName::new("ssh").unwrap();
        let t = Target::parse("203.0.113.5").unwrap();
        let tx = l.begin().unwrap();
        tx.fleet_put_row("b", &set, &t, Some(500), 0).unwrap();
        tx.fleet_put_row("c", &set, &t, Some(800), 0).unwrap();
        tx.fleet_hold_unbanned(&set, &[t], 100).unwrap();
        assert!(tx.fleet_rows_of(&set, &t).unwrap().is_empty());
        assert!(tx.fleet_held(&set, &t, 799).unwrap());
        assert!(!tx.fleet_held(&set, &t, 800).unwrap());
        // No fleet row: a local unban holds nothing.
        let other = Target::parse("203.0.113.6").unwrap();
        tx.fleet_hold_unbanned(&set, &[other], 100).unwrap();
        assert!(!tx.fleet_held(&set, &other, 100).unwrap());
    }
}
