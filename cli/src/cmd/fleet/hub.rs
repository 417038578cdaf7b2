//! `banset fleet hub-init`: a PostgreSQL cluster of banset's own on this
//! host, made with Debian's postgresql-common (`pg_createcluster`), so it
//! sits beside any other cluster without touching it: its own name, port,
//! data directory and configuration. Then TLS (a CA of the fleet's own
//! and a server certificate for the listen address), an authentication
//! file that admits fleet roles over TLS with SCRAM only and the owner
//! through the local socket by peer, the `banset` database and schema.
//!
//! Every program runs by argv, never through a shell. Re-running it on a
//! cluster banset made reuses it (the schema step is idempotent); a
//! cluster of the same name banset did not make is refused.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use banset_fleet::{Admin, ConnectOptions, InitOutcome};

use super::files::{AdminFile, FleetDir};
use crate::args::FleetHubInitArgs;
use crate::errors::usage;

/// The PostgreSQL major version Debian 12 ships.
const VERSION: &str = "15";
/// The database the fleet lives in.
const DATABASE: &str = "banset";
/// Marks a cluster banset made (in its configuration directory).
const MARKER: &str = "banset-hub";
/// Bound on the cluster accepting connections after its start.
const START_WAIT: Duration = Duration::from_secs(60);

pub fn run(dir: &FleetDir, a: &FleetHubInitArgs) -> Result<()> {
    let cluster = a.cluster.as_str();
    let plain = !cluster.is_empty()
        && cluster.len() <= 30
        && cluster
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plain || cluster == "main" {
        usage!("--cluster {cluster:?}: 1-30 of a-z 0-9 _, and not `main` (the default cluster is never banset's)");
    }
    let conf_dir = PathBuf::from(format!("/etc/postgresql/{VERSION}/{cluster}"));
    if conf_dir.exists() {
        if !conf_dir.join(MARKER).exists() {
            usage!(
                "cluster {VERSION}/{cluster} exists and banset did not make it, or made it half ({} has no {MARKER}): choose another --cluster, or remove a failed one with pg_dropcluster --stop {VERSION} {cluster}",
                conf_dir.display()
            );
        }
        eprintln!("cluster {VERSION}/{cluster} exists (made by banset): reusing it");
    } else {
        create(dir, a, &conf_dir)?;
    }
    let port: u16 = conftool(cluster, "port")?
        .parse()
        .context("the cluster's port")?;
    let socket_dir = conftool(cluster, "unix_socket_directories")?
        .split(',')
        .next()
        .unwrap_or("/var/run/postgresql")
        .trim()
        .to_owned();
    run_program("pg_ctlcluster", &[VERSION, cluster, "start"]).or_else(|e| {
        // Already running is fine: `start` fails then.
        if status_running(cluster) {
            Ok(String::new())
        } else {
            Err(e)
        }
    })?;
    let owner = |db: &str| {
        ConnectOptions::plain(format!(
            "host={socket_dir} port={port} user=postgres dbname={db}"
        ))
    };
    let mut admin = wait_for(&owner("postgres"))?;
    admin.ensure_database(DATABASE)?;
    let outcome = Admin::connect(&owner(DATABASE))?.init()?;
    dir.write_admin(&AdminFile {
        dsn: owner(DATABASE).dsn,
        ca: None,
        public_host: a.listen.to_string(),
        public_port: port,
        dbname: DATABASE.to_owned(),
        join_ca: Some(dir.ca_path()),
    })?;
    println!(
        "fleet hub: cluster {VERSION}/{cluster} on {}:{port} (TLS), database {DATABASE}, schema {}; next: banset fleet add-host NAME",
        a.listen,
        match outcome {
            InitOutcome::Created => "created",
            InitOutcome::AlreadyCurrent => "already current",
        }
    );
    Ok(())
}

