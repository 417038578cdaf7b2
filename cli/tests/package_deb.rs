//! The .deb that `packaging/build` makes, installed on this machine with
//! dpkg, used, and removed again.
//!
//! It changes the real system (dpkg's database, /usr/bin, /etc), so it runs
//! only when `BANSET_DEB` names the package, as CI does after
//! `packaging/build`; otherwise it skips with a message. Locally:
//!
//!     packaging/build
//!     sudo BANSET_DEB=$(ls target/debian/banset_*.deb) cargo test --release -p banset --test package_deb
//!
//! The package is purged at the end, also when an assertion fails, so the
//! machine is left as it was. A machine that already has banset installed
//! (by dpkg or by hand) is refused rather than overwritten.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use banset_tests::netns;

fn dpkg(args: &[&str]) -> std::process::Output {
    Command::new("dpkg").args(args).output().expect("run dpkg")
}

fn installed() -> bool {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "banset"])
        .output()
        .expect("run dpkg-query");
    String::from_utf8_lossy(&out.stdout).contains("ok installed")
}

/// Purges the package when the test ends, however it ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = dpkg(&["--purge", "banset"]);
    }
}

/// Whether a process runs the installed binary.
fn banset_running() -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path().join("exe")).ok())
        .any(|exe| exe == Path::new("/usr/bin/banset"))
}

#[test]
fn the_deb_installs_bans_in_a_namespace_and_purges_cleanly() {
    let Some(deb) = std::env::var_os("BANSET_DEB").map(PathBuf::from) else {
        eprintln!(
            "the_deb_installs...: skipped: BANSET_DEB is not set (packaging/build makes the .deb; \
             CI sets BANSET_DEB to it)"
        );
        return;
    };
    if netns::skip_unless_root("the_deb_installs_bans_in_a_namespace_and_purges_cleanly") {
        return;
    }
    // cargo runs tests in cli/: a relative path is taken from the
    // workspace root, where packaging/build writes target/debian/.
    let deb = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(deb);
    assert!(deb.is_file(), "BANSET_DEB={}: no such file", deb.display());
    // fail2ban's actions are conffiles of the package when the tree has
    // them: a copy put there by hand would be taken over, then purged.
    let actions: Vec<PathBuf> = ["banset.conf", "banset-allports.conf"]
        .iter()
        .filter(|n| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../contrib/fail2ban/action.d")
                .join(n)
                .exists()
        })
        .map(|n| Path::new("/etc/fail2ban/action.d").join(n))
        .collect();
    assert!(
        !installed()
            && !Path::new("/usr/bin/banset").exists()
            && !actions.iter().any(|a| a.exists()),
        "banset is already installed on this machine; this test will not replace it"
    );

    let purge = Purge;
    let out = dpkg(&["--install", deb.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "dpkg -i: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(installed());

    // What the package holds and how dpkg treats it.
    let files = String::from_utf8(dpkg(&["-L", "banset"]).stdout).unwrap();
    for f in [
        "/usr/bin/banset",
        "/usr/libexec/banset/mail-on-ban",
        "/usr/libexec/sshguard/sshg-fw-banset",
        "/etc/banset/banset.toml",
        "/usr/lib/systemd/system/banset.service",
        "/usr/share/man/man5/banset.toml.5",
        "/usr/share/bash-completion/completions/banset",
        "/usr/share/zsh/site-functions/_banset",
        "/usr/share/fish/vendor_completions.d/banset.fish",
    ] {
        assert!(
            files.lines().any(|l| l == f || l == format!("{f}.gz")),
            "{f} not in the package:\n{files}"
        );
    }
    assert!(files
        .lines()
        .any(|l| l.starts_with("/usr/share/man/man1/banset-watch.1")));
    let conffiles = String::from_utf8(
        Command::new("dpkg-query")
            .args(["-W", "-f=${Conffiles}", "banset"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        conffiles.contains("/etc/banset/banset.toml "),
        "{conffiles}"
    );
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/banset.service").unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/bin/banset watch\n"),
        "{unit}"
    );
    let state = std::fs::metadata("/var/lib/banset").expect("postinst creates /var/lib/banset");
    assert_eq!(state.permissions().mode() & 0o7777, 0o700);
    // Installing started nothing.
    assert!(!banset_running(), "the package started banset");

    let version = Command::new("/usr/bin/banset")
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("banset ", env!("CARGO_PKG_VERSION"))
    );
    // The installed default config is valid as shipped.
    let check = Command::new("/usr/bin/banset")
        .args(["watch", "--check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // A ban with the installed binary, in a namespace of its own, checked
    // with nft; its ledger in a temporary directory.
    let ledger = std::env::temp_dir().join(format!("banset-deb-{}", std::process::id()));
    netns::in_new_netns(|| {
        let banset = |args: &[&str]| {
            let out = Command::new("/usr/bin/banset")
                .arg("--state-dir")
                .arg(&ledger)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "banset {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        banset(&["add", "debtest", "192.0.2.77", "--timeout", "1h"]);
        let table = netns::run("nft", &["-j", "list", "table", "inet", "banset"]);
        assert!(
            table.contains("\"debtest_v4\"") && table.contains("192.0.2.77"),
            "{table}"
        );
        banset(&["test", "debtest", "192.0.2.77"]);
        banset(&["del", "debtest", "192.0.2.77"]);
        let table = netns::run("nft", &["-j", "list", "table", "inet", "banset"]);
        assert!(!table.contains("192.0.2.77"), "{table}");
    });
    let _ = std::fs::remove_dir_all(&ledger);

    // Remove keeps the conffile and the ledger's directory; purge takes both.
    let out = dpkg(&["--remove", "banset"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new("/usr/bin/banset").exists());
    assert!(!Path::new("/usr/share/man/man1/banset.1.gz").exists());
    assert!(Path::new("/etc/banset/banset.toml").exists());
    assert!(Path::new("/var/lib/banset").exists());
    let out = dpkg(&["--purge", "banset"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for gone in [
        "/etc/banset",
        "/var/lib/banset",
        "/usr/lib/systemd/system/banset.service",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    drop(purge);
    assert!(!installed());
}
