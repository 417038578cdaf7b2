//! The engine's contract against a real PostgreSQL 15: publish, pull by
//! cursor, snapshot, retention, notifications, restarts.

mod common;

use std::time::Duration;

use banset_fleet::{Cursor, FleetError, InitOutcome, Pull, Status};
use common::{ban, pull_all, unban, Fleet};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn init_twice_changes_nothing() {
    let Some(mut fleet) = Fleet::start("init_twice_changes_nothing") else {
        return;
    };
    assert_eq!(fleet.admin.init().unwrap(), InitOutcome::AlreadyCurrent);
    fleet.psql_super("UPDATE banset_fleet.meta SET version = 99");
    assert!(matches!(
        fleet.admin.init(),
        Err(FleetError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn published_bans_reach_other_hosts_with_engine_time() {
    let Some(mut fleet) = Fleet::start("published_bans_reach_other_hosts_with_engine_time") else {
        return;
    };
    let a = fleet.add_host("a");
    let b = fleet.add_host("b");
    let mut host_a = fleet.connect(&a);
    let mut host_b = fleet.connect(&b);
    let written = host_a
        .publish(&[
            ban("ssh", "192.0.2.1", Some(HOUR)),
            ban("ssh", "2001:db8::/48", None),
        ])
        .unwrap();
    assert_eq!(written, 2);
    let (rows, cursor) = pull_all(&mut host_b, Cursor::START, 100);
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.origin == "a" && r.changed_by == a.role));
    let timed = rows.iter().find(|r| r.target == "192.0.2.1").unwrap();
    let Status::Banned {
        remaining: Some(left),
    } = timed.status
    else {
        panic!("{timed:?}")
    };
    // Computed by the engine from its own now(): within the hour, minus
    // however long the test took (never more than 10 minutes).
    assert!(
        left <= HOUR && left > HOUR - Duration::from_secs(600),
        "{left:?}"
    );
    let permanent = rows.iter().find(|r| r.target == "2001:db8::/48").unwrap();
    assert_eq!(permanent.status, Status::Banned { remaining: None });

    // Publishing the same again is idempotent: no new stamps, no new rows.
    host_a
        .publish(&[
            ban("ssh", "192.0.2.1", Some(HOUR)),
            ban("ssh", "2001:db8::/48", None),
        ])
        .unwrap();
    let (again, _) = pull_all(&mut host_b, cursor, 100);
    assert!(again.is_empty(), "{again:?}");

    // An unban is a tombstone that reaches the others.
    host_a.publish(&[unban("ssh", "192.0.2.1")]).unwrap();
    let (changed, _) = pull_all(&mut host_b, cursor, 100);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].status, Status::Unbanned);
    assert_eq!(
        fleet.psql_super("SELECT count(*) FROM banset_fleet.bans"),
        "2"
    );
}

#[test]
fn pages_follow_each_other_without_gaps() {
    let Some(mut fleet) = Fleet::start("pages_follow_each_other_without_gaps") else {
        return;
    };
    let a = fleet.add_host("a");
    let mut host_a = fleet.connect(&a);
    let batch: Vec<_> = (0..1000)
        .map(|i| ban("ssh", &format!("198.51.{}.{}", i / 256, i % 256), None))
        .collect();
    host_a.publish(&batch).unwrap();
    let (rows, _) = pull_all(&mut host_a, Cursor::START, 64);
    let mut targets: Vec<_> = rows.iter().map(|r| r.target.clone()).collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), 1000);
    assert!(rows.windows(2).all(|w| w[0].stamp < w[1].stamp));
}

