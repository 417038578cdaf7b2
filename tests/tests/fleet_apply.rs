//! The fleet's host side in the core, against the in-process kernel:
//! `Engine::apply_fleet` (remote rows to ledger and kernel under the local
//! policy), the outbox written in the local ban's transaction, and the
//! hold of a local unban. The PostgreSQL side is `cli/tests/fleet.rs`.

use std::sync::Arc;

use banset_core::fleet::FleetPolicy;
use banset_core::{
    AddOptions, AddRecord, Allowlist, Backend, BackendKind, BanRequest, Engine, FleetPage,
    FleetPublish, FleetRow, Ledger, ManualClock, SetName, SetSpec, Target, Timeout,
};
use banset_memory::MemoryBackend;

const T0: i64 = 1_800_000_000;

struct Host {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    kernel: MemoryBackend,
    allowlist: Allowlist,
    policy: FleetPolicy,
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn ssh() -> SetSpec {
    SetSpec::new(SetName::new("ssh").unwrap(), BackendKind::Memory)
}

fn row(origin: &str, target: &str, remaining: Option<u64>) -> FleetRow {
    FleetRow {
        origin: origin.into(),
        set: ssh().name,
        target: t(target),
        banned: true,
        remaining,
        by_admin: false,
    }
}

fn unban(origin: &str, target: &str) -> FleetRow {
    FleetRow {
        banned: false,
        ..row(origin, target, None)
    }
}

fn page(rows: Vec<FleetRow>, cursor: &str) -> FleetPage {
    FleetPage {
        rows,
        snapshot: None,
        cursor: Some(cursor.into()),
        unreadable: 0,
    }
}

impl Host {
    fn new() -> Host {
        let clock = Arc::new(ManualClock::new(T0));
        let mut host = Host {
            ledger: Ledger::open_in_memory().unwrap(),
            kernel: MemoryBackend::new(clock.clone()),
            clock,
            allowlist: Allowlist::new()
                .with_host_addresses([t("192.0.2.10")])
                .with_ignored([t("198.51.100.7")], "banset.toml"),
            policy: FleetPolicy::new("a"),
        };
        host.engine(false).create(&ssh()).unwrap();
        host
    }

    fn engine(&mut self, dry_run: bool) -> Engine<'_> {
        Engine {
            ledger: &mut self.ledger,
            backends: &self.kernel,
            clock: &*self.clock,
            allowlist: &self.allowlist,
            dry_run,
        }
    }

    fn apply(&mut self, page: &FleetPage) -> banset_core::FleetApplied {
        let policy = self.policy.clone();
        self.engine(false).apply_fleet(page, &policy).unwrap()
    }

    /// (target, seconds left) in the kernel, sorted.
    fn kernel(&self) -> Vec<(String, Option<u64>)> {
        let mut v: Vec<_> = self
            .kernel
            .list(&ssh())
            .unwrap()
            .into_iter()
            .map(|e| (e.target.to_string(), e.timeout.map(|d| d.as_secs())))
            .collect();
        v.sort();
        v
    }

    fn cursor(&mut self) -> Option<String> {
        self.ledger.read().unwrap().fleet_cursor().unwrap()
    }
}

#[test]
fn a_remote_ban_reaches_the_kernel_with_its_time_and_own_rows_are_skipped() {
    let mut h = Host::new();
    let done = h.apply(&page(
        vec![
            row("b", "203.0.113.5", Some(600)),
            row("a", "203.0.113.9", None),
        ],
        "c1",
    ));
    assert_eq!(done.banned, 1);
    assert_eq!(h.kernel(), vec![("203.0.113.5".into(), Some(600))]);
    assert_eq!(h.cursor().as_deref(), Some("c1"));
    let ban = h
        .ledger
        .read()
        .unwrap()
        .ban(&ssh().name, &t("203.0.113.5"))
        .unwrap();
    assert_eq!(ban.unwrap().reason.as_deref(), Some("fleet b"));
}

#[test]
fn one_origins_unban_leaves_anothers_ban_in_place() {
    let mut h = Host::new();
    h.apply(&page(
        vec![
            row("b", "203.0.113.5", Some(900)),
            row("c", "203.0.113.5", Some(300)),
        ],
        "c1",
    ));
    assert_eq!(h.kernel(), vec![("203.0.113.5".into(), Some(900))]);
    // The longer one withdrawn: the shorter one holds, with its own time.
    h.apply(&page(vec![unban("b", "203.0.113.5")], "c2"));
    assert_eq!(h.kernel(), vec![("203.0.113.5".into(), Some(300))]);
    h.apply(&page(vec![unban("c", "203.0.113.5")], "c3"));
    assert_eq!(h.kernel(), vec![]);
}

