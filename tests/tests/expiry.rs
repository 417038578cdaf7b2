//! Expiry where the kernel has none (pf, ipfw): banset's ledger decides
//! when a ban ends and `Engine::expire` (cron's `banset expire`, the
//! daemon's keeper) removes it. Run here against the in-process kernel
//! with pf's and ipfw's capabilities and a manual clock, so "never early,
//! never later than one keeper interval" is checked second by second
//! without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use banset_core::{
    AddOptions, Allowlist, Backend, BackendError, BackendKind, BackendProvider, BanRequest,
    Capabilities, Changes, Engine, ErrorKind, KernelEntry, Ledger, ManualClock, SetHealth, SetName,
    SetSpec, Target, Timeout,
};
use banset_memory::MemoryBackend;

const T0: i64 = 1_700_000_000;

/// What pf and ipfw report: no timeouts, one table for both families,
/// prefixes, no atomic batches (pf also kills states).
fn bsd_caps(kills_states: bool) -> Capabilities {
    Capabilities {
        timeouts: false,
        max_timeout: None,
        prefixes: true,
        mixed_families: true,
        atomic_batches: false,
        kills_states,
    }
}

/// The model kernel, counting the batches each set receives and able to
/// fail one set's changes, as a kernel with a broken table would.
struct Counting {
    inner: MemoryBackend,
    batches: Mutex<HashMap<String, usize>>,
    broken: Mutex<Option<String>>,
    /// Targets whose states were killed, and the one whose kill fails.
    killed: Mutex<Vec<Target>>,
    unkillable: Mutex<Option<Target>>,
}

impl Counting {
    fn batches(&self, set: &str) -> usize {
        self.batches.lock().unwrap().get(set).copied().unwrap_or(0)
    }
}

impl Backend for Counting {
    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.inner.ensure_set(spec)
    }
    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        self.inner.health(spec)
    }
    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        if self.broken.lock().unwrap().as_deref() == Some(spec.name.as_str()) {
            return Err(BackendError::new(
                ErrorKind::Other,
                format!("set {}", spec.name),
                "broken on purpose",
            ));
        }
        *self
            .batches
            .lock()
            .unwrap()
            .entry(spec.name.to_string())
            .or_default() += 1;
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
    fn kill_states(&self, target: &Target) -> Result<(), BackendError> {
        if *self.unkillable.lock().unwrap() == Some(*target) {
            return Err(BackendError::new(
                ErrorKind::Other,
                format!("kill the states of {target}"),
                "pfctl failed on purpose",
            ));
        }
        self.killed.lock().unwrap().push(*target);
        Ok(())
    }
}

struct World {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    kernel: Counting,
    allowlist: Allowlist,
}

struct Provider<'a>(&'a Counting);

impl BackendProvider for Provider<'_> {
    fn backend(&self, _kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        Ok(self.0)
    }
}

impl World {
    fn new(caps: Capabilities) -> World {
        let clock = Arc::new(ManualClock::new(T0));
        World {
            ledger: Ledger::open_in_memory().unwrap(),
            kernel: Counting {
                inner: MemoryBackend::with_capabilities(clock.clone(), caps),
                batches: Mutex::new(HashMap::new()),
                broken: Mutex::new(None),
                killed: Mutex::new(Vec::new()),
                unkillable: Mutex::new(None),
            },
            clock,
            allowlist: Allowlist::new(),
        }
    }

