//! `Engine::apply_fleet` against the real nftables kernel, in a network
//! namespace of the test's own, checked with `nft -j`:
//! - a host killed between the kernel batch of a page of remote rows and
//!   the ledger commit that saves the cursor: the restart pulls the same
//!   page and applies it again, and ends with every ban once, none lost,
//!   the page's unbans done, one history event per change;
//! - a host whose clock is an hour off: the kernel's remaining times are
//!   the engine's, since a remote row carries time left, not a deadline.
//!
//! The kill is real, as in tests/interrupted.rs: a child process whose
//! backend (banset_tests::dying) aborts right after the kernel took a
//! fleet batch.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use banset_core::fleet::FleetPolicy;
use banset_core::{
    Allowlist, Backend, BackendKind, Clock, Engine, EventKind, FleetPage, FleetRow, Ledger,
    ManualClock, SetName, SetSpec, SystemClock, Target, Timeout,
};
use banset_nftables::NftablesBackend;
use banset_tests::dying::{Call, DiesAfter};
use banset_tests::netns;

/// Set in the child: the ledger's path.
const CHILD_ENV: &str = "BANSET_FLEET_KERNEL_CHILD";

/// This host's name in the fleet: its own rows are skipped.
const ME: &str = "a";

fn set() -> SetName {
    SetName::new("fleet").unwrap()
}

