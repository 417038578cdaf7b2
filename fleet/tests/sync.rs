//! `banset_fleet::sync` against a private PostgreSQL, with the in-process
//! kernel: the outbox survives refusals and outages, a pull lands remote
//! bans and saves its cursor, a retention-expired cursor takes the snapshot
//! path, and the link's backoff. The multi-host runs with real kernels are
//! cli/tests/fleet_sync.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use banset_core::fleet::FleetPolicy;
use banset_core::{
    AddOptions, AddRecord, Allowlist, Backend, BackendKind, BanRequest, Engine, FleetPublish,
    Ledger, ManualClock, SetName, SetSpec, Target, Timeout,
};
use banset_fleet::sync::{publish_pending, pull_once, saved_cursor, sync_round, Link, SyncError};
use banset_fleet::FleetError;
use banset_memory::MemoryBackend;
use common::{ban, Fleet};

struct Host {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    kernel: MemoryBackend,
    allowlist: Allowlist,
}

fn ssh() -> SetSpec {
    SetSpec::new(SetName::new("ssh").unwrap(), BackendKind::Memory)
}

impl Host {
    fn new() -> Host {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let clock = Arc::new(ManualClock::new(now));
        let mut h = Host {
            ledger: Ledger::open_in_memory().unwrap(),
            kernel: MemoryBackend::new(clock.clone()),
            clock,
            allowlist: Allowlist::new(),
        };
        h.engine().create(&ssh()).unwrap();
        h
    }

    fn engine(&mut self) -> Engine<'_> {
        Engine {
            ledger: &mut self.ledger,
            backends: &self.kernel,
            clock: &*self.clock,
            allowlist: &self.allowlist,
            dry_run: false,
        }
    }

    /// A local ban published to the fleet (`add --fleet`).
    fn ban_published(&mut self, target: &str) {
        let record = AddRecord {
            fleet: Some(FleetPublish { jail: None }),
            ..AddRecord::default()
        };
        let req = BanRequest {
            timeout: Some(Timeout::Secs(600)),
            ..BanRequest::new(Target::parse(target).unwrap())
        };
        self.engine()
            .add_recorded(&ssh().name, &[req], &AddOptions::default(), &record)
            .unwrap();
    }

    fn pending(&mut self) -> u64 {
        self.ledger.read().unwrap().fleet_outbox_len().unwrap()
    }

    fn kernel(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .kernel
            .list(&ssh())
            .unwrap()
            .into_iter()
            .map(|e| e.target.to_string())
            .collect();
        v.sort();
        v
    }
}

#[test]
fn the_outbox_stays_queued_when_the_engine_refuses_or_is_down() {
    let Some(mut fleet) =
        Fleet::start("the_outbox_stays_queued_when_the_engine_refuses_or_is_down")
    else {
        return;
    };
    let creds = fleet.add_host("a");
    fleet.admin.set_quota("a", 2).unwrap();
    let mut client = fleet.connect(&creds);
    let mut a = Host::new();
    for t in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        a.ban_published(t);
    }
    // Over the quota: the batch commits nothing, nothing is marked sent.
    let e = publish_pending(&mut client, &mut a.ledger).unwrap_err();
    assert!(matches!(e, SyncError::Fleet(FleetError::Quota(_))), "{e}");
    assert_eq!(a.pending(), 3);
    fleet.admin.set_quota("a", 100).unwrap();
    assert_eq!(publish_pending(&mut client, &mut a.ledger).unwrap(), 3);
    assert_eq!(a.pending(), 0);
    // Engine down: the local ban still lands, queued; the error is a
    // disconnect (reconnect, keep it).
    a.ban_published("203.0.113.4");
    fleet.pg.kill().unwrap();
    let e = publish_pending(&mut client, &mut a.ledger).unwrap_err();
    assert!(e.is_disconnect(), "{e}");
    assert_eq!(a.pending(), 1);
    assert_eq!(a.kernel().len(), 4);
    fleet.pg.restart().unwrap();
    let mut link = Link::new(fleet.options(&creds));
    let (sent, _) = sync_round(&mut link, &mut a.engine(), &|h| FleetPolicy::new(h)).unwrap();
    assert_eq!(sent, 1);
    assert_eq!(a.pending(), 0);
}

