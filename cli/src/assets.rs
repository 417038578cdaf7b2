//! The files banset installs besides itself: some written by hand and
//! embedded at build time (the default config, the service files, the
//! fail2ban actions, `banset.toml(5)`), some generated from the clap
//! definitions (man pages, shell completions).
//!
//! Embedding them makes the binary alone enough to install banset: `banset
//! install` works from a release download as well as from a checkout.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Cli;

/// The commented default `banset.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../contrib/banset.toml");

/// The hardened systemd unit. Its paths say `/usr/local/bin/banset`;
/// [`with_prefix`] points them at the real binary.
pub const SYSTEMD_UNIT: &str = include_str!("../../contrib/systemd/banset.service");

/// `banset.toml(5)`, written by hand in roff.
pub const CONFIG_MAN_PAGE: &str = include_str!("../../contrib/man/banset.toml.5");

/// `on_ban` command that mails each ban through sendmail (fail2ban's
/// `sendmail-whois`), installed as `PREFIX/libexec/banset/mail-on-ban`.
pub const MAIL_ON_BAN: &str = include_str!("../../contrib/notify/mail-on-ban");

/// sshguard's backend for banset: sshguard wants `BACKEND` to be one
/// executable, so this two-line script names banset and the set.
pub const SSHGUARD_BACKEND: &str = include_str!("../../contrib/sshguard/sshg-fw-banset");

/// The path the embedded files name the binary by.
pub const SHIPPED_BINARY_PATH: &str = "/usr/local/bin/banset";

/// The directory the embedded files name banset's helper programs by.
pub const SHIPPED_LIBEXEC_DIR: &str = "/usr/local/libexec/banset/";

/// fail2ban's action for banset (`banaction = banset`), when this tree has it.
#[cfg(banset_fail2ban_action)]
pub const FAIL2BAN_ACTION: Option<&str> =
    Some(include_str!("../../contrib/fail2ban/action.d/banset.conf"));
#[cfg(not(banset_fail2ban_action))]
pub const FAIL2BAN_ACTION: Option<&str> = None;

/// fail2ban's all-ports action (`banaction_allports = banset-allports`).
#[cfg(banset_fail2ban_action_allports)]
pub const FAIL2BAN_ACTION_ALLPORTS: Option<&str> = Some(include_str!(
    "../../contrib/fail2ban/action.d/banset-allports.conf"
));
#[cfg(not(banset_fail2ban_action_allports))]
pub const FAIL2BAN_ACTION_ALLPORTS: Option<&str> = None;

/// fail2ban's Python action (`banaction = banset.py`), which does not fork.
#[cfg(banset_fail2ban_action_python)]
pub const FAIL2BAN_ACTION_PYTHON: Option<&str> =
    Some(include_str!("../../contrib/fail2ban/action.d/banset.py"));
#[cfg(not(banset_fail2ban_action_python))]
pub const FAIL2BAN_ACTION_PYTHON: Option<&str> = None;

/// FreeBSD's rc.d script.
#[cfg(banset_freebsd_rc)]
pub const FREEBSD_RC: Option<&str> = Some(include_str!("../../packaging/freebsd/rc.d/banset"));
#[cfg(not(banset_freebsd_rc))]
pub const FREEBSD_RC: Option<&str> = None;

