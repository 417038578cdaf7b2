//! The ledger: the durable record of every ban, in SQLite.
//!
//! It is the desired state; the kernel is the actual state. Many processes
//! write it at once (fail2ban runs actions in parallel, cron and the daemon
//! overlap), so:
//! - WAL journal, so readers never block the writer;
//! - every mutating command is one `BEGIN IMMEDIATE` transaction that also
//!   spans the kernel call (a bulk add is one per chunk, so that other
//!   writers get in between; see `Engine::add_in_chunks`). Taking the write
//!   lock up front serialises banset's writers (one lock for ledger and
//!   kernel together) and means a command that fails in the kernel rolls its
//!   rows back: no row ever claims a ban the kernel refused;
//! - a long busy timeout, so a writer waits its turn instead of failing,
//!   polling every millisecond so it gets in between a bulk add's chunks.
//!
//! `synchronous = NORMAL`: a power cut may lose the last commits, but it also
//! empties the kernel sets, and what is in the ledger is restored by `sync`.
//! A process crash loses nothing that was committed.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::set_name::SetName;
use crate::spec::{BackendKind, SetSpec};
use crate::target::Target;

/// Version 4 changes no table: a set's stored spec may hold a `policy`
/// (`allow-only`, [`crate::SetPolicy`]). The bump is what keeps an older
/// banset, whose spec reader ignores fields it does not know, from reading
/// an allow-only set as a ban set and, on its next `sync`, turning the only
/// addresses allowed into the only addresses banned: it refuses the ledger
/// instead ("newer than this banset understands").
///
/// Version 5 adds the fleet's tables (outbox, remote rows, holds; see
/// `crate::fleet`): an older banset would ban and unban without queueing
/// for the fleet, and the next sync would then miss those changes.
const SCHEMA_VERSION: i64 = 5;

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the ledger could not be read or written. Both variants name the
/// ledger file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed: cannot open the file, permissions, a lock held past the
    /// busy timeout (120 s), a full disk.
    #[error("ledger {path}: {source}")]
    Sqlite {
        /// The ledger file (`:memory:` for an in-memory ledger).
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file holds no ledger yet (absent, zero bytes, never initialised)
    /// and the check given to [`Ledger::open_checked`] refused to start a
    /// new one there: typically because the kernel holds banset sets whose
    /// members a new, empty ledger would remove.
    #[error("ledger {path}: {refusal}")]
    Refused {
        /// The ledger file.
        path: String,
        /// Why, and what to do.
        refusal: KernelSetsExist,
    },
    /// The file opened but its contents make no sense to this banset: a newer
    /// schema, or a row that does not parse.
    #[error("ledger {path}: {message}")]
    Corrupt {
        /// The ledger file.
        path: String,
        /// What does not make sense, and where.
        message: String,
    },
}

/// The refusal of a new ledger by [`Ledger::open_checked`]'s check: the
/// kernel holds banset sets, whose members `sync` or the daemon would
/// remove from an empty ledger's point of view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the file holds no ledger (new, empty or truncated), but the kernel holds banset sets ({}); \
     refusing to start an empty ledger, which would remove their members. \
     Restore the file from a backup, or run `banset adopt` to record the kernel's members \
     in a new ledger (see banset-adopt(1))",
    self.listing()
)]
pub struct KernelSetsExist {
    /// The sets found, by backend; never empty.
    pub sets: Vec<(BackendKind, Vec<SetName>)>,
}

impl KernelSetsExist {
    /// `nftables: f2b, ssh; ipset: web`.
    fn listing(&self) -> String {
        let by_backend: Vec<String> = self
            .sets
            .iter()
            .map(|(kind, names)| {
                let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                format!("{kind}: {}", names.join(", "))
            })
            .collect();
        by_backend.join("; ")
    }
}

/// Columns version 3 of the ledger added to `ban_events` (the history,
/// read and written by `history.rs`). Here with the rest of the schema, so
/// that the ledger does not import the history that imports it.
const V3_COLUMNS: [(&str, &str); 4] = [
    ("kind", "TEXT NOT NULL DEFAULT 'ban'"),
    ("set_name", "TEXT NOT NULL DEFAULT ''"),
    ("until", "INTEGER"),
    ("reason", "TEXT"),
];

/// One ban as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ban {
    /// The banned address or prefix.
    pub target: Target,
    /// Unix time the ban started (`--since`, or when it was added).
    pub start: i64,
    /// Unix time it ends; `None` for a permanent ban.
    pub deadline: Option<i64>,
    /// Free text: the jail, the fail2ban action, the admin's `--comment`.
    pub reason: Option<String>,
    /// How many times this target was banned in this set while the previous
    /// ban was still recorded; the watcher escalates on it.
    pub ban_count: u32,
}

impl Ban {
    /// Whether the ban is still in force at `now` (Unix time): permanent, or
    /// its deadline is later than `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.deadline.is_none_or(|d| d > now)
    }

    /// Seconds left, `None` for permanent; zero once over.
    pub fn remaining(&self, now: i64) -> Option<u64> {
        self.deadline.map(|d| (d - now).max(0) as u64)
    }
}

/// A ban row whose target does not parse: written by an older banset that
/// accepted it (`0.0.0.0` from a log line), or by hand. Reads skip it and
/// report it, so one bad row never stops its set or any other from being
/// listed, restored or synced; [`LedgerTx::remove_unreadable`] (`banset del`)
/// and [`LedgerTx::clear_bans`] (`banset flush`) remove it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableRow {
    /// The row's target text, cut to 80 bytes so that a hostile row cannot
    /// become an oversized log line.
    pub text: String,
    /// Why it does not parse.
    pub reason: String,
}

impl std::fmt::Display for UnreadableRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self.text, self.reason)
    }
}