    fn engine<R>(&mut self, f: impl FnOnce(&mut Engine<'_>) -> R) -> R {
        let provider = Provider(&self.kernel);
        let mut engine = Engine {
            ledger: &mut self.ledger,
            backends: &provider,
            clock: &*self.clock,
            allowlist: &self.allowlist,
            dry_run: false,
        };
        f(&mut engine)
    }

    fn ban(&mut self, set: &str, target: &str, secs: u64) {
        let spec = SetSpec::new(SetName::new(set).unwrap(), BackendKind::Memory);
        let req = BanRequest {
            timeout: Timeout::from_secs(secs),
            ..BanRequest::new(target.parse().unwrap())
        };
        self.engine(|e| {
            e.add(
                &spec.name,
                &[req],
                &AddOptions {
                    force: false,
                    create_with: Some(spec.clone()),
                    ..AddOptions::default()
                },
            )
        })
        .unwrap();
    }

    fn in_kernel(&self, set: &str) -> Vec<Target> {
        let spec = SetSpec::new(SetName::new(set).unwrap(), BackendKind::Memory);
        let mut v: Vec<Target> = self
            .kernel
            .list(&spec)
            .unwrap()
            .into_iter()
            .map(|e| {
                assert_eq!(
                    e.timeout, None,
                    "a kernel without timeouts holds without end"
                );
                e.target
            })
            .collect();
        v.sort();
        v
    }
}

/// A keeper ticking every `interval` seconds over bans with assorted
/// deadlines, some renewed (longer) and some re-banned (shorter) on the
/// way: at every second, a ban is in the kernel while its deadline is
/// ahead, and gone at the first tick at or after it.
fn keeper_never_early_never_late(caps: Capabilities, interval: i64) {
    let mut w = World::new(caps);
    // (target, ban seconds, renewal at second, renewal seconds)
    let plan: Vec<(String, u64, i64, u64)> = (0..40u64)
        .map(|i| {
            let target = if i % 5 == 0 {
                format!("2001:db8:{i:x}::/48")
            } else {
                format!("198.51.100.{i}")
            };
            (
                target,
                30 + i * 17 % 400,
                (i * 7 % 300) as i64,
                i * 13 % 500 + 1,
            )
        })
        .collect();
    let mut deadline: HashMap<Target, i64> = HashMap::new();
    for (target, secs, _, _) in &plan {
        w.ban("keeper", target, *secs);
        deadline.insert(target.parse().unwrap(), T0 + *secs as i64);
    }
    let mut last_tick = T0;
    for second in 1..=1_200 {
        w.clock.set(T0 + second);
        let now = T0 + second;
        for (target, _, renew_at, renew_secs) in &plan {
            let t: Target = target.parse().unwrap();
            if *renew_at == second && deadline[&t] > now {
                // fail2ban bans a returning offender again; the longest ban
                // wins, so a shorter re-ban keeps the old deadline.
                w.ban("keeper", target, *renew_secs);
                let d = deadline.get_mut(&t).unwrap();
                *d = (*d).max(now + *renew_secs as i64);
            }
        }
        if second % interval == 0 {
            let before = w.kernel.batches("keeper");
            let expired = w.engine(|e| e.expire()).unwrap();
            let due = deadline
                .values()
                .filter(|&&d| d <= now && d > last_tick)
                .count();
            match expired.as_slice() {
                [] => assert_eq!(due, 0, "second {second}: {due} bans were due"),
                [(set, removed)] => {
                    assert_eq!(set.as_str(), "keeper");
                    assert_eq!(removed.len(), due, "second {second}");
                    assert_eq!(
                        w.kernel.batches("keeper"),
                        before + 1,
                        "every due ban of a set goes in one batch"
                    );
                }
                more => panic!("one set, several reports: {more:?}"),
            }
            last_tick = now;
        }
        let held = w.in_kernel("keeper");
        for (t, d) in &deadline {
            let present = held.contains(t);
            if now < *d {
                assert!(
                    present,
                    "second {second}: {t} vanished before its deadline {d}"
                );
            } else if now - d >= interval {
                assert!(
                    !present,
                    "second {second}: {t} outlived its deadline {d} by more than {interval} s"
                );
            }
        }
    }
    assert!(w.in_kernel("keeper").is_empty(), "every ban has ended");
}

#[test]
fn pf_like_kernel_keeper_every_minute() {
    keeper_never_early_never_late(bsd_caps(true), 60);
}

#[test]
fn ipfw_like_kernel_keeper_every_ten_seconds() {
    keeper_never_early_never_late(bsd_caps(false), 10);
}

#[test]
fn sync_restores_a_flushed_or_rebooted_kernel_with_what_is_left() {
    let mut w = World::new(bsd_caps(true));
    w.ban("pf", "192.0.2.1", 100);
    w.ban("pf", "2001:db8::1", 1_000);
    w.ban("pf", "198.51.100.0/24", 10_000);
    w.clock.advance(500);
    // `pfctl -F all`, or a reboot: the tables are gone.
    w.kernel.inner.wipe();
    let reports = w.engine(|e| e.sync(None)).unwrap();
    assert!(reports[0].repaired_objects);
    assert_eq!((reports[0].added, reports[0].expired), (2, 1));
    let want: Vec<Target> = ["198.51.100.0/24", "2001:db8::1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(w.in_kernel("pf"), want);
    // The restored bans still end on time.
    w.clock.advance(500);
    w.engine(|e| e.expire()).unwrap();
    assert_eq!(w.in_kernel("pf"), want[..1]);
}

#[test]
fn a_broken_set_does_not_keep_other_sets_bans_past_their_deadline() {
    let mut w = World::new(bsd_caps(false));
    w.ban("a", "192.0.2.1", 60);
    w.ban("b", "192.0.2.2", 60);
    w.ban("c", "192.0.2.3", 60);
    w.clock.advance(60);
    *w.kernel.broken.lock().unwrap() = Some("b".into());
    let e = w.engine(|e| e.expire()).unwrap_err();
    assert!(e.to_string().contains("expire b"), "{e}");
    assert!(w.in_kernel("a").is_empty() && w.in_kernel("c").is_empty());
    // The broken set kept its ban in kernel and ledger, for the next run.
    assert_eq!(w.in_kernel("b").len(), 1);
    *w.kernel.broken.lock().unwrap() = None;
    let expired = w.engine(|e| e.expire()).unwrap();
    assert_eq!(expired.len(), 1);
    assert!(w.in_kernel("b").is_empty());
}

/// pf's state killing is an option of the ban, passed with the add; a
/// state that could not be killed is a warning in the report, for the
/// caller to show (it was printed by the pf backend itself, so a program
/// using the library could neither see nor silence it), and the bans stand.
#[test]
fn an_unkillable_state_is_a_warning_of_the_add_not_backend_output() {
    let mut w = World::new(bsd_caps(true));
    let spec = SetSpec::new(SetName::new("kill").unwrap(), BackendKind::Memory);
    let (a, b): (Target, Target) = (
        "192.0.2.5".parse().unwrap(),
        "198.51.100.0/24".parse().unwrap(),
    );
    *w.kernel.unkillable.lock().unwrap() = Some(b);
    let add = |w: &mut World, kill_states: bool| {
        w.engine(|e| {
            e.add(
                &spec.name,
                &[BanRequest::new(a), BanRequest::new(b)],
                &AddOptions {
                    create_with: Some(spec.clone()),
                    kill_states,
                    ..AddOptions::default()
                },
            )
        })
        .unwrap()
    };
    let report = add(&mut w, false);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(w.kernel.killed.lock().unwrap().is_empty(), "not asked for");
    let report = add(&mut w, true);
    assert_eq!(*w.kernel.killed.lock().unwrap(), [a]);
    assert_eq!(
        report.warnings,
        ["memory: could not kill the states of 198.51.100.0/24: kill the states of 198.51.100.0/24: pfctl failed on purpose"]
    );
    assert_eq!(w.in_kernel("kill"), [a, b], "the bans stand");
}