/// The note's measured loss: with a plain bigserial as the cursor, a row
/// whose transaction commits after a later-numbered one is skipped for
/// good. Reproduced here on a bare table, then the same interleaving on the
/// fleet's (txid, seq) cursor, which hands out neither row until the older
/// transaction ends, then both.
#[test]
fn out_of_order_commit_loses_nothing() {
    let Some(mut fleet) = Fleet::start("out_of_order_commit_loses_nothing") else {
        return;
    };
    // The naive design, for the record.
    fleet.psql_super("CREATE TABLE naive (id bigserial PRIMARY KEY, v text)");
    let su = fleet.pg.superuser_dsn();
    let mut slow = postgres::Client::connect(&su, postgres::NoTls).unwrap();
    let mut fast = postgres::Client::connect(&su, postgres::NoTls).unwrap();
    let mut slow_tx = slow.transaction().unwrap();
    slow_tx
        .execute("INSERT INTO naive (v) VALUES ('slow')", &[])
        .unwrap();
    fast.execute("INSERT INTO naive (v) VALUES ('fast')", &[])
        .unwrap();
    let naive_cursor = fleet.psql_super("SELECT max(id) FROM naive");
    slow_tx.commit().unwrap();
    let after = fleet.psql_super(&format!(
        "SELECT count(*) FROM naive WHERE id > {naive_cursor}"
    ));
    assert_eq!(after, "0", "the bigserial reader skipped the slow row");
    assert_eq!(fleet.psql_super("SELECT count(*) FROM naive"), "2");

    // The fleet's cursor under the same interleaving.
    let a = fleet.add_host("a");
    let b = fleet.add_host("b");
    let reader = fleet.add_host("reader");
    let mut raw_a = fleet.raw(&a);
    let mut host_b = fleet.connect(&b);
    let mut host_r = fleet.connect(&reader);
    let mut slow_tx = raw_a.transaction().unwrap();
    slow_tx
        .execute(
            "INSERT INTO banset_fleet.bans (set_name, target, banned) VALUES ('ssh', '192.0.2.7', true)",
            &[],
        )
        .unwrap();
    host_b.publish(&[ban("ssh", "192.0.2.9", None)]).unwrap();
    let (seen, cursor) = pull_all(&mut host_r, Cursor::START, 100);
    assert!(
        seen.is_empty(),
        "handed out past an open transaction: {seen:?}"
    );
    // Status says what waits, and why the head does not move.
    let status = host_r.status().unwrap();
    assert_eq!((status.head, status.waiting), (Cursor::START, 1));
    slow_tx.commit().unwrap();
    let status = host_r.status().unwrap();
    assert_eq!(status.waiting, 0);
    assert_eq!(status.active, 2);
    assert_eq!(status.hosts.len(), 3);
    assert_eq!(status.role, reader.role);
    let (seen, _) = pull_all(&mut host_r, cursor, 100);
    let targets: Vec<_> = seen.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["192.0.2.7", "192.0.2.9"]);
}

#[test]
fn snapshot_holds_active_rows_and_a_cursor_to_resume() {
    let Some(mut fleet) = Fleet::start("snapshot_holds_active_rows_and_a_cursor_to_resume") else {
        return;
    };
    let a = fleet.add_host("a");
    let mut host_a = fleet.connect(&a);
    host_a
        .publish(&[
            ban("ssh", "192.0.2.1", None),
            ban("ssh", "192.0.2.2", Some(HOUR)),
            ban("ssh", "192.0.2.3", None),
        ])
        .unwrap();
    host_a.publish(&[unban("ssh", "192.0.2.3")]).unwrap();
    // An ended ban is not active either.
    fleet.psql_super(
        "UPDATE banset_fleet.bans SET deadline = now() - interval '1 minute' WHERE target = '192.0.2.2'",
    );
    let mut pages = Vec::new();
    let cursor = host_a
        .snapshot(1, |rows| {
            pages.push(rows);
            Ok::<_, FleetError>(())
        })
        .unwrap();
    let targets: Vec<_> = pages.iter().flatten().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["192.0.2.1"]);
    assert_eq!(pages.len(), 1);
    // Nothing since the snapshot: the pull after it is empty; a change
    // after it comes.
    let (rows, cursor) = pull_all(&mut host_a, cursor, 100);
    assert!(rows.is_empty(), "{rows:?}");
    host_a.publish(&[ban("ssh", "192.0.2.4", None)]).unwrap();
    let (rows, _) = pull_all(&mut host_a, cursor, 100);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].target, "192.0.2.4");
}

#[test]
fn cursor_older_than_retention_must_snapshot() {
    let Some(mut fleet) = Fleet::start("cursor_older_than_retention_must_snapshot") else {
        return;
    };
    let a = fleet.add_host("a");
    let mut host_a = fleet.connect(&a);
    host_a.publish(&[ban("ssh", "192.0.2.1", None)]).unwrap();
    let (_, away) = pull_all(&mut host_a, Cursor::START, 100);
    host_a.publish(&[ban("ssh", "192.0.2.2", None)]).unwrap();
    host_a.publish(&[unban("ssh", "192.0.2.2")]).unwrap();
    // A reader away before the tombstone, then the tombstone aged out.
    fleet.admin.set_retention(Duration::from_secs(1)).unwrap();
    fleet.age_rows("NOT banned", "1 hour");
    assert_eq!(host_a.purge().unwrap(), 1);
    let Pull::Expired { horizon } = host_a.pull(away, 100).unwrap() else {
        panic!("a cursor behind purged changes must be told to snapshot")
    };
    assert!(horizon > away);
    let mut active = Vec::new();
    let cursor = host_a
        .snapshot(100, |rows| {
            active.extend(rows);
            Ok::<_, FleetError>(())
        })
        .unwrap();
    assert_eq!(active.len(), 1);
    assert!(matches!(host_a.pull(cursor, 100).unwrap(), Pull::Page(_)));
}