/// A ban to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBan {
    /// The address or prefix to ban.
    pub target: Target,
    /// Unix time the ban started.
    pub start: i64,
    /// Unix time it ends; `None` for a permanent ban.
    pub deadline: Option<i64>,
    /// Free text: the jail, the fail2ban action, the admin's `--comment`.
    /// `None` keeps the reason already recorded for the target.
    pub reason: Option<String>,
}

/// The deadline a ban ends with when `new` is recorded over a row that
/// ends at `old` (`None` = permanent), as [`LedgerTx::upsert_bans`] does it:
/// a row already over is replaced, otherwise the longest ban wins.
pub fn merged_deadline(old: Option<i64>, new: Option<i64>, now: i64) -> Option<i64> {
    match (old, new) {
        (Some(o), _) if o <= now => new,
        (None, _) | (_, None) => None,
        (Some(o), Some(n)) => Some(o.max(n)),
    }
}

/// The ban ledger: one SQLite database file holding every set's
/// [`SetSpec`] and every ban. All access goes through a [`LedgerTx`].
///
/// Safe for many processes at once: the journal is WAL, so readers never
/// block the writer, and a write transaction ([`Ledger::begin`]) takes the
/// write lock up front, waiting up to 120 s for another writer.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: String,
    /// A write failed for lack of disk space since the last checkpoint:
    /// see [`Ledger::checkpoint_after_full_disk`].
    disk_full: std::cell::Cell<bool>,
}

/// WAL size past which a closing process folds the WAL into the database
/// (about 40 single-ban commands' worth).
const CHECKPOINT_WAL_BYTES: u64 = 256 * 1024;

