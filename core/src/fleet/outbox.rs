//! The outbox: what this host publishes, written in the same ledger
//! transaction as the local ban or unban it reports, so a crash keeps
//! both or neither, and a ban never waits for the network. Coalesced by
//! (set, target): a ban, its refresh and its unban before the publisher
//! ran leave one row, the last. The publisher marks a row sent with the
//! version it sent, so a change made meanwhile stays pending.

use rusqlite::params;

use crate::ledger::{LedgerError, LedgerTx};
use crate::set_name::SetName;
use crate::target::Target;

/// One row to publish.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEntry {
    /// The set.
    pub set: SetName,
    /// The target.
    pub target: Target,
    /// A ban (`true`) or its withdrawal.
    pub banned: bool,
    /// Unix time (this host's clock) the ban ends; `None`: permanent.
    pub deadline: Option<i64>,
    /// The jail that made it, if a jail did.
    pub jail: Option<String>,
    /// The ledger's reason.
    pub reason: Option<String>,
    /// When the local change was made (this host's clock).
    pub changed: i64,
    /// The row's version, given back to [`LedgerTx::fleet_mark_sent`].
    pub version: i64,
}

impl LedgerTx<'_> {
    /// Queues bans of `set` (`(target, deadline as the ledger now holds
    /// it)`) for the fleet.
    pub fn fleet_queue_bans(
        &self,
        set: &SetName,
        bans: &[(Target, Option<i64>)],
        jail: Option<&str>,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO fleet_outbox (set_name, target, banned, deadline, jail, reason, changed, version)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, 1)
                 ON CONFLICT (set_name, target) DO UPDATE SET
                   banned = 1, deadline = excluded.deadline, jail = excluded.jail,
                   reason = excluded.reason, changed = excluded.changed,
                   version = fleet_outbox.version + 1",
            )
            .map_err(|e| self.err(e))?;
        for (target, deadline) in bans {
            stmt.execute(params![
                set.as_str(),
                target.to_string(),
                deadline,
                jail,
                reason,
                now
            ])
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Queues the withdrawal of those `targets` this host published in
    /// `set`; others (never published) are left alone.
    pub fn fleet_queue_unbans(
        &self,
        set: &SetName,
        targets: &[Target],
        now: i64,
    ) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE fleet_outbox SET banned = 0, changed = ?3, version = version + 1
                 WHERE set_name = ?1 AND target = ?2 AND banned = 1",
            )
            .map_err(|e| self.err(e))?;
        for t in targets {
            stmt.execute(params![set.as_str(), t.to_string(), now])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Up to `limit` rows waiting for the publisher, oldest change first.
    /// A row whose text no longer parses is skipped.
    pub fn fleet_pending(&self, limit: u32) -> Result<Vec<OutboxEntry>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT set_name, target, banned, deadline, jail, reason, changed, version
                 FROM fleet_outbox WHERE version > sent ORDER BY changed LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (set, target, banned, deadline, jail, reason, changed, version) =
                row.map_err(|e| self.err(e))?;
            let (Ok(set), Ok(target)) = (SetName::new(&set), Target::parse(&target)) else {
                continue;
            };
            out.push(OutboxEntry {
                set,
                target,
                banned,
                deadline,
                jail,
                reason,
                changed,
                version,
            });
        }
        Ok(out)
    }

    /// Records that the engine holds `sent` (at the versions read); a row
    /// changed since stays pending. Sent withdrawals and bans that are over
    /// are forgotten: nothing is left to re-assert.
    pub fn fleet_mark_sent(&self, sent: &[OutboxEntry], now: i64) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE fleet_outbox SET sent = version
                 WHERE set_name = ?1 AND target = ?2 AND version = ?3",
            )
            .map_err(|e| self.err(e))?;
        for e in sent {
            stmt.execute(params![e.set.as_str(), e.target.to_string(), e.version])
                .map_err(|e| self.err(e))?;
        }
        self.tx
            .execute(
                "DELETE FROM fleet_outbox WHERE sent = version
                 AND (banned = 0 OR deadline <= ?1)",
                [now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes every active ban of this host pending again: the periodic
    /// re-assert, which repairs an engine restored from an old backup.
    /// Returns how many.
    pub fn fleet_reassert(&self, now: i64) -> Result<usize, LedgerError> {
        self.tx
            .execute(
                "UPDATE fleet_outbox SET sent = 0
                 WHERE banned = 1 AND (deadline IS NULL OR deadline > ?1)",
                [now],
            )
            .map_err(|e| self.err(e))
    }

    /// The fleet admin withdrew this host's published ban of `target`
    /// everywhere: forget it, so it is neither re-asserted nor sent again.
    /// Returns whether this host had published it (as a ban).
    pub fn fleet_forget_published(
        &self,
        set: &SetName,
        target: &Target,
    ) -> Result<bool, LedgerError> {
        let n = self
            .tx
            .prepare_cached(
                "DELETE FROM fleet_outbox WHERE set_name = ?1 AND target = ?2 AND banned = 1",
            )
            .and_then(|mut s| s.execute(params![set.as_str(), target.to_string()]))
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// How many rows wait for the publisher.
    pub fn fleet_outbox_len(&self) -> Result<u64, LedgerError> {
        self.tx
            .query_row(
                "SELECT count(*) FROM fleet_outbox WHERE version > sent",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::Ledger;
    use crate::set_name::SetName;
    use crate::target::Target;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn coalesces_by_set_and_target_and_keeps_later_changes_pending() {
        let mut l = Ledger::open_in_memory().unwrap();
        let set = SetName::new("ssh").unwrap();
        let tx = l.begin().unwrap();
        tx.fleet_queue_bans(
            &set,
            &[(t("203.0.113.5"), Some(500))],
            Some("sshd"),
            None,
            100,
        )
        .unwrap();
        tx.fleet_queue_bans(
            &set,
            &[(t("203.0.113.5"), Some(900))],
            Some("sshd"),
            None,
            101,
        )
        .unwrap();
        let pending = tx.fleet_pending(10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].deadline, Some(900));
        // Unbanned after the publisher read it: the withdrawal stays pending.
        tx.fleet_queue_unbans(&set, &[t("203.0.113.5"), t("203.0.113.6")], 102)
            .unwrap();
        tx.fleet_mark_sent(&pending, 103).unwrap();
        let again = tx.fleet_pending(10).unwrap();
        assert_eq!(again.len(), 1);
        assert!(!again[0].banned);
        tx.fleet_mark_sent(&again, 104).unwrap();
        assert_eq!(tx.fleet_outbox_len().unwrap(), 0);
        assert_eq!(tx.fleet_reassert(104).unwrap(), 0, "withdrawn: forgotten");
    }

    #[test]
    fn reassert_makes_active_own_bans_pending_again() {
        let mut l = Ledger::open_in_memory().unwrap();
        let set = SetName::new("ssh").unwrap();
        let tx = l.begin().unwrap();
        tx.fleet_queue_bans(
            &set,
            &[(t("203.0.113.5"), Some(500)), (t("203.0.113.6"), None)],
            None,
            None,
            100,
        )
        .unwrap();
        let pending = tx.fleet_pending(10).unwrap();
        tx.fleet_mark_sent(&pending, 101).unwrap();
        assert_eq!(tx.fleet_outbox_len().unwrap(), 0);
        assert_eq!(tx.fleet_reassert(200).unwrap(), 2);
        assert_eq!(tx.fleet_reassert(600).unwrap(), 1, "the ended ban is not");
    }
}
