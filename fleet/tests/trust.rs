//! A compromised host holds valid credentials of its own: with them it
//! tries to change, delete, truncate or forge other hosts' bans, and to
//! flood the fleet. The engine refuses all of it; the oracle is psql as the
//! superuser. The admin withdraws a ban everywhere; a revoked host is cut
//! off and its bans lifted.

mod common;

use banset_fleet::{Cursor, FleetClient, FleetError, Status, ADMIN_ROLE};
use common::{ban, pull_all, unban, Fleet};

/// Fleet with an honest host `a` that banned 192.0.2.1, and the attacker
/// `m` (its own credentials, nothing more).
fn fleet_with_victim(test: &str) -> Option<(Fleet, banset_fleet::Credentials)> {
    let mut fleet = Fleet::start(test)?;
    let a = fleet.add_host("a");
    fleet
        .connect(&a)
        .publish(&[ban("ssh", "192.0.2.1", None)])
        .unwrap();
    let m = fleet.add_host("m");
    Some((fleet, m))
}

/// The victim's row as the superuser sees it: banned flag and stamp.
fn victim_row(fleet: &Fleet) -> String {
    fleet.psql_super(
        "SELECT origin, banned, txid, seq, changed_by FROM banset_fleet.bans \
         WHERE target = '192.0.2.1'",
    )
}

#[test]
fn another_hosts_credentials_cannot_update_delete_or_truncate() {
    let Some((fleet, m)) =
        fleet_with_victim("another_hosts_credentials_cannot_update_delete_or_truncate")
    else {
        return;
    };
    let before = victim_row(&fleet);
    assert!(before.starts_with("banset.a|t|"), "{before}");

    // UPDATE: row-level security hides the row from the writer: 0 rows.
    let (ok, out) = fleet.psql(
        &m,
        "UPDATE banset_fleet.bans SET banned = false WHERE target = '192.0.2.1' RETURNING 1",
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "", "an update reached another host's row");
    // Not even by rewriting the key onto itself.
    let (ok, out) = fleet.psql(
        &m,
        "UPDATE banset_fleet.bans SET origin = current_user WHERE origin = 'banset.a' RETURNING 1",
    );
    assert!(ok && out.trim().is_empty(), "{out}");
    for (statement, expect) in [
        ("DELETE FROM banset_fleet.bans", "permission denied"),
        ("TRUNCATE banset_fleet.bans", "permission denied"),
        (
            "ALTER TABLE banset_fleet.bans DISABLE ROW LEVEL SECURITY",
            "must be owner",
        ),
        (
            "ALTER TABLE banset_fleet.bans DISABLE TRIGGER USER",
            "must be owner",
        ),
        (
            "UPDATE banset_fleet.meta SET retention = '1 second'",
            "permission denied",
        ),
        (
            "UPDATE banset_fleet.hosts SET quota = 1000000000",
            "permission denied",
        ),
        ("DELETE FROM banset_fleet.hosts", "permission denied"),
        (
            "SELECT setval('banset_fleet.stamp_seq', 1)",
            "permission denied",
        ),
        (
            "SET session_replication_role = replica",
            "permission denied",
        ),
        ("CREATE TABLE banset_fleet.x (i int)", "permission denied"),
    ] {
        let (ok, out) = fleet.psql(&m, statement);
        assert!(!ok, "{statement} succeeded: {out}");
        assert!(out.contains(expect), "{statement}: {out}");
    }
    // Its own delete of nothing it owns changes nothing either.
    assert_eq!(victim_row(&fleet), before);
    assert_eq!(
        fleet.psql_super("SELECT count(*) FROM banset_fleet.bans"),
        "1"
    );
}

