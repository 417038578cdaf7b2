//! `banset install` and `banset uninstall`: put banset and its files where
//! an admin, systemd (or rc.d), fail2ban, man and the shells look for them,
//! from the binary alone.
//!
//! Both first make a plan (a list of [`Step`]s) and then carry it out, so
//! `--dry-run` prints exactly what would be done and touches nothing. The
//! config and the ledger are the admin's: install never overwrites an
//! existing config, and uninstall keeps both unless `--purge`.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::args::{GlobalArgs, InstallArgs, UninstallArgs};
use crate::assets;
use crate::errors::EXIT_OK;
use crate::output::stdout;

/// Which conventions to follow: where configs, services and state live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    FreeBsd,
}

impl Os {
    pub fn this() -> Os {
        if cfg!(target_os = "freebsd") {
            Os::FreeBsd
        } else {
            Os::Linux
        }
    }
}

/// Where each file goes. Paths are the final ones (what the installed files
/// refer to); `destdir` is prepended only when writing, for staging a
/// package or a test.
#[derive(Debug, Clone)]
pub struct Layout {
    pub os: Os,
    pub prefix: PathBuf,
    pub destdir: Option<PathBuf>,
}

impl Layout {
    pub fn bindir(&self) -> PathBuf {
        self.prefix.join("bin")
    }

    /// The sendmail notifier, for `on_ban`.
    fn mail_on_ban(&self) -> PathBuf {
        self.prefix.join("libexec/banset/mail-on-ban")
    }

    fn mandir(&self) -> PathBuf {
        self.prefix.join("share/man")
    }

