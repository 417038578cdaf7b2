//! Ban history: every ban and unban of every set, kept after the ban is
//! over (`banset history`, `banset find`), in the ledger's `ban_events`
//! table, which escalation and recidive read as well
//! ([`LedgerTx::ban_events_since`] counts the jails' bans only).
//!
//! Who did it is told by the row: a jail's name (the watcher banned), a
//! reason `fail2ban:JAIL` (fail2ban's action), otherwise an admin or a
//! program through the CLI or the control socket. The table is bounded by
//! age ([`DEFAULT_RETENTION`]) and by rows ([`DEFAULT_MAX_EVENTS`]): both
//! are pruned by the daemon's keeper and by `banset expire`.

use rusqlite::params;
use serde::Serialize;

use crate::ledger::{LedgerError, LedgerTx, NewBan};
use crate::set_name::SetName;
use crate::target::Target;

/// How long history is kept unless configured: 90 days.
pub const DEFAULT_RETENTION: u64 = 90 * 86_400;

/// At most this many rows unless configured; the oldest go first. About
/// 100 bytes a row: 100 MB at most.
pub const DEFAULT_MAX_EVENTS: u64 = 1_000_000;

/// What happened to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Banned (or a ban made longer).
    Ban,
    /// Unbanned by a command: `del`, `unban`, fail2ban's unban.
    Unban,
    /// The set was emptied (`flush`, fail2ban's `unban --all`).
    Flush,
    /// The set was removed with its bans.
    Destroy,
    /// Its time was up.
    Expire,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Ban => "ban",
            EventKind::Unban => "unban",
            EventKind::Flush => "flush",
            EventKind::Destroy => "destroy",
            EventKind::Expire => "expire",
        }
    }

    fn parse(text: &str) -> EventKind {
        match text {
            "unban" => EventKind::Unban,
            "flush" => EventKind::Flush,
            "destroy" => EventKind::Destroy,
            "expire" => EventKind::Expire,
            _ => EventKind::Ban,
        }
    }
}

/// One row of a target's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEvent {
    /// Unix time it happened.
    pub at: i64,
    /// What happened.
    pub kind: EventKind,
    /// The set (empty in rows an older banset wrote).
    pub set: String,
    /// The jail whose ban it was, when the watcher banned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jail: Option<String>,
    /// For a ban: when it ends; `None` is never (or not a ban).
    pub until: Option<i64>,
    /// For a ban: its reason (the jail, `fail2ban:JAIL`, an admin's comment).
    pub reason: Option<String>,
    /// Who did it: `jail NAME`, `fail2ban action (JAIL)`, `admin`, or
    /// `banset` for expiry.
    pub by: String,
}

impl HistoryEvent {
    /// The ban's length in seconds, when it is a ban with an end.
    pub fn length(&self) -> Option<i64> {
        self.until.map(|u| u - self.at)
    }
}

fn who(kind: EventKind, jail: &str, reason: Option<&str>) -> String {
    if kind == EventKind::Expire {
        return "banset (expired)".to_string();
    }
    if !jail.is_empty() {
        return format!("jail {jail}");
    }
    match reason.and_then(|r| r.strip_prefix("fail2ban:")) {
        Some(j) if kind == EventKind::Ban => format!("fail2ban action ({j})"),
        _ => "admin".to_string(),
    }
}

