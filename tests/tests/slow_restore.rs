//! A restore whose kernel work is slow must still give every ban the time
//! it has left when it enters the kernel. Found by the systemd VM suite:
//! under qemu, re-creating the sets at boot took 13.9 s, and `sync` had
//! taken its "now" before that, so the kernel held each restored ban 14 s
//! longer than the ledger said. `add` creating a set had the same flaw.

use std::sync::Arc;

use banset_core::{
    AddOptions, Allowlist, Backend, BackendError, BackendKind, BackendProvider, BanRequest,
    Capabilities, Changes, Clock as _, Engine, KernelEntry, Ledger, ManualClock, SetHealth,
    SetName, SetSpec, Target, Timeout,
};
use banset_memory::MemoryBackend;

const T0: i64 = 1_700_000_000;
/// How long re-creating the kernel objects takes, on the test's clock.
const SLOW_ENSURE_SECS: i64 = 14;

/// The model kernel, whose `ensure_set` takes [`SLOW_ENSURE_SECS`].
struct SlowToCreate {
    inner: MemoryBackend,
    clock: Arc<ManualClock>,
}

impl Backend for SlowToCreate {
    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.clock.advance(SLOW_ENSURE_SECS);
        self.inner.ensure_set(spec)
    }
    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        self.inner.health(spec)
    }
    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        self.inner.apply(spec, changes)
    }
    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        self.inner.list(spec)
    }
    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.inner.destroy(spec)
    }
    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        self.inner.contains(spec, target)
    }
}

struct Provider<'a>(&'a SlowToCreate);

impl BackendProvider for Provider<'_> {
    fn backend(&self, _kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        Ok(self.0)
    }
}

#[test]
fn restore_after_slow_set_creation_gave_bans_more_time_than_the_ledger() {
    let clock = Arc::new(ManualClock::new(T0));
    let kernel = SlowToCreate {
        inner: MemoryBackend::new(clock.clone()),
        clock: clock.clone(),
    };
    let mut ledger = Ledger::open_in_memory().unwrap();
    let allowlist = Allowlist::new();
    let provider = Provider(&kernel);
    let mut engine = Engine {
        ledger: &mut ledger,
        backends: &provider,
        clock: &*clock,
        allowlist: &allowlist,
        dry_run: false,
    };
    let spec = SetSpec::new(SetName::new("s").unwrap(), BackendKind::Memory);
    let ban = BanRequest {
        timeout: Timeout::from_secs(1_000),
        ..BanRequest::new("192.0.2.1".parse().unwrap())
    };
    let create = AddOptions {
        create_with: Some(spec.clone()),
        ..AddOptions::default()
    };
    engine.add(&spec.name, &[ban], &create).unwrap();
    let bans = engine.ledger.read().unwrap().bans(&spec.name).unwrap();
    let ends = bans[0].deadline.expect("a ban with an end");
    assert_eq!(
        clock.now() + seconds_left(&kernel, &spec),
        ends,
        "a new set: the kernel must end the ban when the ledger does"
    );

    // A reboot 400 s later: the kernel is empty, and sync re-creates it.
    clock.advance(400);
    kernel.inner.wipe();
    let reports = engine.sync(None).unwrap();
    assert!(reports[0].repaired_objects);
    assert_eq!(
        clock.now() + seconds_left(&kernel, &spec),
        ends,
        "the kernel must end the ban when the ledger does"
    );
}

/// The one member's time left, as the kernel holds it.
fn seconds_left(kernel: &SlowToCreate, spec: &SetSpec) -> i64 {
    let members = kernel.inner.list(spec).unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    members[0].timeout.expect("a ban with an end").as_secs() as i64
}