    /// Linux keeps configs in /etc whatever the prefix; FreeBSD's ports keep
    /// them under the prefix (/usr/local/etc).
    fn etc(&self) -> PathBuf {
        match self.os {
            Os::Linux => PathBuf::from("/etc"),
            Os::FreeBsd => self.prefix.join("etc"),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.etc().join("banset/banset.toml")
    }

    /// A package (prefix /usr) ships its unit with the distribution's; a
    /// local install puts it where the admin's own units go.
    fn service(&self) -> PathBuf {
        match self.os {
            Os::Linux if self.prefix == Path::new("/usr") => {
                PathBuf::from("/usr/lib/systemd/system/banset.service")
            }
            Os::Linux => PathBuf::from("/etc/systemd/system/banset.service"),
            Os::FreeBsd => self.prefix.join("etc/rc.d/banset"),
        }
    }

    fn fail2ban(&self) -> PathBuf {
        self.etc().join("fail2ban")
    }

    /// Where sshguard keeps its backends (`sshg-fw-nft-sets`...), and a
    /// file that is there when sshguard is installed: Debian's package
    /// has its own directory; FreeBSD's port puts them in PREFIX/libexec.
    fn sshguard(&self) -> (PathBuf, PathBuf) {
        match self.os {
            Os::Linux => {
                let dir = PathBuf::from("/usr/libexec/sshguard");
                (dir.clone(), dir)
            }
            Os::FreeBsd => {
                let dir = self.prefix.join("libexec");
                (dir.clone(), dir.join("sshg-blocker"))
            }
        }
    }

    fn sshguard_backend(&self) -> PathBuf {
        self.sshguard().0.join("sshg-fw-banset")
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(match self.os {
            Os::Linux => "/var/lib/banset",
            Os::FreeBsd => "/var/db/banset",
        })
    }

    fn completions(&self) -> [(clap_complete::Shell, PathBuf); 3] {
        let share = self.prefix.join("share");
        let dirs = [
            share.join("bash-completion/completions"),
            share.join("zsh/site-functions"),
            share.join("fish/vendor_completions.d"),
        ];
        let [(s0, n0), (s1, n1), (s2, n2)] = assets::SHELLS;
        let [d0, d1, d2] = dirs;
        [(s0, d0.join(n0)), (s1, d1.join(n1)), (s2, d2.join(n2))]
    }

    /// Where `path` is written: under `destdir` if given.
    pub fn staged(&self, path: &Path) -> PathBuf {
        match &self.destdir {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }
}

/// One thing install or uninstall does (or says it does not).
#[derive(Debug)]
pub enum Step {
    /// Write `path` with `mode`, replacing what is there.
    Write {
        path: PathBuf,
        mode: u32,
        text: Vec<u8>,
    },
    /// Copy this very binary to `path`.
    CopySelf { path: PathBuf },
    /// Create `path` (and parents) with `mode`, or set `mode` on it.
    Dir { path: PathBuf, mode: u32 },
    /// Remove a file, if present.
    Remove { path: PathBuf },
    /// Remove a directory banset alone uses, if it is empty.
    RemoveDir { path: PathBuf },
    /// Remove a directory and everything in it.
    RemoveTree { path: PathBuf },
    /// Leave `path` alone, for `why`.
    Keep { path: PathBuf, why: &'static str },
    /// Not installed, for `why`.
    Skip { what: &'static str, why: String },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Write { path, mode, .. } => write!(f, "install {mode:04o} {}", path.display()),
            Step::CopySelf { path } => write!(f, "install 0755 {}", path.display()),
            Step::Dir { path, mode } => write!(f, "mkdir   {mode:04o} {}", path.display()),
            Step::Remove { path } => write!(f, "remove  {}", path.display()),
            Step::RemoveDir { path } => write!(f, "remove  {} (if empty)", path.display()),
            Step::RemoveTree { path } => write!(f, "remove  {} (and its contents)", path.display()),
            Step::Keep { path, why } => write!(f, "keep    {} ({why})", path.display()),
            Step::Skip { what, why } => write!(f, "skip    {what} ({why})"),
        }
    }
}

/// What `banset install` does, in order. `exists` answers for a final path
/// (staged under destdir), so the plan can be computed and tested without
/// touching anything.
pub fn install_plan(layout: &Layout, exists: &dyn Fn(&Path) -> bool) -> Vec<Step> {
    let mut steps = vec![Step::CopySelf {
        path: layout.bindir().join("banset"),
    }];
    let prefix = &layout.prefix;
    let config = layout.config();
    if exists(&config) {
        steps.push(Step::Keep {
            path: config,
            why: "exists; never overwritten",
        });
    } else {
        steps.push(Step::Write {
            path: config,
            mode: 0o644,
            text: assets::with_prefix(assets::DEFAULT_CONFIG, prefix).into_bytes(),
        });
    }
    steps.push(Step::Write {
        path: layout.mail_on_ban(),
        mode: 0o755,
        text: assets::with_prefix(assets::MAIL_ON_BAN, prefix).into_bytes(),
    });
    match layout.os {
        Os::Linux => steps.push(Step::Write {
            path: layout.service(),
            mode: 0o644,
            text: assets::with_prefix(assets::SYSTEMD_UNIT, prefix).into_bytes(),
        }),
        Os::FreeBsd => match assets::FREEBSD_RC {
            Some(rc) => steps.push(Step::Write {
                path: layout.service(),
                mode: 0o555,
                text: assets::with_prefix(rc, prefix).into_bytes(),
            }),
            None => steps.push(Step::Skip {
                what: "rc.d script",
                why: format!("this build lacks {}", assets::FREEBSD_RC_SOURCE),
            }),
        },
    }
    let fail2ban = layout.fail2ban();
    for (name, source, text) in assets::fail2ban_actions() {
        let path = fail2ban.join("action.d").join(name);
        match text {
            _ if !exists(&fail2ban) => steps.push(Step::Skip {
                what: "fail2ban action",
                why: format!("{} does not exist", fail2ban.display()),
            }),
            Some(text) => steps.push(Step::Write {
                path,
                mode: 0o644,
                text: assets::with_prefix(text, prefix).into_bytes(),
            }),
            None => steps.push(Step::Skip {
                what: "fail2ban action",
                why: format!("this build lacks {source}"),
            }),
        }
    }
    let (_, sshguard) = layout.sshguard();
    if exists(&sshguard) {
        steps.push(Step::Write {
            path: layout.sshguard_backend(),
            mode: 0o755,
            text: assets::with_prefix(assets::SSHGUARD_BACKEND, prefix).into_bytes(),
        });
    } else {
        steps.push(Step::Skip {
            what: "sshguard backend",
            why: format!("{} does not exist", sshguard.display()),
        });
    }
    let man1 = layout.mandir().join("man1");
    for page in assets::man_pages() {
        steps.push(Step::Write {
            path: man1.join(&page.name),
            mode: 0o644,
            text: page.text,
        });
    }
    steps.push(Step::Write {
        path: layout.mandir().join("man5/banset.toml.5"),
        mode: 0o644,
        text: assets::CONFIG_MAN_PAGE.as_bytes().to_vec(),
    });
    for (shell, path) in layout.completions() {
        steps.push(Step::Write {
            path,
            mode: 0o644,
            text: assets::completion(shell),
        });
    }
    steps.push(Step::Dir {
        path: layout.state_dir(),
        mode: 0o700,
    });
    dedup_skips(steps)
}

/// One "no fail2ban" line, not one per action.
fn dedup_skips(steps: Vec<Step>) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps {
        if let (Step::Skip { why, .. }, Some(Step::Skip { why: last, .. })) = (&step, out.last()) {
            if why == last {
                continue;
            }
        }
        out.push(step);
    }
    out
}

/// What `banset uninstall` does: the reverse of install, keeping the config
/// and the ledger unless `purge`.
pub fn uninstall_plan(layout: &Layout, purge: bool, exists: &dyn Fn(&Path) -> bool) -> Vec<Step> {
    let mut files = vec![
        layout.bindir().join("banset"),
        layout.mail_on_ban(),
        layout.service(),
        layout.sshguard_backend(),
    ];
    let fail2ban = layout.fail2ban().join("action.d");
    files.extend(
        assets::fail2ban_actions()
            .iter()
            .map(|(name, _, _)| fail2ban.join(name)),
    );
    let man1 = layout.mandir().join("man1");
    files.extend(assets::man_page_names().iter().map(|n| man1.join(n)));
    files.push(layout.mandir().join("man5/banset.toml.5"));
    files.extend(layout.completions().into_iter().map(|(_, p)| p));
    let mut steps: Vec<Step> = files
        .into_iter()
        .filter(|p| exists(p))
        .map(|path| Step::Remove { path })
        .collect();
    if let Some(dir) = layout.mail_on_ban().parent().filter(|d| exists(d)) {
        steps.push(Step::RemoveDir {
            path: dir.to_path_buf(),
        });
    }
    let config = layout.config();
    let state = layout.state_dir();
    if purge {
        if let Some(dir) = config.parent().filter(|d| exists(d)) {
            steps.push(Step::RemoveTree {
                path: dir.to_path_buf(),
            });
        }
        if exists(&state) {
            steps.push(Step::RemoveTree { path: state });
        }
    } else {
        if exists(&config) {
            steps.push(Step::Keep {
                path: config,
                why: "your configuration; --purge removes it",
            });
        }
        if exists(&state) {
            steps.push(Step::Keep {
                path: state,
                why: "the ledger of bans; --purge removes it",
            });
        }
    }
    steps
}

/// Carries out one step (under `layout.destdir`).
fn apply(step: &Step, layout: &Layout) -> Result<()> {
    let parent_dir = |path: &Path| -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .with_context(|| format!("create {}", dir.display()))?;
        }
        Ok(())
    };
    match step {
        Step::Write { path, mode, text } => {
            let path = layout.staged(path);
            parent_dir(&path)?;
            write_atomically(&path, *mode, text)
        }
        Step::CopySelf { path } => {
            let path = layout.staged(path);
            let me = std::env::current_exe().context("find this binary")?;
            if same_file(&me, &path) {
                return Ok(());
            }
            let text = std::fs::read(&me).with_context(|| format!("read {}", me.display()))?;
            parent_dir(&path)?;
            write_atomically(&path, 0o755, &text)
        }
        Step::Dir { path, mode } => {
            let path = layout.staged(path);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(*mode)
                .create(&path)
                .with_context(|| format!("create {}", path.display()))?;
            // An existing directory keeps its mode through create: set it,
            // so a state directory others could read becomes private.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                .with_context(|| format!("chmod {mode:o} {}", path.display()))
        }
        Step::Remove { path } => {
            let path = layout.staged(path);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("remove {}", path.display()))
                }
                _ => Ok(()),
            }
        }
        Step::RemoveDir { path } => {
            let path = layout.staged(path);
            match std::fs::remove_dir(&path) {
                Err(e)
                    if e.kind() != std::io::ErrorKind::NotFound
                        && e.kind() != std::io::ErrorKind::DirectoryNotEmpty =>
                {
                    Err(e).with_context(|| format!("remove {}", path.display()))
                }
                _ => Ok(()),
            }
        }
        Step::RemoveTree { path } => {
            let path = layout.staged(path);
            match std::fs::remove_dir_all(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("remove {}", path.display()))
                }
                _ => Ok(()),
            }
        }
        Step::Keep { .. } | Step::Skip { .. } => Ok(()),
    }
}

