//! `Engine::apply_fleet`: one page of remote rows into ledger and kernel.
//!
//! One ledger transaction and one kernel batch per set of the page; the
//! cursor after the page is saved in the same transaction, committed after
//! the kernel took the batch. A crash between the kernel call and the
//! commit leaves the cursor before the page, so the restart pulls it again
//! and applies it again: adds refresh, removes of absent members are fine.
//! Why no removal journal (see the module docs of `engine`): the page is
//! that journal; until it is applied again, a removed member the ledger
//! still holds is at worst put back by `sync`, and removed again.

use std::collections::{BTreeMap, BTreeSet};

use super::{finish, restore, BackendProvider, Engine, Error};
use crate::allowlist::Allowlist;
use crate::backend::{Changes, ErrorKind, KernelEntry};
use crate::fleet::policy::{effective, judge, local_deadline, FleetPolicy, RemoteBan};
use crate::fleet::FLEET_REASON_PREFIX;
use crate::history::EventKind;
use crate::ledger::{LedgerTx, NewBan};
use crate::reconcile::kernel_timeout;
use crate::set_name::SetName;
use crate::target::Target;

/// One row of the engine, as the puller read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetRow {
    /// The host that wrote it.
    pub origin: String,
    /// Its set.
    pub set: SetName,
    /// Its target.
    pub target: Target,
    /// Banned, or withdrawn (a tombstone).
    pub banned: bool,
    /// Seconds left by the engine's clock; `None`: permanent. A ban with
    /// none left is treated as withdrawn.
    pub remaining: Option<u64>,
}

/// A page of rows, from a delta or a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetPage {
    /// The rows, in the engine's order.
    pub rows: Vec<FleetRow>,
    /// The rows are a whole snapshot's first page: every remote row not
    /// in it is swept.
    pub snapshot: bool,
    /// The cursor after the page, saved with it.
    pub cursor: Option<String>,
}

/// What [`Engine::apply_fleet`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FleetApplied {
    /// Targets banned or re-armed in the kernel.
    pub banned: usize,
    /// Targets removed from the kernel.
    pub removed: usize,
    /// Remote bans that never reached the kernel, by reason.
    pub suppressed: BTreeMap<&'static str, u64>,
}

/// The kernel and ledger changes of one set.
#[derive(Default)]
struct SetChanges {
    /// (target, deadline, reason, the fleet's own row); a local row keeps
    /// its reason (`None`), which is what keeps it local.
    add: Vec<(Target, Option<i64>, Option<String>, bool)>,
    remove: Vec<Target>,
}

impl Engine<'_> {
    /// Applies `page` under `policy` (see the module docs).
    pub fn apply_fleet(
        &mut self,
        page: &FleetPage,
        policy: &FleetPolicy,
    ) -> Result<FleetApplied, Error> {
        let (backends, allowlist) = (self.backends, self.allowlist);
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        let mut done = FleetApplied::default();
        let mut touched: BTreeSet<(SetName, Target)> = BTreeSet::new();
        if page.snapshot {
            touched.extend(tx.fleet_clear_rows()?);
        }
        for row in &page.rows {
            if row.origin == policy.this_host {
                continue;
            }
            touched.insert((row.set.clone(), row.target));
            if !row.banned || row.remaining == Some(0) {
                tx.fleet_drop_row(&row.origin, &row.set, &row.target)?;
                continue;
            }
            match judge_row(allowlist, &tx, policy, row, now)? {
                Ok(remaining) => tx.fleet_put_row(
                    &row.origin,
                    &row.set,
                    &row.target,
                    local_deadline(remaining, now),
                )?,
                Err(why) => {
                    *done.suppressed.entry(why.as_str()).or_default() += 1;
                    tx.fleet_drop_row(&row.origin, &row.set, &row.target)?;
                }
            }
        }
        let mut by_set: BTreeMap<SetName, SetChanges> = BTreeMap::new();
        for (set, target) in touched {
            plan_target(
                &tx,
                &set,
                target,
                now,
                by_set.entry(set.clone()).or_default(),
            )?;
        }
        for (set, changes) in by_set {
            if let Err((e, put_back)) = apply_set(backends, &tx, &set, changes, now, &mut done) {
                drop(tx);
                if put_back {
                    // A kernel without atomic batches may hold part of the
                    // batch: back to the (rolled back) ledger.
                    self.put_kernel_back(&set, None);
                }
                return Err(e);
            }
        }
        for (name, n) in &done.suppressed {
            tx.fleet_count_suppressed(name, *n)?;
        }
        if let Some(cursor) = &page.cursor {
            tx.set_meta(crate::fleet::CURSOR_KEY, cursor)?;
        }
        finish(tx, self.dry_run)?;
        Ok(done)
    }
}