#[test]
fn a_commit_wakes_a_listener() {
    let Some(mut fleet) = Fleet::start("a_commit_wakes_a_listener") else {
        return;
    };
    let a = fleet.add_host("a");
    let b = fleet.add_host("b");
    let mut host_b = fleet.connect(&b);
    host_b.listen().unwrap();
    assert!(!host_b.wait_for_change(Duration::from_millis(50)).unwrap());
    let mut host_a = fleet.connect(&a);
    host_a.publish(&[ban("ssh", "192.0.2.1", None)]).unwrap();
    assert!(host_b.wait_for_change(Duration::from_secs(30)).unwrap());
}

#[test]
fn engine_killed_then_restarted_keeps_every_committed_ban() {
    let Some(mut fleet) = Fleet::start("engine_killed_then_restarted_keeps_every_committed_ban")
    else {
        return;
    };
    let a = fleet.add_host("a");
    let mut host_a = fleet.connect(&a);
    let batch: Vec<_> = (0..500)
        .map(|i| ban("ssh", &format!("203.0.113.{}", i % 250), None))
        .collect();
    host_a.publish(&batch[..250]).unwrap();
    fleet.pg.kill().unwrap();
    // The engine is down: a publish fails as a connection error (the
    // publisher keeps its outbox), it does not hang.
    let err = host_a
        .publish(&[ban("ssh", "192.0.2.200", None)])
        .unwrap_err();
    assert!(matches!(err, FleetError::Connect(_)), "{err:?}");
    assert!(host_a.is_closed());
    fleet.pg.restart().unwrap();
    let mut host_a = fleet.connect(&a);
    host_a.publish(&[ban("ssh", "192.0.2.200", None)]).unwrap();
    let (rows, _) = pull_all(&mut host_a, Cursor::START, 1000);
    assert_eq!(rows.len(), 251);
}

#[test]
fn unreachable_engine_fails_within_the_connect_timeout() {
    // A port nothing listens on, in a namespace of its own: refused at once.
    if banset_tests::netns::skip_unless_root("unreachable_engine_fails_within_the_connect_timeout")
    {
        return;
    }
    banset_tests::netns::in_new_netns(|| {
        let options =
            banset_fleet::ConnectOptions::plain("host=127.0.0.1 port=1 user=x password=y dbname=z");
        let err = banset_fleet::FleetClient::connect(&options).unwrap_err();
        assert!(matches!(err, FleetError::Connect(_)), "{err:?}");
    });
}

#[test]
fn invalid_values_are_refused_before_the_engine() {
    let Some(mut fleet) = Fleet::start("invalid_values_are_refused_before_the_engine") else {
        return;
    };
    let a = fleet.add_host("a");
    let mut host_a = fleet.connect(&a);
    for bad in [
        ban("ssh", "not-an-ip", None),
        ban("-x", "192.0.2.1", None),
        ban("ssh", "192.0.2.1/", None),
        ban("ssh", "192.0.2.1", Some(Duration::ZERO)),
    ] {
        let err = host_a
            .publish(&[ban("ssh", "192.0.2.5", None), bad.clone()])
            .unwrap_err();
        assert!(matches!(err, FleetError::Invalid { .. }), "{bad:?}: {err}");
    }
    assert_eq!(
        fleet.psql_super("SELECT count(*) FROM banset_fleet.bans"),
        "0"
    );
    assert!(matches!(
        fleet.admin.add_host("Bad Name", None),
        Err(FleetError::Invalid { .. })
    ));
}

/// A transaction open while a host takes its snapshot commits afterwards:
/// its row is in no snapshot, so the pull after the snapshot must bring it.
#[test]
fn a_commit_during_a_snapshot_comes_with_the_next_pull() {
    let Some(mut fleet) = Fleet::start("a_commit_during_a_snapshot_comes_with_the_next_pull")
    else {
        return;
    };
    let a = fleet.add_host("a");
    let b = fleet.add_host("b");
    fleet
        .connect(&a)
        .publish(&[ban("ssh", "192.0.2.1", None)])
        .unwrap();
    let mut raw_a = fleet.raw(&a);
    let mut open = raw_a.transaction().unwrap();
    open.execute(
        "INSERT INTO banset_fleet.bans (set_name, target, banned) VALUES ('ssh', '192.0.2.2', true)",
        &[],
    )
    .unwrap();
    let mut host_b = fleet.connect(&b);
    let mut seen = Vec::new();
    let cursor = host_b
        .snapshot(100, |rows| {
            seen.extend(rows.into_iter().map(|r| r.target));
            Ok::<_, FleetError>(())
        })
        .unwrap();
    assert_eq!(seen, ["192.0.2.1"]);
    open.commit().unwrap();
    let (rows, _) = pull_all(&mut host_b, cursor, 100);
    let targets: Vec<_> = rows.iter().map(|r| r.target.as_str()).collect();
    assert!(targets.contains(&"192.0.2.2"), "{targets:?}");
}