#[test]
fn a_pull_lands_remote_bans_and_an_expired_cursor_takes_the_snapshot_path() {
    let Some(mut fleet) =
        Fleet::start("a_pull_lands_remote_bans_and_an_expired_cursor_takes_the_snapshot_path")
    else {
        return;
    };
    let (ca, cb) = (fleet.add_host("a"), fleet.add_host("b"));
    let (mut a_client, mut b_client) = (fleet.connect(&ca), fleet.connect(&cb));
    let mut a = Host::new();
    let policy = FleetPolicy::new("a");
    b_client
        .publish(&[ban("ssh", "203.0.113.5", Some(Duration::from_secs(600)))])
        .unwrap();
    // No cursor yet: the first pull is a snapshot.
    let first = pull_once(&mut a_client, &mut a.engine(), &policy).unwrap();
    assert!(first.snapshot);
    assert_eq!(a.kernel(), ["203.0.113.5"]);
    let cursor = saved_cursor(&mut a.ledger).unwrap().unwrap();
    // A delta: b withdraws it, bans another.
    b_client
        .publish(&[
            common::unban("ssh", "203.0.113.5"),
            ban("ssh", "203.0.113.6", None),
        ])
        .unwrap();
    let delta = pull_once(&mut a_client, &mut a.engine(), &policy).unwrap();
    assert!(!delta.snapshot);
    assert_eq!(a.kernel(), ["203.0.113.6"]);
    assert!(saved_cursor(&mut a.ledger).unwrap().unwrap() > cursor);
    // a is away while b withdraws .6 and the engine purges the tombstone:
    // a's cursor is behind the horizon, so it takes a snapshot, which
    // sweeps .6 (not in it) and keeps .7.
    b_client
        .publish(&[
            common::unban("ssh", "203.0.113.6"),
            ban("ssh", "203.0.113.7", None),
        ])
        .unwrap();
    fleet.age_rows("NOT banned", "30 days");
    assert!(b_client.purge().unwrap() >= 1);
    let back = pull_once(&mut a_client, &mut a.engine(), &policy).unwrap();
    assert!(back.snapshot, "{back:?}");
    assert_eq!(a.kernel(), ["203.0.113.7"]);
}

#[test]
fn a_damaged_cursor_is_reset_and_the_next_pull_is_a_snapshot() {
    let Some(mut fleet) = Fleet::start("a_damaged_cursor_is_reset_and_the_next_pull_is_a_snapshot")
    else {
        return;
    };
    let ca = fleet.add_host("a");
    let mut client = fleet.connect(&ca);
    let mut a = Host::new();
    {
        let tx = a.ledger.begin().unwrap();
        tx.set_meta("fleet:cursor", "not a cursor").unwrap();
        tx.commit().unwrap();
    }
    let policy = FleetPolicy::new("a");
    let e = pull_once(&mut client, &mut a.engine(), &policy).unwrap_err();
    assert!(matches!(e, SyncError::BadCursor(_)), "{e}");
    let next = pull_once(&mut client, &mut a.engine(), &policy).unwrap();
    assert!(next.snapshot);
}

#[test]
fn the_link_backs_off_after_a_failed_connect_and_reports_each_state_once() {
    // Nothing listens on this socket directory: every connect fails.
    let mut link = Link::new(banset_fleet::ConnectOptions::plain(
        "host=/nonexistent-banset-test port=1 user=x dbname=x",
    ));
    let e = link.client().err().unwrap();
    assert!(e.is_disconnect(), "{e}");
    assert_eq!(
        link.state_change(),
        Some(banset_fleet::sync::LinkState::Down)
    );
    assert_eq!(link.state_change(), None, "said once");
    // Within the backoff no connect is tried.
    assert!(matches!(link.client(), Err(SyncError::Backoff(_))));
}

#[test]
fn an_unreadable_row_is_counted_and_skipped_and_the_page_still_applies() {
    let Some(mut fleet) =
        Fleet::start("an_unreadable_row_is_counted_and_skipped_and_the_page_still_applies")
    else {
        return;
    };
    let (ca, cb) = (fleet.add_host("a"), fleet.add_host("b"));
    let mut client = fleet.connect(&ca);
    let mut b_client = fleet.connect(&cb);
    let mut a = Host::new();
    let policy = FleetPolicy::new("a");
    pull_once(&mut client, &mut a.engine(), &policy).unwrap();
    // What a newer banset (or a hand in the database) might write.
    let out = fleet.psql_super(
        "INSERT INTO banset_fleet.bans (origin, set_name, target, banned) \
         VALUES ('banset.b', 'ssh', '999.1.1.1', true)",
    );
    assert!(!out.contains("ERROR"), "{out}");
    b_client
        .publish(&[ban("ssh", "203.0.113.30", None)])
        .unwrap();
    let pulled = pull_once(&mut client, &mut a.engine(), &policy).unwrap();
    assert_eq!(pulled.unreadable, 1, "{pulled:?}");
    assert_eq!(a.kernel(), ["203.0.113.30"]);
    let counted = a.ledger.read().unwrap().fleet_suppressed().unwrap();
    assert!(counted.contains(&("unreadable".into(), 1)), "{counted:?}");
}
