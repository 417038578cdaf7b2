//! A host's connection to the engine: publish its own rows, pull everyone's
//! changes after a cursor, take a snapshot, wait for a notification.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, Row};

use crate::connect::{connect, ConnectOptions};
use crate::error::FleetError;
use crate::types::{Cursor, EngineStatus, FleetRow, Page, Publish, Pull, Status};
use crate::validate;

/// Rows per statement in `publish`: large enough to amortise the round
/// trip, small enough that one statement's arrays stay a few MB.
const PUBLISH_CHUNK: usize = 5_000;
/// Upper bound on a page, whatever the caller asks for.
pub const MAX_PAGE: usize = 100_000;
/// The LISTEN channel the schema's trigger notifies.
pub const CHANNEL: &str = "banset_fleet";

/// Columns of a row as read; `remaining_ms` and `active` are computed with
/// the engine's clock.
const ROW_COLUMNS: &str = "origin, set_name, target, \
    banned AND (deadline IS NULL OR deadline > now()) AS active, \
    CASE WHEN deadline IS NULL THEN NULL \
         ELSE (extract(epoch FROM deadline - now()) * 1000)::bigint END AS remaining_ms, \
    jail, reason, changed_by, txid, seq";

/// A connection to the fleet engine as one host role (or the admin role).
pub struct FleetClient {
    client: Client,
    listening: bool,
}

impl std::fmt::Debug for FleetClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetClient")
            .field("closed", &self.client.is_closed())
            .field("listening", &self.listening)
            .finish()
    }
}

impl FleetClient {
    /// Connects, with bounded connect and I/O timeouts (see `connect`).
    pub fn connect(options: &ConnectOptions) -> Result<FleetClient, FleetError> {
        let client = connect(options)?;
        Ok(FleetClient {
            client,
            listening: false,
        })
    }

    /// Whether the connection is gone (the caller reconnects).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The engine's clock. Deadlines are always computed by the engine, so
    /// this is for display and skew diagnostics only.
    pub fn now(&mut self) -> Result<SystemTime, FleetError> {
        let row = self
            .client
            .query_one("SELECT (extract(epoch FROM now()) * 1000000)::bigint", &[])?;
        Ok(from_micros(row.get(0)))
    }

    /// Upserts this host's rows, idempotently: publishing the same change
    /// twice leaves one row and, when nothing changed (deadlines within 2 s),
    /// no new stamp. All of `batch` commits or none of it. Returns how many
    /// rows were inserted or changed.
    pub fn publish(&mut self, batch: &[Publish]) -> Result<u64, FleetError> {
        // The last change per (set, target) wins, as in the outbox; one
        // statement may not touch a row twice.
        let mut last: HashMap<(&str, &str), &Publish> = HashMap::with_capacity(batch.len());
        for change in batch {
            validate::publish(change)?;
            last.insert((change.set.as_str(), change.target.as_str()), change);
        }
        let mut changes: Vec<&Publish> = last.into_values().collect();
        changes.sort_by(|a, b| (&a.set, &a.target).cmp(&(&b.set, &b.target)));
        let mut tx = self.client.transaction()?;
        let statement = tx.prepare(PUBLISH_SQL)?;
        let mut written = 0;
        for chunk in changes.chunks(PUBLISH_CHUNK) {
            let sets: Vec<&str> = chunk.iter().map(|c| c.set.as_str()).collect();
            let targets: Vec<&str> = chunk.iter().map(|c| c.target.as_str()).collect();
            let banned: Vec<bool> = chunk
                .iter()
                .map(|c| matches!(c.status, Status::Banned { .. }))
                .collect();
            let remaining: Vec<Option<i64>> = chunk
                .iter()
                .map(|c| match c.status {
                    Status::Banned {
                        remaining: Some(left),
                    } => Some(i64::try_from(left.as_millis()).unwrap_or(i64::MAX)),
                    _ => None,
                })
                .collect();
            let jails: Vec<Option<&str>> = chunk.iter().map(|c| c.jail.as_deref()).collect();
            let reasons: Vec<Option<&str>> = chunk.iter().map(|c| c.reason.as_deref()).collect();
            written += tx.execute(
                &statement,
                &[&sets, &targets, &banned, &remaining, &jails, &reasons],
            )?;
        }
        tx.commit()?;
        Ok(written)
    }