/// The bug: the row counter behind the quota was updated once per row, so a
/// 5,000-row publish left 5,000 versions of the host's counter row in its
/// transaction and each row walked them all (1,800 rows/s). Counted in
/// the transaction's own statistics: one update per statement now.
#[test]
fn bulk_publish_touches_the_host_counter_once_per_statement() {
    let Some(mut fleet) = Fleet::start("bulk_publish_touches_the_host_counter_once_per_statement")
    else {
        return;
    };
    let a = fleet.add_host("a");
    let (ok, out) = fleet.psql(
        &a,
        "BEGIN; \
         INSERT INTO banset_fleet.bans (set_name, target, banned) \
             SELECT 'ssh', '10.0.' || (i / 256) || '.' || (i % 256), true \
             FROM generate_series(0, 4999) i; \
         SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relid = 'banset_fleet.hosts'::regclass; \
         COMMIT",
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "1", "updates of the host's counter row");
    assert_eq!(
        fleet.psql_super("SELECT row_count FROM banset_fleet.hosts"),
        "5000"
    );
}

/// Many writers whose transactions commit out of order (each holds its
/// transaction open a varying while before committing) and a reader
/// pulling all along: every row arrives, and never behind the cursor the
/// reader had already saved.
#[test]
fn concurrent_writers_committing_out_of_order_lose_nothing() {
    let Some(mut fleet) = Fleet::start("concurrent_writers_committing_out_of_order_lose_nothing")
    else {
        return;
    };
    const WRITERS: usize = 4;
    const ROWS: usize = 60;
    let creds: Vec<_> = (0..WRITERS)
        .map(|w| fleet.add_host(&format!("w{w}")))
        .collect();
    let reader = fleet.add_host("reader");
    let mut host_r = fleet.connect(&reader);
    let writers: Vec<_> = creds
        .iter()
        .enumerate()
        .map(|(w, c)| {
            let mut raw = fleet.raw(c);
            std::thread::spawn(move || {
                for i in 0..ROWS {
                    let mut tx = raw.transaction().unwrap();
                    tx.execute(
                        "INSERT INTO banset_fleet.bans (set_name, target, banned) VALUES ('ssh', $1, true)",
                        &[&format!("10.{w}.0.{i}")],
                    )
                    .unwrap();
                    // 0-12 ms open, different per writer and row, so
                    // later stamps often commit first.
                    std::thread::sleep(Duration::from_millis(((w * 7 + i * 5) % 13) as u64));
                    tx.commit().unwrap();
                }
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = Cursor::START;
    let mut pull_once = |seen: &mut std::collections::HashSet<String>, cursor: &mut Cursor| {
        let Pull::Page(page) = host_r.pull(*cursor, 7).unwrap() else {
            panic!("expired")
        };
        for row in page.rows {
            assert!(
                row.stamp > *cursor,
                "{row:?} arrived behind cursor {cursor:?}"
            );
            seen.insert(row.target);
        }
        *cursor = page.cursor;
    };
    while writers.iter().any(|w| !w.is_finished()) {
        pull_once(&mut seen, &mut cursor);
    }
    for w in writers {
        w.join().unwrap();
    }
    // Everything committed: the rest comes within a bounded number of pulls.
    for _ in 0..1000 {
        if seen.len() == WRITERS * ROWS {
            break;
        }
        pull_once(&mut seen, &mut cursor);
    }
    assert_eq!(seen.len(), WRITERS * ROWS, "rows lost");
}

/// A listener whose engine dies must hear about it (and reconnect), not
/// sleep through its timeouts believing nothing changed.
#[test]
fn a_listener_learns_that_the_engine_died() {
    let Some(mut fleet) = Fleet::start("a_listener_learns_that_the_engine_died") else {
        return;
    };
    let b = fleet.add_host("b");
    let mut host_b = fleet.connect(&b);
    host_b.listen().unwrap();
    fleet.pg.kill().unwrap();
    let mut outcome = Ok(false);
    // Bounded: a few waits, each ending at its timeout at the latest.
    for _ in 0..10 {
        outcome = host_b.wait_for_change(Duration::from_secs(3));
        if outcome.is_err() {
            break;
        }
    }
    assert!(
        matches!(outcome, Err(FleetError::Connect(_))),
        "{outcome:?}"
    );
    assert!(host_b.is_closed());
    fleet.pg.restart().unwrap();
    let mut host_b = fleet.connect(&b);
    host_b.listen().unwrap();
    assert!(!host_b.wait_for_change(Duration::from_millis(10)).unwrap());
}
