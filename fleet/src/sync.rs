//! The host side's loop steps, for the daemon, `banset fleet sync --once`,
//! `banset add --fleet` and the tests alike (one path per job):
//!
//! - [`publish_pending`]: drains the ledger's outbox to the engine in
//!   batches; a batch is marked sent only after the engine committed it, so
//!   an outage, a quota refusal or a revocation keeps it queued.
//! - [`pull_once`]: pages of remote changes after the ledger's cursor into
//!   ledger and kernel (`Engine::apply_fleet`, which saves the cursor with
//!   the page); a cursor older than the engine's retention, or none, takes
//!   the snapshot path, which sweeps remote rows the snapshot lacks.
//! - [`Link`]: the connection, re-made after a failure with a bounded,
//!   jittered backoff, reporting each up/down change once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use banset_core::fleet::{FleetPolicy, OutboxEntry};
use banset_core::{Engine, FleetApplied, FleetPage, Ledger, LedgerError, SetName, Target};

use crate::{
    host_name, ConnectOptions, Cursor, FleetClient, FleetError, FleetRow, Publish, Pull, Status,
    ADMIN_ROLE,
};

/// Rows per publish statement: small enough that one refused batch (a
/// quota) costs little, large enough for a bulk ban.
pub const PUBLISH_BATCH: u32 = 500;
/// Rows per pull or snapshot page: one ledger transaction and one kernel
/// batch each.
pub const PULL_PAGE: usize = 2_000;
/// Pages one [`pull_once`] applies before it returns, so a long catch-up
/// still lets the caller publish in between.
pub const MAX_PAGES_PER_PULL: usize = 50;

/// Why a sync step failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The engine refused or could not be reached.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// Ledger or kernel on this host.
    #[error(transparent)]
    Engine(#[from] banset_core::Error),
    /// The ledger (outbox, cursor).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The saved cursor is not `TXID:SEQ` (a damaged ledger): it is
    /// forgotten, so the next pull takes a snapshot.
    #[error("fleet cursor {0:?} in the ledger is not TXID:SEQ; it was reset, the next pull is a snapshot")]
    BadCursor(String),
    /// Disconnected, waiting out the backoff before reconnecting.
    #[error("fleet engine down, reconnecting in {0:?}")]
    Backoff(Duration),
}

impl SyncError {
    /// Whether the connection is gone (reconnect, keep everything queued).
    pub fn is_disconnect(&self) -> bool {
        matches!(
            self,
            SyncError::Fleet(FleetError::Connect(_)) | SyncError::Backoff(_)
        )
    }
}

/// The cursor as the ledger stores it.
pub fn cursor_text(c: Cursor) -> String {
    format!("{}:{}", c.txid, c.seq)
}

/// The ledger's cursor text, parsed.
pub fn parse_cursor(text: &str) -> Option<Cursor> {
    let (t, s) = text.split_once(':')?;
    Some(Cursor {
        txid: t.parse().ok()?,
        seq: s.parse().ok()?,
    })
}