#[test]
fn a_forged_origin_or_stamp_is_refused_or_overwritten() {
    let Some((fleet, m)) = fleet_with_victim("a_forged_origin_or_stamp_is_refused_or_overwritten")
    else {
        return;
    };
    let before = victim_row(&fleet);
    // Writing a row in another host's name: refused by the policy.
    let (ok, out) = fleet.psql(
        &m,
        "INSERT INTO banset_fleet.bans (origin, set_name, target, banned) \
         VALUES ('banset.a', 'ssh', '192.0.2.99', true)",
    );
    assert!(!ok && out.contains("row-level security"), "{out}");
    // An upsert onto the victim's key in its name: the same.
    let (ok, out) = fleet.psql(
        &m,
        "INSERT INTO banset_fleet.bans (origin, set_name, target, banned) \
         VALUES ('banset.a', 'ssh', '192.0.2.1', false) \
         ON CONFLICT (origin, set_name, target) DO UPDATE SET banned = false",
    );
    assert!(!ok && out.contains("row-level security"), "{out}");
    assert_eq!(victim_row(&fleet), before);
    // Its own row with a forged author and a stamp far ahead (to jump every
    // reader's cursor past real changes): the trigger writes the truth.
    let (ok, out) = fleet.psql(
        &m,
        "INSERT INTO banset_fleet.bans (set_name, target, banned, changed_by, txid, seq) \
         VALUES ('ssh', '192.0.2.50', true, 'banset_admin', 9000000000000, 9000000000000)",
    );
    assert!(ok, "{out}");
    let row = fleet.psql_super(
        "SELECT origin, changed_by, txid < 9000000000000, seq < 9000000000000 \
         FROM banset_fleet.bans WHERE target = '192.0.2.50'",
    );
    assert_eq!(row, "banset.m|banset.m|t|t");
}

#[test]
fn a_flood_stops_at_the_hosts_quota() {
    let Some((mut fleet, m)) = fleet_with_victim("a_flood_stops_at_the_hosts_quota") else {
        return;
    };
    fleet.admin.set_quota("m", 100).unwrap();
    let mut attacker = fleet.connect(&m);
    let flood: Vec<_> = (0..150)
        .map(|i| ban("ssh", &format!("198.51.100.{i}"), None))
        .collect();
    // All or nothing: the batch over the quota commits no row.
    let err = attacker.publish(&flood).unwrap_err();
    assert!(matches!(err, FleetError::Quota(_)), "{err:?}");
    assert_eq!(
        fleet.psql_super("SELECT count(*) FROM banset_fleet.bans WHERE origin = 'banset.m'"),
        "0"
    );
    // Up to the quota, then refused, one statement at a time too.
    attacker.publish(&flood[..100]).unwrap();
    let err = attacker.publish(&flood[100..101]).unwrap_err();
    assert!(matches!(err, FleetError::Quota(_)), "{err:?}");
    let (ok, out) = fleet.psql(
        &m,
        "INSERT INTO banset_fleet.bans (set_name, target, banned) VALUES ('ssh', '198.51.100.200', true)",
    );
    assert!(!ok && out.contains("quota"), "{out}");
    // Its existing rows still change (an unban is never blocked), and the
    // count the quota checks is the table's.
    attacker.publish(&[unban("ssh", "198.51.100.0")]).unwrap();
    assert_eq!(
        fleet.psql_super(
            "SELECT row_count, (SELECT count(*) FROM banset_fleet.bans WHERE origin = 'banset.m') \
             FROM banset_fleet.hosts WHERE origin = 'banset.m'"
        ),
        "100|100"
    );
    // A role that is no fleet host cannot write at all.
    fleet.psql_super(
        "CREATE ROLE intruder LOGIN PASSWORD 'pw'; GRANT banset_fleet_host TO intruder",
    );
    let intruder = banset_fleet::Credentials {
        role: "intruder".into(),
        password: "pw".into(),
    };
    let err = fleet
        .connect(&intruder)
        .publish(&[ban("ssh", "192.0.2.77", None)])
        .unwrap_err();
    assert!(matches!(err, FleetError::NotAHost(_)), "{err:?}");
}

