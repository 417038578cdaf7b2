//! The suite tested against deliberately broken backends: each mutant is the
//! memory backend with one mistake a real backend could make, and the check
//! written for that mistake must fail on it. A check that passes a mutant
//! would pass a broken nftables or pf backend just as quietly.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, KernelEntry, SetHealth,
    SetName, SetSpec, Target,
};
use banset_memory::MemoryBackend;
use banset_tests::conformance;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    MissingSetListsEmpty,
    EnsureSetFlushes,
    ListsNoTimeouts,
    RefreshKeepsOldTimeout,
    PermanentGetsDefaultTimeout,
    DropsIpv6,
    ContainsOnlyExact,
    AcceptsOverlapAsRefresh,
    DelOfAbsentFails,
    IgnoresRemovals,
    FlushDestroys,
    DestroyOfAbsentFails,
    TruncatesBigBatches,
    DropsOtherFamilySilently,
    AppliesHalfABatch,
    ReportsCapWithoutEnforcing,
    FullSetIsOther,
}

/// The memory backend with one bug.
#[derive(Debug)]
struct Mutant {
    inner: MemoryBackend,
    bug: Bug,
}

impl Mutant {
    fn is(&self, bug: Bug) -> bool {
        self.bug == bug
    }

    fn listed(&self, spec: &SetSpec) -> Vec<Target> {
        self.inner
            .list(spec)
            .map(|l| l.into_iter().map(|e| e.target).collect())
            .unwrap_or_default()
    }
}

impl Backend for Mutant {
    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        if self.is(Bug::ReportsCapWithoutEnforcing) {
            caps.max_timeout = Some(Duration::from_secs(3600));
        }
        caps
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        if self.is(Bug::EnsureSetFlushes) {
            self.inner.destroy(spec)?;
        }
        self.inner.ensure_set(spec)
    }

    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        self.inner.health(spec)
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        let mut changes = changes.clone();
        let present = self.listed(spec);
        if self.is(Bug::RefreshKeepsOldTimeout) {
            changes.add.retain(|e| !present.contains(&e.target));
        }
        if self.is(Bug::PermanentGetsDefaultTimeout) {
            for e in &mut changes.add {
                e.timeout = e.timeout.or(Some(Duration::from_secs(86_400)));
            }
        }
        if self.is(Bug::DropsIpv6) {
            changes.add.retain(|e| e.target.addr().is_ipv4());
        }
        if self.is(Bug::AcceptsOverlapAsRefresh) {
            changes.add.retain(|e| {
                !present
                    .iter()
                    .any(|p| p != &e.target && p.overlaps(&e.target))
            });
        }
        if self.is(Bug::DelOfAbsentFails) {
            if let Some(absent) = changes.remove.iter().find(|t| !present.contains(t)) {
                return Err(BackendError::new(
                    ErrorKind::NotFound,
                    format!("del {absent}"),
                    "no such element",
                ));
            }
        }
        if self.is(Bug::IgnoresRemovals) {
            changes.remove.clear();
        }
        if self.is(Bug::TruncatesBigBatches) {
            changes.add.truncate(4096);
        }
        if self.is(Bug::DropsOtherFamilySilently) {
            changes
                .add
                .retain(|e| spec.families.includes(e.target.family()));
        }
        if self.is(Bug::AppliesHalfABatch) {
            if changes.flush_first {
                self.inner.flush(spec)?;
            }
            self.inner.del(spec, &changes.remove)?;
            for e in &changes.add {
                self.inner.add(spec, &[*e])?;
            }
            return Ok(());
        }
        if self.is(Bug::FlushDestroys) && changes.flush_first && changes.is_flush_only() {
            return self.inner.destroy(spec);
        }
        self.inner.apply(spec, &changes).map_err(|e| {
            if self.is(Bug::FullSetIsOther) && e.kind() == ErrorKind::SetFull {
                BackendError::new(ErrorKind::Other, e.context(), e.detail())
            } else {
                e
            }
        })
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        match self.inner.list(spec) {
            Err(e) if self.is(Bug::MissingSetListsEmpty) && e.kind() == ErrorKind::NotFound => {
                Ok(Vec::new())
            }
            Ok(mut listed) if self.is(Bug::ListsNoTimeouts) => {
                listed.iter_mut().for_each(|e| e.timeout = None);
                Ok(listed)
            }
            other => other,
        }
    }

    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        if self.is(Bug::DestroyOfAbsentFails) && self.inner.health(spec)? == SetHealth::Missing {
            return Err(BackendError::new(
                ErrorKind::NotFound,
                format!("destroy {}", spec.name),
                "no such set",
            ));
        }
        self.inner.destroy(spec)
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        if self.is(Bug::ContainsOnlyExact) {
            return self
                .inner
                .list(spec)
                .map(|l| l.iter().any(|e| e.target == *target));
        }
        self.inner.contains(spec, target)
    }
}