/// The optional files: the name they are installed under, their path in the
/// source tree (for messages), and their text if this build has them.
pub fn fail2ban_actions() -> [(&'static str, &'static str, Option<&'static str>); 3] {
    [
        (
            "banset.conf",
            "contrib/fail2ban/action.d/banset.conf",
            FAIL2BAN_ACTION,
        ),
        (
            "banset-allports.conf",
            "contrib/fail2ban/action.d/banset-allports.conf",
            FAIL2BAN_ACTION_ALLPORTS,
        ),
        (
            "banset.py",
            "contrib/fail2ban/action.d/banset.py",
            FAIL2BAN_ACTION_PYTHON,
        ),
    ]
}

/// Path in the source tree of the rc.d script, for messages.
pub const FREEBSD_RC_SOURCE: &str = "packaging/freebsd/rc.d/banset";

/// `text` with the shipped paths (which assume prefix /usr/local) moved
/// to `prefix`: the binary's and the helper programs'.
pub fn with_prefix(text: &str, prefix: &std::path::Path) -> String {
    let prefix = prefix.display().to_string();
    let prefix = prefix.trim_end_matches('/');
    text.replace(SHIPPED_BINARY_PATH, &format!("{prefix}/bin/banset"))
        .replace(SHIPPED_LIBEXEC_DIR, &format!("{prefix}/libexec/banset/"))
}

/// A generated file: its name and content.
#[derive(Debug, Clone)]
pub struct Generated {
    pub name: String,
    pub text: Vec<u8>,
}

/// The CLI's definition as man pages and completions see it: no `help`
/// subcommand (clap's `help` is documented by `--help` itself).
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Section-1 man pages: `banset.1` and `banset-SUBCOMMAND.1` for every
/// visible subcommand (hidden ones are for packagers and have `--help`).
pub fn man_pages() -> Vec<Generated> {
    let mut pages = Vec::new();
    let root = command();
    let mut render = |cmd: clap::Command| {
        // The date field holds the version: an empty one is written
        // unquoted and shifts the footer's fields, and a build date would
        // make every build's pages differ.
        let man = clap_mangen::Man::new(cmd)
            .manual("banset manual")
            .date(env!("CARGO_PKG_VERSION"))
            .source("banset");
        let mut text = Vec::new();
        man.render(&mut text)
            .expect("rendering into memory cannot fail");
        pages.push(Generated {
            name: man.get_filename(),
            text,
        });
    };
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        render(sub.clone());
    }
    render(root);
    pages
}

/// The names of the man pages [`man_pages`] makes, without rendering them.
pub fn man_page_names() -> Vec<String> {
    let root = command();
    let mut names: Vec<String> = root
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("banset-{}.1", s.get_name()))
        .collect();
    names.push("banset.1".into());
    names
}

