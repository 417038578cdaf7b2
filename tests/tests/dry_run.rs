//! `--dry-run`'s backend (core's `DryRunBackend`) over the in-process
//! kernel: the engine plans against the kernel as it is, every write
//! becomes a "would" line, and neither the kernel nor the ledger changes.

use std::sync::Arc;

use banset_core::{
    AddOptions, Allowlist, Backend, BackendError, BackendKind, BackendProvider, BanRequest,
    Capabilities, Changes, DryRunBackend, Engine, KernelEntry, Ledger, ManualClock, SetHealth,
    SetName, SetSpec, Target,
};
use banset_memory::MemoryBackend;

const T0: i64 = 1_700_000_000;

/// The one kernel, seen by the real engine directly and by the dry one
/// through its wrapper.
#[derive(Clone)]
struct Shared(Arc<MemoryBackend>);

impl Backend for Shared {
    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.0.ensure_set(spec)
    }
    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        self.0.health(spec)
    }
    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        self.0.apply(spec, changes)
    }
    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        self.0.list(spec)
    }
    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.0.destroy(spec)
    }
    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        self.0.contains(spec, target)
    }
}

struct One<'a>(&'a dyn Backend);

impl BackendProvider for One<'_> {
    fn backend(&self, _kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        Ok(self.0)
    }
}

fn engine<'a>(
    ledger: &'a mut Ledger,
    backend: &'a One<'a>,
    clock: &'a ManualClock,
    allowlist: &'a Allowlist,
    dry_run: bool,
) -> Engine<'a> {
    Engine {
        ledger,
        backends: backend,
        clock,
        allowlist,
        dry_run,
    }
}

#[test]
fn a_dry_run_plans_against_the_real_kernel_and_changes_nothing() {
    let clock = Arc::new(ManualClock::new(T0));
    let kernel = Shared(Arc::new(MemoryBackend::new(clock.clone())));
    let allow = Allowlist::new();
    let mut ledger = Ledger::open_in_memory().unwrap();
    let spec = SetSpec::new(SetName::new("d").unwrap(), BackendKind::Memory);
    let bans = |addrs: &[&str]| -> Vec<BanRequest> {
        addrs
            .iter()
            .map(|a| BanRequest::new(a.parse().unwrap()))
            .collect()
    };
    let create = AddOptions {
        force: false,
        create_with: Some(spec.clone()),
        ..AddOptions::default()
    };
    let real = One(&kernel);
    engine(&mut ledger, &real, &clock, &allow, false)
        .add(&spec.name, &bans(&["192.0.2.1", "192.0.2.2"]), &create)
        .unwrap();
    let members = |k: &Shared| k.list(&spec).map(|v| v.len()).map_err(|e| e.kind());
    let rows = |l: &mut Ledger| {
        l.read()
            .unwrap()
            .bans_and_unreadable(&spec.name)
            .unwrap()
            .0
            .len()
    };

    let dry = DryRunBackend::new(Box::new(kernel.clone()));
    let dry_one = One(&dry);
    // A set in place: only the new address would be added.
    engine(&mut ledger, &dry_one, &clock, &allow, true)
        .add(&spec.name, &bans(&["192.0.2.3"]), &create)
        .unwrap();
    assert_eq!(
        dry.take_plan(),
        ["would add 1 to set d: 192.0.2.3 (86400 s)"]
    );
    let reports = engine(&mut ledger, &dry_one, &clock, &allow, true)
        .sync(None)
        .unwrap();
    assert!(!reports[0].repaired_objects);
    assert_eq!(dry.take_plan(), Vec::<String>::new());
    assert_eq!((members(&kernel), rows(&mut ledger)), (Ok(2), 2));

    // The kernel lost the set: sync would re-create and refill it.
    kernel.destroy(&spec).unwrap();
    let reports = engine(&mut ledger, &dry_one, &clock, &allow, true)
        .sync(None)
        .unwrap();
    assert!(reports[0].repaired_objects);
    assert_eq!(reports[0].added, 2);
    assert_eq!(
        dry.take_plan(),
        [
            "would create the kernel objects of set d and its blocking rule (memory)",
            "would add 2 to set d: 192.0.2.1 (86400 s), 192.0.2.2 (86400 s)",
        ]
    );
    assert_eq!(
        members(&kernel),
        Err(banset_core::ErrorKind::NotFound),
        "the dry run wrote to the kernel"
    );
    assert_eq!(rows(&mut ledger), 2);
}
