//! `banset install` / `uninstall` run for real, staged in a temporary
//! directory with `--destdir` (so nothing outside it is touched), and the
//! generated man pages and completions checked by the tools that read them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BANSET: &str = env!("CARGO_BIN_EXE_banset");

struct Stage(PathBuf);

impl Stage {
    fn new(test: &str) -> Stage {
        let dir =
            std::env::temp_dir().join(format!("banset-install-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Stage(dir)
    }

    fn path(&self, final_path: &str) -> PathBuf {
        self.0.join(final_path.trim_start_matches('/'))
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BANSET)
            .args(args)
            .arg("--destdir")
            .arg(&self.0)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "banset {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every file under the stage, as final paths.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.push(format!("/{}", p.strip_prefix(root).unwrap().display()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &self.0, &mut out);
        out.sort();
        out
    }

    fn mode(&self, final_path: &str) -> u32 {
        std::fs::metadata(self.path(final_path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn dry_run_lists_the_plan_and_touches_nothing() {
    let stage = Stage::new("dry");
    let out = stage.ok(&["install", "--dry-run"]);
    assert!(!stage.0.exists(), "dry run created {}", stage.0.display());
    assert!(
        out.contains("would install 0755 /usr/local/bin/banset\n"),
        "{out}"
    );
    assert!(
        out.contains("would mkdir   0700 /var/lib/banset\n"),
        "{out}"
    );
    assert!(out.lines().all(|l| l.starts_with("would ")), "{out}");
    // Uninstall's dry run of nothing installed plans nothing.
    assert_eq!(stage.ok(&["uninstall", "--purge", "--dry-run"]), "");
}

#[test]
fn install_then_uninstall_in_a_staging_root() {
    let stage = Stage::new("full");
    // fail2ban is "installed" in the stage: its actions go in if this tree has them.
    std::fs::create_dir_all(stage.path("/etc/fail2ban")).unwrap();
    let out = stage.ok(&["install"]);
    assert!(
        !out.contains("next:"),
        "staged installs print no service hints: {out}"
    );

    // The binary is this one, and runs.
    let bin = stage.path("/usr/local/bin/banset");
    assert_eq!(stage.mode("/usr/local/bin/banset"), 0o755);
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("banset ", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(BANSET).unwrap());

    // The config is the shipped one; the unit runs the installed binary.
    assert_eq!(
        std::fs::read_to_string(stage.path("/etc/banset/banset.toml")).unwrap(),
        std::fs::read_to_string(repo("contrib/banset.toml")).unwrap()
    );
    let unit = std::fs::read_to_string(stage.path("/etc/systemd/system/banset.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/local/bin/banset watch\n"),
        "{unit}"
    );
    assert_eq!(stage.mode("/var/lib/banset"), 0o700);
    assert_eq!(stage.mode("/usr/local/libexec/banset/mail-on-ban"), 0o755);

    // fail2ban's actions: installed exactly when the tree has them.
    for name in ["banset.conf", "banset-allports.conf"] {
        let shipped = repo(&format!("contrib/fail2ban/action.d/{name}"));
        let installed = stage.path(&format!("/etc/fail2ban/action.d/{name}"));
        assert_eq!(shipped.exists(), installed.exists(), "{name}");
    }

    let files = stage.files();
    let man1 = files
        .iter()
        .filter(|f| f.starts_with("/usr/local/share/man/man1/banset"))
        .count();
    assert!(man1 >= 16, "{files:#?}");
    for f in [
        "/usr/local/share/man/man5/banset.toml.5",
        "/usr/local/share/man/man1/banset-watch.1",
        "/usr/local/share/bash-completion/completions/banset",
        "/usr/local/share/zsh/site-functions/_banset",
        "/usr/local/share/fish/vendor_completions.d/banset.fish",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} missing: {files:#?}");
    }
    assert!(
        !files.iter().any(|f| f.contains(".banset-install")),
        "temp files left: {files:#?}"
    );

    // A second install keeps the admin's config and re-tightens the state
    // directory.
    std::fs::write(
        stage.path("/etc/banset/banset.toml"),
        "ignore = [\"192.0.2.1\"]\n",
    )
    .unwrap();
    std::fs::set_permissions(
        stage.path("/var/lib/banset"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(stage.path("/var/lib/banset/ledger.db"), "bans").unwrap();
    let out = stage.ok(&["install"]);
    assert!(
        out.contains("keep    /etc/banset/banset.toml (exists; never overwritten)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(stage.path("/etc/banset/banset.toml")).unwrap(),
        "ignore = [\"192.0.2.1\"]\n"
    );
    assert_eq!(stage.mode("/var/lib/banset"), 0o700);

    // Uninstall leaves exactly the config and the ledger.
    stage.ok(&["uninstall"]);
    assert_eq!(
        stage.files(),
        ["/etc/banset/banset.toml", "/var/lib/banset/ledger.db"]
    );
    assert!(!stage.path("/usr/local/libexec/banset").exists());
    // --purge removes them too.
    stage.ok(&["uninstall", "--purge"]);
    assert_eq!(stage.files(), Vec::<String>::new());
}

#[test]
fn a_package_prefix_uses_the_system_unit_directory() {
    let stage = Stage::new("usr");
    stage.ok(&["install", "--prefix", "/usr", "--quiet"]);
    let unit =
        std::fs::read_to_string(stage.path("/usr/lib/systemd/system/banset.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/bin/banset watch\n"),
        "{unit}"
    );
    assert!(stage.path("/usr/bin/banset").is_file());
    assert!(!stage.path("/etc/systemd").exists());
    // fail2ban is absent from the stage: no action.d appears.
    assert!(!stage.path("/etc/fail2ban").exists());
}

/// The unit's `Documentation=` names only man pages the same install puts
/// in place, so `systemctl help banset` opens a page that exists.
#[test]
fn the_unit_documents_man_pages_that_install_puts_in_place() {
    let stage = Stage::new("unitdoc");
    stage.ok(&["install", "--quiet"]);
    let unit = std::fs::read_to_string(stage.path("/etc/systemd/system/banset.service")).unwrap();
    let docs: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Documentation="))
        .flat_map(str::split_whitespace)
        .collect();
    assert!(!docs.is_empty(), "{unit}");
    for doc in docs {
        let page = doc
            .strip_prefix("man:")
            .and_then(|p| p.strip_suffix(')'))
            .and_then(|p| p.split_once('('));
        let Some((name, section)) = page else {
            panic!("Documentation={doc} is not a man page");
        };
        let path = format!("/usr/local/share/man/man{section}/{name}.{section}");
        assert!(stage.path(&path).is_file(), "{doc}: no {path}");
    }
}

#[test]
fn a_relative_prefix_is_refused() {
    let stage = Stage::new("rel");
    let out = stage.run(&["install", "--prefix", "usr/local"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("banset: --prefix usr/local: must be an absolute path"),
        "{err}"
    );
    assert!(!stage.0.exists());
}

/// groff, which man uses, reads every page without a warning.
#[test]
fn man_pages_render_cleanly() {
    if Command::new("groff").arg("--version").output().is_err() {
        eprintln!("man_pages_render_cleanly: skipped: groff is not installed");
        return;
    }
    let stage = Stage::new("man");
    std::fs::create_dir_all(&stage.0).unwrap();
    let out = Command::new(BANSET)
        .args(["generate", "man"])
        .arg(&stage.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: Vec<PathBuf> = std::fs::read_dir(&stage.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(pages.len() >= 17, "{pages:?}");
    for page in pages {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(&page)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("NAME") && text.lines().count() > 10,
            "{}: {text}",
            page.display()
        );
    }
}

/// The completion scripts are valid for their shells (those installed here).
#[test]
fn completions_parse_in_their_shells() {
    let stage = Stage::new("comp");
    let out = Command::new(BANSET)
        .args(["generate", "completions"])
        .arg(&stage.0)
        .output()
        .unwrap();
    assert!(out.status.success());
    for (shell, file) in [
        ("bash", "banset"),
        ("zsh", "_banset"),
        ("fish", "banset.fish"),
    ] {
        let path = stage.0.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("regex-test") && text.contains("uninstall"),
            "{file}"
        );
        match Command::new(shell).arg("-n").arg(&path).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n {file}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => eprintln!("{shell} is not installed: {file} not syntax-checked"),
        }
    }
}