impl Drop for Ledger {
    fn drop(&mut self) {
        if self.path == ":memory:" {
            return;
        }
        if self.checkpoint_after_full_disk() {
            return;
        }
        let wal = std::fs::metadata(format!("{}-wal", self.path)).map(|m| m.len());
        if wal.is_ok_and(|len| len > CHECKPOINT_WAL_BYTES) {
            // TRUNCATE leaves an empty WAL for the next process to read.
            // Best effort: if another process is busy it will do it later.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

/// How often a writer waiting for the lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(1);

/// SQLite's busy handler: try again every millisecond, for up to
/// [`BUSY_TIMEOUT`]. SQLite's own (`busy_timeout`) backs off to 100 ms
/// between tries, and its locks are not fair: a bulk add that commits chunk
/// after chunk (see `Engine::add_in_chunks`) frees the lock for a moment
/// between chunks, which a waiter asleep for 100 ms almost never sees, so
/// the daemon's ban waited behind chunk after chunk. At 1 ms a waiter gets
/// in at the next pause between chunks; a try is one lock attempt, cheap
/// enough for the rare long wait.
fn wait_for_lock(tries: i32) -> bool {
    if u128::from(tries.max(0) as u32) * LOCK_POLL.as_millis() >= BUSY_TIMEOUT.as_millis() {
        return false;
    }
    std::thread::sleep(LOCK_POLL);
    true
}

/// SQLITE_BUSY or SQLITE_LOCKED: another connection holds a lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Ledger {
    /// Opens (creating if needed) the ledger file. The directory must exist.
    /// A file that holds no ledger yet becomes a new, empty one without
    /// question: see [`Ledger::open_checked`] for what banset's commands use.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open_checked(path, &|| Ok(()))
    }

    /// Opens the ledger file like [`Ledger::open`], but when the file holds
    /// no ledger yet (absent, zero bytes, schema version 0) it first asks
    /// `new_ok`, and a refusal is [`LedgerError::Refused`] carrying it.
    ///
    /// Why here: this is the one moment at which "this ledger knows
    /// nothing" can be told apart from "every ban was removed on purpose".
    /// Once the schema is written, an empty ledger is a legitimate state
    /// (after `flush`), and `sync` rightly makes the kernel as empty. A
    /// zero-byte `ledger.db` (a full disk, a bad restore, a truncation) is
    /// not: taken for new, it made `sync` and the daemon remove every kernel
    /// member. A refusal writes nothing, so the file stays at version 0 and
    /// every later open is refused again, not just the first.
    pub fn open_checked(
        path: &Path,
        new_ok: &dyn Fn() -> Result<(), KernelSetsExist>,
    ) -> Result<Ledger, LedgerError> {
        let shown = path.display().to_string();
        // A new ledger is turned to WAL and given its schema by whichever
        // process gets there first. While the file is still in rollback
        // mode, SQLite answers a lock upgrade that could deadlock with
        // SQLITE_BUSY at once, without waiting in the busy handler: 16
        // first bans at once failed one round in six. Opening is
        // idempotent, so a busy open is retried within the busy timeout.
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let conn = Connection::open(path).map_err(|source| LedgerError::Sqlite {
                path: shown.clone(),
                source,
            })?;
            match Ledger::init(conn, shown.clone(), new_ok) {
                Err(LedgerError::Sqlite { source, .. })
                    if is_busy(&source) && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// A private ledger for tests and `--dry-run` experiments.
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        let conn = Connection::open_in_memory().map_err(|source| LedgerError::Sqlite {
            path: ":memory:".into(),
            source,
        })?;
        Ledger::init(conn, ":memory:".into(), &|| Ok(()))
    }

    fn init(
        conn: Connection,
        path: String,
        new_ok: &dyn Fn() -> Result<(), KernelSetsExist>,
    ) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger {
            conn,
            path,
            disk_full: std::cell::Cell::new(false),
        };
        ledger
            .conn
            .busy_handler(Some(wait_for_lock))
            .map_err(|e| ledger.err(e))?;
        // Every banset command is a short-lived process. By default the last
        // connection to close checkpoints the WAL into the database and
        // deletes it: several fsyncs per ban, more than the ban itself
        // costs. banset checkpoints in bulk instead (`Drop for Ledger`), once
        // the WAL has grown: a process that opens the ledger alone re-reads
        // the whole WAL, so it must stay short, but not empty.
        ledger
            .conn
            .set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .map_err(|e| ledger.err(e))?;
        // journal_mode returns a row; it must be read, not executed.
        let _mode: String = ledger
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| ledger.err(e))?;
        ledger
            .conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| ledger.err(e))?;
        let version: i64 = ledger
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| ledger.err(e))?;
        match version {
            SCHEMA_VERSION => {}
            // Every statement of the schema is idempotent: a version-1
            // ledger gains the ban history, a new one gets everything.
            0..=4 => ledger.create_schema(new_ok)?,
            v => {
                return Err(LedgerError::Corrupt {
                    path: ledger.path.clone(),
                    message: format!(
                        "schema version {v} is newer than this banset understands ({SCHEMA_VERSION}); upgrade banset"
                    ),
                })
            }
        }
        Ok(ledger)
    }

    fn create_schema(
        &self,
        new_ok: &dyn Fn() -> Result<(), KernelSetsExist>,
    ) -> Result<(), LedgerError> {
        // IMMEDIATE so two first-time processes do not both create the
        // schema. The version is read again under that lock, and a new
        // ledger is asked about there: checked before the lock, a process
        // that lost the race saw version 0 and then the set the winner had
        // meanwhile made in the kernel, and refused a ledger that was fine.
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        let rollback = |e: LedgerError| {
            let _ = self.conn.execute_batch("ROLLBACK");
            e
        };
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| rollback(self.err(e)))?;
        if version == 0 {
            // A refusal writes nothing: the file stays at version 0.
            new_ok().map_err(|refusal| {
                rollback(LedgerError::Refused {
                    path: self.path.clone(),
                    refusal,
                })
            })?;
        }
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS sets (
                     name    TEXT PRIMARY KEY,
                     spec    TEXT NOT NULL,
                     created INTEGER NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS bans (
                     set_name  TEXT NOT NULL REFERENCES sets(name) ON DELETE CASCADE,
                     target    TEXT NOT NULL,
                     start     INTEGER NOT NULL,
                     deadline  INTEGER,
                     reason    TEXT,
                     ban_count INTEGER NOT NULL DEFAULT 1,
                     PRIMARY KEY (set_name, target)
                 ) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS meta (
                     key   TEXT PRIMARY KEY,
                     value TEXT NOT NULL
                 );
                 -- Version 2: one row per ban the watcher decided, kept after
                 -- the ban ends, so repeat offenders can be recognised
                 -- (escalation, recidive). Pruned by age.
                 CREATE TABLE IF NOT EXISTS ban_events (
                     target TEXT NOT NULL,
                     jail   TEXT NOT NULL,
                     at     INTEGER NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS ban_events_by_target ON ban_events (target, at);
                 CREATE INDEX IF NOT EXISTS ban_events_by_time ON ban_events (at);",
            )
            .map_err(|e| rollback(self.err(e)))?;
        // Version 5: the fleet (docs/fleet.md), new tables only.
        self.conn
            .execute_batch(crate::fleet::schema::SCHEMA)
            .map_err(|e| rollback(self.err(e)))?;
        // Version 3: every ban and unban, not only the watcher's bans
        // (`banset history`): what happened, in which set, until when, why.
        // ALTER TABLE has no IF NOT EXISTS: add what a version-2 table lacks.
        let columns: Vec<String> = self
            .conn
            .prepare("SELECT name FROM pragma_table_info('ban_events')")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .map_err(|e| rollback(self.err(e)))?;
        for (column, definition) in V3_COLUMNS {
            if !columns.iter().any(|c| c == column) {
                self.conn
                    .execute_batch(&format!(
                        "ALTER TABLE ban_events ADD COLUMN {column} {definition}"
                    ))
                    .map_err(|e| rollback(self.err(e)))?;
            }
        }
        self.conn
            .execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
            .map_err(|e| rollback(self.err(e)))
    }

    fn err(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The database file, as given to [`Ledger::open`] (`:memory:` for
    /// [`Ledger::open_in_memory`]); error messages show it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Starts a write transaction, waiting for other writers.
    pub fn begin(&mut self) -> Result<LedgerTx<'_>, LedgerError> {
        self.checkpoint_after_full_disk();
        self.transaction(TransactionBehavior::Immediate)
    }

    /// After a write that failed for lack of space, folds the WAL into the
    /// database and truncates it; returns whether it did. banset leaves
    /// small WALs alone (see `Drop`), and a commit that fails is not one
    /// SQLite checkpoints after: on a nearly full disk the WAL then only
    /// grew, every later write (`sync` included, in the long-running daemon
    /// too) failed on it, and nothing ever gave its space back. Folded, the
    /// database grows by the pages that changed and the WAL's space is
    /// free for the next transaction. Tried again at the next write and
    /// when the ledger is closed, until it succeeds.
    fn checkpoint_after_full_disk(&self) -> bool {
        if !self.disk_full.get() {
            return false;
        }
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            // The first column is 1 when another connection kept it from
            // finishing.
            .is_ok_and(|busy| busy == 0);
        if done {
            self.disk_full.set(false);
        }
        done
    }

    /// Starts a read transaction: a consistent snapshot, never blocking writers.
    pub fn read(&mut self) -> Result<LedgerTx<'_>, LedgerError> {
        self.transaction(TransactionBehavior::Deferred)
    }

    fn transaction(&mut self, how: TransactionBehavior) -> Result<LedgerTx<'_>, LedgerError> {
        let path = self.path.clone();
        let Ledger {
            conn, disk_full, ..
        } = self;
        let tx = conn
            .transaction_with_behavior(how)
            .map_err(|source| LedgerError::Sqlite {
                path: path.clone(),
                source,
            })?;
        Ok(LedgerTx {
            tx,
            path,
            disk_full,
        })
    }
}

