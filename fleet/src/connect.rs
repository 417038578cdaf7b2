//! Opening a connection: the DSN, TLS and the timeouts that keep a dead
//! network from stalling the caller.
//!
//! TLS uses rustls through tokio-postgres-rustls, with the ring provider:
//! no OpenSSL headers at build time and no system trust store: a fleet
//! trusts exactly the CA its hub printed at `join`, nothing else.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::{Client, Config, NoTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::error::FleetError;

/// Bound on connecting (TCP, TLS and authentication), unless the DSN sets
/// `connect_timeout` itself.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a silent peer once connected (TCP_USER_TIMEOUT): an unplugged
/// engine fails a call within this time instead of the kernel's ~15 minutes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one statement on the engine's side.
pub const STATEMENT_TIMEOUT: &str = "60s";

/// How to reach the engine.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// A libpq-style DSN: `host=... port=... user=... password=... dbname=...`
    /// or a `postgresql://` URL.
    pub dsn: String,
    /// The CA that signed the engine's certificate. With it, TLS is
    /// required and verified; without it the connection is plain (a unix
    /// socket or a test).
    pub ca_file: Option<PathBuf>,
}

impl ConnectOptions {
    /// Plain connection (no TLS) to `dsn`.
    pub fn plain(dsn: impl Into<String>) -> ConnectOptions {
        ConnectOptions {
            dsn: dsn.into(),
            ca_file: None,
        }
    }
}

pub(crate) fn connect(options: &ConnectOptions) -> Result<Client, FleetError> {
    let mut config = Config::from_str(&options.dsn).map_err(|e| FleetError::Dsn(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.tcp_user_timeout(IO_TIMEOUT);
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(10));
    config.options(format!("-c statement_timeout={STATEMENT_TIMEOUT}").as_str());
    if config.get_application_name().is_none() {
        config.application_name("banset-fleet");
    }
    let client = match &options.ca_file {
        None => config.connect(NoTls),
        Some(path) => {
            config.ssl_mode(SslMode::Require);
            config.connect(tls_connector(path)?)
        }
    };
    client.map_err(FleetError::Connect)
}

fn tls_connector(path: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, FleetError> {
    let tls_err = |reason: String| FleetError::Tls {
        path: path.to_owned(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| tls_err(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| tls_err(e.to_string()))?;
        roots.add(cert).map_err(|e| tls_err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(tls_err("no certificate in the file".into()));
    }
    // ring is deprecated in rustls for lacking post-quantum key exchange;
    // Debian 12's PostgreSQL (OpenSSL 3.0) offers none either, and ring
    // builds with a C compiler alone where aws-lc needs cmake.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Where a DSN points: what another host needs, with its own role and
/// password, to reach the same database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// A TCP host name or address (a unix socket directory cannot be
    /// shared with other hosts).
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl Endpoint {
    /// The endpoint of `dsn`: its first host (a TCP one; `None` for a
    /// unix socket), port (5432 when absent) and database (the user's name
    /// when absent, as libpq does).
    pub fn of_dsn(dsn: &str) -> Result<(Option<String>, u16, String), FleetError> {
        let config = Config::from_str(dsn).map_err(|e| FleetError::Dsn(e.to_string()))?;
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => Some(host.clone()),
            _ => None,
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let dbname = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_owned();
        Ok((host, port, dbname))
    }

    /// Checks the parts: they go into a DSN without quoting, and a join
    /// line is pasted into a shell.
    pub fn new(host: &str, port: u16, dbname: &str) -> Result<Endpoint, FleetError> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
        };
        if !plain(host) {
            return Err(FleetError::Invalid {
                what: "engine host",
                value: host.chars().take(80).collect(),
                reason: "a host name or IP address (A-Z a-z 0-9 . - : _)",
            });
        }
        crate::validate::database(dbname)?;
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            dbname: dbname.to_owned(),
        })
    }

    /// The DSN a host connects with.
    pub fn dsn(&self, role: &str, password: &str) -> String {
        format!(
            "host={} port={} dbname={} user={role} password={password}",
            self.host, self.port, self.dbname
        )
    }
}