    /// The rows changed after `cursor`, in stamp order, at most `limit`
    /// (capped at [`MAX_PAGE`]), and only those written by transactions
    /// older than every open one: a transaction still open may commit a
    /// lower stamp later, so nothing at or above it is handed out yet.
    /// `Pull::Expired` when changes after `cursor` were purged.
    pub fn pull(&mut self, cursor: Cursor, limit: usize) -> Result<Pull, FleetError> {
        let limit = i64::try_from(limit.clamp(1, MAX_PAGE)).unwrap_or(1);
        // One snapshot for the horizon and the rows: a purge between the two
        // reads must not delete rows this page then silently skips.
        let mut tx = self.snapshot_tx()?;
        let meta = tx.query_one(
            "SELECT horizon_txid, horizon_seq FROM banset_fleet.meta",
            &[],
        )?;
        let horizon = Cursor {
            txid: meta.get(0),
            seq: meta.get(1),
        };
        if cursor < horizon {
            tx.commit()?;
            return Ok(Pull::Expired { horizon });
        }
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM banset_fleet.bans \
             WHERE (txid, seq) > ($1, $2) \
               AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY txid, seq LIMIT $3"
        );
        let rows = tx.query(&sql, &[&cursor.txid, &cursor.seq, &limit])?;
        tx.commit()?;
        let rows: Vec<FleetRow> = rows.iter().map(row_from).collect();
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
        let cursor = rows.last().map_or(cursor, |r| r.stamp);
        Ok(Pull::Page(Page { rows, cursor, full }))
    }

    /// Every active row (banned, not ended), handed to `visit` in pages of
    /// `page` rows, from one consistent snapshot; returns the cursor to pull
    /// from afterwards. Rows changed after the snapshot come again through
    /// `pull`, which is harmless: applying a row is idempotent.
    pub fn snapshot<E: From<FleetError>>(
        &mut self,
        page: usize,
        mut visit: impl FnMut(Vec<FleetRow>) -> Result<(), E>,
    ) -> Result<Cursor, E> {
        let page = i32::try_from(page.clamp(1, MAX_PAGE)).unwrap_or(1);
        let mut tx = self.snapshot_tx()?;
        let xmin: i64 = tx
            .query_one(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
                &[],
            )
            .map_err(FleetError::from)?
            .get(0);
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM banset_fleet.bans \
             WHERE banned AND (deadline IS NULL OR deadline > now())"
        );
        let portal = tx.bind(sql.as_str(), &[]).map_err(FleetError::from)?;
        loop {
            let rows = tx.query_portal(&portal, page).map_err(FleetError::from)?;
            if rows.is_empty() {
                break;
            }
            visit(rows.iter().map(row_from).collect())?;
        }
        tx.commit().map_err(FleetError::from)?;
        // Every transaction below xmin had ended when the snapshot was
        // taken, so all their rows are in it; pulling resumes at xmin.
        Ok(Cursor { txid: xmin, seq: 0 })
    }

    /// This host's own rows the fleet admin withdrew, as long as the
    /// engine keeps their tombstones: a snapshot holds active rows only, so
    /// a host catching up by snapshot learns of those withdrawals here
    /// (and drops the local ban rather than publishing it again).
    pub fn withdrawn_by_admin(&mut self) -> Result<Vec<FleetRow>, FleetError> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM banset_fleet.bans \
             WHERE origin = current_user AND NOT banned AND changed_by = $1"
        );
        let rows = self
            .client
            .query(sql.as_str(), &[&crate::names::ADMIN_ROLE])?;
        Ok(rows.iter().map(row_from).collect())
    }

    /// Subscribes this connection to change notifications (idempotent).
    pub fn listen(&mut self) -> Result<(), FleetError> {
        if !self.listening {
            self.client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            self.listening = true;
        }
        Ok(())
    }

    /// Waits up to `timeout` for a change notification (after `listen`);
    /// true when one came. Notifications carry nothing and may be lost
    /// (a broken connection): they only wake the puller early.
    pub fn wait_for_change(&mut self, timeout: Duration) -> Result<bool, FleetError> {
        self.listen()?;
        let mut notifications = self.client.notifications();
        let woke = notifications.timeout_iter(timeout).next()?.is_some();
        // Several commits may have notified: one pull serves them all.
        notifications.iter().count()?;
        drop(notifications);
        if self.client.is_closed() {
            // The iterator ends silently on a dead socket; a probe returns
            // the connection's error.
            self.client
                .is_valid(Duration::from_secs(1))
                .map_err(FleetError::Connect)?;
        }
        Ok(woke)
    }

    /// Deletes tombstones and ended bans older than the retention; returns
    /// how many. Any host may run it (the engine decides what is old).
    pub fn purge(&mut self) -> Result<u64, FleetError> {
        let row = self.client.query_one("SELECT banset_fleet.purge()", &[])?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Withdraws the ban of `target` everywhere (in `set`, or in every set):
    /// every origin's row becomes a tombstone. Needs the admin role; a host
    /// role only reaches its own rows. Returns how many rows changed.
    pub fn unban_everywhere(&mut self, set: Option<&str>, target: &str) -> Result<u64, FleetError> {
        validate::target(target)?;
        if let Some(set) = set {
            validate::set(set)?;
        }
        Ok(self.client.execute(
            "UPDATE banset_fleet.bans SET banned = false \
             WHERE banned AND target = $1 AND ($2::text IS NULL OR set_name = $2)",
            &[&target, &set],
        )?)
    }

    /// What `banset fleet status` shows: the engine, the change stream's
    /// head and what waits behind an open transaction, and the hosts.
    pub fn status(&mut self) -> Result<EngineStatus, FleetError> {
        let mut tx = self.snapshot_tx()?;
        let row = tx.query_one(
            "SELECT current_setting('server_version'), m.version, \
                 extract(epoch FROM m.retention)::bigint, \
                 (extract(epoch FROM now()) * 1000000)::bigint, \
                 m.horizon_txid, m.horizon_seq, current_user::text \
             FROM banset_fleet.meta m",
            &[],
        )?;
        let head = tx.query_opt(
            "SELECT txid, seq FROM banset_fleet.bans \
             WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY txid DESC, seq DESC LIMIT 1",
            &[],
        )?;
        let waiting: i64 = tx
            .query_one(
                "SELECT count(*) FROM banset_fleet.bans \
                 WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
                &[],
            )?
            .get(0);
        let active: i64 = tx
            .query_one(
                "SELECT count(*) FROM banset_fleet.bans \
                 WHERE banned AND (deadline IS NULL OR deadline > now())",
                &[],
            )?
            .get(0);
        let hosts = crate::hosts::list(&mut tx)?;
        tx.commit()?;
        Ok(EngineStatus {
            server_version: row.get(0),
            schema_version: row.get(1),
            retention: Duration::from_secs(u64::try_from(row.get::<_, i64>(2)).unwrap_or(0)),
            now: from_micros(row.get(3)),
            horizon: Cursor {
                txid: row.get(4),
                seq: row.get(5),
            },
            role: row.get(6),
            head: head.map_or(Cursor::START, |r| Cursor {
                txid: r.get(0),
                seq: r.get(1),
            }),
            waiting: u64::try_from(waiting).unwrap_or(0),
            active: u64::try_from(active).unwrap_or(0),
            hosts,
        })
    }

    /// The retention of tombstones (readers behind it must snapshot).
    pub fn retention(&mut self) -> Result<Duration, FleetError> {
        let row = self.client.query_one(
            "SELECT extract(epoch FROM retention)::bigint FROM banset_fleet.meta",
            &[],
        )?;
        Ok(Duration::from_secs(
            u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        ))
    }

    /// A read-only transaction on one snapshot (REPEATABLE READ), for reads
    /// whose parts must agree: a page and its horizon, a snapshot and its
    /// cursor, the status's counts.
    fn snapshot_tx(&mut self) -> Result<postgres::Transaction<'_>, FleetError> {
        Ok(self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?)
    }
}

