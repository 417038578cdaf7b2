//! Why a fleet call failed, in words an admin can act on.

use std::path::PathBuf;

/// SQLSTATEs the schema raises itself (schema_v1.sql), so callers can tell a
/// refusal by the engine's rules from a broken connection.
pub(crate) const QUOTA_EXCEEDED: &str = "BF001";
pub(crate) const HOST_REVOKED: &str = "BF002";
pub(crate) const NOT_A_HOST: &str = "BF004";

/// A failed fleet operation.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The DSN does not parse (the message names the part).
    #[error("invalid fleet DSN: {0}")]
    Dsn(String),
    /// The CA file for TLS cannot be read or holds no certificate.
    #[error("TLS CA file {path}: {reason}")]
    Tls { path: PathBuf, reason: String },
    /// The engine could not be reached or the connection broke.
    #[error("fleet engine unreachable: {0}")]
    Connect(#[source] postgres::Error),
    /// This host wrote more rows than its quota (the flood bound).
    #[error("fleet engine refused the write: this host is at its row quota ({0})")]
    Quota(String),
    /// This host's role was revoked by the fleet admin.
    #[error("fleet engine refused the write: this host is revoked ({0})")]
    Revoked(String),
    /// The role is not registered as a fleet host (`banset fleet add-host`).
    #[error("fleet engine refused the write: not a fleet host ({0})")]
    NotAHost(String),
    /// Row-level security or a missing grant refused the statement.
    #[error("fleet engine refused the statement: {0}")]
    Denied(String),
    /// The database holds a newer schema than this banset knows.
    #[error(
        "fleet schema version {found} is newer than this banset's {supported}: upgrade banset"
    )]
    SchemaTooNew { found: i32, supported: i32 },
    /// The database has no fleet schema (`banset fleet init` not run).
    #[error("no fleet schema in this database: run `banset fleet init` first")]
    NoSchema,
    /// A value this host was about to publish is not valid for the fleet.
    #[error("invalid fleet {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// Any other error the engine reported.
    #[error("fleet engine: {0}")]
    Engine(#[source] postgres::Error),
    /// Reading the system's random source (for a password) failed.
    #[error("reading /dev/urandom: {0}")]
    Random(#[source] std::io::Error),
}

impl From<postgres::Error> for FleetError {
    fn from(e: postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // Only a broken socket means "engine unreachable, keep the
            // outbox"; a value that does not convert is this side's bug.
            let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
            return if e.is_closed() || io {
                FleetError::Connect(e)
            } else {
                FleetError::Engine(e)
            };
        };
        let message = db.message().to_owned();
        match db.code().code() {
            QUOTA_EXCEEDED => FleetError::Quota(message),
            HOST_REVOKED => FleetError::Revoked(message),
            NOT_A_HOST => FleetError::NotAHost(message),
            // insufficient_privilege (also RLS WITH CHECK failures).
            "42501" => FleetError::Denied(message),
            // invalid_password, invalid_authorization_specification.
            "28P01" | "28000" => FleetError::Connect(e),
            _ => FleetError::Engine(e),
        }
    }
}