/// One transaction over the ledger. Dropped without [`LedgerTx::commit`], it
/// rolls back.
#[derive(Debug)]
pub struct LedgerTx<'a> {
    pub(crate) tx: rusqlite::Transaction<'a>,
    path: String,
    /// The ledger's flag, set when a write here fails for lack of space.
    disk_full: &'a std::cell::Cell<bool>,
}

/// SQLITE_FULL: the disk (or a quota) is full.
fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

impl LedgerTx<'_> {
    pub(crate) fn err(&self, source: rusqlite::Error) -> LedgerError {
        if is_full(&source) {
            self.disk_full.set(true);
        }
        LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, message: String) -> LedgerError {
        LedgerError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    /// Makes the changes visible to other processes. They survive a process
    /// crash; a power cut may lose the last commits (`synchronous = NORMAL`),
    /// which is acceptable because it empties the kernel sets as well and
    /// `sync` restores whatever the ledger kept.
    pub fn commit(self) -> Result<(), LedgerError> {
        let path = self.path.clone();
        let disk_full = self.disk_full;
        self.tx.commit().map_err(|source| {
            if is_full(&source) {
                disk_full.set(true);
            }
            LedgerError::Sqlite { path, source }
        })
    }

    /// The spec of a set; `None` when no set has that name. A spec that no
    /// longer parses is [`LedgerError::Corrupt`].
    pub fn set_spec(&self, name: &SetName) -> Result<Option<SetSpec>, LedgerError> {
        let json: Option<String> = self
            .tx
            .query_row(
                "SELECT spec FROM sets WHERE name = ?1",
                [name.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| self.decode_spec(name.as_str(), &j))
            .transpose()
    }

    fn decode_spec(&self, name: &str, json: &str) -> Result<SetSpec, LedgerError> {
        serde_json::from_str(json)
            .map_err(|e| self.corrupt(format!("set {name}: unreadable spec: {e}")))
    }

    /// Every set whose stored spec reads, by name. A set whose spec does
    /// not parse (a hand edit, a newer banset's field) is left out here, as
    /// an unreadable ban row is: one bad record must not stop every other
    /// set from being listed, expired or restored. [`LedgerTx::set_names`]
    /// still names it, and [`LedgerTx::set_spec`] says what is wrong with
    /// it, so `sync` reports it as that set's failure.
    pub fn set_specs(&self) -> Result<Vec<SetSpec>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare("SELECT name, spec FROM sets ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, json) = row.map_err(|e| self.err(e))?;
            if let Ok(spec) = self.decode_spec(&name, &json) {
                out.push(spec);
            }
        }
        Ok(out)
    }

    /// The name of every set the ledger records, whether or not its spec
    /// reads; names that are not valid set names (never written by banset)
    /// are left out.
    pub fn set_names(&self) -> Result<Vec<SetName>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare("SELECT name FROM sets ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(name) = SetName::new(&row.map_err(|e| self.err(e))?) {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Records a set, replacing its spec if it exists.
    pub fn put_set(&self, spec: &SetSpec, now: i64) -> Result<(), LedgerError> {
        let json = serde_json::to_string(spec).expect("SetSpec serialises");
        self.tx
            .execute(
                "INSERT INTO sets (name, spec, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
                params![spec.name.as_str(), json, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a set and all its bans. Returns whether it existed.
    pub fn remove_set(&self, name: &SetName) -> Result<bool, LedgerError> {
        let n = self
            .tx
            .execute("DELETE FROM sets WHERE name = ?1", [name.as_str()])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Records bans. A target already recorded keeps the later deadline of
    /// the two (the longest ban wins, so a short ban from one source never
    /// cuts short a long one from another), and its ban count goes up. A
    /// recorded ban that is already over is replaced outright.
    /// [`merged_deadline`] computes the same result, so the caller can give
    /// the kernel the right timeout without waiting for this call.
    pub fn upsert_bans(&self, set: &SetName, bans: &[NewBan], now: i64) -> Result<(), LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO bans (set_name, target, start, deadline, reason, ban_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT (set_name, target) DO UPDATE SET
                   start = CASE WHEN bans.deadline <= ?6 THEN excluded.start ELSE bans.start END,
                   deadline = CASE
                     WHEN bans.deadline <= ?6 THEN excluded.deadline
                     WHEN bans.deadline IS NULL OR excluded.deadline IS NULL THEN NULL
                     ELSE max(bans.deadline, excluded.deadline) END,
                   reason = coalesce(excluded.reason, bans.reason),
                   ban_count = bans.ban_count + 1",
            )
            .map_err(|e| self.err(e))?;
        let mut text = String::with_capacity(48);
        for ban in bans {
            use std::fmt::Write;
            text.clear();
            write!(text, "{}", ban.target).expect("write to String");
            stmt.execute(params![
                set.as_str(),
                text,
                ban.start,
                ban.deadline,
                ban.reason,
                now
            ])
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The rows of those `targets` that have one, probed row by row: what a
    /// chunk of a bulk add needs (the deadlines to merge, and the rows to
    /// put back if a later chunk fails), without reading the whole set per
    /// chunk.
    pub fn rows_of(
        &self,
        set: &SetName,
        targets: &[Target],
    ) -> Result<FxHashMap<Target, Ban>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT start, deadline, reason, ban_count FROM bans
                 WHERE set_name = ?1 AND target = ?2",
            )
            .map_err(|e| self.err(e))?;
        let mut out = FxHashMap::default();
        for t in targets {
            let found = stmt
                .query_row(params![set.as_str(), t.to_string()], |r| {
                    Ok(Ban {
                        target: *t,
                        start: r.get(0)?,
                        deadline: r.get(1)?,
                        reason: r.get(2)?,
                        ban_count: r.get::<_, i64>(3)?.clamp(0, i64::from(u32::MAX)) as u32,
                    })
                })
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(ban) = found {
                out.insert(*t, ban);
            }
        }
        Ok(out)
    }

    /// Undoes [`LedgerTx::upsert_bans`] of `written` over the rows
    /// `before` (what [`LedgerTx::rows_of`] saw then), where nobody has
    /// recorded the target since: a row that ours created goes, a row ours
    /// merged into gets its old values back. A row banned again by someone
    /// else in between (its count moved on) is theirs and stays.
    pub fn undo_upsert(
        &self,
        set: &SetName,
        written: &[NewBan],
        before: &FxHashMap<Target, Ban>,
    ) -> Result<(), LedgerError> {
        let mut delete = self
            .tx
            .prepare_cached(
                "DELETE FROM bans WHERE set_name = ?1 AND target = ?2 AND ban_count = 1",
            )
            .map_err(|e| self.err(e))?;
        let mut restore = self
            .tx
            .prepare_cached(
                "UPDATE bans SET start = ?3, deadline = ?4, reason = ?5, ban_count = ?6
                 WHERE set_name = ?1 AND target = ?2 AND ban_count = ?6 + 1",
            )
            .map_err(|e| self.err(e))?;
        for ban in written {
            let text = ban.target.to_string();
            match before.get(&ban.target) {
                None => delete.execute(params![set.as_str(), text]),
                Some(old) => restore.execute(params![
                    set.as_str(),
                    text,
                    old.start,
                    old.deadline,
                    old.reason,
                    old.ban_count
                ]),
            }
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The recorded deadlines (`None` inside = permanent) of those `targets`
    /// that have a row. For many targets it reads the set once instead of
    /// probing row by row.
    pub fn deadlines_of(
        &self,
        set: &SetName,
        targets: &[Target],
    ) -> Result<FxHashMap<Target, Option<i64>>, LedgerError> {
        let mut out = FxHashMap::default();
        if targets.len() > 64 {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT target, deadline FROM bans WHERE set_name = ?1")
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([set.as_str()]).map_err(|e| self.err(e))?;
            // Built on the first row only: a bulk add into an empty set (a
            // restore, a fresh block list) needs no lookup table at all.
            let mut wanted: Option<FxHashSet<&Target>> = None;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                let text = row
                    .get_ref(0)
                    .and_then(|v| v.as_str().map_err(Into::into))
                    .map_err(|e| self.err(e))?;
                // An unreadable row is no target anyone asks about.
                let Ok(target) = Target::parse(text) else {
                    continue;
                };
                let wanted = wanted.get_or_insert_with(|| targets.iter().collect());
                if wanted.contains(&target) {
                    out.insert(target, row.get(1).map_err(|e| self.err(e))?);
                }
            }
        } else {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT deadline FROM bans WHERE set_name = ?1 AND target = ?2")
                .map_err(|e| self.err(e))?;
            for t in targets {
                let found: Option<Option<i64>> = stmt
                    .query_row(params![set.as_str(), t.to_string()], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.err(e))?;
                if let Some(deadline) = found {
                    out.insert(*t, deadline);
                }
            }
        }
        Ok(out)
    }

    /// Forgets bans; returns how many were recorded.
    pub fn remove_bans(&self, set: &SetName, targets: &[Target]) -> Result<usize, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM bans WHERE set_name = ?1 AND target = ?2")
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for t in targets {
            n += stmt
                .execute(params![set.as_str(), t.to_string()])
                .map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    /// Forgets every ban of a set; returns how many there were.
    pub fn clear_bans(&self, set: &SetName) -> Result<usize, LedgerError> {
        self.tx
            .execute("DELETE FROM bans WHERE set_name = ?1", [set.as_str()])
            .map_err(|e| self.err(e))
    }

    /// Every recorded ban of a set, active or not, ordered by target text.
    /// Unreadable rows are skipped ([`LedgerTx::bans_and_unreadable`]
    /// reports them).
    pub fn bans(&self, set: &SetName) -> Result<Vec<Ban>, LedgerError> {
        Ok(self.bans_and_unreadable(set)?.0)
    }

    /// [`LedgerTx::bans`], with the rows it had to skip.
    pub fn bans_and_unreadable(
        &self,
        set: &SetName,
    ) -> Result<(Vec<Ban>, Vec<UnreadableRow>), LedgerError> {
        self.query_bans(
            "SELECT target, start, deadline, reason, ban_count FROM bans
             WHERE set_name = ?1 ORDER BY target",
            params![set.as_str()],
        )
    }

    /// Bans whose deadline is at or before `now`; unreadable rows are
    /// skipped.
    pub fn expired_bans(&self, set: &SetName, now: i64) -> Result<Vec<Ban>, LedgerError> {
        Ok(self
            .query_bans(
                "SELECT target, start, deadline, reason, ban_count FROM bans
             WHERE set_name = ?1 AND deadline <= ?2 ORDER BY target",
                params![set.as_str(), now],
            )?
            .0)
    }

    /// Forgets the unreadable rows (see [`UnreadableRow`]) whose target text
    /// is exactly one of `texts`; returns how many went. A text that parses
    /// as a target removes nothing here: that is [`LedgerTx::remove_bans`]'s
    /// job.
    pub fn remove_unreadable(&self, set: &SetName, texts: &[&str]) -> Result<usize, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM bans WHERE set_name = ?1 AND target = ?2")
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for text in texts.iter().filter(|t| Target::parse(t).is_err()) {
            n += stmt
                .execute(params![set.as_str(), text])
                .map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    /// The recorded ban of one target, active or not; `None` when there is
    /// none.
    pub fn ban(&self, set: &SetName, target: &Target) -> Result<Option<Ban>, LedgerError> {
        Ok(self
            .query_bans(
                "SELECT target, start, deadline, reason, ban_count FROM bans
                 WHERE set_name = ?1 AND target = ?2",
                params![set.as_str(), target.to_string()],
            )?
            .0
            .pop())
    }

    /// (active, permanent) ban counts of a set.
    pub fn counts(&self, set: &SetName, now: i64) -> Result<(u64, u64), LedgerError> {
        self.tx
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE deadline IS NULL) FROM bans
                 WHERE set_name = ?1 AND (deadline IS NULL OR deadline > ?2)",
                params![set.as_str(), now],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    fn query_bans(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<(Vec<Ban>, Vec<UnreadableRow>), LedgerError> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        // Read in place (no String per row): listing reads every row.
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            // A row that is not text, or whose text is no target, is skipped
            // and reported: failing here made one bad row stop every list,
            // sync and restore of its set (issue 13.1).
            let text = match r.get_ref(0) {
                Ok(rusqlite::types::ValueRef::Text(bytes)) => String::from_utf8_lossy(bytes),
                Ok(other) => {
                    unreadable.push(UnreadableRow {
                        text: format!("<{:?}>", other.data_type()),
                        reason: "not text".into(),
                    });
                    continue;
                }
                Err(e) => return Err(self.err(e)),
            };
            let target = match Target::parse(&text) {
                Ok(t) => t,
                Err(e) => {
                    unreadable.push(UnreadableRow {
                        text: e.input,
                        reason: e.reason.into(),
                    });
                    continue;
                }
            };
            let columns = (|| -> rusqlite::Result<Ban> {
                let ban_count: i64 = r.get(4)?;
                Ok(Ban {
                    target,
                    start: r.get(1)?,
                    deadline: r.get(2)?,
                    reason: r.get(3)?,
                    ban_count: ban_count.clamp(0, i64::from(u32::MAX)) as u32,
                })
            })();
            match columns {
                Ok(ban) => out.push(ban),
                Err(e) => unreadable.push(UnreadableRow {
                    text: target.to_string(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok((out, unreadable))
    }

    /// A value from the key-value table banset keeps its own bookkeeping in
    /// (e.g. the time of a set's last `sync`); `None` when the key is absent.
    pub fn meta(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The keys of that key-value table that start with `prefix`, in order.
    pub fn meta_keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT key FROM meta WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([prefix], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Removes a key from that key-value table; absent is fine.
    pub fn remove_meta(&self, key: &str) -> Result<(), LedgerError> {
        self.tx
            .execute("DELETE FROM meta WHERE key = ?1", [key])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that `jail` banned `target` at `at` (the watcher's history
    /// of offenders, kept after the ban itself is over).
    pub fn record_ban_event(
        &self,
        target: &Target,
        jail: &str,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.tx
            .execute(
                "INSERT INTO ban_events (target, jail, at) VALUES (?1, ?2, ?3)",
                params![target.to_string(), jail, at],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The bans of `target` recorded at or after `since`, as (jail, time),
    /// oldest first.
    pub fn ban_events_since(
        &self,
        target: &Target,
        since: i64,
    ) -> Result<Vec<(String, i64)>, LedgerError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT jail, at FROM ban_events
                 WHERE target = ?1 AND at >= ?2 AND kind = 'ban' AND jail <> '' ORDER BY at",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![target.to_string(), since], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Forgets ban history older than `before`; returns how many rows went.
    pub fn prune_ban_events(&self, before: i64) -> Result<usize, LedgerError> {
        self.tx
            .execute("DELETE FROM ban_events WHERE at < ?1", [before])
            .map_err(|e| self.err(e))
    }

    /// Sets a value in that key-value table, replacing any previous value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.tx
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::BackendKind;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn setup() -> (Ledger, SetName) {
        let ledger = Ledger::open_in_memory().unwrap();
        let name = SetName::new("f2b-test").unwrap();
        let tx = {
            let mut l = ledger;
            let tx = l.begin().unwrap();
            tx.put_set(&SetSpec::new(name.clone(), BackendKind::Memory), 0)
                .unwrap();
            tx.commit().unwrap();
            l
        };
        (tx, name)
    }

    fn ban(target: &str, start: i64, deadline: Option<i64>) -> NewBan {
        NewBan {
            target: t(target),
            start,
            deadline,
            reason: None,
        }
    }

    #[test]
    fn unreadable_row_is_skipped_reported_and_removable() {
        let (mut l, s) = setup();
        let tx = l.begin().unwrap();
        tx.upsert_bans(
            &s,
            &[ban("1.1.1.1", 0, None), ban("2.2.2.2", 0, Some(5))],
            0,
        )
        .unwrap();
        tx.commit().unwrap();
        // What a banset that took `from 0.0.0.0` from a log line wrote, and
        // rows no banset writes.
        l.conn
            .execute_batch(
                "INSERT INTO bans (set_name, target, start) VALUES
                   ('f2b-test', '0.0.0.0', 0), ('f2b-test', 'not an address', 0);
                 INSERT INTO bans (set_name, target, start) VALUES ('f2b-test', '3.3.3.3', 'soon');",
            )
            .unwrap();
        let tx = l.read().unwrap();
        let (bans, bad) = tx.bans_and_unreadable(&s).unwrap();
        let shown: Vec<String> = bans.iter().map(|b| b.target.to_string()).collect();
        assert_eq!(shown, ["1.1.1.1", "2.2.2.2"]);
        let bad_texts: Vec<&str> = bad.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(bad_texts, ["0.0.0.0", "3.3.3.3", "not an address"]);
        assert!(bad[0].to_string().contains("unspecified"), "{}", bad[0]);
        assert_eq!(tx.bans(&s).unwrap().len(), 2);
        assert_eq!(tx.expired_bans(&s, 10).unwrap().len(), 1);
        let many: Vec<Target> = (0..100u32)
            .map(|i| Target::host(std::net::Ipv4Addr::from(0x0101_0100 + i).into()).unwrap())
            .collect();
        assert_eq!(tx.deadlines_of(&s, &many).unwrap().len(), 1);
        drop(tx);
        let tx = l.begin().unwrap();
        // A text that parses is not an unreadable row: del's own path.
        assert_eq!(
            tx.remove_unreadable(&s, &["0.0.0.0", "not an address", "1.1.1.1"])
                .unwrap(),
            2
        );
        let (bans, bad) = tx.bans_and_unreadable(&s).unwrap();
        assert_eq!((bans.len(), bad.len()), (2, 1));
        assert_eq!(tx.clear_bans(&s).unwrap(), 3);
        tx.commit().unwrap();
    }

    #[test]
    fn longest_ban_wins_and_counts_go_up() {
        let (mut l, s) = setup();
        let tx = l.begin().unwrap();
        let target = t("1.2.3.4");
        // each step: the row's deadline after recording, computed by SQL and
        // by merged_deadline alike
        for (now, new, want, why) in [
            (100, Some(1000), Some(1000), "first ban"),
            (
                200,
                Some(500),
                Some(1000),
                "a shorter ban must not cut a longer one",
            ),
            (300, None, None, "permanent beats any deadline"),
            (
                400,
                Some(2000),
                None,
                "a deadline does not end a permanent ban",
            ),
        ] {
            let old = tx
                .deadlines_of(&s, &[target])
                .unwrap()
                .get(&target)
                .copied();
            tx.upsert_bans(&s, &[ban("1.2.3.4", now, new)], now)
                .unwrap();
            let got = tx.ban(&s, &target).unwrap().unwrap().deadline;
            assert_eq!(got, want, "{why}");
            if let Some(old) = old {
                assert_eq!(merged_deadline(old, new, now), want, "{why}");
            }
        }
        let b = tx.ban(&s, &t("1.2.3.4")).unwrap().unwrap();
        assert_eq!((b.start, b.ban_count), (100, 4));
        tx.commit().unwrap();
    }

    #[test]
    fn an_expired_row_is_replaced_not_extended() {
        let (mut l, s) = setup();
        let tx = l.begin().unwrap();
        tx.upsert_bans(&s, &[ban("2001:db8::/64", 0, Some(50))], 0)
            .unwrap();
        tx.upsert_bans(&s, &[ban("2001:db8::/64", 100, Some(130))], 100)
            .unwrap();
        assert_eq!(merged_deadline(Some(50), Some(130), 100), Some(130));
        let b = tx.ban(&s, &t("2001:db8::/64")).unwrap().unwrap();
        assert_eq!((b.start, b.ban_count), (100, 2));
        assert_eq!(tx.counts(&s, 100).unwrap(), (1, 0));
        assert_eq!(tx.expired_bans(&s, 130).unwrap().len(), 1);
    }

    #[test]
    fn rollback_on_drop_and_cascade_on_set_removal() {
        let (mut l, s) = setup();
        {
            let tx = l.begin().unwrap();
            tx.upsert_bans(&s, &[ban("1.2.3.4", 0, None)], 0).unwrap();
            // dropped: rolled back
        }
        assert!(l.read().unwrap().bans(&s).unwrap().is_empty());
        let tx = l.begin().unwrap();
        tx.upsert_bans(&s, &[ban("1.2.3.4", 0, None)], 0).unwrap();
        assert!(tx.remove_set(&s).unwrap());
        assert!(tx.bans(&s).unwrap().is_empty());
        assert!(tx.set_spec(&s).unwrap().is_none());
    }

    #[test]
    fn file_ledger_is_shared_between_connections() {
        let dir = std::env::temp_dir().join(format!("banset-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        let name = SetName::new("s").unwrap();
        let mut a = Ledger::open(&path).unwrap();
        let mut b = Ledger::open(&path).unwrap();
        let tx = a.begin().unwrap();
        tx.put_set(&SetSpec::new(name.clone(), BackendKind::Memory), 0)
            .unwrap();
        tx.upsert_bans(&name, &[ban("1.2.3.4", 0, None)], 0)
            .unwrap();
        tx.commit().unwrap();
        assert_eq!(b.read().unwrap().bans(&name).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Set in the processes `many_first_opens...` starts: the ledger to
    /// open and the set to record.
    const RACE_ENV: &str = "BANSET_LEDGER_RACE";

    /// Not a test of its own: the body of each process of the test below.
    #[test]
    fn ledger_race_child() {
        let Ok(arg) = std::env::var(RACE_ENV) else {
            return;
        };
        let (path, set) = arg.split_once('|').unwrap();
        // Start together: wait for the parent's go.
        let go = Path::new(path).with_file_name("go");
        while !go.exists() {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let mut l = Ledger::open(Path::new(path)).unwrap_or_else(|e| panic!("{set}: {e}"));
        let tx = l.begin().unwrap();
        tx.put_set(
            &SetSpec::new(SetName::new(set).unwrap(), BackendKind::Memory),
            0,
        )
        .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn many_first_opens_of_a_new_ledger_at_once_all_succeed() {
        // fail2ban starting every jail at once on a fresh install: each
        // `banset ensure` is a process that is the first to open the
        // ledger. (Threads of one process share SQLite's locks and never
        // showed the race; processes failed one round in six.)
        let dir = std::env::temp_dir().join(format!("banset-ledger-race-{}", std::process::id()));
        let me = std::env::current_exe().unwrap();
        for round in 0..12 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("ledger.db");
            let children: Vec<_> = (0..16)
                .map(|i| {
                    std::process::Command::new(&me)
                        .args(["--exact", "ledger::tests::ledger_race_child", "--nocapture"])
                        .env(RACE_ENV, format!("{}|s{i}", path.display()))
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            std::fs::write(dir.join("go"), "").unwrap();
            for child in children {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "round {round}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let mut l = Ledger::open(&path).unwrap();
            assert_eq!(l.read().unwrap().set_specs().unwrap().len(), 16);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ban_history_outlives_bans_and_is_pruned_by_age() {
        let (mut l, s) = setup();
        let tx = l.begin().unwrap();
        tx.upsert_bans(&s, &[ban("1.2.3.4", 100, Some(200))], 100)
            .unwrap();
        tx.record_ban_event(&t("1.2.3.4"), "sshd", 100).unwrap();
        tx.record_ban_event(&t("1.2.3.4"), "postfix", 150).unwrap();
        tx.record_ban_event(&t("5.6.7.8"), "sshd", 160).unwrap();
        tx.remove_bans(&s, &[t("1.2.3.4")]).unwrap();
        tx.commit().unwrap();
        let tx = l.read().unwrap();
        assert_eq!(
            tx.ban_events_since(&t("1.2.3.4"), 0).unwrap(),
            vec![("sshd".to_string(), 100), ("postfix".to_string(), 150)]
        );
        assert_eq!(tx.ban_events_since(&t("1.2.3.4"), 120).unwrap().len(), 1);
        drop(tx);
        let tx = l.begin().unwrap();
        assert_eq!(tx.prune_ban_events(155).unwrap(), 2);
        tx.commit().unwrap();
        assert_eq!(
            l.read()
                .unwrap()
                .ban_events_since(&t("5.6.7.8"), 0)
                .unwrap(),
            vec![("sshd".to_string(), 160)]
        );
    }

    #[test]
    fn a_zero_byte_ledger_is_refused_by_the_check_and_stays_new() {
        let dir = std::env::temp_dir().join(format!("banset-ledger-zero-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        std::fs::write(&path, "").unwrap();
        let found = KernelSetsExist {
            sets: vec![
                (BackendKind::Nftables, vec!["f2b".parse().unwrap()]),
                (
                    BackendKind::Ipset,
                    vec!["ssh".parse().unwrap(), "web".parse().unwrap()],
                ),
            ],
        };
        let refuse = || Err(found.clone());
        for _ in 0..2 {
            match Ledger::open_checked(&path, &refuse) {
                Err(e @ LedgerError::Refused { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(&path.display().to_string()), "{text}");
                    assert!(text.contains("(nftables: f2b; ipset: ssh, web)"), "{text}");
                    assert!(matches!(e, LedgerError::Refused { refusal, .. } if refusal == found));
                }
                other => panic!("a zero-byte ledger must be refused: {other:?}"),
            }
        }
        // Nothing was written, so the next open still sees a new ledger.
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0);
        drop(conn);
        // An existing ledger is never asked about.
        Ledger::open(&path).unwrap();
        Ledger::open_checked(&path, &refuse).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_1_ledger_is_upgraded_in_place() {
        let dir = std::env::temp_dir().join(format!("banset-ledger-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE sets (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created INTEGER NOT NULL);
                 CREATE TABLE bans (set_name TEXT NOT NULL REFERENCES sets(name) ON DELETE CASCADE,
                     target TEXT NOT NULL, start INTEGER NOT NULL, deadline INTEGER, reason TEXT,
                     ban_count INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (set_name, target)) WITHOUT ROWID;
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('kept', 'yes');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let mut l = Ledger::open(&path).unwrap();
        assert_eq!(
            l.read().unwrap().meta("kept").unwrap().as_deref(),
            Some("yes")
        );
        let tx = l.begin().unwrap();
        tx.record_ban_event(&t("10.0.0.1"), "sshd", 1).unwrap();
        tx.commit().unwrap();
        drop(l);
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_3_ledger_is_upgraded_and_keeps_ban_sets_as_ban_sets() {
        let dir = std::env::temp_dir().join(format!("banset-ledger-v3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        let old = SetSpec::new(SetName::new("old").unwrap(), BackendKind::Memory);
        {
            let mut l = Ledger::open(&path).unwrap();
            let tx = l.begin().unwrap();
            tx.put_set(&old, 1).unwrap();
            tx.commit().unwrap();
            // What banset wrote before policies: version 3, no `policy`.
            let stored: String = l
                .conn
                .query_row("SELECT spec FROM sets", [], |r| r.get(0))
                .unwrap();
            assert!(!stored.contains("policy"), "{stored}");
            l.conn.execute_batch("PRAGMA user_version = 3").unwrap();
        }
        let mut l = Ledger::open(&path).unwrap();
        let read = l.read().unwrap().set_spec(&old.name).unwrap().unwrap();
        assert_eq!(read.policy, crate::SetPolicy::Ban);
        assert_eq!(read, old);
        let mut home = SetSpec::new(SetName::new("home").unwrap(), BackendKind::Memory);
        home.policy = crate::SetPolicy::AllowOnly;
        let tx = l.begin().unwrap();
        tx.put_set(&home, 1).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            l.read().unwrap().set_spec(&home.name).unwrap().unwrap(),
            home
        );
        let v: i64 = l
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
