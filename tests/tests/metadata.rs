//! The workspace's package metadata says what is true. `rust-version` is
//! the oldest toolchain that builds banset, so it may not be older than
//! what any locked dependency declares it needs; every member inherits it,
//! so that cargo (and clippy's `incompatible_msrv`) hold each crate to it.
//! No toolchain that old is installed here, so this compares declarations,
//! as `cargo metadata` reports them for Cargo.lock's packages.

use std::process::Command;

use serde_json::Value;

/// `cargo metadata` for the whole locked graph, every platform included
/// (the FreeBSD-only crates count: a FreeBSD build needs them).
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// "1.89" or "1.89.0" as comparable numbers; a missing part is 0.
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| {
        p.parse::<u64>()
            .unwrap_or_else(|_| panic!("rust-version {text:?} is not a version"))
    });
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

fn packages(meta: &Value) -> &Vec<Value> {
    meta["packages"].as_array().expect("packages is a list")
}

/// Workspace members are the packages without a registry or git source.
fn is_member(package: &Value) -> bool {
    package["source"].is_null()
}

fn name(package: &Value) -> String {
    let field = |key: &str| package[key].as_str().unwrap_or("?").to_string();
    format!("{} {}", field("name"), field("version"))
}

/// Every member's `rust-version`, which must be the same for all.
fn workspace_rust_version(meta: &Value) -> String {
    let mut found: Option<String> = None;
    for p in packages(meta).iter().filter(|p| is_member(p)) {
        let Some(v) = p["rust_version"].as_str() else {
            panic!(
                "{} declares no rust-version: add `rust-version.workspace = true` to its Cargo.toml",
                name(p)
            );
        };
        match &found {
            Some(f) => assert_eq!(f, v, "{} differs from the workspace", name(p)),
            None => found = Some(v.to_string()),
        }
    }
    found.expect("the workspace has members")
}

#[test]
fn rust_version_is_at_least_every_locked_dependency_s() {
    let meta = metadata();
    let ours = workspace_rust_version(&meta);
    let too_new: Vec<String> = packages(&meta)
        .iter()
        .filter(|p| !is_member(p))
        .filter_map(|p| {
            let theirs = p["rust_version"].as_str()?;
            (version(theirs) > version(&ours)).then(|| format!("{} needs {theirs}", name(p)))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "the workspace's rust-version {ours} is older than Cargo.lock needs: {}",
        too_new.join(", ")
    );
}

/// The check above cannot pass by reading nothing: the lock holds crates
/// that declare a rust-version, and the parse orders versions.
#[test]
fn the_rust_version_check_reads_real_declarations() {
    let meta = metadata();
    let declared = packages(&meta)
        .iter()
        .filter(|p| !is_member(p) && p["rust_version"].is_string())
        .count();
    assert!(
        declared > 10,
        "only {declared} locked crates declare a rust-version"
    );
    assert!(version("1.89") > version("1.88.1"));
    assert!(version("1.89.0") == version("1.89"));
    assert!(version("1.100") > version("1.99"));
}

/// No member points at an address that does not exist.
#[test]
fn no_member_claims_a_made_up_repository() {
    let meta = metadata();
    for p in packages(&meta).iter().filter(|p| is_member(p)) {
        for key in ["repository", "homepage", "documentation"] {
            if let Some(url) = p[key].as_str() {
                assert!(!url.contains(".invalid"), "{}: {key} = {url}", name(p));
            }
        }
    }
}