fn spec() -> SetSpec {
    let mut spec = SetSpec::new(set(), BackendKind::Nftables);
    spec.timeout = Timeout::Secs(3600);
    spec
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

/// 203.0.113.0/24 and on: distinct test addresses.
fn addr(i: u32) -> Target {
    let a = (203u32 << 24 | 113 << 8) + i;
    t(&std::net::Ipv4Addr::from(a).to_string())
}

fn ban(origin: &str, target: Target, remaining: Option<u64>) -> FleetRow {
    FleetRow {
        origin: origin.into(),
        set: set(),
        target,
        banned: true,
        remaining,
        by_admin: false,
    }
}

fn unban(origin: &str, target: Target) -> FleetRow {
    FleetRow {
        banned: false,
        ..ban(origin, target, None)
    }
}

fn page(rows: Vec<FleetRow>, cursor: &str) -> FleetPage {
    FleetPage {
        rows,
        cursor: Some(cursor.into()),
        ..FleetPage::default()
    }
}

fn with_engine<R>(
    ledger: &Path,
    backend: &impl Backend,
    clock: &dyn Clock,
    f: impl FnOnce(&mut Engine<'_>) -> R,
) -> R {
    let mut ledger = Ledger::open(ledger).unwrap();
    let allowlist = Allowlist::new();
    let mut engine = Engine {
        ledger: &mut ledger,
        backends: backend,
        clock,
        allowlist: &allowlist,
        dry_run: false,
    };
    f(&mut engine)
}

/// The members of the set in the kernel with their seconds left, from
/// `nft -j` (the oracle), over its v4 and v6 kernel sets.
fn kernel() -> BTreeMap<String, Option<u64>> {
    let out = netns::run("nft", &["-j", "list", "table", "inet", "banset"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut members = BTreeMap::new();
    let mut seen = 0;
    for item in json["nftables"].as_array().unwrap() {
        let name = item["set"]["name"].as_str().unwrap_or_default();
        if !name.starts_with("fleet_") {
            continue;
        }
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            let (val, expires) = match e.get("elem") {
                Some(inner) => (&inner["val"], inner["expires"].as_u64()),
                None => (e, None),
            };
            members.insert(val.as_str().unwrap().to_owned(), expires);
            seen += 1;
        }
    }
    assert_eq!(seen, members.len(), "an element listed twice: {out}");
    members
}

/// The page the child dies applying: new bans from two origins, unbans
/// of some of the first page's, and one ban re-armed longer.
fn second_page() -> FleetPage {
    let mut rows: Vec<FleetRow> = (100..300).map(|i| ban("c", addr(i), Some(900))).collect();
    rows.extend((0..10).map(|i| unban("b", addr(i))));
    rows.push(ban("b", addr(20), Some(1800)));
    page(rows, "c2")
}

/// Not a test of its own: the body of the child the test below kills.
#[test]
fn fleet_apply_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    // nftables, but the process dies right after the kernel took a batch,
    // before the engine can commit ledger and cursor.
    let backend = DiesAfter {
        inner: NftablesBackend::open().unwrap(),
        dies_after: |call| matches!(call, Call::Apply(_)),
    };
    let policy = FleetPolicy::new(ME);
    with_engine(Path::new(&path), &backend, &SystemClock, |e| {
        e.apply_fleet(&second_page(), &policy).map(drop)
    })
    .unwrap();
}

#[test]
fn fleet_apply_killed_between_kernel_and_cursor_is_applied_again_without_duplicates_or_loss() {
    if netns::skip_unless_root("fleet_apply_killed_between_kernel_and_cursor") {
        return;
    }
    netns::in_new_netns(|| {
        let me = std::env::current_exe().unwrap();
        let backend = NftablesBackend::open().unwrap();
        let dir = std::env::temp_dir().join(format!("banset-fleet-kernel-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.db");
        let policy = FleetPolicy::new(ME);
        let first = page(
            (0..50).map(|i| ban("b", addr(i), Some(600))).collect(),
            "c1",
        );
        with_engine(&path, &backend, &SystemClock, |e| {
            e.create(&spec()).unwrap();
            e.apply_fleet(&first, &policy).unwrap();
        });
        assert_eq!(kernel().len(), 50);
        let cursor = |path: &Path| {
            let mut ledger = Ledger::open(path).unwrap();
            let tx = ledger.read().unwrap();
            tx.fleet_cursor().unwrap()
        };
        assert_eq!(cursor(&path).as_deref(), Some("c1"));

        let out = Command::new(&me)
            .args(["--exact", "fleet_apply_child", "--nocapture"])
            .env(CHILD_ENV, &path)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "the child must die after its kernel batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The kill point: the kernel took the page, the ledger did not.
        let killed = kernel();
        assert!(
            killed.contains_key(&addr(150).to_string()),
            "the kernel batch happened: {killed:?}"
        );
        assert_eq!(cursor(&path).as_deref(), Some("c1"), "cursor not saved");
        let ledger_targets = |path: &Path| -> Vec<String> {
            let mut ledger = Ledger::open(path).unwrap();
            let tx = ledger.read().unwrap();
            tx.bans(&set())
                .unwrap()
                .into_iter()
                .map(|b| b.target.to_string())
                .collect()
        };
        assert_eq!(ledger_targets(&path).len(), 50, "nothing committed");

        // The restart: the cursor is still c1, so the same page comes again.
        with_engine(&path, &backend, &SystemClock, |e| {
            e.apply_fleet(&second_page(), &policy).unwrap();
        });
        assert_eq!(cursor(&path).as_deref(), Some("c2"));
        let mut expected: Vec<String> = (10..50)
            .chain(100..300)
            .map(|i| addr(i).to_string())
            .collect();
        expected.sort();
        let now = kernel();
        assert_eq!(now.keys().cloned().collect::<Vec<_>>(), expected, "kernel");
        let mut in_ledger = ledger_targets(&path);
        in_ledger.sort();
        assert_eq!(in_ledger, expected, "ledger");
        // The re-armed ban got the longer time; the others kept theirs.
        assert!(now[&addr(20).to_string()].unwrap() > 1000, "{now:?}");
        assert!(now[&addr(150).to_string()].unwrap() <= 900, "{now:?}");
        // One history event per change: the killed attempt left none.
        let mut ledger = Ledger::open(&path).unwrap();
        let tx = ledger.read().unwrap();
        for (target, bans, unbans) in [(addr(150), 1, 0), (addr(5), 1, 1)] {
            let events = tx.history(&target, 100).unwrap();
            let count = |kind: EventKind| events.iter().filter(|e| e.kind == kind).count();
            assert_eq!(
                (count(EventKind::Ban), count(EventKind::Unban)),
                (bans, unbans),
                "{target}: {events:?}"
            );
        }
        drop(tx);
        drop(ledger);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// A host clock `offset` seconds off the real one.
fn skewed(offset: i64) -> ManualClock {
    ManualClock::new(SystemClock.now() + offset)
}

#[test]
fn fleet_apply_on_a_host_an_hour_off_keeps_the_engines_remaining_times() {
    if netns::skip_unless_root("fleet_apply_on_a_host_an_hour_off") {
        return;
    }
    netns::in_new_netns(|| {
        let backend = NftablesBackend::open().unwrap();
        for offset in [-3600, 3600] {
            let dir = std::env::temp_dir()
                .join(format!("banset-fleet-skew-{offset}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("ledger.db");
            let clock = skewed(offset);
            let policy = FleetPolicy::new(ME);
            let rows = vec![
                ban("b", addr(1), Some(600)),
                ban("b", addr(2), Some(7200)),
                ban("b", addr(3), None),
            ];
            with_engine(&path, &backend, &clock, |e| {
                e.create(&spec()).unwrap();
                e.apply_fleet(&page(rows, "c1"), &policy).unwrap();
            });
            let k = kernel();
            // The engine said 600 and 7200 seconds left: the kernel holds
            // them that long whatever this host's clock says (a few
            // seconds of slack for a loaded machine, never an hour).
            let left = |i| k[&addr(i).to_string()];
            assert!(
                matches!(left(1), Some(s) if (540..=600).contains(&s)),
                "{offset}: {k:?}"
            );
            assert!(
                matches!(left(2), Some(s) if (7140..=7200).contains(&s)),
                "{offset}: {k:?}"
            );
            assert_eq!(left(3), None, "{offset}: permanent: {k:?}");
            // The host's keeper, on its own clock, expires nothing early.
            with_engine(&path, &backend, &clock, |e| {
                e.expire().unwrap();
                e.destroy(&set()).unwrap();
            });
            std::fs::remove_dir_all(&dir).unwrap();
        }
    });
}
