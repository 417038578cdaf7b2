//! `banset fleet`: set-up of the shared ban engine, glue over banset-fleet
//! (which holds every decision: schema, roles, quotas, revocation). These
//! commands talk to PostgreSQL only, never to a kernel set or the ledger.

pub mod files;
mod hub;
pub mod sync;

use std::io::{BufRead, Read};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use banset_fleet::{Admin, ConnectOptions, Endpoint, FleetClient, InitOutcome};

use crate::args::{
    FleetAddHostArgs, FleetCommand, FleetHostArg, FleetInitArgs, FleetJoinArgs, GlobalArgs,
};
use crate::config::Config;
use crate::context;
use crate::errors::usage;
use files::{AdminFile, FleetDir, HostFile};

pub fn run(global: GlobalArgs, command: FleetCommand) -> Result<Option<i32>> {
    // These two read and write the ledger (outbox, cursor, counters).
    match command {
        FleetCommand::Sync(a) => {
            let mut ctx = crate::context::Context::new(global, true)?;
            return sync::once(&mut ctx, a.snapshot, a.json).map(|()| None);
        }
        FleetCommand::Status(a) => {
            let ctx = crate::context::Context::new(global, false)?;
            return status(ctx, a.json).map(|()| None);
        }
        _ => {}
    }
    let global = &global;
    let config = Config::load(global.config.as_deref())?;
    let dir = FleetDir::new(context::state_dir(global, &config).path());
    match command {
        FleetCommand::Init(a) => init(&dir, a),
        FleetCommand::HubInit(a) => hub::run(&dir, &a),
        FleetCommand::AddHost(a) => add_host(&dir, &a),
        FleetCommand::Join(a) => join(&dir, a),
        FleetCommand::Revoke(a) => revoke(&dir, &a),
        FleetCommand::Sync(_) | FleetCommand::Status(_) => unreachable!("handled above"),
    }?;
    Ok(None)
}

/// `--dsn -` reads the DSN from standard input's first line, so a password
/// never shows in `ps`.
fn read_dsn(arg: String) -> Result<String> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(4096)
        .read_line(&mut line)
        .context("reading the DSN from standard input")?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        usage!("--dsn -: standard input holds no DSN");
    }
    Ok(line)
}

fn init(dir: &FleetDir, a: FleetInitArgs) -> Result<()> {
    let dsn = read_dsn(a.dsn)?;
    if let Some(path) = &a.ca {
        trusted_ca(path)?;
    }
    let (host, port, dbname) = Endpoint::of_dsn(&dsn)?;
    let Some(public_host) = a.public_host.or(host) else {
        usage!("the DSN names no TCP host (a unix socket?): give --public-host, the address the other hosts connect to");
    };
    let endpoint = Endpoint::new(&public_host, a.public_port.unwrap_or(port), &dbname)?;
    let options = ConnectOptions {
        dsn: dsn.clone(),
        ca_file: a.ca.clone(),
    };
    let outcome = Admin::connect(&options)?.init()?;
    // The CA is copied where every later command finds it only once it
    // proved to be the engine's.
    let ca_path = match &a.ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| crate::errors::input_file_error("CA file", path, e))?;
            dir.write(&dir.ca_path(), &pem)?;
            Some(dir.ca_path())
        }
        None => None,
    };
    dir.write_admin(&AdminFile {
        dsn,
        ca: ca_path.clone(),
        public_host: endpoint.host.clone(),
        public_port: endpoint.port,
        dbname: endpoint.dbname.clone(),
        join_ca: ca_path,
    })?;
    println!(
        "fleet schema {} in database {} at {}:{}; next: banset fleet add-host NAME",
        match outcome {
            InitOutcome::Created => "created",
            InitOutcome::AlreadyCurrent => "already current",
        },
        endpoint.dbname,
        endpoint.host,
        endpoint.port
    );
    Ok(())
}

/// The CA decides which engine this host trusts: a file another user could
/// have written is refused (path_trust, like sshd's StrictModes).
fn trusted_ca(path: &Path) -> Result<()> {
    std::fs::metadata(path).map_err(|e| crate::errors::input_file_error("CA file", path, e))?;
    crate::path_trust::check(path, crate::path_trust::Expect::File).map_err(anyhow::Error::msg)
}

