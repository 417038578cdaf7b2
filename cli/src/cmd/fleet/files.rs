//! The fleet's files in the state directory (`fleet/`, 0700): the
//! owner's connection (`admin.toml`), this host's credentials
//! (`host.toml`), the engine's CA (`ca.pem`). Secrets: written 0600,
//! through a new file renamed into place, so no reader ever sees half a
//! file or a moment of wider permissions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use banset_fleet::ConnectOptions;
use serde::{Deserialize, Serialize};

use crate::path_trust::{self, Expect};

/// The owner's side, written by `init` and `hub-init`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// The owner's DSN (a superuser or a role that may create roles).
    pub dsn: String,
    /// CA to verify the engine with when connecting by `dsn` (None: plain,
    /// e.g. a unix socket).
    pub ca: Option<PathBuf>,
    /// What other hosts connect to.
    pub public_host: String,
    pub public_port: u16,
    pub dbname: String,
    /// CA handed to hosts in the join line (None: they connect without TLS,
    /// an existing PostgreSQL the admin secures otherwise).
    pub join_ca: Option<PathBuf>,
}

/// This host's side, written by `join`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    pub dsn: String,
    pub ca: Option<PathBuf>,
}

impl AdminFile {
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            dsn: self.dsn.clone(),
            ca_file: self.ca.clone(),
        }
    }
}

impl HostFile {
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            dsn: self.dsn.clone(),
            ca_file: self.ca.clone(),
        }
    }
}

/// `STATE_DIR/fleet`.
#[derive(Debug)]
pub struct FleetDir {
    path: PathBuf,
}

impl FleetDir {
    pub fn new(state_dir: &Path) -> FleetDir {
        FleetDir {
            path: state_dir.join("fleet"),
        }
    }

    pub fn admin_path(&self) -> PathBuf {
        self.path.join("admin.toml")
    }

    pub fn host_path(&self) -> PathBuf {
        self.path.join("host.toml")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.path.join("ca.pem")
    }

    /// The hub's CA key (hub-init only; signs the engine's certificate).
    pub fn ca_key_path(&self) -> PathBuf {
        self.path.join("ca.key")
    }

    pub fn read_admin(&self) -> Result<AdminFile> {
        self.read(
            &self.admin_path(),
            "run `banset fleet init` or `hub-init` on this host first",
        )
    }

    /// None when this host has not joined.
    pub fn read_host(&self) -> Result<Option<HostFile>> {
        if !self.host_path().exists() {
            return Ok(None);
        }
        self.read(&self.host_path(), "").map(Some)
    }

    pub fn has_admin(&self) -> bool {
        self.admin_path().exists()
    }

    pub fn write_admin(&self, file: &AdminFile) -> Result<()> {
        self.write(&self.admin_path(), toml::to_string(file)?.as_bytes())
    }

    pub fn write_host(&self, file: &HostFile) -> Result<()> {
        self.write(&self.host_path(), toml::to_string(file)?.as_bytes())
    }

    /// Writes `bytes` to `path` (in this directory) with mode 0600.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .with_context(|| format!("creating {}", self.path.display()))?;
        let tmp = path.with_extension("new");
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, path: &Path, missing: &str) -> Result<T> {
        if !path.exists() {
            crate::errors::usage!("{} does not exist: {missing}", path.display());
        }
        // Credentials steer where bans come from: only root may have
        // written them (like sshd's StrictModes).
        path_trust::check(path, Expect::File).map_err(anyhow::Error::msg)?;
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{}: not a banset fleet file", path.display()))
    }
}

/// A PEM certificate from the base64 body `add-host` prints (one line):
/// only base64 characters, re-wrapped at 64 columns.
pub fn pem_from_body(body: &str) -> Result<String> {
    let body = body.trim();
    let ok = !body.is_empty()
        && body.len() <= 16_384
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if !ok {
        crate::errors::usage!(
            "--ca-cert: not the base64 of a certificate (as `add-host` prints it)"
        );
    }
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    Ok(pem)
}

/// The base64 body of the first certificate in a PEM file.
pub fn body_from_pem(pem: &str) -> Option<String> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")?;
    let rest = &pem[start + "-----BEGIN CERTIFICATE-----".len()..];
    let end = rest.find("-----END CERTIFICATE-----")?;
    Some(rest[..end].split_whitespace().collect())
}
