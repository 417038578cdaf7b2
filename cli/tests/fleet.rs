//! `banset fleet`: init on an existing PostgreSQL, add-host, join, status,
//! revoke, against a private PostgreSQL 15 listening on TCP inside a
//! network namespace; and hub-init, which makes a cluster with Debian's
//! pg_createcluster, run where it cannot touch any other cluster: a mount
//! namespace with empty /etc/postgresql, /var/lib/postgresql,
//! /run/postgresql, /var/log/postgresql and /run/systemd (so pg_ctlcluster
//! starts the postmaster itself rather than asking the host's systemd), in
//! a network namespace of its own.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use banset_tests::netns::NamedNetns;
use banset_tests::postgres::{self, skip_unless_postgres};
use common::Sandbox;

const BANSET: &str = env!("CARGO_BIN_EXE_banset");

/// `banset` for `sb`, inside namespace `ns`, with `input` on stdin.
fn banset_in(ns: &NamedNetns, sb: &Sandbox, args: &[&str], input: &[u8]) -> Output {
    let mut child = ns
        .command(BANSET)
        .env_remove("BANSET_STATE_DIR")
        .env_remove("BANSET_CONFIG")
        .arg("--state-dir")
        .arg(sb.dir().join("state"))
        .arg("--config")
        .arg(sb.dir().join("banset.toml"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The DSN between the quotes of a join line.
fn dsn_of(line: &str) -> &str {
    line.split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no DSN in {line:?}"))
}

#[test]
fn fleet_init_add_host_join_status_revoke() {
    if skip_unless_postgres("fleet_init_add_host_join_status_revoke") {
        return;
    }
    let ns = NamedNetns::create("fleet").unwrap();
    let pg = postgres::in_netns(&ns, "127.0.0.1", None).unwrap();
    let owner = Sandbox::new("fleet-owner");
    let host = Sandbox::new("fleet-host");

    // The owner's DSN goes in on stdin (`--dsn -`), never in ps.
    let dsn = pg.superuser_dsn();
    let out = ok(&banset_in(
        &ns,
        &owner,
        &["fleet", "init", "--dsn", "-", "--public-host", "127.0.0.1"],
        dsn.as_bytes(),
    ));
    assert!(out.contains("fleet schema created"), "{out}");
    let out = ok(&banset_in(
        &ns,
        &owner,
        &["fleet", "init", "--dsn", &dsn, "--public-host", "127.0.0.1"],
        b"",
    ));
    assert!(out.contains("already current"), "{out}");
    // A CA file others may write is no trust anchor.
    let loose_ca = owner.file("loose-ca.pem", "not even a certificate\n");
    std::fs::set_permissions(&loose_ca, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = banset_in(
        &ns,
        &owner,
        &[
            "fleet",
            "init",
            "--dsn",
            &dsn,
            "--ca",
            loose_ca.to_str().unwrap(),
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("loose-ca.pem"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin_file = owner.dir().join("state/fleet/admin.toml");
    assert_eq!(mode(&admin_file), 0o600);
    assert_eq!(mode(admin_file.parent().unwrap()), 0o700);

    let line = ok(&banset_in(&ns, &owner, &["fleet", "add-host", "h1"], b""));
    assert!(
        line.starts_with("banset fleet join --dsn 'host=127.0.0.1 port="),
        "{line}"
    );
    let host_dsn = dsn_of(&line);

    // A wrong password stores nothing.
    let wrong = host_dsn.replace("password=", "password=00");
    let out = banset_in(
        &ns,
        &host,
        &["fleet", "join", "--dsn", "-"],
        wrong.as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!host.dir().join("state/fleet/host.toml").exists());
    // The owner's DSN is no host's.
    let out = banset_in(&ns, &host, &["fleet", "join", "--dsn", &dsn], b"");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not as a fleet host"));

    let out = ok(&banset_in(
        &ns,
        &host,
        &["fleet", "join", "--dsn", "-"],
        host_dsn.as_bytes(),
    ));
    assert!(out.contains("joined the fleet as h1"), "{out}");
    let host_file = host.dir().join("state/fleet/host.toml");
    assert_eq!(mode(&host_file), 0o600);
    assert!(std::fs::read_to_string(&host_file)
        .unwrap()
        .contains("user=banset.h1"));

    let status = ok(&banset_in(&ns, &host, &["fleet", "status"], b""));
    assert!(
        status.contains("as banset.h1 (this host's credentials)"),
        "{status}"
    );
    assert!(status.contains("hosts: 1"), "{status}");
    let status = ok(&banset_in(&ns, &owner, &["fleet", "status"], b""));
    assert!(status.contains("the owner's connection"), "{status}");

    let bad = banset_in(&ns, &owner, &["fleet", "add-host", "Bad Name"], b"");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid fleet host name"));

    let out = ok(&banset_in(&ns, &owner, &["fleet", "revoke", "h1"], b""));
    assert!(out.contains("host h1 revoked"), "{out}");
    let out = banset_in(&ns, &host, &["fleet", "status"], b"");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not permitted to log in"));
    let status = ok(&banset_in(&ns, &owner, &["fleet", "status"], b""));
    assert!(status.contains("REVOKED"), "{status}");
    // No fleet at all: said, exit 2.
    let lone = Sandbox::new("fleet-lone");
    let out = lone.run(&["fleet", "status"]);
    assert_eq!(out.status.code(), Some(2));
    drop(pg);
}

/// Run by `sh` inside `unshare --mount --net`: the private directories,
/// then hub-init, a join over TLS from a second state directory, status and
/// revoke; the cluster is stopped on the way out whatever happened.
const HUB_SCRIPT: &str = r#"
set -eu
banset=$1 dir=$2
ip link set lo up
ip addr add 10.99.0.1/32 dev lo
u=$(id -u postgres) g=$(id -g postgres)
mount -t tmpfs -o mode=0755,uid="$u",gid="$g" tmpfs /etc/postgresql
mount -t tmpfs -o mode=0755,uid="$u",gid="$g" tmpfs /var/lib/postgresql
mount -t tmpfs -o mode=2775,uid="$u",gid="$g" tmpfs /run/postgresql
mount -t tmpfs -o mode=1775,uid=0,gid="$g" tmpfs /var/log/postgresql
if [ -d /run/systemd ]; then mount -t tmpfs -o mode=0755 tmpfs /run/systemd; fi
stop() { pg_ctlcluster 15 banset stop -m immediate >/dev/null 2>&1 || true; }
trap stop EXIT
"$banset" --state-dir "$dir/hub" fleet hub-init --listen 10.99.0.1 --port 5499
echo "clusters: $(pg_lsclusters -h | awk '{print $2 "/" $4}' | tr '\n' ' ')"
"$banset" --state-dir "$dir/hub" fleet hub-init --listen 10.99.0.1 --port 5499
"$banset" --state-dir "$dir/hub" fleet add-host h1 > "$dir/join"
dsn=$(cut -d"'" -f2 "$dir/join")
ca=$(sed 's/.* --ca-cert //' "$dir/join")
echo "$dsn" | "$banset" --state-dir "$dir/h1" fleet join --dsn - --ca-cert "$ca"
"$banset" --state-dir "$dir/h1" fleet status
if echo "$dsn" | "$banset" --state-dir "$dir/plain" fleet join --dsn -; then
    echo "JOINED WITHOUT TLS"
fi
"$banset" --state-dir "$dir/hub" fleet hub-init --listen 10.99.0.1 --cluster main || echo "main refused: $?"
"$banset" --state-dir "$dir/hub" fleet revoke h1
"#;

#[test]
fn fleet_hub_init_makes_its_own_cluster_in_private_namespaces() {
    if skip_unless_postgres("fleet_hub_init_makes_its_own_cluster_in_private_namespaces") {
        return;
    }
    for tool in [
        "/usr/bin/pg_createcluster",
        "/usr/bin/openssl",
        "/usr/bin/unshare",
    ] {
        if !Path::new(tool).exists() {
            eprintln!(
                "fleet_hub_init_makes_its_own_cluster_in_private_namespaces: skipped: no {tool}"
            );
            return;
        }
    }
    let sb = Sandbox::new("fleet-hub");
    let before = Command::new("pg_lsclusters").arg("-h").output().unwrap();
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            HUB_SCRIPT,
            "sh",
            BANSET,
        ])
        .arg(sb.dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "fleet hub: cluster 15/banset on 10.99.0.1:5499 (TLS), database banset, schema created"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("clusters: banset/online"), "{stdout}");
    assert!(
        stderr.contains("exists (made by banset): reusing it"),
        "{stderr}"
    );
    assert!(stdout.contains("schema already current"), "{stdout}");
    assert!(stdout.contains("joined the fleet as h1"), "{stdout}");
    assert!(stdout.contains("as banset.h1"), "{stdout}");
    // pg_hba admits hosts over TLS only.
    assert!(!stdout.contains("JOINED WITHOUT TLS"), "{stdout}");
    assert!(
        stderr.contains("not `main`") && stdout.contains("main refused: 2"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("host h1 revoked"), "{stdout}");
    assert_eq!(mode(&sb.dir().join("hub/fleet/ca.key")), 0o600);
    assert_eq!(mode(&sb.dir().join("h1/fleet/host.toml")), 0o600);
    // Outside, nothing changed: the same clusters in the same state.
    let after = Command::new("pg_lsclusters").arg("-h").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&before.stdout),
        String::from_utf8_lossy(&after.stdout)
    );
    assert!(!Path::new("/etc/postgresql/15/banset").exists());
}
