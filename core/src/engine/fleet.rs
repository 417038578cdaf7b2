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
//!
//! A snapshot (a new host, or one away longer than the engine keeps
//! tombstones) is mark and sweep: `Engine::begin_fleet_snapshot` takes a
//! new generation, each page marks the rows it holds with it, and
//! [`Engine::finish_fleet_snapshot`] drops every remote row the snapshot
//! did not hold and saves the cursor. Clearing all rows at the first page
//! instead would take bans of later pages out of the kernel until their
//! page came, and a crash between pages would lose them for good.

use std::collections::BTreeMap;

use super::{finish, restore, BackendProvider, Engine, Error};
use crate::allowlist::Allowlist;
use crate::backend::{Changes, ErrorKind, KernelEntry};
use crate::clock::Clock;
use crate::fleet::kept::longest_origin;
use crate::fleet::policy::{effective, judge, local_deadline, FleetPolicy, RemoteBan};
use crate::fleet::{FleetApplied, FleetPage, FleetRow, Suppressed, FLEET_REASON_PREFIX};
use crate::history::EventKind;
use crate::ledger::{merged_deadline, LedgerTx, NewBan};
use crate::policy::SetPolicy;
use crate::reconcile::kernel_timeout;
use crate::set_name::SetName;
use crate::spec::SetSpec;
use crate::target::Target;

/// The kernel and ledger changes of one set.
#[derive(Default)]
struct SetChanges {
    add: Vec<Add>,
    remove: Vec<Target>,
}

/// One ban the plan puts in ledger and kernel.
struct Add {
    target: Target,
    deadline: Option<i64>,
    /// `Some("fleet ORIGIN")` for a ban the fleet makes (it replaces the
    /// row); `None` over a local ban, which keeps its reason and stays
    /// local (the longest deadline wins).
    reason: Option<String>,
    /// The ledger's row of the target when planned (`None`: no row, as for
    /// every target of a new host's snapshot), so that recording it needs
    /// no statement to replace or re-read a row: `Some(None)` is a
    /// permanent row, `Some(Some(d))` one ending at `d`.
    current: Option<Option<i64>>,
}

/// The specs of the sets a page touches, each read once per page (the
/// page is one transaction, so a spec cannot change under it): reading it
/// per row was a quarter of a snapshot's instructions (an SQLite prepare
/// and a JSON decode each time).
/// Whether a set holds any target against remote bans is read once per
/// page too: almost always none, and then no row needs its own lookup.
#[derive(Default)]
struct Specs(BTreeMap<SetName, Option<SetSpec>>, BTreeMap<SetName, bool>);

impl Specs {
    fn get(&mut self, tx: &LedgerTx<'_>, set: &SetName) -> Result<Option<&SetSpec>, Error> {
        if !self.0.contains_key(set) {
            let spec = tx.set_spec(set)?;
            self.0.insert(set.clone(), spec);
        }
        Ok(self.0.get(set).and_then(Option::as_ref))
    }

    /// Whether a local unban holds `target` of `set` at `now`.
    fn held(
        &mut self,
        tx: &LedgerTx<'_>,
        set: &SetName,
        target: &Target,
        now: i64,
    ) -> Result<bool, Error> {
        let any = match self.1.get(set) {
            Some(&any) => any,
            None => {
                let any = tx.fleet_any_holds(set)?;
                self.1.insert(set.clone(), any);
                any
            }
        };
        Ok(any && tx.fleet_held(set, target, now)?)
    }
}

/// What one target's plan may do to a local ban.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Local {
    /// Leave a local ban alone (never removed or shortened by others).
    Keep,
    /// The fleet admin withdrew this host's own published ban.
    Withdrawn,
}

impl<'a> Engine<'a> {
    /// Applies `page` under `policy` (see the module docs).
    pub fn apply_fleet(
        &mut self,
        page: &FleetPage,
        policy: &FleetPolicy,
    ) -> Result<FleetApplied, Error> {
        let (allowlist, kit) = (self.allowlist, self.kit());
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        let mut done = FleetApplied::default();
        if page.unreadable > 0 {
            done.suppressed
                .insert(Suppressed::Unreadable.as_str(), page.unreadable);
        }
        let mut touched: BTreeMap<(SetName, Target), Local> = BTreeMap::new();
        let mut specs = Specs::default();
        for row in &page.rows {
            if row.origin == policy.this_host {
                // Our own rows come back: the ledger has them already,
                // unless the fleet admin withdrew one everywhere.
                if !row.banned
                    && row.by_admin
                    && tx.fleet_forget_published(&row.set, &row.target)?
                {
                    touched.insert((row.set.clone(), row.target), Local::Withdrawn);
                }
                continue;
            }
            touched
                .entry((row.set.clone(), row.target))
                .or_insert(Local::Keep);
            if !row.banned || row.remaining == Some(0) {
                tx.fleet_drop_row(&row.origin, &row.set, &row.target)?;
                continue;
            }
            match judge_row(allowlist, &tx, &mut specs, policy, row, now)? {
                Ok(remaining) => tx.fleet_put_row(
                    &row.origin,
                    &row.set,
                    &row.target,
                    local_deadline(remaining, now),
                    page.snapshot.unwrap_or(0),
                )?,
                Err(why) => {
                    *done.suppressed.entry(why.as_str()).or_default() += 1;
                    tx.fleet_drop_row(&row.origin, &row.set, &row.target)?;
                }
            }
        }
        let planned = plan_and_apply(kit, tx, specs, touched, page.cursor.as_deref(), now, done);
        self.after_apply(planned)
    }