/// The shells banset has completions for, and each one's file name in the
/// directory that shell loads completions from.
pub const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "banset"),
    (Shell::Zsh, "_banset"),
    (Shell::Fish, "banset.fish"),
];

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = command();
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, "banset", &mut text);
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn repo_file(path: &str) -> Option<String> {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).ok()
    }

    /// The build script's view of the optional files must match the tree:
    /// a file present in the tree but not embedded would be silently left
    /// out of every install.
    #[test]
    fn optional_files_are_embedded_exactly_when_present() {
        let mut optional: Vec<(&str, Option<&str>)> = fail2ban_actions()
            .iter()
            .map(|(_, source, text)| (*source, *text))
            .collect();
        optional.push((FREEBSD_RC_SOURCE, FREEBSD_RC));
        for (source, embedded) in optional {
            assert_eq!(
                repo_file(source).as_deref(),
                embedded,
                "{source}: embedded copy differs from the tree (rerun the build)"
            );
        }
    }

    #[test]
    fn every_visible_subcommand_has_a_man_page() {
        let pages = man_pages();
        let names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, man_page_names());
        let cli = Cli::command();
        let visible: Vec<&clap::Command> =
            cli.get_subcommands().filter(|s| !s.is_hide_set()).collect();
        assert!(visible.len() >= 13, "{names:?}");
        for sub in visible {
            let name = format!("banset-{}.1", sub.get_name());
            let page = pages
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no man page {name}"));
            let text = String::from_utf8(page.text.clone()).unwrap();
            let title = format!(".TH {} 1 ", name.trim_end_matches(".1"));
            assert!(text.contains(&title), "{name}: {text}");
            let th = format!(
                "{title}{} banset \"banset manual\"\n",
                env!("CARGO_PKG_VERSION")
            );
            assert!(text.contains(&th), "{name}: {text}");
            assert!(text.contains(".SH NAME"), "{name}: {text}");
            assert!(text.contains(".SH SYNOPSIS"), "{name}");
            // The page documents this subcommand: its about text is there.
            // (roff escapes - and ' in text; compare with them undone)
            let about = sub.get_about().unwrap().to_string();
            let plain = text.replace("\\-", "-").replace("\\*(Aq", "'");
            assert!(plain.contains(&about), "{name} lacks {about:?}");
        }
        // The main page lists every subcommand's page.
        let root = pages.iter().find(|p| p.name == "banset.1").unwrap();
        let root = String::from_utf8(root.text.clone()).unwrap();
        for name in man_page_names().iter().filter(|n| *n != "banset.1") {
            let reference = format!("{}(1)", name.trim_end_matches(".1").replace('-', "\\-"));
            assert!(root.contains(&reference), "banset.1 lacks {reference}");
        }
        assert!(!names.contains(&"banset-generate.1"), "hidden stays hidden");
    }

    /// The FreeBSD port's packing list is written by hand: it must name
    /// every man page the binary generates, or the port fails to package.
    #[test]
    fn the_freebsd_packing_list_names_every_man_page() {
        let plist = repo_file("packaging/freebsd/pkg-plist").expect("pkg-plist");
        let listed: Vec<&str> = plist
            .lines()
            .filter_map(|l| l.strip_prefix("share/man/man1/")?.strip_suffix(".gz"))
            .collect();
        let mut want = man_page_names();
        want.sort();
        let mut listed = listed.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        listed.sort();
        assert_eq!(listed, want);
        for f in [
            "etc/fail2ban/action.d/banset.conf",
            "libexec/sshg-fw-banset",
            "share/man/man5/banset.toml.5.gz",
        ] {
            assert!(plist.lines().any(|l| l == f), "pkg-plist lacks {f}");
        }
    }

    #[test]
    fn completions_know_every_subcommand() {
        let cli = Cli::command();
        for (shell, _) in SHELLS {
            let text = String::from_utf8(completion(shell)).unwrap();
            assert!(text.len() > 500, "{shell}: {text}");
            for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
                assert!(
                    text.contains(sub.get_name()),
                    "{shell} completion lacks {}",
                    sub.get_name()
                );
            }
            // Options of subcommands too, not only their names.
            assert!(text.contains("timeout"), "{shell}");
        }
    }

    #[test]
    fn installed_files_point_at_the_installed_programs() {
        let unit = with_prefix(SYSTEMD_UNIT, Path::new("/usr"));
        assert!(unit.contains("ExecStart=/usr/bin/banset watch\n"), "{unit}");
        assert!(!unit.contains(SHIPPED_BINARY_PATH));
        let config = with_prefix(DEFAULT_CONFIG, Path::new("/usr/"));
        assert!(config.contains("#on_ban = [\"/usr/libexec/banset/mail-on-ban\""));
        assert!(!config.contains("/usr/local/libexec"), "{config}");
        assert_eq!(
            with_prefix(DEFAULT_CONFIG, Path::new("/usr/local")),
            DEFAULT_CONFIG
        );
        assert!(MAIL_ON_BAN.starts_with("#!/bin/sh\n"));
    }

    #[test]
    fn the_config_man_page_documents_every_section() {
        let page = CONFIG_MAN_PAGE;
        assert!(page.starts_with(".TH BANSET.TOML 5"), "{page}");
        for section in ["[defaults]", "[sets.", "[jails.", "[recidive]", "[watch]"] {
            assert!(page.contains(section), "banset.toml(5) lacks {section}");
        }
    }

    /// The FreeBSD port's packing list names every page and completion
    /// `banset generate` makes, and no other: `make check-plist` cannot run
    /// here, so this keeps the list from going stale when a subcommand comes
    /// or goes.
    #[test]
    fn the_freebsd_packing_list_matches_the_generated_files() {
        let plist = repo_file("packaging/freebsd/pkg-plist").unwrap();
        let mut listed: Vec<&str> = plist.lines().filter(|l| l.starts_with("share/")).collect();
        listed.sort_unstable();
        let mut want: Vec<String> = man_page_names()
            .iter()
            .map(|n| format!("share/man/man1/{n}.gz"))
            .collect();
        want.push("share/man/man5/banset.toml.5.gz".into());
        want.push("share/bash-completion/completions/banset".into());
        want.push("share/zsh/site-functions/_banset".into());
        want.push("share/fish/vendor_completions.d/banset.fish".into());
        want.sort_unstable();
        assert_eq!(listed, want);
        assert!(plist.contains("\nbin/banset\n") || plist.starts_with("bin/banset\n"));
        assert!(plist.contains("@dir(root,wheel,700) /var/db/banset"));
        // The rc.d script the port installs is the tree's.
        assert!(plist.contains("\netc/rc.d/banset\n"));
    }
}