fn create(dir: &FleetDir, a: &FleetHubInitArgs, conf_dir: &Path) -> Result<()> {
    let cluster = a.cluster.as_str();
    let port = a.port.map(|p| p.to_string());
    let mut args = vec![
        VERSION,
        cluster,
        "--start-conf",
        "auto",
        "--locale",
        "C.UTF-8",
    ];
    if let Some(port) = &port {
        args.extend(["--port", port]);
    }
    run_program("pg_createcluster", &args)?;
    certificates(dir, a.listen, conf_dir)?;
    // banset's settings in a file of their own, included last: quoted by
    // us (pg_conftool leaves an IPv4 address unquoted, which PostgreSQL
    // refuses), and visible as banset's in one place.
    let settings = format!(
        "# banset fleet hub-init\n\
         listen_addresses = '{listen}'\n\
         ssl = on\n\
         ssl_cert_file = '{cert}'\n\
         ssl_key_file = '{key}'\n\
         ssl_min_protocol_version = 'TLSv1.2'\n\
         password_encryption = 'scram-sha-256'\n\
         # A host's transaction left open holds every host's pulls back.\n\
         idle_in_transaction_session_timeout = '60s'\n",
        listen = a.listen,
        cert = conf_dir.join("banset-server.crt").display(),
        key = conf_dir.join("banset-server.key").display(),
    );
    std::fs::write(conf_dir.join("banset.conf"), settings).context("writing banset.conf")?;
    let main_conf = conf_dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&main_conf)
        .with_context(|| format!("reading {}", main_conf.display()))?;
    text.push_str("\ninclude = 'banset.conf'\n");
    std::fs::write(&main_conf, text).with_context(|| format!("writing {}", main_conf.display()))?;
    // Fleet roles over TLS with SCRAM, to the fleet's database only; the
    // owner through the local socket, as root or postgres; nothing else.
    std::fs::write(
        conf_dir.join("pg_hba.conf"),
        format!(
            "# banset fleet hub-init: nothing but these lines is admitted.\n\
             local   all       postgres                                  peer map=banset\n\
             hostssl {DATABASE}    +banset_fleet_host,+banset_fleet_admin  0.0.0.0/0  scram-sha-256\n\
             hostssl {DATABASE}    +banset_fleet_host,+banset_fleet_admin  ::/0       scram-sha-256\n"
        ),
    )
    .context("writing pg_hba.conf")?;
    std::fs::write(
        conf_dir.join("pg_ident.conf"),
        "# banset fleet hub-init: root and postgres act as the owner locally.\n\
         banset  root      postgres\nbanset  postgres  postgres\n",
    )
    .context("writing pg_ident.conf")?;
    // Last: a cluster half made by a failed run has no marker, and the
    // next run refuses it rather than start it without TLS.
    std::fs::write(conf_dir.join(MARKER), "made by banset fleet hub-init\n")
        .with_context(|| format!("writing {}", conf_dir.join(MARKER).display()))?;
    Ok(())
}

/// The fleet's CA (its key stays in the state directory, 0600) and the
/// engine's certificate for `listen`, readable by postgres only.
fn certificates(dir: &FleetDir, listen: IpAddr, conf_dir: &Path) -> Result<()> {
    let ca_key = dir.ca_key_path();
    let ca_crt = dir.ca_path();
    // The directory (0700) and an empty 0600 key file first: openssl then
    // writes the key into a file no one else can read.
    dir.write(&ca_key, b"")?;
    let ca_key_s = ca_key.display().to_string();
    let ca_crt_s = ca_crt.display().to_string();
    run_program(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &ca_key_s,
            "-out",
            &ca_crt_s,
            "-days",
            "3650",
            "-subj",
            "/CN=banset fleet CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    let key = conf_dir.join("banset-server.key");
    let csr = conf_dir.join("banset-server.csr");
    let crt = conf_dir.join("banset-server.crt");
    let (key_s, csr_s, crt_s) = (
        key.display().to_string(),
        csr.display().to_string(),
        crt.display().to_string(),
    );
    let san = format!("subjectAltName=IP:{listen}");
    run_program(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key_s,
            "-out",
            &csr_s,
            "-subj",
            "/CN=banset fleet engine",
            "-addext",
            &san,
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    )?;
    run_program(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr_s,
            "-CA",
            &ca_crt_s,
            "-CAkey",
            &ca_key_s,
            "-CAcreateserial",
            "-copy_extensions",
            "copyall",
            "-days",
            "3650",
            "-out",
            &crt_s,
        ],
    )?;
    let _ = std::fs::remove_file(&csr);
    let _ = std::fs::remove_file(ca_crt.with_extension("srl"));
    // PostgreSQL refuses a key others can read.
    run_program("chown", &["postgres:postgres", &key_s, &crt_s])?;
    run_program("chmod", &["0600", &key_s])?;
    Ok(())
}

fn wait_for(options: &ConnectOptions) -> Result<Admin> {
    let until = Instant::now() + START_WAIT;
    loop {
        match Admin::connect(options) {
            Ok(admin) => return Ok(admin),
            Err(e) if Instant::now() > until => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn conftool(cluster: &str, key: &str) -> Result<String> {
    Ok(
        run_program("pg_conftool", &["-s", VERSION, cluster, "show", key])?
            .trim()
            .trim_matches('\'')
            .to_owned(),
    )
}

fn status_running(cluster: &str) -> bool {
    Command::new("pg_ctlcluster")
        .args([VERSION, cluster, "status"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `program` with `args`; its stdout, or an error with the first line
/// of its stderr.
fn run_program(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (is postgresql-common installed?)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        bail!("{program} {}: {first}", args.first().copied().unwrap_or(""));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