#[test]
fn a_remote_unban_never_removes_a_local_ban() {
    let mut h = Host::new();
    let req = BanRequest {
        timeout: Some(Timeout::Secs(100)),
        ..BanRequest::new(t("203.0.113.5"))
    };
    h.engine(false)
        .add(&ssh().name, &[req], &AddOptions::default())
        .unwrap();
    h.apply(&page(vec![row("b", "203.0.113.5", Some(900))], "c1"));
    assert_eq!(h.kernel(), vec![("203.0.113.5".into(), Some(900))]);
    h.apply(&page(vec![unban("b", "203.0.113.5")], "c2"));
    assert_eq!(h.kernel().len(), 1, "the local ban stands");
}

#[test]
fn own_address_allowlisted_inside_a_prefix_and_too_wide_never_reach_the_kernel() {
    let mut h = Host::new();
    let done = h.apply(&page(
        vec![
            row("b", "192.0.2.10", Some(60)),
            row("b", "198.51.100.0/24", Some(60)),
            row("b", "203.0.0.0/16", Some(60)),
            row("b", "127.0.0.1", Some(60)),
        ],
        "c1",
    ));
    assert_eq!(h.kernel(), vec![]);
    assert_eq!(done.suppressed.get("own_address"), Some(&1));
    assert_eq!(done.suppressed.get("allowlisted"), Some(&2));
    assert_eq!(done.suppressed.get("too_wide"), Some(&1));
    let counted = h.ledger.read().unwrap().fleet_suppressed().unwrap();
    assert!(counted.contains(&("allowlisted".into(), 2)), "{counted:?}");
}

#[test]
fn a_local_unban_of_a_fleet_ban_holds_until_that_ban_ends() {
    let mut h = Host::new();
    h.apply(&page(vec![row("b", "203.0.113.5", Some(600))], "c1"));
    h.engine(false)
        .del(&ssh().name, &[t("203.0.113.5")])
        .unwrap();
    assert_eq!(h.kernel(), vec![]);
    // The same ban again (a re-assert) or another origin's: held.
    let done = h.apply(&page(
        vec![
            row("b", "203.0.113.5", Some(590)),
            row("c", "203.0.113.5", Some(60)),
        ],
        "c2",
    ));
    assert_eq!(done.suppressed.get("held"), Some(&2));
    assert_eq!(h.kernel(), vec![]);
    // After the deadline the hold is over.
    h.clock.advance(601);
    h.apply(&page(vec![row("c", "203.0.113.5", Some(60))], "c3"));
    assert_eq!(h.kernel(), vec![("203.0.113.5".into(), Some(60))]);
}

#[test]
fn a_snapshot_sweeps_fleet_bans_not_in_it() {
    let mut h = Host::new();
    h.apply(&page(
        vec![
            row("b", "203.0.113.5", Some(600)),
            row("b", "203.0.113.6", Some(600)),
        ],
        "c1",
    ));
    let policy = h.policy.clone();
    let generation = h.engine(false).begin_fleet_snapshot().unwrap();
    let snapshot = FleetPage {
        snapshot: Some(generation),
        ..page(vec![row("c", "203.0.113.6", Some(300))], "s1")
    };
    h.apply(&FleetPage {
        cursor: None,
        ..snapshot
    });
    h.engine(false)
        .finish_fleet_snapshot(generation, "s1")
        .unwrap();
    // 203.0.113.6: b's row is gone with the sweep, c's holds it.
    assert_eq!(h.kernel(), vec![("203.0.113.6".into(), Some(300))]);
    assert_eq!(h.cursor().as_deref(), Some("s1"));
    let _ = policy;
}

/// Regression: the first snapshot page cleared every remote row, so the
/// bans of later pages left the kernel until their page came, and for
/// good if the host stopped between pages.
#[test]
fn snapshot_first_page_keeps_bans_of_later_pages() {
    let mut h = Host::new();
    h.apply(&page(
        vec![
            row("b", "203.0.113.5", Some(600)),
            row("b", "203.0.113.6", Some(600)),
        ],
        "c1",
    ));
    let generation = h.engine(false).begin_fleet_snapshot().unwrap();
    h.apply(&FleetPage {
        rows: vec![row("b", "203.0.113.5", Some(590))],
        snapshot: Some(generation),
        cursor: None,
        unreadable: 0,
    });
    // The second page (with .6) has not come yet: .6 stays banned.
    assert_eq!(h.kernel().len(), 2, "{:?}", h.kernel());
    assert_eq!(
        h.cursor().as_deref(),
        Some("c1"),
        "no cursor before the sweep"
    );
    h.apply(&FleetPage {
        rows: vec![row("b", "203.0.113.6", Some(590))],
        snapshot: Some(generation),
        cursor: None,
        unreadable: 0,
    });
    h.engine(false)
        .finish_fleet_snapshot(generation, "s1")
        .unwrap();
    assert_eq!(h.kernel().len(), 2);
}