/// The saved cursor; `None`: no pull yet (the next is a snapshot).
pub fn saved_cursor(ledger: &mut Ledger) -> Result<Option<Cursor>, SyncError> {
    let saved = ledger.read()?.fleet_cursor()?;
    match saved {
        None => Ok(None),
        Some(text) => match parse_cursor(&text) {
            Some(c) => Ok(Some(c)),
            None => {
                let tx = ledger.begin()?;
                tx.fleet_forget_cursor()?;
                tx.commit()?;
                Err(SyncError::BadCursor(text))
            }
        },
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The engine's row for one outbox entry. Deadlines cross hosts as the
/// time left (host clocks may be wrong), counted here from `now`.
fn to_publish(e: &OutboxEntry, now: i64) -> Publish {
    let status = match (e.banned, e.deadline) {
        (false, _) => Status::Unbanned,
        (true, None) => Status::Banned { remaining: None },
        // Over already: a tombstone, so no host keeps it longer.
        (true, Some(d)) if d <= now => Status::Unbanned,
        (true, Some(d)) => Status::Banned {
            remaining: Some(Duration::from_secs(u64::try_from(d - now).unwrap_or(0))),
        },
    };
    Publish {
        set: e.set.to_string(),
        target: e.target.to_string(),
        status,
        jail: e.jail.clone(),
        reason: e.reason.clone(),
    }
}

/// Publishes the outbox in batches of [`PUBLISH_BATCH`]; returns how many
/// rows the engine took. Each batch is marked sent after the engine
/// committed it, at the versions read: a change made meanwhile stays
/// pending. On an error the rest stays queued.
pub fn publish_pending(client: &mut FleetClient, ledger: &mut Ledger) -> Result<usize, SyncError> {
    let mut sent = 0;
    loop {
        let batch = ledger.read()?.fleet_pending(PUBLISH_BATCH)?;
        if batch.is_empty() {
            return Ok(sent);
        }
        let now = unix_now();
        let rows: Vec<Publish> = batch.iter().map(|e| to_publish(e, now)).collect();
        client.publish(&rows)?;
        let tx = ledger.begin()?;
        tx.fleet_mark_sent(&batch, now)?;
        tx.commit()?;
        sent += batch.len();
        if batch.len() < PUBLISH_BATCH as usize {
            return Ok(sent);
        }
    }
}

/// What one [`pull_once`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PullOutcome {
    /// Rows read from the engine.
    pub rows: usize,
    /// Pages applied.
    pub pages: usize,
    /// Whether it took the snapshot path.
    pub snapshot: bool,
    /// Rows whose set or target this banset cannot read (hostile or newer).
    pub unreadable: usize,
    /// Whether more changes wait (a full last page): pull again at once.
    pub more: bool,
    /// Ledger and kernel changes, suppressed counts.
    pub applied: FleetApplied,
    /// The cursor saved.
    pub cursor: Cursor,
}

/// The core's view of the engine's rows; unreadable ones are counted.
fn to_core(rows: &[FleetRow], unreadable: &mut usize) -> Vec<banset_core::FleetRow> {
    rows.iter()
        .filter_map(|r| {
            let (Ok(set), Ok(target)) = (SetName::new(&r.set), Target::parse(&r.target)) else {
                *unreadable += 1;
                return None;
            };
            let (banned, remaining) = match r.status {
                Status::Banned { remaining } => (true, remaining.map(|d| d.as_secs().max(1))),
                Status::Unbanned => (false, None),
            };
            Some(banset_core::FleetRow {
                origin: r.origin.clone(),
                set,
                target,
                banned,
                remaining,
                by_admin: r.changed_by == ADMIN_ROLE,
            })
        })
        .collect()
}

/// Applies one page of the engine's rows (a delta's, with the cursor after
/// it, or a snapshot's, marked with its generation); unreadable rows are
/// counted with the suppressed ones.
fn apply_rows(
    engine: &mut Engine<'_>,
    policy: &FleetPolicy,
    rows: &[FleetRow],
    snapshot: Option<i64>,
    cursor: Option<String>,
    out: &mut PullOutcome,
) -> Result<(), SyncError> {
    let mut unreadable = 0;
    let rows = to_core(rows, &mut unreadable);
    out.unreadable += unreadable;
    let page = FleetPage {
        rows,
        snapshot,
        cursor,
        unreadable: unreadable as u64,
    };
    out.applied.absorb(engine.apply_fleet(&page, policy)?);
    out.pages += 1;
    Ok(())
}

/// Pulls and applies up to [`MAX_PAGES_PER_PULL`] pages of changes after
/// the saved cursor (see the module docs).
pub fn pull_once(
    client: &mut FleetClient,
    engine: &mut Engine<'_>,
    policy: &FleetPolicy,
) -> Result<PullOutcome, SyncError> {
    let mut out = PullOutcome::default();
    let Some(mut cursor) = saved_cursor(engine.ledger)? else {
        return snapshot(client, engine, policy, out);
    };
    for _ in 0..MAX_PAGES_PER_PULL {
        let page = match client.pull(cursor, PULL_PAGE)? {
            Pull::Page(page) => page,
            Pull::Expired { .. } => return snapshot(client, engine, policy, out),
        };
        out.rows += page.rows.len();
        out.more = page.full;
        if page.rows.is_empty() {
            break;
        }
        let next = Some(cursor_text(page.cursor));
        apply_rows(engine, policy, &page.rows, None, next, &mut out)?;
        cursor = page.cursor;
        if !page.full {
            break;
        }
    }
    out.cursor = cursor;
    Ok(out)
}

/// The snapshot path: every active row, marked with a new generation, then
/// the sweep of rows not seen and the cursor, in one transaction.
fn snapshot(
    client: &mut FleetClient,
    engine: &mut Engine<'_>,
    policy: &FleetPolicy,
    mut out: PullOutcome,
) -> Result<PullOutcome, SyncError> {
    out.snapshot = true;
    let generation = engine.begin_fleet_snapshot()?;
    let cursor = client.snapshot(PULL_PAGE, |rows: Vec<FleetRow>| {
        out.rows += rows.len();
        apply_rows(engine, policy, &rows, Some(generation), None, &mut out)
    })?;
    // The admin's withdrawals of our own bans are tombstones, which the
    // snapshot lacks: without them this host would keep (and re-assert)
    // a ban the fleet admin lifted everywhere.
    let withdrawn = client.withdrawn_by_admin()?;
    if !withdrawn.is_empty() {
        apply_rows(engine, policy, &withdrawn, Some(generation), None, &mut out)?;
    }
    let swept = engine.finish_fleet_snapshot(generation, &cursor_text(cursor))?;
    out.applied.absorb(swept);
    out.cursor = cursor;
    Ok(out)
}

/// The engine's state as a [`Link`] sees it, for one log line per change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Connected.
    Up,
    /// Not connected (waiting out the backoff).
    Down,
}