/// `Changes::is_empty` aside, the core has no name for "just a flush".
trait FlushOnly {
    fn is_flush_only(&self) -> bool;
}

impl FlushOnly for Changes {
    fn is_flush_only(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
}

/// Each case calls the check directly on a fresh mutant, not through
/// `Check::run`, so the failure is the check's own and not the runner's
/// clean-up tripping over the same bug.
macro_rules! cases {
    ($($bug:ident => $check:ident),* $(,)?) => {
        [$((Bug::$bug, stringify!($check), conformance::$check as fn(&dyn Backend, &SetName))),*]
    };
}

#[test]
fn every_check_fails_on_the_bug_it_is_written_for() {
    let cases = cases![
        MissingSetListsEmpty => missing_set_is_not_found,
        EnsureSetFlushes => ensure_set_is_idempotent,
        ListsNoTimeouts => add_lists_with_its_timeout,
        RefreshKeepsOldTimeout => add_refreshes_the_timeout,
        PermanentGetsDefaultTimeout => permanent_lists_without_timeout,
        DropsIpv6 => ipv4_and_ipv6_hosts,
        ContainsOnlyExact => prefixes_cover_their_addresses,
        AcceptsOverlapAsRefresh => overlapping_prefix_is_refused,
        DelOfAbsentFails => del_of_absent_is_ok,
        IgnoresRemovals => del_removes,
        IgnoresRemovals => apply_removes_then_adds,
        FlushDestroys => flush_empties_but_keeps_the_set,
        DestroyOfAbsentFails => destroy_is_idempotent,
        TruncatesBigBatches => batch_of_ten_thousand,
        DropsOtherFamilySilently => family_outside_spec_is_refused,
        AppliesHalfABatch => failed_batch_changes_nothing,
        ReportsCapWithoutEnforcing => timeout_above_cap_is_refused,
        FullSetIsOther => full_set_refuses_new_members,
    ];
    let set = SetName::new("mutant").unwrap();
    let mut missed = Vec::new();
    for (bug, name, check) in cases {
        let mutant = Mutant {
            inner: MemoryBackend::default(),
            bug,
        };
        let caught = panic::catch_unwind(AssertUnwindSafe(|| check(&mutant, &set))).is_err();
        if !caught {
            missed.push(format!("{name} passed a backend with bug {bug:?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

#[test]
fn run_all_reports_every_failing_check_by_name() {
    let mutant = Mutant {
        inner: MemoryBackend::default(),
        bug: Bug::IgnoresRemovals,
    };
    let payload = panic::catch_unwind(AssertUnwindSafe(|| conformance::run_all(&mutant, "all-")))
        .expect_err("run_all must fail on a backend that ignores removals");
    let message = payload
        .downcast_ref::<String>()
        .expect("run_all panics with a formatted message");
    for name in ["del_removes", "apply_removes_then_adds"] {
        assert!(message.contains(name), "{message}");
    }
    assert!(!message.contains("ipv4_and_ipv6_hosts"), "{message}");
    assert!(message.contains("for backend memory"), "{message}");
}

#[test]
fn run_leaves_no_set_behind_even_when_the_check_fails() {
    let mutant = Mutant {
        inner: MemoryBackend::default(),
        bug: Bug::IgnoresRemovals,
    };
    let check = conformance::check("del_removes");
    assert!(panic::catch_unwind(AssertUnwindSafe(|| check.run(&mutant, "left-"))).is_err());
    let spec = SetSpec::new(check.set_name("left-"), BackendKind::Memory);
    assert_eq!(mutant.health(&spec).unwrap(), SetHealth::Missing);
}

#[test]
fn check_names_are_unique_and_findable() {
    let mut names: Vec<&str> = conformance::CHECKS.iter().map(|c| c.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate check names");
    assert_eq!(conformance::check("del_removes").name, "del_removes");
    assert!(panic::catch_unwind(|| conformance::check("no_such_check")).is_err());
}