impl LedgerTx<'_> {
    /// Records bans of `set` at `at`; `jail_of` names the jail of a
    /// watcher's ban (escalation and recidive count those).
    pub fn record_bans(
        &self,
        set: &SetName,
        bans: &[NewBan],
        jail_of: &dyn Fn(&Target) -> Option<String>,
        at: i64,
    ) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO ban_events (target, jail, at, kind, set_name, until, reason)
                 VALUES (?1, ?2, ?3, 'ban', ?4, ?5, ?6)",
            )
            .map_err(|e| self.err(e))?;
        for ban in bans {
            let jail = jail_of(&ban.target).unwrap_or_default();
            stmt.execute(params![
                ban.target.to_string(),
                jail,
                at,
                set.as_str(),
                ban.deadline,
                ban.reason
            ])
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records that `targets` left `set` at `at`, and how.
    pub fn record_unbans(
        &self,
        set: &SetName,
        targets: &[Target],
        kind: EventKind,
        at: i64,
    ) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO ban_events (target, jail, at, kind, set_name)
                 VALUES (?1, '', ?2, ?3, ?4)",
            )
            .map_err(|e| self.err(e))?;
        for t in targets {
            stmt.execute(params![t.to_string(), at, kind.as_str(), set.as_str()])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The history of `target` (its exact text), oldest first; at most the
    /// latest `limit` rows.
    pub fn history(&self, target: &Target, limit: u32) -> Result<Vec<HistoryEvent>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT at, kind, set_name, jail, until, reason FROM ban_events
                 WHERE target = ?1 ORDER BY at DESC, rowid DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![target.to_string(), limit], |r| {
                let kind = EventKind::parse(&r.get::<_, String>(1)?);
                let jail: String = r.get(3)?;
                let reason: Option<String> = r.get(5)?;
                Ok(HistoryEvent {
                    at: r.get(0)?,
                    kind,
                    set: r.get(2)?,
                    by: who(kind, &jail, reason.as_deref()),
                    jail: (!jail.is_empty()).then_some(jail),
                    until: r.get(4)?,
                    reason,
                })
            })
            .map_err(|e| self.err(e))?;
        let mut out = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        out.reverse();
        Ok(out)
    }

    /// Keeps at most `max` rows, dropping the oldest; returns how many went.
    pub fn cap_ban_events(&self, max: u64) -> Result<usize, LedgerError> {
        self.tx
            .execute(
                "DELETE FROM ban_events WHERE rowid IN
                 (SELECT rowid FROM ban_events ORDER BY at DESC, rowid DESC LIMIT -1 OFFSET ?1)",
                [max.min(i64::MAX as u64) as i64],
            )
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;
    use crate::spec::{BackendKind, SetSpec};

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn ledger_with_set() -> (Ledger, SetName) {
        let mut l = Ledger::open_in_memory().unwrap();
        let set = SetName::new("f2b-sshd").unwrap();
        let tx = l.begin().unwrap();
        tx.put_set(&SetSpec::new(set.clone(), BackendKind::Memory), 0)
            .unwrap();
        tx.commit().unwrap();
        (l, set)
    }

    fn ban(target: &str, deadline: Option<i64>, reason: &str) -> NewBan {
        NewBan {
            target: t(target),
            start: 100,
            deadline,
            reason: Some(reason.to_string()),
        }
    }

    #[test]
    fn history_keeps_bans_and_unbans_with_who_why_and_how_long() {
        let (mut l, set) = ledger_with_set();
        let tx = l.begin().unwrap();
        tx.record_bans(
            &set,
            &[ban("192.0.2.1", Some(700), "fail2ban:sshd")],
            &|_| None,
            100,
        )
        .unwrap();
        tx.record_bans(
            &set,
            &[ban("192.0.2.1", None, "jail sshd")],
            &|_| Some("sshd".into()),
            200,
        )
        .unwrap();
        tx.record_unbans(&set, &[t("192.0.2.1")], EventKind::Unban, 300)
            .unwrap();
        tx.record_unbans(&set, &[t("192.0.2.2")], EventKind::Expire, 400)
            .unwrap();
        tx.commit().unwrap();
        let tx = l.read().unwrap();
        let h = tx.history(&t("192.0.2.1"), 100).unwrap();
        let summary: Vec<_> = h
            .iter()
            .map(|e| (e.at, e.kind, e.by.as_str(), e.length()))
            .collect();
        assert_eq!(
            summary,
            [
                (100, EventKind::Ban, "fail2ban action (sshd)", Some(600)),
                (200, EventKind::Ban, "jail sshd", None),
                (300, EventKind::Unban, "admin", None),
            ]
        );
        assert_eq!(h[0].set, "f2b-sshd");
        assert_eq!(h[0].reason.as_deref(), Some("fail2ban:sshd"));
        // escalation and recidive count the jails' bans only
        assert_eq!(
            tx.ban_events_since(&t("192.0.2.1"), 0).unwrap(),
            [("sshd".to_string(), 200)]
        );
        // the latest rows when limited
        assert_eq!(tx.history(&t("192.0.2.1"), 1).unwrap()[0].at, 300);
        assert_eq!(
            tx.history(&t("192.0.2.2"), 10).unwrap()[0].by,
            "banset (expired)"
        );
    }

    #[test]
    fn history_is_bounded_by_rows_oldest_first() {
        let (mut l, set) = ledger_with_set();
        let tx = l.begin().unwrap();
        for at in 0..10 {
            tx.record_unbans(&set, &[t("192.0.2.9")], EventKind::Unban, at)
                .unwrap();
        }
        assert_eq!(tx.cap_ban_events(4).unwrap(), 6);
        let left: Vec<i64> = tx
            .history(&t("192.0.2.9"), 100)
            .unwrap()
            .iter()
            .map(|e| e.at)
            .collect();
        assert_eq!(left, [6, 7, 8, 9]);
    }

    /// A version-2 ledger (the watcher's ban events only) gains the new
    /// columns, and its old rows read as the jails' bans they were.
    #[test]
    fn a_version_2_ledger_keeps_its_ban_events() {
        let dir = std::env::temp_dir().join(format!("banset-history-v2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE sets (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created INTEGER NOT NULL);
                 CREATE TABLE bans (set_name TEXT NOT NULL REFERENCES sets(name) ON DELETE CASCADE,
                     target TEXT NOT NULL, start INTEGER NOT NULL, deadline INTEGER, reason TEXT,
                     ban_count INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (set_name, target)) WITHOUT ROWID;
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE ban_events (target TEXT NOT NULL, jail TEXT NOT NULL, at INTEGER NOT NULL);
                 INSERT INTO ban_events VALUES ('192.0.2.7', 'sshd', 50);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let mut l = Ledger::open(&path).unwrap();
        let tx = l.read().unwrap();
        assert_eq!(
            tx.ban_events_since(&t("192.0.2.7"), 0).unwrap(),
            [("sshd".to_string(), 50)]
        );
        let h = tx.history(&t("192.0.2.7"), 10).unwrap();
        assert_eq!((h[0].kind, h[0].by.as_str()), (EventKind::Ban, "jail sshd"));
        drop(tx);
        drop(l);
        // opened again: already version 3, nothing to add
        Ledger::open(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
