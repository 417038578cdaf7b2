//! `Engine`: banset's operations, each keeping ledger and kernel in agreement.
//!
//! Every mutating operation follows one pattern: open a write transaction on
//! the ledger, validate all input, record the change, apply it to the kernel
//! in one batch, and commit only if the kernel accepted it. So a failed
//! command leaves both sides as they were: when the kernel took a change
//! and the ledger then could not record it (a full disk fails the commit),
//! the kernel is put back to the committed ledger by content
//! ([`Engine::put_kernel_back`]).
//!
//! A command killed between the kernel call and the commit must leave at
//! worst kernel members the ledger does not know (harmless, the next `sync`
//! removes them), never a ban the ledger holds missing from the kernel. For
//! `add` the order gives that. For the verbs that remove members (`del`,
//! `flush`, `replace`) it would give the opposite, so they leave a journal
//! of intent: a `removing:SET:PID:N` row committed before the kernel call
//! and deleted in the same commit as the removal. A row whose process is
//! gone is an interrupted removal; whoever next takes the write lock for
//! that set (`add`, `del`, `flush`, `replace`, `expire` — the daemon's
//! keeper runs it every few seconds — and `sync`) restores the set's kernel
//! content from the ledger first. Decided over "ledger first for
//! removals": that order turns a kernel failure after the commit into a
//! second transaction that must put rows back, racing other writers, while
//! the journal costs one small commit and keeps "a failed command changes
//! nothing" as it is. Healing by content on every keeper tick instead
//! would list every set every few seconds; the journal says which set
//! needs it, and only after a crash.
//!
//! When the kernel has lost a set (reboot, firewall reload, `nft flush
//! ruleset`), an operation that hits `NotFound` rebuilds the set from the
//! ledger and carries on, so `banset add` after a reload repairs every ban,
//! not only the new one.

mod change;
mod fleet;

use rustc_hash::FxHashMap;

use crate::allowlist::{Allowlist, Refusal};
use crate::backend::{Backend, BackendError, Changes, ErrorKind, KernelEntry, SetHealth};
use crate::clock::Clock;
use crate::history::EventKind;
use crate::ledger::{merged_deadline, Ban, Ledger, LedgerError, LedgerTx, NewBan, UnreadableRow};
use crate::reconcile::{kernel_timeout, reconcile, reconcile_listed_over};
use crate::set_name::SetName;
use crate::spec::{BackendKind, SetSpec};
use crate::target::Target;
use crate::timeout::Timeout;

/// Fewest kernel entries for which `add` writes the kernel and the ledger
/// on two threads at once; below it, one after the other is quicker.
const PARALLEL_APPLY_MIN: usize = 512;

/// Bans per transaction of a bulk add (see `Engine::add_in_chunks`): long
/// enough that a million bans are a few dozen commits, short enough that
/// another writer (the daemon's next ban) waits well under a second.
const BULK_CHUNK: usize = 25_000;

/// Hands out a backend for a set's [`BackendKind`], opening it on first use.
pub trait BackendProvider {
    /// The backend that holds sets of `kind`. Fails (typically
    /// [`ErrorKind::Unsupported`] or [`ErrorKind::Permission`]) when this build or
    /// this system cannot open it.
    fn backend(&self, kind: BackendKind) -> Result<&dyn Backend, BackendError>;
}

/// A single backend is a provider of itself: what a program that drives one
/// firewall needs. Sets of another kind are refused.
impl<B: Backend> BackendProvider for B {
    fn backend(&self, kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        if kind == self.kind() {
            Ok(self)
        } else {
            Err(BackendError::new(
                ErrorKind::Unsupported,
                format!("backend {kind}"),
                format!("only {} is available here", self.kind()),
            ))
        }
    }
}

/// Why an operation failed. Each kind is a variant a caller can match on:
/// the CLI maps them to its exit codes and hints (`cli/src/errors.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input cannot be used as given; nothing was changed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// An allowlisted or overly wide target; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The set is not in the ledger.
    #[error("no set named {0} (banset list shows the sets; banset create makes one)")]
    UnknownSet(SetName),
    /// The kernel refused or failed; see [`BackendError::kind`]. The ledger
    /// transaction in progress was rolled back.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A request the engine cannot carry out as given; nothing was changed.
/// Each carries the set or value it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// `create` of a set the ledger has with other options.
    #[error("set {name} exists with other options ({difference}); {how}")]
    SetExists {
        /// The set.
        name: SetName,
        /// The options that differ, as [`SpecChange::describe`](crate::SpecChange) words them.
        difference: String,
        /// How to change them: `banset set-options`, or why they cannot
        /// change in place.
        how: String,
    },
    /// `set-options` asked for a change the set cannot take in place.
    #[error("set {name} cannot change in place: {why}")]
    CannotChange {
        /// The set.
        name: SetName,
        /// Why, as [`SpecChange::describe_refused`](crate::SpecChange) words it.
        why: String,
    },
    /// A new maxelem below the set's current number of bans.
    #[error("set {name} holds {active} bans, more than maxelem {max} allows; unban some first or choose a larger maxelem")]
    TooManyForMaxelem {
        /// The set.
        name: SetName,
        /// Its active bans.
        active: u64,
        /// The maxelem asked for.
        max: u32,
    },
    /// `adopt` of a set the ledger has with other options.
    #[error("set {name} is in the ledger with other options ({difference}); adopt it with those")]
    AdoptDiffers {
        /// The set.
        name: SetName,
        /// The options that differ.
        difference: String,
    },
    /// The set was destroyed or re-created by another command while a
    /// long add ran in chunks.
    #[error("set {0} was destroyed or re-created during the add; nothing of it was kept")]
    SetReplaced(SetName),
    /// The target does not fit the set (family, prefix).
    #[error(transparent)]
    Inadmissible(#[from] crate::spec::Inadmissible),
    /// A replace would drop more of the set than
    /// [`AddOptions::max_shrink`] allows: a truncated download, most likely.
    #[error("replace of {name} refused: {shrank}")]
    Shrinks {
        /// The set.
        name: SetName,
        /// Its size now, the new list's and the bound.
        shrank: crate::feed::shrink::Shrank,
    },
    /// A ban's start (`--since`) is more than a minute ahead of the clock.
    #[error("--since {since} is in the future (now is {now})")]
    SinceInFuture {
        /// The start asked for, Unix seconds.
        since: i64,
        /// The engine's clock, Unix seconds.
        now: i64,
    },
}

/// One ban to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanRequest {
    /// The address or prefix to ban.
    pub target: Target,
    /// `None`: the set's default timeout.
    pub timeout: Option<Timeout>,
    /// When the ban started (fail2ban's `<time>`), so a ban restored after a
    /// restart keeps its real end instead of a fresh full bantime.
    pub since: Option<i64>,
    /// Free text recorded with the ban (the jail, the admin's note).
    pub comment: Option<String>,
}

impl BanRequest {
    /// A ban of `target` with the set's default timeout, starting now.
    pub fn new(target: Target) -> BanRequest {
        BanRequest {
            target,
            timeout: None,
            since: None,
            comment: None,
        }
    }
}

