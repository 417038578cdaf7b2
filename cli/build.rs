//! Tells the crate which optional files of the tree are present, so
//! `banset install` can embed them with `include_str!` when they are and
//! build without them when they are not.
//!
//! The fail2ban actions and the FreeBSD rc.d script are written alongside
//! banset's own files and may be missing from a partial checkout; a build must
//! not fail for that, and `banset install` says which of them it lacks. Each
//! present file sets a `cfg` that `cli/src/assets.rs` tests; a unit test there
//! checks that the two agree, so a file added later is embedded and
//! installed, not silently left out.

use std::path::Path;

/// `cfg` name and path from the workspace root.
const OPTIONAL: &[(&str, &str)] = &[
    (
        "banset_fail2ban_action",
        "contrib/fail2ban/action.d/banset.conf",
    ),
    (
        "banset_fail2ban_action_allports",
        "contrib/fail2ban/action.d/banset-allports.conf",
    ),
    (
        "banset_fail2ban_action_python",
        "contrib/fail2ban/action.d/banset.py",
    ),
    ("banset_freebsd_rc", "packaging/freebsd/rc.d/banset"),
];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!("cargo:rerun-if-changed=build.rs");
    // Directories, not the files: a file that appears later must trigger a
    // rerun, and Cargo rescans a watched directory's contents.
    println!("cargo:rerun-if-changed=../contrib");
    println!("cargo:rerun-if-changed=../packaging");
    for (cfg, path) in OPTIONAL {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
        if root.join(path).is_file() {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