/// Regression: a jail's ban of a target the fleet had banned kept the
/// fleet's reason, so the other host's unban lifted the local ban.
#[test]
fn local_ban_over_fleet_ban_survives_the_remote_unban() {
    let mut h = Host::new();
    h.apply(&page(vec![row("b", "203.0.113.5", Some(600))], "c1"));
    // A local ban with no comment (a jail's, or `banset add`).
    h.engine(false)
        .add(
            &ssh().name,
            &[BanRequest {
                timeout: Some(Timeout::Secs(100)),
                ..BanRequest::new(t("203.0.113.5"))
            }],
            &AddOptions::default(),
        )
        .unwrap();
    h.apply(&page(vec![unban("b", "203.0.113.5")], "c2"));
    assert_eq!(h.kernel().len(), 1, "the local ban stands");
}

#[test]
fn the_fleet_admins_withdrawal_of_our_own_ban_lifts_it_here_and_stops_publishing_it() {
    let mut h = Host::new();
    let record = AddRecord {
        fleet: Some(FleetPublish { jail: None }),
        ..AddRecord::default()
    };
    h.engine(false)
        .add_recorded(
            &ssh().name,
            &[BanRequest::new(t("203.0.113.5"))],
            &AddOptions::default(),
            &record,
        )
        .unwrap();
    let withdrawn = FleetRow {
        by_admin: true,
        ..unban("a", "203.0.113.5")
    };
    // Our own tombstone written by ourselves changes nothing.
    h.apply(&page(vec![unban("a", "203.0.113.5")], "c1"));
    assert_eq!(h.kernel().len(), 1);
    h.apply(&page(vec![withdrawn], "c2"));
    assert_eq!(h.kernel(), vec![]);
    let l = h.ledger.read().unwrap();
    assert_eq!(l.fleet_pending(10).unwrap(), vec![]);
    assert_eq!(
        l.fleet_reassert(T0).unwrap(),
        0,
        "nothing left to re-assert"
    );
}

#[test]
fn crash_between_kernel_apply_and_cursor_save_applies_again_without_duplicates() {
    let mut h = Host::new();
    h.apply(&page(vec![row("b", "203.0.113.4", Some(600))], "c1"));
    let next = page(
        vec![
            row("b", "203.0.113.5", Some(600)),
            unban("b", "203.0.113.4"),
        ],
        "c2",
    );
    // A dry run is the crash: the kernel took the batch, the ledger and
    // its cursor rolled back.
    let policy = h.policy.clone();
    h.engine(true).apply_fleet(&next, &policy).unwrap();
    assert_eq!(h.cursor().as_deref(), Some("c1"));
    assert_eq!(h.kernel(), vec![("203.0.113.5".into(), Some(600))]);
    // The restart pulls the same page after c1 and applies it again.
    h.apply(&next);
    assert_eq!(h.cursor().as_deref(), Some("c2"));
    assert_eq!(h.kernel(), vec![("203.0.113.5".into(), Some(600))]);
    let bans = h.ledger.read().unwrap().bans(&ssh().name).unwrap();
    assert_eq!(bans.len(), 1);
}

#[test]
fn a_published_ban_is_in_the_outbox_of_its_own_transaction_and_a_refused_one_is_not() {
    let mut h = Host::new();
    let record = AddRecord {
        fleet: Some(FleetPublish {
            jail: Some("sshd".into()),
        }),
        ..AddRecord::default()
    };
    let req = |s| BanRequest {
        timeout: Some(Timeout::Secs(600)),
        ..BanRequest::new(t(s))
    };
    h.engine(false)
        .add_recorded(
            &ssh().name,
            &[req("203.0.113.5")],
            &AddOptions::default(),
            &record,
        )
        .unwrap();
    h.engine(false)
        .add_recorded(
            &ssh().name,
            &[req("192.0.2.10")],
            &AddOptions::default(),
            &record,
        )
        .unwrap_err();
    let pending = h.ledger.read().unwrap().fleet_pending(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].deadline, Some(T0 + 600));
    assert_eq!(pending[0].jail.as_deref(), Some("sshd"));
    // A local unban withdraws it, coalesced into the same row.
    h.engine(false)
        .del(&ssh().name, &[t("203.0.113.5")])
        .unwrap();
    let pending = h.ledger.read().unwrap().fleet_pending(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert!(!pending[0].banned);
}

/// Regression: a remote ban of a set that is allow-only on this host went
/// into it, letting the banned address in.
#[test]
fn a_remote_ban_never_enters_an_allow_only_set() {
    let mut h = Host::new();
    let mut home = SetSpec::new(SetName::new("home").unwrap(), BackendKind::Memory);
    home.policy = banset_core::SetPolicy::AllowOnly;
    home.hook.as_mut().unwrap().ports = banset_core::PortRange::parse_list("22").unwrap();
    h.engine(false).create(&home).unwrap();
    let done = h.apply(&page(
        vec![FleetRow {
            set: home.name.clone(),
            ..row("b", "203.0.113.5", Some(600))
        }],
        "c1",
    ));
    assert_eq!(done.suppressed.get("allow_only"), Some(&1));
    assert!(h.kernel.list(&home).unwrap().is_empty());
}
