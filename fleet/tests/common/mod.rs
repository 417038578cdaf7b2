//! A fleet on a private PostgreSQL: the schema, hosts with their own
//! credentials, and the psql oracle.

#![allow(dead_code)]

use std::time::Duration;

use banset_fleet::{Admin, ConnectOptions, Credentials, FleetClient, Publish, Pull, Status};
use banset_tests::postgres::TestPostgres;

pub struct Fleet {
    pub pg: TestPostgres,
    pub admin: Admin,
}

impl Fleet {
    /// None (after saying why) when the test must skip.
    pub fn start(test: &str) -> Option<Fleet> {
        if banset_tests::postgres::skip_unless_postgres(test) {
            return None;
        }
        let pg = TestPostgres::start().expect("starting a private PostgreSQL");
        let mut admin = Admin::connect(&ConnectOptions::plain(pg.superuser_dsn())).unwrap();
        admin.init().unwrap();
        Some(Fleet { pg, admin })
    }

    pub fn add_host(&mut self, name: &str) -> Credentials {
        self.admin.add_host(name, None).unwrap()
    }

    pub fn connect(&self, creds: &Credentials) -> FleetClient {
        FleetClient::connect(&self.options(creds)).unwrap()
    }

    pub fn options(&self, creds: &Credentials) -> ConnectOptions {
        ConnectOptions::plain(self.pg.dsn(&creds.role, Some(&creds.password)))
    }

    /// A raw connection as `creds`, for holding a transaction open.
    pub fn raw(&self, creds: &Credentials) -> postgres::Client {
        postgres::Client::connect(
            &self.pg.dsn(&creds.role, Some(&creds.password)),
            postgres::NoTls,
        )
        .unwrap()
    }

    /// psql as `creds`: (success, stdout + stderr).
    pub fn psql(&self, creds: &Credentials, sql: &str) -> (bool, String) {
        let out = self
            .pg
            .psql(&creds.role, Some(&creds.password), sql)
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Moves the rows matching `condition` `age` into the past, as if
    /// written then: with the triggers off (replica role), since the stamp
    /// trigger would set changed_at back to now().
    pub fn age_rows(&self, condition: &str, age: &str) {
        self.psql_super(&format!(
            "SET session_replication_role = replica; \
             UPDATE banset_fleet.bans SET changed_at = changed_at - interval '{age}', \
                 deadline = deadline - interval '{age}' WHERE {condition}"
        ));
    }

    /// psql as the superuser (the oracle's view of the table).
    pub fn psql_super(&self, sql: &str) -> String {
        let out = self.pg.psql("postgres", None, sql).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

pub fn ban(set: &str, target: &str, remaining: Option<Duration>) -> Publish {
    Publish {
        set: set.into(),
        target: target.into(),
        status: Status::Banned { remaining },
        jail: Some("sshd".into()),
        reason: None,
    }
}

pub fn unban(set: &str, target: &str) -> Publish {
    Publish {
        set: set.into(),
        target: target.into(),
        status: Status::Unbanned,
        jail: None,
        reason: None,
    }
}

/// Pulls everything available after `cursor` (pages of `page`), returning
/// the rows and the final cursor; panics on `Expired`.
pub fn pull_all(
    client: &mut FleetClient,
    mut cursor: banset_fleet::Cursor,
    page: usize,
) -> (Vec<banset_fleet::FleetRow>, banset_fleet::Cursor) {
    let mut rows = Vec::new();
    loop {
        match client.pull(cursor, page).unwrap() {
            Pull::Page(p) => {
                cursor = p.cursor;
                let full = p.full;
                rows.extend(p.rows);
                if !full {
                    return (rows, cursor);
                }
            }
            Pull::Expired { horizon } => panic!("cursor {cursor:?} expired (horizon {horizon:?})"),
        }
    }
}