    /// Starts a snapshot: a new generation for its pages' rows.
    pub fn begin_fleet_snapshot(&mut self) -> Result<i64, Error> {
        let tx = self.ledger.begin()?;
        let generation = tx.fleet_next_generation()?;
        finish(tx, self.dry_run)?;
        Ok(generation)
    }

    /// Ends the snapshot of `generation`: every remote row it did not
    /// hold goes (from the kernel too, unless a local ban holds the
    /// target), and `cursor` is saved, in one transaction.
    pub fn finish_fleet_snapshot(
        &mut self,
        generation: i64,
        cursor: &str,
    ) -> Result<FleetApplied, Error> {
        let kit = self.kit();
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        let touched = tx
            .fleet_sweep_rows(generation)?
            .into_iter()
            .map(|k| (k, Local::Keep))
            .collect();
        tx.fleet_purge(now)?;
        let done = FleetApplied::default();
        let specs = Specs::default();
        let planned = plan_and_apply(kit, tx, specs, touched, Some(cursor), now, done);
        self.after_apply(planned)
    }

    fn kit(&self) -> Kit<'a> {
        Kit {
            backends: self.backends,
            clock: self.clock,
            dry_run: self.dry_run,
        }
    }

    /// A failed apply whose kernel may hold part of a batch: back to the
    /// (rolled back) ledger.
    fn after_apply(
        &mut self,
        planned: Result<FleetApplied, (Error, Option<SetName>)>,
    ) -> Result<FleetApplied, Error> {
        planned.map_err(|(e, put_back)| {
            if let Some(set) = put_back {
                self.put_kernel_back(&set, None);
            }
            e
        })
    }

    /// Ends the holds of local unbans on `targets` of `set`: after
    /// `banset unban --fleet`, nothing of the old ban is left to hold off,
    /// and a new ban from another host must land.
    pub fn release_fleet_holds(&mut self, set: &SetName, targets: &[Target]) -> Result<(), Error> {
        let tx = self.ledger.begin()?;
        tx.fleet_release(set, targets)?;
        finish(tx, self.dry_run)
    }
}

/// What [`plan_and_apply`] needs of the engine, borrowed apart from its
/// ledger (which the transaction holds).
struct Kit<'a> {
    backends: &'a dyn BackendProvider,
    clock: &'a dyn Clock,
    dry_run: bool,
}

/// Plans every touched target from its remote rows, applies each set's
/// batch, saves the cursor and the counters, and commits. An error names
/// the set whose kernel may hold part of its batch.
fn plan_and_apply(
    kit: Kit<'_>,
    tx: LedgerTx<'_>,
    mut specs: Specs,
    touched: BTreeMap<(SetName, Target), Local>,
    cursor: Option<&str>,
    now: i64,
    mut done: FleetApplied,
) -> Result<FleetApplied, (Error, Option<SetName>)> {
    let no = |e: Error| (e, None);
    let mut by_set: BTreeMap<SetName, SetChanges> = BTreeMap::new();
    for ((set, target), local) in touched {
        if specs.get(&tx, &set).map_err(no)?.is_none() {
            continue;
        }
        let out = by_set.entry(set.clone()).or_default();
        plan_target(&tx, &set, target, now, local, out).map_err(no)?;
    }
    for (set, changes) in by_set {
        let Some(spec) = specs.0.get(&set).and_then(Option::as_ref) else {
            continue;
        };
        if let Err((e, put_back)) =
            apply_set(kit.backends, kit.clock, &tx, spec, changes, &mut done)
        {
            drop(tx);
            return Err((e, put_back.then_some(set)));
        }
    }
    let saved = || {
        for (name, n) in &done.suppressed {
            tx.fleet_count_suppressed(name, *n)?;
        }
        if let Some(cursor) = cursor {
            tx.set_meta(crate::fleet::CURSOR_KEY, cursor)?;
        }
        Ok::<(), crate::ledger::LedgerError>(())
    };
    saved().map_err(|e| no(e.into()))?;
    finish(tx, kit.dry_run).map_err(no)?;
    Ok(done)
}