#[test]
fn a_revoked_host_is_cut_off_and_its_bans_lifted() {
    let Some((mut fleet, m)) = fleet_with_victim("a_revoked_host_is_cut_off_and_its_bans_lifted")
    else {
        return;
    };
    let mut attacker = fleet.connect(&m);
    attacker
        .publish(&[
            ban("ssh", "192.0.2.10", None),
            ban("ssh", "192.0.2.11", None),
        ])
        .unwrap();
    let reader = fleet.add_host("reader");
    let mut reader = fleet.connect(&reader);
    let (_, cursor) = pull_all(&mut reader, Cursor::START, 100);
    // A session the attacker holds open across the revocation.
    let mut open_session = fleet.raw(&m);

    assert_eq!(fleet.admin.revoke_host("m").unwrap(), 2);

    // Its open connection was ended...
    let err = open_session
        .execute(
            "INSERT INTO banset_fleet.bans (set_name, target, banned) VALUES ('ssh', '192.0.2.12', true)",
            &[],
        )
        .unwrap_err();
    assert!(err.is_closed() || err.as_db_error().is_some(), "{err:?}");
    let err = attacker
        .publish(&[ban("ssh", "192.0.2.13", None)])
        .unwrap_err();
    assert!(matches!(err, FleetError::Connect(_)), "{err:?}");
    // ...and it cannot log in again.
    let err = FleetClient::connect(&fleet.options(&m)).unwrap_err();
    assert!(matches!(err, FleetError::Connect(_)), "{err:?}");
    let (ok, out) = fleet.psql(&m, "SELECT 1");
    assert!(!ok && out.contains("not permitted to log in"), "{out}");
    // Every other host learns its bans are over; the honest host's stays.
    let (rows, _) = pull_all(&mut reader, cursor, 100);
    let mut lifted: Vec<_> = rows
        .iter()
        .map(|r| (r.origin.as_str(), r.target.as_str(), r.status.clone()))
        .collect();
    lifted.sort_by(|x, y| x.1.cmp(y.1));
    assert_eq!(
        lifted,
        [
            ("m", "192.0.2.10", Status::Unbanned),
            ("m", "192.0.2.11", Status::Unbanned)
        ]
    );
    assert_eq!(
        fleet.psql_super("SELECT count(*) FROM banset_fleet.bans WHERE banned"),
        "1"
    );
    // Even the owner cannot re-ban in a revoked host's name by mistake.
    let out = fleet.pg.psql(
        "postgres",
        None,
        "UPDATE banset_fleet.bans SET banned = true WHERE origin = 'banset.m'",
    );
    let out = out.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Re-adding the host gives it a new password and its writes back.
    let again = fleet.add_host("m");
    assert_ne!(again.password, m.password);
    fleet
        .connect(&again)
        .publish(&[ban("ssh", "192.0.2.14", None)])
        .unwrap();
}

#[test]
fn the_admin_unbans_everywhere_and_bans_nowhere() {
    let Some((mut fleet, _m)) = fleet_with_victim("the_admin_unbans_everywhere_and_bans_nowhere")
    else {
        return;
    };
    let b = fleet.add_host("b");
    let mut host_b = fleet.connect(&b);
    host_b
        .publish(&[
            ban("ssh", "192.0.2.1", None),
            ban("mail", "192.0.2.1", None),
        ])
        .unwrap();
    let (_, cursor) = pull_all(&mut host_b, Cursor::START, 100);
    let admin = fleet.admin.add_admin().unwrap();
    assert_eq!(admin.role, ADMIN_ROLE);
    let mut admin_client = fleet.connect(&admin);
    // In one set only, then everywhere.
    assert_eq!(
        admin_client
            .unban_everywhere(Some("mail"), "192.0.2.1")
            .unwrap(),
        1
    );
    assert_eq!(admin_client.unban_everywhere(None, "192.0.2.1").unwrap(), 2);
    let (rows, _) = pull_all(&mut host_b, cursor, 100);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.status == Status::Unbanned && r.changed_by == ADMIN_ROLE));
    // The admin role can only lift: no ban, no delete, no new row.
    for statement in [
        "UPDATE banset_fleet.bans SET banned = true",
        "DELETE FROM banset_fleet.bans",
        "INSERT INTO banset_fleet.bans (set_name, target, banned) VALUES ('ssh', '192.0.2.3', true)",
    ] {
        let (ok, out) = fleet.psql(&admin, statement);
        assert!(!ok, "{statement}: {out}");
    }
    // A host cannot unban everywhere: it reaches its own rows only.
    let mut host_b = fleet.connect(&b);
    host_b.publish(&[ban("ssh", "192.0.2.2", None)]).unwrap();
    let a = fleet.add_host("a");
    let mut host_a = fleet.connect(&a);
    host_a.publish(&[ban("ssh", "192.0.2.2", None)]).unwrap();
    assert_eq!(host_b.unban_everywhere(None, "192.0.2.2").unwrap(), 1);
    assert_eq!(
        fleet.psql_super(
            "SELECT origin FROM banset_fleet.bans WHERE target = '192.0.2.2' AND banned"
        ),
        "banset.a"
    );
}
