//! The fleet's set-up and roles, run with a PostgreSQL role that may create
//! roles and owns (or creates) the schema: `banset fleet init`, `add-host`,
//! `revoke`. Hosts never use this.

use std::io::Read;
use std::time::{Duration, Instant};

use postgres::{Client, Transaction};

use crate::connect::{connect, ConnectOptions};
use crate::error::FleetError;
use crate::hosts;
use crate::names::{ADMIN_ROLE, HOST_PREFIX, SCHEMA_VERSION};
use crate::types::HostInfo;
use crate::validate;

const SCHEMA_V1: &str = include_str!("schema_v1.sql");
/// Key of the advisory lock that serialises concurrent `init`s.
const INIT_LOCK: i64 = 0x6261_6e73_6574;
/// Connections one host role may hold: a publisher, a listener, a command.
/// A compromised host cannot exhaust the engine's max_connections.
pub const HOST_CONNECTION_LIMIT: i32 = 4;
/// How long `revoke_host` waits for the host's sessions to end.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);

/// What `init` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyCurrent,
}

/// A login role and its password, to hand to `banset fleet join`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub role: String,
    pub password: String,
}

/// An owner's connection to the engine.
pub struct Admin {
    client: Client,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    pub fn connect(options: &ConnectOptions) -> Result<Admin, FleetError> {
        Ok(Admin {
            client: connect(options)?,
        })
    }

    /// Creates database `name` when it does not exist (a hub's own
    /// `banset` database); true when it was created. Run connected to
    /// another database (`postgres`), then connect to it for `init`.
    pub fn ensure_database(&mut self, name: &str) -> Result<bool, FleetError> {
        validate::database(name)?;
        let exists: bool = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)",
                &[&name],
            )?
            .get(0);
        if exists {
            return Ok(false);
        }
        // CREATE DATABASE cannot run inside a transaction block.
        let statement: String = self
            .client
            .query_one("SELECT format('CREATE DATABASE %I', $1::text)", &[&name])?
            .get(0);
        self.client.batch_execute(&statement)?;
        Ok(true)
    }

    /// Creates the schema, group roles, policies and triggers, once: a
    /// second run finds the version and changes nothing; a newer schema is
    /// refused.
    pub fn init(&mut self) -> Result<InitOutcome, FleetError> {
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK])?;
        let exists: bool = tx
            .query_one("SELECT to_regclass('banset_fleet.meta') IS NOT NULL", &[])?
            .get(0);
        if exists {
            let found: i32 = tx
                .query_one("SELECT version FROM banset_fleet.meta", &[])?
                .get(0);
            if found > SCHEMA_VERSION {
                return Err(FleetError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            tx.commit()?;
            return Ok(InitOutcome::AlreadyCurrent);
        }
        tx.batch_execute(SCHEMA_V1)?;
        tx.commit()?;
        Ok(InitOutcome::Created)
    }

    /// Creates host `name` (role `banset.NAME`, SCRAM password, SELECT,
    /// INSERT and UPDATE on the bans table through its group, a connection
    /// limit and a row quota), or re-enables it with a new password.
    pub fn add_host(&mut self, name: &str, quota: Option<i64>) -> Result<Credentials, FleetError> {
        validate::host(name)?;
        let role = format!("{HOST_PREFIX}{name}");
        let password = random_password()?;
        let mut tx = self.client.transaction()?;
        require_schema(&mut tx)?;
        create_or_enable_login(&mut tx, &role, &password)?;
        exec_format(&mut tx, "GRANT banset_fleet_host TO %I", &role)?;
        exec_format(
            &mut tx,
            &format!("ALTER ROLE %I CONNECTION LIMIT {HOST_CONNECTION_LIMIT}"),
            &role,
        )?;
        tx.execute(
            "INSERT INTO banset_fleet.hosts (origin, quota) \
             VALUES ($1, coalesce($2, (SELECT default_quota FROM banset_fleet.meta))) \
             ON CONFLICT (origin) DO UPDATE SET revoked = false, \
                 quota = coalesce($2, banset_fleet.hosts.quota)",
            &[&role, &quota],
        )?;
        tx.commit()?;
        Ok(Credentials { role, password })
    }

    /// Creates (or resets the password of) the fleet admin login, which may
    /// withdraw any ban everywhere and nothing else.
    pub fn add_admin(&mut self) -> Result<Credentials, FleetError> {
        let password = random_password()?;
        let mut tx = self.client.transaction()?;
        require_schema(&mut tx)?;
        create_or_enable_login(&mut tx, ADMIN_ROLE, &password)?;
        exec_format(&mut tx, "GRANT banset_fleet_admin TO %I", ADMIN_ROLE)?;
        tx.commit()?;
        Ok(Credentials {
            role: ADMIN_ROLE.to_owned(),
            password,
        })
    }

    /// Cuts host `name` off: no more logins, no more privileges, its open
    /// sessions ended, then every ban it published turned into a tombstone
    /// so every host lifts them. Returns how many rows were tombstoned.
    pub fn revoke_host(&mut self, name: &str) -> Result<u64, FleetError> {
        validate::host(name)?;
        let role = format!("{HOST_PREFIX}{name}");
        let mut tx = self.client.transaction()?;
        require_schema(&mut tx)?;
        let known = tx.execute(
            "UPDATE banset_fleet.hosts SET revoked = true WHERE origin = $1",
            &[&role],
        )?;
        if known == 0 {
            return Err(FleetError::Invalid {
                what: "host",
                value: name.to_owned(),
                reason: "is not a fleet host",
            });
        }
        exec_format(&mut tx, "ALTER ROLE %I NOLOGIN", &role)?;
        exec_format(&mut tx, "REVOKE banset_fleet_host FROM %I", &role)?;
        tx.commit()?;
        // Sessions already open keep running until ended; a write they
        // commit after the tombstones would outlive the revocation, so the
        // tombstones come after the last session is gone.
        let deadline = Instant::now() + TERMINATE_WAIT;
        loop {
            let left: i64 = self
                .client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE usename = $1",
                    &[&role],
                )?
                .get(0);
            if left == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(self.client.execute(
            "UPDATE banset_fleet.bans SET banned = false WHERE origin = $1 AND banned",
            &[&role],
        )?)
    }

    /// Sets host `name`'s row quota.
    pub fn set_quota(&mut self, name: &str, quota: i64) -> Result<(), FleetError> {
        validate::host(name)?;
        let role = format!("{HOST_PREFIX}{name}");
        self.client.execute(
            "UPDATE banset_fleet.hosts SET quota = $2 WHERE origin = $1",
            &[&role, &quota],
        )?;
        Ok(())
    }

    /// Sets how long tombstones and ended bans are kept: a host away for
    /// longer catches up by snapshot instead of by delta.
    pub fn set_retention(&mut self, retention: Duration) -> Result<(), FleetError> {
        let millis = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        self.client.execute(
            "UPDATE banset_fleet.meta SET retention = $1::bigint * interval '1 millisecond'",
            &[&millis],
        )?;
        Ok(())
    }

    /// The registered hosts, by name.
    pub fn hosts(&mut self) -> Result<Vec<HostInfo>, FleetError> {
        let mut tx = self.client.transaction()?;
        let hosts = hosts::list(&mut tx)?;
        tx.commit()?;
        Ok(hosts)
    }
}