/// Writes beside `path` and renames over it: a reader (or a running
/// `banset` being replaced) sees the old file or the new, never half of one.
fn write_atomically(path: &Path, mode: u32, text: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.banset-install"));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(text)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("write {}", path.display()))
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn layout(prefix: &Option<PathBuf>, destdir: &Option<PathBuf>) -> Result<Layout> {
    let prefix = prefix
        .clone()
        .unwrap_or_else(|| PathBuf::from("/usr/local"));
    if !prefix.is_absolute() {
        crate::errors::usage!("--prefix {}: must be an absolute path", prefix.display());
    }
    Ok(Layout {
        os: Os::this(),
        prefix,
        destdir: destdir.clone(),
    })
}

/// Prints the plan (`--dry-run`) or carries it out, saying each step.
fn run_plan(steps: &[Step], layout: &Layout, global: &GlobalArgs) -> Result<()> {
    let mut out = stdout();
    for step in steps {
        if !global.dry_run {
            apply(step, layout)?;
        }
        if !global.quiet {
            let would = if global.dry_run { "would " } else { "" };
            writeln!(out, "{would}{step}")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn exists_in(layout: &Layout) -> impl Fn(&Path) -> bool + '_ {
    move |p: &Path| layout.staged(p).exists()
}

pub fn install(global: &GlobalArgs, args: InstallArgs) -> Result<Option<i32>> {
    let layout = layout(&args.prefix, &args.destdir)?;
    let steps = install_plan(&layout, &exists_in(&layout));
    run_plan(&steps, &layout, global)?;
    if !global.quiet && !global.dry_run && layout.destdir.is_none() {
        let next = match layout.os {
            Os::Linux => "systemctl daemon-reload && systemctl enable --now banset",
            Os::FreeBsd => "sysrc banset_enable=YES && service banset start",
        };
        println!(
            "next: add jails to {}, check it with `banset watch --check`, then: {next}",
            layout.config().display()
        );
    }
    Ok(Some(EXIT_OK))
}

pub fn uninstall(global: &GlobalArgs, args: UninstallArgs) -> Result<Option<i32>> {
    let layout = layout(&args.prefix, &args.destdir)?;
    let steps = uninstall_plan(&layout, args.purge, &exists_in(&layout));
    run_plan(&steps, &layout, global)?;
    Ok(Some(EXIT_OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(prefix: &str) -> Layout {
        Layout {
            os: Os::Linux,
            prefix: prefix.into(),
            destdir: None,
        }
    }

    fn paths(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_local_install_follows_linux_conventions() {
        let steps = install_plan(&linux("/usr/local"), &|_| false);
        let lines = paths(&steps);
        for want in [
            "install 0755 /usr/local/bin/banset",
            "install 0644 /etc/banset/banset.toml",
            "install 0755 /usr/local/libexec/banset/mail-on-ban",
            "install 0644 /etc/systemd/system/banset.service",
            "install 0644 /usr/local/share/man/man1/banset.1",
            "install 0644 /usr/local/share/man/man1/banset-add.1",
            "install 0644 /usr/local/share/man/man5/banset.toml.5",
            "install 0644 /usr/local/share/bash-completion/completions/banset",
            "install 0644 /usr/local/share/zsh/site-functions/_banset",
            "install 0644 /usr/local/share/fish/vendor_completions.d/banset.fish",
            "mkdir   0700 /var/lib/banset",
            "skip    fail2ban action (/etc/fail2ban does not exist)",
            "skip    sshguard backend (/usr/libexec/sshguard does not exist)",
        ] {
            assert!(lines.iter().any(|l| l == want), "no {want:?} in {lines:#?}");
        }
        let unit = steps
            .iter()
            .find_map(|s| match s {
                Step::Write { path, text, .. } if path.ends_with("banset.service") => {
                    Some(String::from_utf8(text.clone()).unwrap())
                }
                _ => None,
            })
            .unwrap();
        assert!(unit.contains("ExecStart=/usr/local/bin/banset watch\n"));
    }

    #[test]
    fn a_package_layout_puts_the_unit_with_the_system() {
        let steps = install_plan(&linux("/usr"), &|_| false);
        let lines = paths(&steps);
        assert!(lines.contains(&"install 0644 /usr/lib/systemd/system/banset.service".into()));
        assert!(lines.contains(&"install 0755 /usr/bin/banset".into()));
        assert!(lines.contains(&"install 0644 /etc/banset/banset.toml".into()));
    }

    #[test]
    fn an_existing_config_is_never_overwritten() {
        let steps = install_plan(&linux("/usr/local"), &|p| {
            p == Path::new("/etc/banset/banset.toml")
        });
        assert!(paths(&steps)
            .contains(&"keep    /etc/banset/banset.toml (exists; never overwritten)".into()));
        assert!(!steps
            .iter()
            .any(|s| matches!(s, Step::Write { path, .. } if path.ends_with("banset.toml"))));
    }

    #[test]
    fn the_sshguard_backend_goes_where_sshguard_keeps_its_own() {
        let steps = install_plan(&linux("/usr"), &|p| p == Path::new("/usr/libexec/sshguard"));
        let script = steps
            .iter()
            .find_map(|s| match s {
                Step::Write { path, text, mode } if path.ends_with("sshg-fw-banset") => {
                    assert_eq!(*path, Path::new("/usr/libexec/sshguard/sshg-fw-banset"));
                    assert_eq!(*mode, 0o755);
                    Some(String::from_utf8(text.clone()).unwrap())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{:#?}", paths(&steps)));
        // It runs the binary this install puts in place.
        assert!(
            script.contains("exec /usr/bin/banset sshg-fw sshguard\n"),
            "{script}"
        );
        let bsd = Layout {
            os: Os::FreeBsd,
            prefix: PathBuf::from("/usr/local"),
            destdir: None,
        };
        let steps = install_plan(&bsd, &|p| p == Path::new("/usr/local/libexec/sshg-blocker"));
        assert!(paths(&steps).contains(&"install 0755 /usr/local/libexec/sshg-fw-banset".into()));
        let gone = uninstall_plan(&bsd, false, &|p| p.ends_with("sshg-fw-banset"));
        assert!(
            paths(&gone).contains(&"remove  /usr/local/libexec/sshg-fw-banset".into()),
            "{:#?}",
            paths(&gone)
        );
    }

    #[test]
    fn fail2ban_actions_go_in_when_fail2ban_is_there() {
        let steps = install_plan(&linux("/usr/local"), &|p| p == Path::new("/etc/fail2ban"));
        let lines = paths(&steps);
        for (name, source, text) in assets::fail2ban_actions() {
            match text {
                Some(text) => {
                    let path = Path::new("/etc/fail2ban/action.d").join(name);
                    let written = steps
                        .iter()
                        .find_map(|s| match s {
                            Step::Write { path: p, text, .. } if *p == path => Some(text),
                            _ => None,
                        })
                        .unwrap_or_else(|| panic!("{name} not installed: {lines:#?}"));
                    assert_eq!(
                        String::from_utf8(written.clone()).unwrap(),
                        assets::with_prefix(text, Path::new("/usr/local"))
                    );
                }
                None => assert!(
                    lines.contains(&format!(
                        "skip    fail2ban action (this build lacks {source})"
                    )),
                    "{lines:#?}"
                ),
            }
        }
    }

    #[test]
    fn freebsd_keeps_config_and_service_under_the_prefix() {
        let layout = Layout {
            os: Os::FreeBsd,
            prefix: "/usr/local".into(),
            destdir: None,
        };
        let lines = paths(&install_plan(&layout, &|p| {
            p == Path::new("/usr/local/etc/fail2ban")
        }));
        assert!(lines.contains(&"install 0644 /usr/local/etc/banset/banset.toml".into()));
        assert!(lines.contains(&"mkdir   0700 /var/db/banset".into()));
        match assets::FREEBSD_RC {
            Some(_) => assert!(lines.contains(&"install 0555 /usr/local/etc/rc.d/banset".into())),
            None => assert!(lines.contains(
                &"skip    rc.d script (this build lacks packaging/freebsd/rc.d/banset)".into()
            )),
        }
        assert!(!lines.iter().any(|l| l.contains("systemd")), "{lines:#?}");
    }

    #[test]
    fn uninstall_keeps_config_and_ledger_unless_purged() {
        let layout = linux("/usr/local");
        let everything = |_: &Path| true;
        let lines = paths(&uninstall_plan(&layout, false, &everything));
        assert!(lines.contains(&"remove  /usr/local/bin/banset".into()));
        assert!(lines.contains(&"remove  /usr/local/libexec/banset/mail-on-ban".into()));
        assert!(lines.contains(&"remove  /usr/local/share/man/man1/banset-watch.1".into()));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("keep    /etc/banset/banset.toml")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("keep    /var/lib/banset")));
        assert!(!lines
            .iter()
            .any(|l| l.contains("/etc/banset") && l.starts_with("remove")));
        let lines = paths(&uninstall_plan(&layout, true, &everything));
        assert!(lines.contains(&"remove  /etc/banset (and its contents)".into()));
        assert!(lines.contains(&"remove  /var/lib/banset (and its contents)".into()));
    }

    #[test]
    fn destdir_stages_every_path() {
        let mut layout = linux("/usr");
        layout.destdir = Some("/tmp/stage".into());
        assert_eq!(
            layout.staged(Path::new("/etc/banset/banset.toml")),
            Path::new("/tmp/stage/etc/banset/banset.toml")
        );
    }
}