/// The policy's verdict on one active row; the set must exist here and
/// take the target.
fn judge_row(
    allowlist: &Allowlist,
    tx: &LedgerTx<'_>,
    policy: &FleetPolicy,
    row: &FleetRow,
    now: i64,
) -> Result<Result<Option<u64>, crate::fleet::Suppressed>, Error> {
    use crate::fleet::Suppressed;
    let held = tx.fleet_held(&row.set, &row.target, now)?;
    let ban = RemoteBan {
        origin: row.origin.clone(),
        set: row.set.clone(),
        target: row.target,
        remaining: row.remaining,
    };
    let verdict = judge(policy, allowlist, &ban, held);
    if verdict.is_err() {
        return Ok(verdict);
    }
    Ok(match tx.set_spec(&row.set)? {
        None => Err(Suppressed::UnknownSet),
        Some(spec) if spec.admits(&row.target).is_err() => Err(Suppressed::Inadmissible),
        Some(_) => verdict,
    })
}

/// Records one set's changes and sends them to its kernel in one batch.
/// An error says whether the kernel may hold part of the batch.
fn apply_set(
    backends: &dyn BackendProvider,
    tx: &LedgerTx<'_>,
    set: &SetName,
    changes: SetChanges,
    now: i64,
    done: &mut FleetApplied,
) -> Result<(), (Error, bool)> {
    if changes.add.is_empty() && changes.remove.is_empty() {
        return Ok(());
    }
    let no = |e: Error| (e, false);
    let spec = Engine::spec_of(tx, set).map_err(no)?;
    let backend = backends.backend(spec.backend).map_err(|e| no(e.into()))?;
    let caps = backend.capabilities();
    record_set(tx, set, &changes, now).map_err(|e| no(e.into()))?;
    let mut entries = Vec::with_capacity(changes.add.len());
    for (target, deadline, reason, exact) in &changes.add {
        let ban = NewBan {
            target: *target,
            start: now,
            deadline: *deadline,
            reason: reason.clone(),
        };
        if *exact {
            // The fleet's own row: its deadline is the remote rows'
            // longest, which may be shorter than before (an origin
            // with a longer ban withdrew it).
            tx.remove_bans(set, &[*target]).map_err(|e| no(e.into()))?;
        }
        tx.upsert_bans(set, std::slice::from_ref(&ban), now)
            .and_then(|()| tx.record_bans(set, std::slice::from_ref(&ban), &|_| None, now))
            .map_err(|e| no(e.into()))?;
        let kept = tx
            .ban(set, target)
            .map_err(|e| no(e.into()))?
            .and_then(|b| b.deadline);
        entries.push(KernelEntry {
            target: *target,
            timeout: kernel_timeout(kept.map(|d| (d - now).max(1) as u64), &caps),
        });
    }
    done.banned += entries.len();
    done.removed += changes.remove.len();
    let batch = Changes {
        flush_first: false,
        remove: changes.remove,
        add: entries,
    };
    match backend.apply(&spec, &batch) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => restore(backend, tx, &spec, now).map_err(no),
        Err(e) => Err((
            e.within(format!("fleet apply to {set}")).into(),
            !caps.atomic_batches,
        )),
    }
}

/// The ledger's side of one set's removals.
fn record_set(
    tx: &LedgerTx<'_>,
    set: &SetName,
    changes: &SetChanges,
    now: i64,
) -> Result<(), crate::ledger::LedgerError> {
    tx.remove_bans(set, &changes.remove)?;
    tx.record_unbans(set, &changes.remove, EventKind::Unban, now)
}

/// What one target needs after its remote rows changed: the longest
/// active row, over whatever the ledger holds. A local ban (any reason
/// but the fleet's) is never removed or shortened by the fleet.
fn plan_target(
    tx: &LedgerTx<'_>,
    set: &SetName,
    target: Target,
    now: i64,
    out: &mut SetChanges,
) -> Result<(), Error> {
    let rows = tx.fleet_rows_of(set, &target)?;
    let current = tx.ban(set, &target)?;
    let fleet_made = current.as_ref().is_none_or(|b| {
        b.reason
            .as_deref()
            .is_some_and(|r| r.starts_with(FLEET_REASON_PREFIX))
            || !b.is_active(now)
    });
    match effective(rows.iter().map(|r| r.1), now) {
        Some(deadline) => {
            let origin = rows
                .iter()
                .filter(|r| r.1.is_none_or(|d| d > now))
                .max_by_key(|r| r.1.map_or(i64::MAX, |d| d))
                .map_or("", |r| r.0.as_str());
            let unchanged = fleet_made
                && current
                    .as_ref()
                    .is_some_and(|b| b.deadline == deadline && b.is_active(now));
            if !unchanged {
                let reason = fleet_made.then(|| format!("{FLEET_REASON_PREFIX}{origin}"));
                out.add.push((target, deadline, reason, fleet_made));
            }
        }
        None if fleet_made && current.is_some() => out.remove.push(target),
        None => {}
    }
    Ok(())
}