fn require_schema(tx: &mut Transaction<'_>) -> Result<(), FleetError> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('banset_fleet.meta') IS NOT NULL", &[])?
        .get(0);
    if exists {
        Ok(())
    } else {
        Err(FleetError::NoSchema)
    }
}

/// Runs a statement built by the engine's own `format()` (`%I` quotes an
/// identifier, `%L` a literal): role names and passwords cannot be bind
/// parameters in DDL, and quoting by hand is how injections happen.
fn exec_format(tx: &mut Transaction<'_>, template: &str, arg: &str) -> Result<(), FleetError> {
    let statement: String = tx
        .query_one("SELECT format($1::text, $2::text)", &[&template, &arg])?
        .get(0);
    tx.batch_execute(&statement)?;
    Ok(())
}

fn create_or_enable_login(
    tx: &mut Transaction<'_>,
    role: &str,
    password: &str,
) -> Result<(), FleetError> {
    // SCRAM whatever the server's default: a stolen pg_authid then holds no
    // reusable MD5 hash.
    tx.batch_execute("SET LOCAL password_encryption = 'scram-sha-256'")?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
            &[&role],
        )?
        .get(0);
    let verb = if exists { "ALTER" } else { "CREATE" };
    let statement: String = tx
        .query_one(
            &format!("SELECT format('{verb} ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD %L', $1::text, $2::text)"),
            &[&role, &password],
        )?
        .get(0);
    tx.batch_execute(&statement)?;
    Ok(())
}

/// 32 hex digits of the kernel's randomness (128 bits): safe in a DSN
/// without quoting.
fn random_password() -> Result<String, FleetError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(FleetError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