/// Options of `add` and `replace`.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// Allow overly wide prefixes (`0.0.0.0/0` still hits loopback).
    pub force: bool,
    /// Create the set with this spec when it does not exist yet.
    pub create_with: Option<SetSpec>,
    /// Also cut the banned sources' established connections, where the
    /// backend keeps them past a ban ([`Backend::kill_states`]; pf). Best
    /// effort once the bans are in: a failure is a warning of the report.
    pub kill_states: bool,
    /// `replace` only: the largest share, in percent, of the set's active
    /// bans the new content may drop ([`crate::feed::shrink`]); `None`:
    /// any. Checked in the replace's own transaction, so nothing between
    /// the count and the swap can make it stale.
    pub max_shrink: Option<u8>,
}

/// Rows written in the same ledger transaction as the bans of
/// [`Engine::add_recorded`], so a crash keeps both or neither: the daemon's
/// ban history (read back for escalation and recidive) and its source
/// position after the line that made the ban. Written in a second
/// transaction, a crash in between kept a ban the history did not know
/// (the next offence was then treated as a first one) or a position that
/// had skipped a line whose ban was never made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddRecord {
    /// `(target, jail)` ban events, recorded at the ban's time.
    pub ban_events: Vec<(Target, String)>,
    /// `meta` keys to set, with their values.
    pub meta: Vec<(String, String)>,
    /// Publish the bans to the fleet (`[fleet] publish`, `add --fleet`):
    /// their outbox rows are written in the same transaction.
    pub fleet: Option<FleetPublish>,
}

/// How [`AddRecord::fleet`] publishes a ban.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetPublish {
    /// The jail that made the ban, for the other hosts' records.
    pub jail: Option<String>,
}

/// What [`Engine::add`] or [`Engine::replace`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AddReport {
    /// Bans now in effect (new or refreshed).
    pub applied: usize,
    /// Targets whose ban was already over (`--since` long ago): nothing done.
    pub already_over: Vec<Target>,
    /// The set was created by this call.
    pub created_set: bool,
    /// The kernel had lost the set and it was rebuilt from the ledger.
    pub repaired: bool,
    /// What went wrong without undoing the bans, one line each (a state
    /// [`AddOptions::kill_states`] could not kill), for the caller to show.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What [`Engine::sync`] did to one set.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// The set.
    pub set: SetName,
    /// The set's kernel objects or rule were missing and were re-created.
    pub repaired_objects: bool,
    /// Active bans the kernel lacked, re-added with the time they have left.
    pub added: usize,
    /// Members whose kernel timeout was wrong (or about to run out under a
    /// kernel's timeout cap), re-armed.
    pub refreshed: usize,
    /// Kernel members removed (strangers and bans that were over).
    pub removed: usize,
    /// Ledger rows of bans that were over, forgotten.
    pub expired: usize,
    /// Ledger rows that do not parse, skipped (`banset del SET TEXT` or
    /// `banset flush SET` removes them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_rows: Vec<UnreadableRow>,
}

/// One set's outcome in [`Engine::sync_each`].
pub type SetSync = (SetName, Result<SyncReport, Error>);

/// One member as `list` shows it: the kernel's truth, with what the ledger
/// knows of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// The member.
    pub target: Target,
    /// Seconds the kernel will still hold it; `None` without a kernel timeout.
    pub kernel_remaining: Option<u64>,
    /// The ledger's record, `None` if the kernel holds a stranger.
    pub ban: Option<Ban>,
}

/// One set as [`Engine::list`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SetListing {
    /// The set, as recorded in the ledger.
    pub spec: SetSpec,
    /// `false` when the kernel has lost the set (run `banset sync`).
    pub in_kernel: bool,
    /// The kernel's members, in the kernel's own order (sort them to show
    /// them); empty when `in_kernel` is `false`.
    pub members: Vec<Listed>,
    /// Ledger rows that do not parse, skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_rows: Vec<UnreadableRow>,
}

/// One set as [`Engine::status`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SetStatus {
    /// The set, as recorded in the ledger.
    pub spec: SetSpec,
    /// Bans in the ledger that are not over yet, permanent ones included.
    pub active_bans: u64,
    /// Of those, the permanent ones.
    pub permanent_bans: u64,
    /// Members in the kernel; `None` when the kernel could not be read.
    pub kernel_members: Option<u64>,
    /// The kernel objects' state for display (`present`, or `incomplete` or
    /// `missing` with a hint to run `banset sync`); `None` when the kernel could
    /// not be asked (see `kernel_error`).
    pub health: Option<String>,
    /// Why the kernel could not be read.
    pub kernel_error: Option<String>,
    /// Unix time of the last `sync` of this set.
    pub last_sync: Option<i64>,
}

/// banset's operations over a ledger and the backends.
pub struct Engine<'a> {
    /// The desired state; each operation works in its own transaction(s).
    pub ledger: &'a mut Ledger,
    /// Opens the backend each set's [`SetSpec::backend`] names.
    pub backends: &'a dyn BackendProvider,
    /// Source of "now" for deadlines and expiry.
    pub clock: &'a dyn Clock,
    /// Checked before any ban reaches a backend.
    pub allowlist: &'a Allowlist,
    /// Validate and apply to the backends, but roll the ledger back.
    pub dry_run: bool,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("ledger", &self.ledger.path())
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

fn last_sync_key(set: &SetName) -> String {
    format!("last_sync:{set}")
}