fn add_host(dir: &FleetDir, a: &FleetAddHostArgs) -> Result<()> {
    let admin_file = dir.read_admin()?;
    let endpoint = Endpoint::new(
        &admin_file.public_host,
        admin_file.public_port,
        &admin_file.dbname,
    )?;
    let creds = Admin::connect(&admin_file.options())?.add_host(&a.name, a.quota)?;
    let mut line = format!(
        "banset fleet join --dsn '{}'",
        endpoint.dsn(&creds.role, &creds.password)
    );
    if let Some(ca) = &admin_file.join_ca {
        let pem =
            std::fs::read_to_string(ca).with_context(|| format!("reading {}", ca.display()))?;
        let Some(body) = files::body_from_pem(&pem) else {
            anyhow::bail!("{}: no certificate in it", ca.display());
        };
        line.push_str(&format!(" --ca-cert {body}"));
    }
    eprintln!(
        "host {} added; run this on it (it holds the host's password):",
        a.name
    );
    println!("{line}");
    Ok(())
}

fn join(dir: &FleetDir, a: FleetJoinArgs) -> Result<()> {
    let dsn = read_dsn(a.dsn)?;
    let pem = match (&a.ca_cert, &a.ca) {
        (Some(body), _) => Some(files::pem_from_body(body)?.into_bytes()),
        (None, Some(path)) => {
            trusted_ca(path)?;
            Some(
                std::fs::read(path)
                    .map_err(|e| crate::errors::input_file_error("CA file", path, e))?,
            )
        }
        (None, None) => None,
    };
    // Checked against the engine before anything is stored: a wrong line
    // leaves the state directory as it was.
    let check_ca = match &pem {
        Some(pem) => {
            let tmp = dir.ca_path().with_extension("check");
            dir.write(&tmp, pem)?;
            Some(tmp)
        }
        None => None,
    };
    let checked = check_join(&dsn, check_ca.as_deref());
    let (ca, status) = match (check_ca, checked) {
        (Some(tmp), Ok(status)) => {
            std::fs::rename(&tmp, dir.ca_path())
                .with_context(|| format!("renaming to {}", dir.ca_path().display()))?;
            (Some(dir.ca_path()), status)
        }
        (Some(tmp), Err(e)) => {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
        (None, checked) => (None, checked?),
    };
    dir.write_host(&HostFile { dsn, ca })?;
    println!(
        "joined the fleet as {} (PostgreSQL {}, {} hosts, {} active bans); credentials in {}",
        banset_fleet::host_name(&status.role),
        status.server_version,
        status.hosts.len(),
        status.active,
        dir.host_path().display()
    );
    Ok(())
}

fn check_join(dsn: &str, ca: Option<&Path>) -> Result<banset_fleet::EngineStatus> {
    let options = ConnectOptions {
        dsn: dsn.to_owned(),
        ca_file: ca.map(Path::to_path_buf),
    };
    let status = FleetClient::connect(&options)?.status()?;
    if !status.role.starts_with(banset_fleet::HOST_PREFIX) {
        usage!(
            "the DSN logs in as {}, not as a fleet host (banset.NAME): use the line `banset fleet add-host` printed",
            status.role
        );
    }
    Ok(status)
}

fn revoke(dir: &FleetDir, a: &FleetHostArg) -> Result<()> {
    let admin_file = dir.read_admin()?;
    let lifted = Admin::connect(&admin_file.options())?.revoke_host(&a.name)?;
    println!(
        "host {} revoked: it can no longer log in; {lifted} of its bans lifted on every host",
        a.name
    );
    Ok(())
}

/// This host's side of the fleet, from its ledger: what `status` shows
/// even when the engine is down.
fn local_status(ctx: &mut crate::context::Context) -> Result<serde_json::Value> {
    use banset_fleet::sync::{LAST_ERROR_KEY, LAST_SYNC_KEY};
    let l = ctx.fw.ledger.read()?;
    let suppressed: serde_json::Map<String, serde_json::Value> = l
        .fleet_suppressed()?
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    Ok(serde_json::json!({
        "cursor": l.fleet_cursor()?,
        "outbox_pending": l.fleet_outbox_len()?,
        "remote_rows": l.fleet_row_count()?,
        "suppressed": suppressed,
        "last_sync": l.meta(LAST_SYNC_KEY)?.and_then(|v| v.parse::<i64>().ok()),
        "last_error": l.meta(LAST_ERROR_KEY)?,
    }))
}

fn status(mut ctx: crate::context::Context, json: bool) -> Result<()> {
    let dir = FleetDir::new(context::state_dir(&ctx.global, &ctx.config).path());
    let (options, whose) = match dir.read_host()? {
        Some(host) => (host.options(), "this host's credentials"),
        None if dir.has_admin() => (dir.read_admin()?.options(), "the owner's connection"),
        None => usage!(
            "this host is in no fleet: no {} (banset fleet join) and no {} (banset fleet init)",
            dir.host_path().display(),
            dir.admin_path().display()
        ),
    };
    let local = local_status(&mut ctx)?;
    let cursor = local["cursor"]
        .as_str()
        .and_then(banset_fleet::sync::parse_cursor);
    // The engine may be down: this host's side is still worth showing.
    let engine = FleetClient::connect(&options).and_then(|mut c| c.status());
    if json {
        let engine = match &engine {
            Ok(s) => serde_json::json!({
                "server_version": s.server_version,
                "schema_version": s.schema_version,
                "role": s.role,
                "head": {"txid": s.head.txid, "seq": s.head.seq},
                "waiting": s.waiting,
                "active": s.active,
                "retention_secs": s.retention.as_secs(),
                "lag_txids": cursor.map(|c| (s.head.txid - c.txid).max(0)),
                "hosts": s.hosts.iter().map(|h| serde_json::json!({
                    "name": h.name, "rows": h.rows, "quota": h.quota, "revoked": h.revoked,
                })).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        return crate::output::print_json(&serde_json::json!({"engine": engine, "host": local}));
    }
    print_local(&local, cursor);
    let s = engine?;
    println!(
        "engine: PostgreSQL {}, fleet schema {}, as {} ({whose})",
        s.server_version, s.schema_version, s.role
    );
    println!("engine clock: {}", skew(s.now));
    println!(
        "change stream: head {}.{}, {} committed changes waiting behind an open transaction",
        s.head.txid, s.head.seq, s.waiting
    );
    if let Some(c) = cursor {
        println!(
            "this host's lag: {} transactions behind the head",
            (s.head.txid - c.txid).max(0)
        );
    }
    println!(
        "retention of unbans: {} s (a host away longer takes a snapshot); horizon {}.{}",
        s.retention.as_secs(),
        s.horizon.txid,
        s.horizon.seq
    );
    println!("active bans (all hosts): {}", s.active);
    println!("hosts: {}", s.hosts.len());
    for h in &s.hosts {
        println!(
            "  {:<24} {:>8} rows of {:<8}{}",
            h.name,
            h.rows,
            h.quota,
            if h.revoked { " REVOKED" } else { "" }
        );
    }
    Ok(())
}

fn print_local(local: &serde_json::Value, cursor: Option<banset_fleet::Cursor>) {
    match cursor {
        Some(c) => println!("this host's cursor: {}.{}", c.txid, c.seq),
        None => println!("this host's cursor: none yet (the first sync takes a snapshot)"),
    }
    println!(
        "outbox: {} changes waiting to be published",
        local["outbox_pending"]
    );
    println!("remote bans held: {}", local["remote_rows"]);
    let suppressed = local["suppressed"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into());
    println!("remote bans suppressed here: {suppressed}");
    match local["last_sync"].as_i64() {
        Some(t) => println!("last sync: {}", crate::cmd::sets::history::utc_time(t)),
        None => println!("last sync: never"),
    }
    if let Some(e) = local["last_error"].as_str() {
        println!("last error: {e}");
    }
}

/// The engine's clock against this host's (deadlines use the engine's).
fn skew(engine: SystemTime) -> String {
    let local = SystemTime::now();
    let (ahead, by) = match engine.duration_since(local) {
        Ok(d) => (true, d),
        Err(e) => (false, e.duration()),
    };
    if by < Duration::from_secs(1) {
        "in step with this host's".to_owned()
    } else {
        format!(
            "{} s {} this host's (bans are timed by the engine's)",
            by.as_secs(),
            if ahead { "ahead of" } else { "behind" }
        )
    }
}