/// Shortest wait before reconnecting.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait before reconnecting.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The connection to the engine, made when needed, dropped on a broken
/// socket, and re-made after a wait that doubles up to [`BACKOFF_MAX`]
/// (with jitter, so hosts cut off together do not all come back in the
/// same second).
pub struct Link {
    options: ConnectOptions,
    client: Option<FleetClient>,
    host: String,
    wait: Duration,
    not_before: Option<Instant>,
    state: Option<LinkState>,
    /// The last error, for `fleet status`.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("host", &self.host)
            .field("connected", &self.client.is_some())
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl Link {
    /// A link that connects with `options` when first used.
    pub fn new(options: ConnectOptions) -> Link {
        Link {
            options,
            client: None,
            host: String::new(),
            wait: BACKOFF_MIN,
            not_before: None,
            state: None,
            last_error: None,
        }
    }

    /// This host's name in the fleet (known once connected).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The connection, made now if there is none and the backoff allows
    /// ([`SyncError::Backoff`] while it does not).
    pub fn client(&mut self) -> Result<&mut FleetClient, SyncError> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            if let Some(left) = self
                .not_before
                .and_then(|t| t.checked_duration_since(Instant::now()))
            {
                return Err(SyncError::Backoff(left));
            }
            let made = FleetClient::connect(&self.options).and_then(|mut c| {
                let role = c.status()?.role;
                Ok((c, role))
            });
            match made {
                Ok((c, role)) => {
                    self.host = host_name(&role).to_string();
                    self.client = Some(c);
                }
                Err(e) => {
                    let e = SyncError::from(e);
                    self.failed(&e);
                    return Err(e);
                }
            }
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Records a failed step: a broken connection is dropped and retried
    /// after the backoff; any error is kept for `status`.
    pub fn failed(&mut self, e: &SyncError) {
        if matches!(e, SyncError::Backoff(_)) {
            return;
        }
        self.last_error = Some(e.to_string());
        if e.is_disconnect() || self.client.is_none() {
            self.client = None;
            let jitter = Duration::from_millis(u64::from(std::process::id() % 500));
            self.not_before = Some(Instant::now() + self.wait + jitter);
            self.wait = (self.wait * 2).min(BACKOFF_MAX);
        }
    }

    /// Records a successful step.
    pub fn succeeded(&mut self) {
        self.wait = BACKOFF_MIN;
        self.not_before = None;
        self.last_error = None;
    }

    /// The state now, if it changed since the last call (log it once).
    pub fn state_change(&mut self) -> Option<LinkState> {
        // Up is connected: a refusal (quota, a kernel error here) is an
        // error of its own, not the engine going down.
        let now = if self.client.is_some() {
            LinkState::Up
        } else {
            LinkState::Down
        };
        (self.state != Some(now)).then(|| {
            self.state = Some(now);
            now
        })
    }

    /// Waits up to `timeout` for a change notification (or the backoff, when
    /// disconnected); true when woken by the engine.
    pub fn wait_for_change(&mut self, timeout: Duration) -> Result<bool, SyncError> {
        match self.client.as_mut() {
            Some(c) => c.wait_for_change(timeout).map_err(SyncError::from),
            None => {
                std::thread::sleep(timeout);
                Ok(false)
            }
        }
    }
}

/// The `meta` key of the last round that worked (unix time), for
/// `banset fleet status`.
pub const LAST_SYNC_KEY: &str = "fleet:last_sync";
/// The `meta` key of the last error (`UNIXTIME message`).
pub const LAST_ERROR_KEY: &str = "fleet:last_error";

/// One round: publish the outbox, then pull until no page is full; the
/// outcome (time or error) is recorded in the ledger for `fleet status`.
/// `policy_of` builds the acceptance policy for this host's fleet name.
pub fn sync_round(
    link: &mut Link,
    engine: &mut Engine<'_>,
    policy_of: &dyn Fn(&str) -> FleetPolicy,
) -> Result<(usize, PullOutcome), SyncError> {
    let result = round(link, engine, policy_of);
    match &result {
        Ok(_) => link.succeeded(),
        Err(e) => link.failed(e),
    }
    if !matches!(result, Err(SyncError::Backoff(_))) {
        // Best effort: a status line is not worth failing the round for.
        let _ = record_outcome(engine.ledger, result.as_ref().err());
    }
    result
}

fn round(
    link: &mut Link,
    engine: &mut Engine<'_>,
    policy_of: &dyn Fn(&str) -> FleetPolicy,
) -> Result<(usize, PullOutcome), SyncError> {
    let sent = publish_pending(link.client()?, engine.ledger)?;
    let policy = policy_of(&link.host);
    let client = link.client()?;
    let mut pulled = PullOutcome::default();
    loop {
        let round = pull_once(client, engine, &policy)?;
        let more = round.more;
        pulled.rows += round.rows;
        pulled.pages += round.pages;
        pulled.snapshot |= round.snapshot;
        pulled.unreadable += round.unreadable;
        pulled.applied.absorb(round.applied);
        pulled.cursor = round.cursor;
        if !more {
            return Ok((sent, pulled));
        }
    }
}

fn record_outcome(ledger: &mut Ledger, error: Option<&SyncError>) -> Result<(), LedgerError> {
    let tx = ledger.begin()?;
    match error {
        None => {
            tx.set_meta(LAST_SYNC_KEY, &unix_now().to_string())?;
            tx.remove_meta(LAST_ERROR_KEY)?;
        }
        Some(e) => tx.set_meta(LAST_ERROR_KEY, &format!("{} {e}", unix_now()))?,
    }
    tx.commit()
}