impl Engine<'_> {
    fn spec_of(tx: &LedgerTx<'_>, set: &SetName) -> Result<SetSpec, Error> {
        tx.set_spec(set)?
            .ok_or_else(|| Error::UnknownSet(set.clone()))
    }

    /// Creates a set: its kernel objects, its blocking rule and its ledger
    /// record. Creating a set that exists with the same spec is fine; with a
    /// different spec it is refused, saying how to change it
    /// ([`Engine::change_set`]) or why it cannot change in place.
    pub fn create(&mut self, spec: &SetSpec) -> Result<bool, Error> {
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        let created = match tx.set_spec(&spec.name)? {
            Some(existing) if &existing == spec => false,
            Some(existing) => {
                let change = crate::spec_change::SpecChange::between(&existing, spec);
                let how = if change.refused.is_empty() {
                    format!(
                        "banset set-options {} changes them in place, keeping its bans",
                        spec.name
                    )
                } else {
                    change.describe_refused()
                };
                return Err(InputError::SetExists {
                    name: spec.name.clone(),
                    difference: change.describe(),
                    how,
                }
                .into());
            }
            None => true,
        };
        let backend = backend_for(self.backends, spec)?;
        backend
            .ensure_set(spec)
            .map_err(|e| e.within(format!("create {}", spec.name)))?;
        tx.put_set(spec, now)?;
        finish(tx, self.dry_run)?;
        Ok(created)
    }

    /// Bans targets (inserting, or refreshing a ban already there; the longest
    /// ban wins). All or nothing.
    pub fn add(
        &mut self,
        set: &SetName,
        requests: &[BanRequest],
        opts: &AddOptions,
    ) -> Result<AddReport, Error> {
        let mut report = self.add_or_replace(set, requests, opts, false, &AddRecord::default())?;
        if opts.kill_states && !self.dry_run {
            self.kill_states(set, requests, &mut report)?;
        }
        Ok(report)
    }

    /// [`AddOptions::kill_states`] after the bans of `requests` are in:
    /// the ban worked and the ledger says so; a state that survives only
    /// lives until its connection ends. So a failure is a warning, not an
    /// error.
    fn kill_states(
        &mut self,
        set: &SetName,
        requests: &[BanRequest],
        report: &mut AddReport,
    ) -> Result<(), Error> {
        let spec = self
            .ledger
            .read()?
            .set_spec(set)?
            .ok_or_else(|| Error::UnknownSet(set.clone()))?;
        let backend = self.backends.backend(spec.backend)?;
        for request in requests {
            if report.already_over.contains(&request.target) {
                continue;
            }
            if let Err(e) = backend.kill_states(&request.target) {
                report.warnings.push(format!(
                    "{}: could not kill the states of {}: {e}",
                    spec.backend, request.target
                ));
            }
        }
        Ok(())
    }

    /// [`Engine::add`], with `record`'s rows written in the bans' own
    /// transaction: all committed together, or none (a dry run commits
    /// none).
    pub fn add_recorded(
        &mut self,
        set: &SetName,
        requests: &[BanRequest],
        opts: &AddOptions,
        record: &AddRecord,
    ) -> Result<AddReport, Error> {
        self.add_or_replace(set, requests, opts, false, record)
    }

    /// Makes the set hold exactly `requests`, atomically where the kernel has
    /// batches: nobody ever sees the set empty halfway.
    pub fn replace(
        &mut self,
        set: &SetName,
        requests: &[BanRequest],
        opts: &AddOptions,
    ) -> Result<AddReport, Error> {
        self.add_or_replace(set, requests, opts, true, &AddRecord::default())
    }

    fn add_or_replace(
        &mut self,
        set: &SetName,
        requests: &[BanRequest],
        opts: &AddOptions,
        replace: bool,
        also: &AddRecord,
    ) -> Result<AddReport, Error> {
        // A replace removes members: journal it first (see the module
        // docs). A set that does not exist yet has nothing to lose.
        let removal = if replace && self.ledger.read()?.set_spec(set)?.is_some() {
            self.announce_removal(set)?
        } else {
            None
        };
        let result =
            self.add_or_replace_journalled(set, requests, opts, replace, removal.as_deref(), also);
        if let (Err(Error::Input(_) | Error::Refused(_) | Error::UnknownSet(_)), Some(key)) =
            (&result, &removal)
        {
            // Refused before the kernel was touched: nothing to heal.
            self.forget_removal(key);
        }
        result
    }

    fn add_or_replace_journalled(
        &mut self,
        set: &SetName,
        requests: &[BanRequest],
        opts: &AddOptions,
        replace: bool,
        removal: Option<&str>,
        also: &AddRecord,
    ) -> Result<AddReport, Error> {
        // Rows recorded with the bans belong in one transaction with all of
        // them, so such an add is never chunked (the daemon's are one ban).
        if !replace && requests.len() > BULK_CHUNK && *also == AddRecord::default() {
            return self.add_in_chunks(set, requests, opts);
        }
        // `now` after the lock: taken before, a wait for another writer
        // (a bulk job) made every deadline sent to the kernel that much too
        // long, and `sync` then re-armed every member of the add.
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        let mut report = AddReport::default();
        let spec = match tx.set_spec(set)? {
            Some(spec) => spec,
            None => match &opts.create_with {
                Some(spec) if &spec.name == set => {
                    report.created_set = true;
                    spec.clone()
                }
                _ => return Err(Error::UnknownSet(set.clone())),
            },
        };
        let new_bans = Self::validate(
            self.allowlist,
            &spec,
            requests,
            opts.force,
            now,
            &mut report,
        )?;
        // Remote bans survive a replace of the local members (see
        // `fleet::kept::kept_over_replace`): the fleet-only ones are added to
        // the batch, the others merge into their local member.
        let kept = if replace && !report.created_set {
            crate::fleet::kept::kept_over_replace(&tx, &spec, self.allowlist, &new_bans, now)?
        } else {
            Vec::new()
        };
        let (fleet_only, merged): (Vec<NewBan>, Vec<NewBan>) =
            kept.into_iter().partition(|b| b.reason.is_some());
        if let (true, Some(max)) = (replace, opts.max_shrink) {
            let (active, _) = tx.counts(set, now)?;
            let active = usize::try_from(active).unwrap_or(usize::MAX);
            crate::feed::shrink::check(active, new_bans.len() + fleet_only.len(), max).map_err(
                |shrank| InputError::Shrinks {
                    name: set.clone(),
                    shrank,
                },
            )?;
        }
        let backend = backend_for(self.backends, &spec)?;
        if !report.created_set {
            heal_interrupted_removals(backend, &tx, &spec, self.clock)?;
        }
        let caps = backend.capabilities();
        // The kernel gets the deadline the ledger will hold, which the
        // longest-ban-wins rule may take from an existing row.
        let existing = if replace {
            merged.iter().map(|b| (b.target, b.deadline)).collect()
        } else {
            let targets: Vec<Target> = new_bans.iter().map(|b| b.target).collect();
            tx.deadlines_of(set, &targets)?
        };
        if report.created_set {
            tx.put_set(&spec, now)?;
            backend
                .ensure_set(&spec)
                .map_err(|e| e.within(format!("create {set}")))?;
        }
        let mut entries = kernel_entries(
            &new_bans,
            |t| existing.get(t).copied(),
            now,
            self.clock.now(),
            &caps,
        );
        report.applied = entries.len();
        entries.extend(kernel_entries(
            &fleet_only,
            |_| None,
            now,
            self.clock.now(),
            &caps,
        ));
        let changes = Changes {
            flush_first: replace,
            remove: Vec::new(),
            add: entries,
        };
        let record = || {
            if replace {
                tx.clear_bans(set)?;
            }
            tx.upsert_bans(set, &new_bans, now)?;
            // A local ban of a target the fleet banned makes it local: an
            // unban by the other host must not lift it.
            let targets: Vec<Target> = new_bans.iter().map(|b| b.target).collect();
            tx.fleet_unmark_made(set, &targets)?;
            tx.upsert_bans(set, &merged, now)?;
            tx.upsert_bans(set, &fleet_only, now)?;
            for ban in &fleet_only {
                tx.fleet_mark_made(set, &ban.target)?;
            }
            let jail_of = |t: &Target| {
                also.ban_events
                    .iter()
                    .find(|(x, _)| x == t)
                    .map(|(_, jail)| jail.clone())
            };
            tx.record_bans(set, &new_bans, &jail_of, now)?;
            for (key, value) in &also.meta {
                tx.set_meta(key, value)?;
            }
            // An allow-only set's members are let in, not banned: never
            // published as bans.
            let publish = also
                .fleet
                .as_ref()
                .filter(|_| spec.policy == crate::policy::SetPolicy::Ban);
            if let Some(publish) = publish {
                // In the ban's own transaction: a crash keeps both or
                // neither, and the ban never waits for the network. The
                // outbox gets the deadline the ledger ends up holding
                // (longest ban wins), as the kernel does.
                let deadlines: Vec<(Target, Option<i64>)> = new_bans
                    .iter()
                    .map(|ban| match existing.get(&ban.target) {
                        Some(&old) => (ban.target, merged_deadline(old, ban.deadline, now)),
                        None => (ban.target, ban.deadline),
                    })
                    .collect();
                let reason = requests.first().and_then(|r| r.comment.as_deref());
                tx.fleet_queue_bans(set, &deadlines, publish.jail.as_deref(), reason, now)?;
            }
            Ok::<(), LedgerError>(())
        };
        // Kernel batch and ledger rows are written at the same time for a
        // bulk add: they cost about the same, and neither needs the other.
        // A few bans (fail2ban's one per call) are done in turn: starting a
        // thread would cost more than it saves.
        let (kernel, recorded) = if changes.add.len() >= PARALLEL_APPLY_MIN {
            std::thread::scope(|scope| {
                let kernel = scope.spawn(|| backend.apply(&spec, &changes));
                let recorded = record();
                let kernel = kernel
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (kernel, recorded)
            })
        } else {
            (backend.apply(&spec, &changes), record())
        };
        if let Err(e) = recorded {
            drop(tx);
            if report.created_set {
                abandon_new_set(backend, &spec);
            } else if kernel.is_ok() {
                // The kernel took what the ledger could not record: put the
                // kernel back to the (rolled back) ledger.
                self.put_kernel_back(set, removal);
            }
            return Err(e.into());
        }
        match kernel {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // The kernel lost the set: rebuild it from the ledger, which
                // already holds this call's bans.
                if let Err(e) = restore(backend, &tx, &spec, self.clock) {
                    drop(tx);
                    if report.created_set {
                        abandon_new_set(backend, &spec);
                    }
                    return Err(e);
                }
                report.repaired = !report.created_set;
            }
            Err(e) => {
                drop(tx);
                if report.created_set {
                    // Nothing of the set was recorded: remove what this call
                    // made in the kernel, so a failed first ban leaves no
                    // empty set behind.
                    abandon_new_set(backend, &spec);
                } else if !caps.atomic_batches || removal.is_some() {
                    // A kernel without atomic batches may have taken the
                    // entries before the failing one: put it back to the
                    // (rolled back) ledger, as if nothing had been sent.
                    self.put_kernel_back(set, removal);
                }
                return Err(full_set_context(e, &spec)
                    .within(format!("add to {set}"))
                    .into());
            }
        }
        if let Some(key) = removal {
            tx.remove_meta(key)?;
        }
        if let Err(e) = finish(tx, self.dry_run) {
            // The kernel holds what the ledger failed to record.
            if report.created_set {
                abandon_new_set(backend, &spec);
            } else {
                self.put_kernel_back(set, removal);
            }
            return Err(e);
        }
        Ok(report)
    }

    /// A bulk add, in transactions of [`BULK_CHUNK`] bans each.
    ///
    /// Why: a transaction holds the ledger's write lock, and one over a
    /// million bans held it for half a minute; the daemon's bans waited
    /// behind it (30.8 s from a detected failure to the kernel instead of
    /// 2.7 ms) and failed outright past the 120 s busy timeout. Between
    /// chunks the lock is free, so another writer waits at most one chunk.
    ///
    /// It stays all or nothing: when a chunk fails, the chunks before it
    /// are undone (their rows put back where nobody has banned the target
    /// since, then the kernel put back to the ledger by content). A kill
    /// between chunks keeps the chunks committed so far, on which ledger
    /// and kernel agree, and the chunk in flight leaves at most extra
    /// kernel members, as any add. `replace` is not chunked: its point is
    /// one atomic swap.
    fn add_in_chunks(
        &mut self,
        set: &SetName,
        requests: &[BanRequest],
        opts: &AddOptions,
    ) -> Result<AddReport, Error> {
        let mut report = AddReport::default();
        // The set first, in its own transaction, so every chunk finds it.
        if self.ledger.read()?.set_spec(set)?.is_none() {
            match &opts.create_with {
                Some(spec) if &spec.name == set => {
                    // Refuse bad input before making anything.
                    Self::validate(
                        self.allowlist,
                        spec,
                        requests,
                        opts.force,
                        self.clock.now(),
                        &mut AddReport::default(),
                    )?;
                    self.create(spec)?;
                    report.created_set = true;
                }
                _ => return Err(Error::UnknownSet(set.clone())),
            }
        }
        // Validated outside the lock: a million requests take a while, and
        // nothing in them depends on the ledger's rows. Deadlines count from
        // here, when the bans were asked for; each chunk gives the kernel
        // the time left from when it is applied, so kernel and ledger agree.
        let spec = Self::spec_of(&self.ledger.read()?, set)?;
        let now = self.clock.now();
        let bans = match Self::validate(
            self.allowlist,
            &spec,
            requests,
            opts.force,
            now,
            &mut report,
        ) {
            Ok(bans) => bans,
            Err(e) => {
                self.undo_chunks(set, &[], report.created_set);
                return Err(e);
            }
        };
        let mut done: Vec<(Vec<NewBan>, FxHashMap<Target, Ban>)> = Vec::new();
        for chunk in bans.chunks(BULK_CHUNK) {
            if !done.is_empty() {
                // SQLite's lock is not fair: without a pause the next chunk
                // takes it again before a waiting writer (the daemon's next
                // ban, which polls every millisecond) can.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            match self.add_chunk(set, &spec, chunk, &mut report) {
                Ok(before) => done.push((chunk.to_vec(), before)),
                Err(e) => {
                    self.undo_chunks(set, &done, report.created_set);
                    return Err(e);
                }
            }
        }
        Ok(report)
    }

    /// One chunk of [`Engine::add_in_chunks`], in its own transaction.
    /// Returns the rows the chunk wrote over, for an undo.
    fn add_chunk(
        &mut self,
        set: &SetName,
        spec: &SetSpec,
        chunk: &[NewBan],
        report: &mut AddReport,
    ) -> Result<FxHashMap<Target, Ban>, Error> {
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        if Self::spec_of(&tx, set)? != *spec {
            return Err(InputError::SetReplaced(set.clone()).into());
        }
        let spec = spec.clone();
        let backend = self.backends.backend(spec.backend)?;
        heal_interrupted_removals(backend, &tx, &spec, self.clock)?;
        let caps = backend.capabilities();
        let targets: Vec<Target> = chunk.iter().map(|b| b.target).collect();
        let before = tx.rows_of(set, &targets)?;
        let entries = kernel_entries(
            chunk,
            |t| before.get(t).map(|old| old.deadline),
            now,
            self.clock.now(),
            &caps,
        );
        let changes = Changes {
            flush_first: false,
            remove: Vec::new(),
            add: entries,
        };
        let (kernel, recorded) = std::thread::scope(|scope| {
            let kernel = scope.spawn(|| backend.apply(&spec, &changes));
            let recorded = tx.upsert_bans(set, chunk, now);
            let kernel = kernel
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (kernel, recorded)
        });
        recorded?;
        tx.record_bans(set, chunk, &|_| None, now)?;
        let targets: Vec<Target> = chunk.iter().map(|b| b.target).collect();
        tx.fleet_unmark_made(set, &targets)?;
        match kernel {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                restore(backend, &tx, &spec, self.clock)?;
                report.repaired = !report.created_set;
            }
            Err(e) => {
                return Err(full_set_context(e, &spec)
                    .within(format!("add to {set}"))
                    .into())
            }
        }
        finish(tx, self.dry_run)?;
        report.applied += chunk.len();
        Ok(before)
    }

    /// Undoes the committed chunks of a failed bulk add (see
    /// [`Engine::add_in_chunks`]). Best effort, like every failure path:
    /// the error being returned matters more.
    fn undo_chunks(
        &mut self,
        set: &SetName,
        done: &[(Vec<NewBan>, FxHashMap<Target, Ban>)],
        created: bool,
    ) {
        if created {
            let _ = self.destroy(set);
            return;
        }
        if !done.is_empty() && !self.dry_run {
            if let Ok(tx) = self.ledger.begin() {
                if done
                    .iter()
                    .all(|(written, before)| tx.undo_upsert(set, written, before).is_ok())
                {
                    let _ = tx.commit();
                }
            }
        }
        self.put_kernel_back(set, None);
    }

    /// Checks every request before anything is changed.
    fn validate(
        allowlist: &Allowlist,
        spec: &SetSpec,
        requests: &[BanRequest],
        force: bool,
        now: i64,
        report: &mut AddReport,
    ) -> Result<Vec<NewBan>, Error> {
        // Duplicates in one request keep the longest ban, as the ledger does.
        let mut by_target: FxHashMap<Target, usize> =
            FxHashMap::with_capacity_and_hasher(requests.len(), Default::default());
        let mut out: Vec<NewBan> = Vec::with_capacity(requests.len());
        for req in requests {
            spec.admits(&req.target).map_err(InputError::from)?;
            // The allowlist keeps banset from blocking loopback, this host
            // and wide ranges. An allow-only set's members are the ones let
            // in: its hook never blocks loopback or own addresses anyway,
            // a home list often holds the host's own network, and a
            // country's merged feed has prefixes wider than /8.
            if spec.policy.is_ban() {
                allowlist.check(&req.target, force)?;
            }
            let timeout = req.timeout.unwrap_or(spec.timeout);
            let start = match req.since {
                Some(since) if since > now + 60 => {
                    return Err(InputError::SinceInFuture { since, now }.into())
                }
                Some(since) => since,
                None => now,
            };
            let deadline = timeout.secs().map(|s| start.saturating_add(s as i64));
            if deadline.is_some_and(|d| d <= now) {
                report.already_over.push(req.target);
                continue;
            }
            let ban = NewBan {
                target: req.target,
                start,
                deadline,
                reason: req.comment.clone(),
            };
            match by_target.get(&req.target) {
                Some(&i) => {
                    let old = &mut out[i];
                    old.deadline = match (old.deadline, deadline) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
                None => {
                    by_target.insert(req.target, out.len());
                    out.push(ban);
                }
            }
        }
        Ok(out)
    }

    /// Unbans targets. Targets that were not banned are fine (fail2ban's
    /// unban must be idempotent). Returns how many the ledger had.
    pub fn del(&mut self, set: &SetName, targets: &[Target]) -> Result<usize, Error> {
        self.del_with_unreadable(set, targets, &[])
    }

    /// [`Engine::del`], which also removes ledger rows that do not parse
    /// ([`UnreadableRow`]) by their exact text, with the kernel member of
    /// that text when a kernel can hold it (a `0.0.0.0` an older banset
    /// banned), in the same transaction. Returns how many rows went.
    pub fn del_with_unreadable(
        &mut self,
        set: &SetName,
        targets: &[Target],
        unreadable: &[&str],
    ) -> Result<usize, Error> {
        let removal = self.announce_removal(set)?;
        let tx = self.ledger.begin()?;
        let spec = Self::spec_of(&tx, set)?;
        let present: Vec<Target> = tx.rows_of(set, targets)?.into_keys().collect();
        let now = self.clock.now();
        tx.record_unbans(set, &present, EventKind::Unban, now)?;
        // The fleet: this host's own published bans are withdrawn, and a
        // remote ban unbanned here is held off until it ends (docs/fleet.md).
        tx.fleet_queue_unbans(set, &present, now)?;
        tx.fleet_hold_unbanned(set, &present, now)?;
        let removed = tx.remove_bans(set, targets)? + tx.remove_unreadable(set, unreadable)?;
        let mut in_kernel = targets.to_vec();
        in_kernel.extend(unreadable.iter().filter_map(|t| Target::parse_listed(t)));
        let backend = self.backends.backend(spec.backend)?;
        let kernel = backend.del(&spec, &in_kernel);
        let committed = commit_removal(
            tx,
            removal.as_deref(),
            kernel,
            || format!("del from {set}"),
            self.dry_run,
        );
        self.end_removal(set, removal.as_deref(), committed)?;
        Ok(removed)
    }

    /// Journals, durably and before its kernel call, a removal from `set`
    /// (see the module docs); heals an earlier interrupted one first.
    /// Returns the journal row's key; `None` for a dry run, which commits
    /// nothing.
    fn announce_removal(&mut self, set: &SetName) -> Result<Option<String>, Error> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        if self.dry_run {
            return Ok(None);
        }
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        let spec = Self::spec_of(&tx, set)?;
        let backend = self.backends.backend(spec.backend)?;
        heal_interrupted_removals(backend, &tx, &spec, self.clock)?;
        let key = format!(
            "{}{}:{}",
            removal_prefix(set),
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        tx.set_meta(&key, &now.to_string())?;
        tx.commit()?;
        Ok(Some(key))
    }

    /// Deletes the journal row of a removal that never reached the kernel.
    /// Best effort: a row left behind only makes the next writer heal.
    fn forget_removal(&mut self, key: &str) {
        if let Ok(tx) = self.ledger.begin() {
            if tx.remove_meta(key).is_ok() {
                let _ = tx.commit();
            }
        }
    }

    /// After [`commit_removal`]: on a failure the kernel may have lost
    /// members the ledger keeps (a partial batch, or a commit that failed
    /// after the kernel call), so it is put back before the error returns.
    fn end_removal(
        &mut self,
        set: &SetName,
        removal: Option<&str>,
        committed: Result<(), Error>,
    ) -> Result<(), Error> {
        if committed.is_err() {
            self.put_kernel_back(set, removal);
        }
        committed
    }

    /// Puts the kernel's side of `set` back to what the committed ledger
    /// holds, by content, under the write lock (so no other writer is
    /// between its kernel call and its commit), and forgets the journal row
    /// `removal`. For failure paths: best effort, since the error being
    /// returned matters more; it writes nothing to the ledger but that row,
    /// so it works on a full disk, and a row left behind only makes the next
    /// writer heal the set again.
    pub fn put_kernel_back(&mut self, set: &SetName, removal: Option<&str>) {
        let backends = self.backends;
        let Ok(tx) = self.ledger.begin() else {
            return;
        };
        let Ok(Some(spec)) = tx.set_spec(set) else {
            return;
        };
        let Ok(backend) = backends.backend(spec.backend) else {
            return;
        };
        if restore(backend, &tx, &spec, self.clock).is_ok() && !self.dry_run {
            if let Some(key) = removal {
                if tx.remove_meta(key).is_ok() {
                    let _ = tx.commit();
                }
            }
        }
    }

    /// Records in the ledger what the kernel's set holds now, each member
    /// with the time the kernel still gives it (permanent where the kernel
    /// keeps no timeout): the way back from a lost or emptied ledger, which
    /// [`Ledger::open_checked`] refuses to start over beside kernel sets.
    /// The set is recorded with `spec` if the ledger does not know it;
    /// its kernel objects are completed (a missing rule) but no member is
    /// touched. Members the allowlist refuses, or the spec does not admit,
    /// are not recorded (the next `sync` removes them) and are returned.
    /// Returns (recorded, left out).
    pub fn adopt(&mut self, spec: &SetSpec) -> Result<(usize, Vec<Target>), Error> {
        let tx = self.ledger.begin()?;
        // After the lock: deadlines count from when the kernel is read.
        let now = self.clock.now();
        match tx.set_spec(&spec.name)? {
            Some(existing) if &existing != spec => {
                return Err(InputError::AdoptDiffers {
                    name: spec.name.clone(),
                    difference: crate::spec_change::SpecChange::between(&existing, spec).describe(),
                }
                .into())
            }
            Some(_) => {}
            None => tx.put_set(spec, now)?,
        }
        let backend = backend_for(self.backends, spec)?;
        let ctx = |e: BackendError| e.within(format!("adopt {}", spec.name));
        let kernel = backend.list(spec).map_err(ctx)?;
        backend.ensure_set(spec).map_err(ctx)?;
        let mut left_out = Vec::new();
        let mut bans = Vec::with_capacity(kernel.len());
        for entry in kernel {
            if spec.admits(&entry.target).is_err()
                || self.allowlist.check(&entry.target, false).is_err()
            {
                left_out.push(entry.target);
                continue;
            }
            bans.push(NewBan {
                target: entry.target,
                start: now,
                // Whole seconds, rounded up: the kernel's time is never cut.
                deadline: entry.timeout.map(|d| {
                    now.saturating_add((d.as_secs() + u64::from(d.subsec_nanos() > 0)) as i64)
                }),
                reason: Some("adopted from the kernel".into()),
            });
        }
        tx.upsert_bans(&spec.name, &bans, now)?;
        finish(tx, self.dry_run)?;
        Ok((bans.len(), left_out))
    }

    /// Whether traffic from `target` is blocked by the set, per the kernel.
    pub fn test(&mut self, set: &SetName, target: &Target) -> Result<bool, Error> {
        let spec = self
            .ledger
            .read()?
            .set_spec(set)?
            .ok_or_else(|| Error::UnknownSet(set.clone()))?;
        let backend = self.backends.backend(spec.backend)?;
        match backend.contains(&spec, target) {
            Ok(found) => Ok(found),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.within(format!("test {set}")).into()),
        }
    }

    /// Members as the kernel holds them, joined with the ledger's records.
    pub fn list(&mut self, set: Option<&SetName>) -> Result<Vec<SetListing>, Error> {
        let tx = self.ledger.read()?;
        let specs = match set {
            Some(name) => vec![Self::spec_of(&tx, name)?],
            None => tx.set_specs()?,
        };
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let backend = self.backends.backend(spec.backend)?;
            // The kernel's dump and the ledger's rows cost about the same
            // for a large set and need nothing from each other.
            let (kernel, bans) = std::thread::scope(|scope| {
                let kernel = scope.spawn(|| backend.list(&spec));
                let bans = tx.bans_and_unreadable(&spec.name);
                let kernel = kernel
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (kernel, bans)
            });
            let (in_kernel, kernel) = match kernel {
                Ok(k) => (true, k),
                Err(e) if e.kind() == ErrorKind::NotFound => (false, Vec::new()),
                Err(e) => return Err(e.within(format!("list {}", spec.name)).into()),
            };
            let (bans, unreadable_rows) = bans?;
            let members = join_by_target(kernel, bans);
            out.push(SetListing {
                spec,
                in_kernel,
                members,
                unreadable_rows,
            });
        }
        Ok(out)
    }

    /// Unbans everything in the set; the set and its rule stay.
    pub fn flush(&mut self, set: &SetName) -> Result<usize, Error> {
        let removal = self.announce_removal(set)?;
        let tx = self.ledger.begin()?;
        let spec = Self::spec_of(&tx, set)?;
        let all: Vec<Target> = tx.bans(set)?.into_iter().map(|b| b.target).collect();
        tx.record_unbans(set, &all, EventKind::Flush, self.clock.now())?;
        let n = tx.clear_bans(set)?;
        let backend = self.backends.backend(spec.backend)?;
        let kernel = backend.flush(&spec);
        let committed = commit_removal(
            tx,
            removal.as_deref(),
            kernel,
            || format!("flush {set}"),
            self.dry_run,
        );
        self.end_removal(set, removal.as_deref(), committed)?;
        Ok(n)
    }

    /// Removes the set, its rule and its bans, from kernel and ledger.
    pub fn destroy(&mut self, set: &SetName) -> Result<(), Error> {
        let tx = self.ledger.begin()?;
        let spec = Self::spec_of(&tx, set)?;
        let all: Vec<Target> = tx.bans(set)?.into_iter().map(|b| b.target).collect();
        tx.record_unbans(set, &all, EventKind::Destroy, self.clock.now())?;
        tx.remove_set(set)?;
        tx.remove_meta(&last_sync_key(set))?;
        let backend = self.backends.backend(spec.backend)?;
        backend
            .destroy(&spec)
            .map_err(|e| e.within(format!("destroy {set}")))?;
        finish(tx, self.dry_run)
    }

    /// Makes the kernel match the ledger: re-creates lost sets and rules,
    /// re-adds lost bans with the time they have left, refreshes wrong
    /// timeouts (and bans beyond a kernel's timeout cap), removes members the
    /// ledger does not know, and forgets bans that are over.
    ///
    /// Every set is synced even when one fails; the first failure is
    /// returned after the last set. [`Engine::sync_each`] reports each.
    pub fn sync(&mut self, set: Option<&SetName>) -> Result<Vec<SyncReport>, Error> {
        let mut reports = Vec::new();
        let mut first_error = None;
        for (_, outcome) in self.sync_each(set)? {
            match outcome {
                Ok(r) => reports.push(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }

    /// [`Engine::sync`], with each set's own outcome: one broken set (a
    /// kernel that refuses it, a backend this host lacks) must not leave
    /// every other set unrestored after a reboot. Fails as a whole only
    /// when the ledger cannot say which sets there are.
    pub fn sync_each(&mut self, set: Option<&SetName>) -> Result<Vec<SetSync>, Error> {
        let names: Vec<SetName> = match set {
            Some(name) => vec![name.clone()],
            // Names, not specs: a set whose spec does not read is still
            // synced in turn, and fails alone with what is wrong with it.
            None => self.ledger.read()?.set_names()?,
        };
        Ok(names
            .into_iter()
            .map(|name| {
                let outcome = self.sync_set(&name);
                (name, outcome)
            })
            .collect())
    }

    /// One set's share of [`Engine::sync`], in its own transaction: a large
    /// ledger does not hold the lock for every set at once, and one broken
    /// set does not undo others.
    fn sync_set(&mut self, name: &SetName) -> Result<SyncReport, Error> {
        let tx = self.ledger.begin()?;
        let spec = Self::spec_of(&tx, name)?;
        let backend = backend_for(self.backends, &spec)?;
        let ctx = |e: BackendError| e.within(format!("sync {name}"));
        let repaired_objects = backend.health(&spec).map_err(ctx)? != SetHealth::Present;
        if repaired_objects {
            backend.ensure_set(&spec).map_err(ctx)?;
        }
        // After the lock and after re-making the set: a time taken before a
        // long wait, or before a slow re-creation (14 s under qemu at boot),
        // would give every restored ban that much more time in the kernel
        // than in the ledger.
        let now = self.clock.now();
        let kernel = backend.list(&spec).map_err(ctx)?;
        let listing_secs = (self.clock.now() - now).max(0) as u64;
        let (bans, unreadable_rows) = tx.bans_and_unreadable(name)?;
        let plan = reconcile_listed_over(
            &bans,
            Some(&kernel),
            now,
            listing_secs,
            &backend.capabilities(),
        );
        let changes = plan.changes();
        if !changes.is_empty() {
            backend.apply(&spec, &changes).map_err(ctx)?;
        }
        tx.remove_bans(name, &plan.expired)?;
        // The kernel now holds the ledger's content: whatever an
        // interrupted removal left undone is healed.
        for key in interrupted_removals(&tx, name)? {
            tx.remove_meta(&key)?;
        }
        tx.set_meta(&last_sync_key(name), &now.to_string())?;
        finish(tx, self.dry_run)?;
        Ok(SyncReport {
            set: name.clone(),
            repaired_objects,
            added: plan.add.len(),
            refreshed: plan.refresh.len(),
            removed: plan.remove.len(),
            expired: plan.expired.len(),
            unreadable_rows,
        })
    }

    /// Removes bans that are over, from the kernel and the ledger: every
    /// due ban of a set in one kernel batch and one transaction. Kernels
    /// without timeouts (pf, ipfw) depend on it, run from cron or the
    /// daemon's keeper; elsewhere it keeps the ledger small. Returns (set,
    /// targets removed) for sets that had any.
    ///
    /// A set whose kernel fails is left as it was and the others are still
    /// expired: one broken set must not keep every other ban past its
    /// deadline. The first failure is returned after the last set.
    pub fn expire(&mut self) -> Result<Vec<(SetName, Vec<Target>)>, Error> {
        let specs = self.ledger.read()?.set_specs()?;
        let mut out = Vec::new();
        let mut first_error = None;
        for spec in specs {
            match self.expire_set(&spec) {
                Ok(Some(due)) => out.push((spec.name, due)),
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// One set's share of [`Engine::expire`]; `None` when nothing was due.
    fn expire_set(&mut self, spec: &SetSpec) -> Result<Option<Vec<Target>>, Error> {
        let tx = self.ledger.begin()?;
        let now = self.clock.now();
        // The keeper runs this every few seconds: where a removal was
        // interrupted, the kernel gets its bans back within that time.
        if !interrupted_removals(&tx, &spec.name)?.is_empty() {
            let backend = self
                .backends
                .backend(spec.backend)
                .map_err(|e| e.within(format!("expire {}", spec.name)))?;
            heal_interrupted_removals(backend, &tx, spec, self.clock)?;
        }
        let due: Vec<Target> = tx
            .expired_bans(&spec.name, now)?
            .into_iter()
            .map(|b| b.target)
            .collect();
        if due.is_empty() {
            finish(tx, self.dry_run)?;
            return Ok(None);
        }
        tx.remove_bans(&spec.name, &due)?;
        tx.record_unbans(&spec.name, &due, EventKind::Expire, now)?;
        let backend = self
            .backends
            .backend(spec.backend)
            .map_err(|e| e.within(format!("expire {}", spec.name)))?;
        match backend.del(spec, &due) {
            Ok(()) => {}
            // A set the kernel lost holds nothing to remove; `sync` puts
            // back the rest.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.within(format!("expire {}", spec.name)).into()),
        }
        finish(tx, self.dry_run)?;
        Ok(Some(due))
    }

    /// Every set with its counts and kernel health. Kernel failures are
    /// reported per set rather than failing the whole status.
    pub fn status(&mut self) -> Result<Vec<SetStatus>, Error> {
        let now = self.clock.now();
        let tx = self.ledger.read()?;
        let mut out = Vec::new();
        for spec in tx.set_specs()? {
            let (active_bans, permanent_bans) = tx.counts(&spec.name, now)?;
            let last_sync = tx
                .meta(&last_sync_key(&spec.name))?
                .and_then(|v| v.parse().ok());
            let kernel = self
                .backends
                .backend(spec.backend)
                .and_then(|b| Ok((b.health(&spec)?, b.list(&spec).map(|l| l.len() as u64))));
            let (health, kernel_members, kernel_error) = match kernel {
                Ok((health, members)) => (
                    Some(
                        match health {
                            SetHealth::Present => "present",
                            SetHealth::Incomplete => "incomplete (run banset sync)",
                            SetHealth::Missing => "missing (run banset sync)",
                        }
                        .to_string(),
                    ),
                    members.ok(),
                    None,
                ),
                Err(e) => (None, None, Some(e.to_string())),
            };
            out.push(SetStatus {
                spec,
                active_bans,
                permanent_bans,
                kernel_members,
                health,
                kernel_error,
                last_sync,
            });
        }
        Ok(out)
    }
}

/// Pairs kernel members with their ledger records, in the kernel's order.
/// Listing is the one read that touches every member, so the join uses a
/// fast non-cryptographic hash (the keys are our own normalised targets)
/// and does not sort: for 100,000 members SipHash and sorting were a third
/// of `banset list`'s time. Callers that show members to people sort them.
fn join_by_target(kernel: Vec<KernelEntry>, bans: Vec<Ban>) -> Vec<Listed> {
    // The map holds indexes, not the records: small entries hash and move
    // faster than whole `Ban`s.
    let index: rustc_hash::FxHashMap<Target, usize> = bans
        .iter()
        .enumerate()
        .map(|(i, b)| (b.target, i))
        .collect();
    let mut bans: Vec<Option<Ban>> = bans.into_iter().map(Some).collect();
    kernel
        .into_iter()
        .map(|k| Listed {
            target: k.target,
            kernel_remaining: k.timeout.map(|d| d.as_secs()),
            ban: index.get(&k.target).and_then(|&i| bans[i].take()),
        })
        .collect()
}

/// Ends a journalled removal: commits it with its journal row gone, unless
/// the kernel call failed (`what` names the call for its error; a set
/// missing from the kernel has nothing to remove there, and is fine). The
/// caller passes the outcome to [`Engine::end_removal`].
fn commit_removal(
    tx: LedgerTx<'_>,
    removal: Option<&str>,
    kernel: Result<(), BackendError>,
    what: impl FnOnce() -> String,
    dry_run: bool,
) -> Result<(), Error> {
    match kernel {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e.within(what()).into()),
    }
    if let Some(key) = removal {
        tx.remove_meta(key)?;
    }
    finish(tx, dry_run)
}

/// The meta key prefix of `set`'s journalled removals (see the module docs).
fn removal_prefix(set: &SetName) -> String {
    format!("removing:{set}:")
}

/// The journal rows of removals from `set` whose process is gone: each was
/// killed (or failed to clean up) between its kernel call and its commit.
/// Rows of live processes are in flight and are theirs to finish.
fn interrupted_removals(tx: &LedgerTx<'_>, set: &SetName) -> Result<Vec<String>, Error> {
    let prefix = removal_prefix(set);
    Ok(tx
        .meta_keys_with_prefix(&prefix)?
        .into_iter()
        .filter(|key| {
            let pid = key[prefix.len()..]
                .split(':')
                .next()
                .and_then(|p| p.parse::<u32>().ok());
            !pid.is_some_and(process_alive)
        })
        .collect())
}

/// Whether process `pid` exists. A reused pid reads as alive, which only
/// postpones the healing to the next writer after it, or to `sync`. Without
/// a `/proc` (FreeBSD's is rarely mounted) every other process reads as
/// gone: then a removal between its journal commit and its transaction is
/// healed needlessly (harmless: kernel and ledger agree at that moment), and
/// loses its row, so a kill right after that is left to `sync`.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        // Our own rows are in flight or cleaned up by our failure paths.
        return true;
    }
    pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Restores `spec`'s kernel content from the ledger (as `tx` sees it) when
/// a removal from it was interrupted, and forgets those journal rows in
/// `tx`. Must run under the write lock: then no other writer is between
/// its kernel call and its commit.
fn heal_interrupted_removals(
    backend: &dyn Backend,
    tx: &LedgerTx<'_>,
    spec: &SetSpec,
    clock: &dyn Clock,
) -> Result<(), Error> {
    let interrupted = interrupted_removals(tx, &spec.name)?;
    if interrupted.is_empty() {
        return Ok(());
    }
    restore(backend, tx, spec, clock)?;
    for key in interrupted {
        tx.remove_meta(&key)?;
    }
    Ok(())
}

/// Removes the kernel objects of a set this call created and then failed to
/// fill. Best effort: the error being returned matters more than this one.
fn abandon_new_set(backend: &dyn Backend, spec: &SetSpec) {
    let _ = backend.destroy(spec);
}

/// A full set's error, told in the admin's terms: which set, its limit, and
/// what to do. Other errors pass through.
fn full_set_context(e: BackendError, spec: &SetSpec) -> BackendError {
    if e.kind() != ErrorKind::SetFull {
        return e;
    }
    let limit = spec
        .max_elements
        .map(|m| format!(" (maxelem {m})"))
        .unwrap_or_default();
    BackendError::new(
        ErrorKind::SetFull,
        String::new(),
        format!(
            "set {} is full{limit}: {e}; recreate it with a larger --maxelem",
            spec.name
        ),
    )
}

/// Commits, or rolls back for a dry run.
fn finish(tx: LedgerTx<'_>, dry_run: bool) -> Result<(), Error> {
    if dry_run {
        drop(tx); // rolls back
        Ok(())
    } else {
        Ok(tx.commit()?)
    }
}

/// The kernel's entries for `bans`: each with the deadline the ledger will
/// hold (the longest ban wins over `existing`, its row's deadline), given as
/// the time left at `sent_at`. `sent_at` is read just before the batch goes
/// out, after any slow kernel work of the same call (making the set,
/// healing), so the kernel never holds a ban longer than the ledger.
fn kernel_entries(
    bans: &[NewBan],
    existing: impl Fn(&Target) -> Option<Option<i64>>,
    now: i64,
    sent_at: i64,
    caps: &crate::backend::Capabilities,
) -> Vec<KernelEntry> {
    bans.iter()
        .map(|ban| {
            let deadline = match existing(&ban.target) {
                Some(old) => merged_deadline(old, ban.deadline, now),
                None => ban.deadline,
            };
            KernelEntry {
                target: ban.target,
                timeout: kernel_timeout(deadline.map(|d| (d - sent_at).max(1) as u64), caps),
            }
        })
        .collect()
}

/// Re-creates a set's kernel objects and fills them from the ledger (as seen
/// by `tx`, including its uncommitted rows).
fn restore(
    backend: &dyn Backend,
    tx: &LedgerTx<'_>,
    spec: &SetSpec,
    clock: &dyn Clock,
) -> Result<(), Error> {
    let ctx = |e: BackendError| e.within(format!("restore {}", spec.name));
    backend.ensure_set(spec).map_err(ctx)?;
    // Time left counts from after the set is made, which can be slow (14 s
    // under qemu at boot): counted from before, the kernel would hold every
    // ban that much longer than the ledger.
    let now = clock.now();
    let kernel = match backend.list(spec) {
        Ok(k) => k,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ctx(e).into()),
    };
    let plan = reconcile(
        &tx.bans(&spec.name)?,
        Some(&kernel),
        now,
        &backend.capabilities(),
    );
    backend.apply(spec, &plan.changes()).map_err(ctx)?;
    Ok(())
}

/// The backend of `spec`'s set, for a call that builds its kernel objects
/// (create, replace, adopt, sync): refused when the backend cannot build
/// the set's policy, the one place that refusal is made, so an allow-only
/// set never becomes a ban set on a backend that only knows bans.
fn backend_for<'b>(
    backends: &'b dyn BackendProvider,
    spec: &SetSpec,
) -> Result<&'b dyn Backend, BackendError> {
    let backend = backends.backend(spec.backend)?;
    if backend.supports_policy(spec.policy) {
        Ok(backend)
    } else {
        Err(BackendError::new(
            ErrorKind::Unsupported,
            format!("set {}", spec.name),
            format!(
                "the {} backend cannot build an {} set",
                spec.backend, spec.policy
            ),
        ))
    }
}