/// The policy's verdict on one active row; the set must exist here and
/// take the target.
fn judge_row(
    allowlist: &Allowlist,
    tx: &LedgerTx<'_>,
    specs: &mut Specs,
    policy: &FleetPolicy,
    row: &FleetRow,
    now: i64,
) -> Result<Result<Option<u64>, Suppressed>, Error> {
    let held = specs.held(tx, &row.set, &row.target, now)?;
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
    Ok(match specs.get(tx, &row.set)? {
        None => Err(Suppressed::UnknownSet),
        // Members of an allow-only set are let in: another host's ban
        // must never become an allowance here.
        Some(spec) if spec.policy == SetPolicy::AllowOnly => Err(Suppressed::AllowOnly),
        Some(spec) if spec.admits(&row.target).is_err() => Err(Suppressed::Inadmissible),
        Some(_) => verdict,
    })
}

/// Records one set's changes and sends them to its kernel in one batch.
/// An error says whether the kernel may hold part of the batch.
fn apply_set(
    backends: &dyn BackendProvider,
    clock: &dyn Clock,
    tx: &LedgerTx<'_>,
    spec: &SetSpec,
    changes: SetChanges,
    done: &mut FleetApplied,
) -> Result<(), (Error, bool)> {
    if changes.add.is_empty() && changes.remove.is_empty() {
        return Ok(());
    }
    let no = |e: Error| (e, false);
    let now = clock.now();
    let set = &spec.name;
    let backend = backends.backend(spec.backend).map_err(|e| no(e.into()))?;
    let caps = backend.capabilities();
    tx.remove_bans(set, &changes.remove)
        .and_then(|_| tx.record_unbans(set, &changes.remove, EventKind::Unban, now))
        .and_then(|()| tx.fleet_unmark_made(set, &changes.remove))
        .map_err(|e| no(e.into()))?;
    let mut entries = Vec::with_capacity(changes.add.len());
    for add in &changes.add {
        let ban = NewBan {
            target: add.target,
            start: now,
            deadline: add.deadline,
            reason: add.reason.clone(),
        };
        let record = || {
            if add.reason.is_some() {
                // The fleet's own row: its deadline is the remote rows'
                // longest, which may be shorter than before (an origin
                // with a longer ban withdrew it), so it is replaced;
                // without a row (a snapshot's targets) there is nothing
                // to replace.
                if add.current.is_some() {
                    tx.remove_bans(set, &[add.target])?;
                }
                tx.fleet_mark_made(set, &add.target)?;
            }
            tx.upsert_bans(set, std::slice::from_ref(&ban), now)?;
            tx.record_bans(set, std::slice::from_ref(&ban), &|_| None, now)?;
            // What the upsert kept, without reading the row back: the
            // ledger's merge rule over the row planned (none, or replaced).
            Ok::<_, crate::ledger::LedgerError>(match (&add.reason, add.current) {
                (None, Some(old)) => merged_deadline(old, add.deadline, now),
                _ => add.deadline,
            })
        };
        let kept = record().map_err(|e| no(e.into()))?;
        entries.push(KernelEntry {
            target: add.target,
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
    match backend.apply(spec, &batch) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => restore(backend, tx, spec, clock).map_err(no),
        Err(e) => Err((
            e.within(format!("fleet apply to {set}")).into(),
            !caps.atomic_batches,
        )),
    }
}

/// What one target needs after its remote rows changed: the longest
/// active row, over whatever the ledger holds. A local ban (one the fleet
/// did not make) is never removed or shortened by the fleet, unless the
/// fleet admin withdrew it (`local`).
fn plan_target(
    tx: &LedgerTx<'_>,
    set: &SetName,
    target: Target,
    now: i64,
    local: Local,
    out: &mut SetChanges,
) -> Result<(), Error> {
    let rows = tx.fleet_rows_of(set, &target)?;
    let current = tx.ban(set, &target)?;
    let fleet_made = local == Local::Withdrawn
        || match &current {
            None => true,
            Some(b) => !b.is_active(now) || tx.fleet_is_made(set, &target)?,
        };
    match effective(rows.iter().map(|r| r.1), now) {
        Some(deadline) => {
            let origin = longest_origin(&rows, now);
            let unchanged = fleet_made
                && current
                    .as_ref()
                    .is_some_and(|b| b.deadline == deadline && b.is_active(now));
            if !unchanged {
                out.add.push(Add {
                    target,
                    deadline,
                    reason: fleet_made.then(|| format!("{FLEET_REASON_PREFIX}{origin}")),
                    current: current.as_ref().map(|b| b.deadline),
                });
            }
        }
        None if fleet_made && current.is_some() => out.remove.push(target),
        None => {}
    }
    Ok(())
}
