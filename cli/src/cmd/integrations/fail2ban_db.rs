//! Reads the bans fail2ban holds as active for one jail from its SQLite
//! database (`dbfile`, `/var/lib/fail2ban/fail2ban.sqlite3` on Debian).
//!
//! Why banset looks there: with `norestored = true` (what makes a fail2ban
//! restart cheap), fail2ban restores its active bans at start without
//! running the action. Bans banset already holds are fine; bans it never saw
//! (the first start after switching from another banaction, or a lost
//! state directory) would be enforced by nobody while fail2ban lists them
//! as banned. `banset ensure --fail2ban-db` bans them in one batch instead.
//!
//! The query is the one fail2ban itself restores with: the `bips` table
//! (one row per address and jail, fail2ban 0.11 and later), rows whose ban
//! has not ended (`timeofban + bantime > now`) or is permanent (`bantime`
//! -1). The database is opened read-only; fail2ban is running and owns it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OpenFlags};

/// One active ban, as fail2ban recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail2banBan {
    /// The address (or CIDR) as fail2ban wrote it; not yet validated.
    pub ip: String,
    /// Unix time the ban started (fail2ban's `<time>`).
    pub time_of_ban: i64,
    /// Seconds; -1 (or below) is permanent.
    pub ban_time: i64,
}

/// The active bans of `jail` at `now`.
pub fn active_bans(db: &Path, jail: &str, now: i64) -> Result<Vec<Fail2banBan>> {
    let shown = db.display();
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("fail2ban database {shown}"))?;
    // fail2ban writes while we read; wait for its transaction rather than fail.
    conn.busy_timeout(Duration::from_secs(10))?;
    let mut stmt = conn
        .prepare(
            "SELECT ip, timeofban, bantime FROM bips \
             WHERE jail = ?1 AND (timeofban + bantime > ?2 OR bantime <= -1)",
        )
        .with_context(|| {
            format!("fail2ban database {shown}: no bips table (fail2ban 0.11 or later is needed)")
        })?;
    let rows = stmt
        .query_map(rusqlite::params![jail, now], |row| {
            Ok(Fail2banBan {
                ip: row.get(0)?,
                time_of_ban: row.get(1)?,
                ban_time: row.get(2)?,
            })
        })
        .with_context(|| format!("fail2ban database {shown}"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("fail2ban database {shown}: reading jail {jail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fail2ban 1.0's own schema for the table read, with rows of each kind.
    #[test]
    fn reads_active_and_permanent_bans_of_one_jail() {
        let dir = std::env::temp_dir().join(format!("banset-f2bdb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fail2ban.sqlite3");
        let _ = std::fs::remove_file(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, \
             bantime INTEGER NOT NULL, bancount INTEGER NOT NULL default 1, data JSON, \
             PRIMARY KEY(ip, jail));
             INSERT INTO bips(ip, jail, timeofban, bantime) VALUES
               ('192.0.2.1', 'sshd', 1000, 604800),
               ('192.0.2.2', 'sshd', 1000, 10),
               ('2001:db8::1', 'sshd', 1000, -1),
               ('192.0.2.3', 'postfix', 1000, 604800);",
        )
        .unwrap();
        drop(conn);
        let mut got = active_bans(&path, "sshd", 2000).unwrap();
        got.sort_by(|a, b| a.ip.cmp(&b.ip));
        let ips: Vec<&str> = got.iter().map(|b| b.ip.as_str()).collect();
        assert_eq!(ips, ["192.0.2.1", "2001:db8::1"]);
        assert_eq!(got[1].ban_time, -1);
        assert_eq!(got[0].time_of_ban, 1000);

        let e = active_bans(&dir.join("missing.sqlite3"), "sshd", 0).unwrap_err();
        assert!(format!("{e:#}").contains("missing.sqlite3"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