/// Inserts new rows and changes existing ones only when their content
/// changed: a re-published ban whose deadline moved by less than 2 s keeps
/// its stamp, so periodic re-assertion costs readers nothing.
const PUBLISH_SQL: &str = "\
    INSERT INTO banset_fleet.bans AS b (set_name, target, banned, deadline, jail, reason) \
    SELECT s, t, ban, CASE WHEN ms IS NULL THEN NULL \
                           ELSE now() + ms * interval '1 millisecond' END, j, r \
    FROM unnest($1::text[], $2::text[], $3::bool[], $4::int8[], $5::text[], $6::text[]) \
         AS u(s, t, ban, ms, j, r) \
    ON CONFLICT (origin, set_name, target) DO UPDATE \
    SET banned = EXCLUDED.banned, deadline = EXCLUDED.deadline, \
        jail = EXCLUDED.jail, reason = EXCLUDED.reason \
    WHERE b.banned IS DISTINCT FROM EXCLUDED.banned \
       OR b.jail IS DISTINCT FROM EXCLUDED.jail \
       OR b.reason IS DISTINCT FROM EXCLUDED.reason \
       OR (b.deadline IS NULL) <> (EXCLUDED.deadline IS NULL) \
       OR abs(extract(epoch FROM b.deadline - EXCLUDED.deadline)) > 2";

fn row_from(row: &Row) -> FleetRow {
    let origin: String = row.get(0);
    let active: bool = row.get(3);
    let remaining_ms: Option<i64> = row.get(4);
    let status = if active {
        Status::Banned {
            remaining: remaining_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        }
    } else {
        Status::Unbanned
    };
    FleetRow {
        origin: crate::names::host_name(&origin).to_owned(),
        set: row.get(1),
        target: row.get(2),
        status,
        jail: row.get(5),
        reason: row.get(6),
        changed_by: row.get(7),
        stamp: Cursor {
            txid: row.get(8),
            seq: row.get(9),
        },
    }
}

fn from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}
