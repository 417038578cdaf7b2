//! The configuration file (`/etc/banset/banset.toml`). For the CLI it holds
//! the defaults of new sets and the ignore list; the watcher adds its jails.
//!
//! Unknown keys are errors, not warnings: a misspelt `ignore` would silently
//! leave an admin's own network bannable.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use anyhow::Result;
use banset_core::fleet::{FleetConfig, FleetSection};
use banset_core::{Target, Timeout};
use banset_watch::config::{JailConfig, RecidiveConfig, WatchConfig, WatchSection};
use serde::Deserialize;

use crate::args::SetOptions;

/// The configuration read when none is named: FreeBSD keeps third-party
/// configuration under /usr/local/etc (hier(7)).
#[cfg(not(target_os = "freebsd"))]
pub const DEFAULT_CONFIG: &str = "/etc/banset/banset.toml";
/// The configuration read when none is named: FreeBSD keeps third-party
/// configuration under /usr/local/etc (hier(7)).
#[cfg(target_os = "freebsd")]
pub const DEFAULT_CONFIG: &str = "/usr/local/etc/banset/banset.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub defaults: Defaults,
    /// Addresses and prefixes never banned (besides loopback and the host's
    /// own addresses, which always are).
    #[serde(default)]
    pub ignore: Vec<Target>,
    /// `[sets.NAME]`: sets the watcher creates at start (and `add` uses when
    /// it creates a set of that name).
    #[serde(default)]
    pub sets: BTreeMap<String, SetConfig>,
    /// `[jails.NAME]`: what `banset watch` watches.
    #[serde(default)]
    pub jails: BTreeMap<String, JailConfig>,
    /// `[recidive]`: bans across all ports for repeat offenders.
    pub recidive: Option<RecidiveConfig>,
    /// `[watch]`: the daemon's own settings.
    #[serde(default)]
    pub watch: WatchConfig,
    /// `[fail2ban]`: a fail2ban configuration whose enabled jails the
    /// watcher runs besides `[jails.NAME]`.
    pub fail2ban: Option<Fail2banSection>,
    /// `[fleet]` as written: bans shared with other hosts (docs/fleet.md).
    #[serde(rename = "fleet")]
    pub fleet_section: Option<FleetSection>,
    /// `[fleet]`, checked at parse time (defaults filled in).
    #[serde(skip)]
    pub fleet: Option<FleetConfig>,
    /// Where the file was read from, for error messages.
    #[serde(skip)]
    pub origin: Option<PathBuf>,
    /// The file's text, for the line numbers of later checks.
    #[serde(skip)]
    pub text: String,
}

/// `[fail2ban]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail2banSection {
    /// fail2ban's configuration directory (`/etc/fail2ban`).
    pub dir: PathBuf,
}

/// `[sets.NAME]`: `create`'s options, in the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConfig {
    pub backend: Option<String>,
    /// `inet`, `inet6` or `both`.
    pub family: Option<String>,
    pub timeout: Option<Timeout>,
    pub maxelem: Option<u32>,
    /// `"25,465,submission"` or `[25, 465, "submission"]`.
    pub ports: Option<Ports>,
    pub protocol: Option<String>,
    /// `drop` or `reject`.
    pub blocktype: Option<String>,
    /// Whether prefixes may be banned (default true).
    pub prefixes: Option<bool>,
    /// Whether the set gets its blocking rule (default true).
    pub hook: Option<bool>,
    /// firewalld: also save the rule in firewalld's permanent configuration.
    pub permanent: Option<bool>,
    /// `ban` (the default) or `allow-only` ([`banset_core::SetPolicy`]).
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Ports {
    Text(String),
    List(Vec<PortItem>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortItem {
    Number(u32),
    Text(String),
}

impl SetConfig {
    /// The same options as `banset create` would take.
    pub fn options(&self) -> SetOptions {
        SetOptions {
            backend: self.backend.clone(),
            family: self.family.clone(),
            maxelem: self.maxelem,
            ports: self.ports.as_ref().map(|p| match p {
                Ports::Text(t) => t.clone(),
                Ports::List(items) => items
                    .iter()
                    .map(|i| match i {
                        PortItem::Number(n) => n.to_string(),
                        PortItem::Text(t) => t.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            }),
            protocol: self.protocol.clone(),
            blocktype: self.blocktype.clone(),
            prefixes: false,
            no_prefixes: self.prefixes == Some(false),
            no_hook: self.hook == Some(false),
            permanent: self.permanent == Some(true),
            policy: self.policy.clone(),
            allow_only: false,
        }
    }
}

impl Config {
    /// The watcher's part, for validation.
    pub fn watch_section(&self) -> WatchSection {
        WatchSection {
            jails: self.jails.clone(),
            recidive: self.recidive.clone(),
            watch: self.watch.clone(),
        }
    }

    /// The file's name for messages.
    pub fn origin_name(&self) -> String {
        self.origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Backend of sets created without `--backend`.
    pub backend: Option<String>,
    /// Default timeout of sets created without one.
    pub timeout: Option<Timeout>,
    /// Default maxelem of new sets.
    pub maxelem: Option<u32>,
    /// Ledger directory, when neither --state-dir nor BANSET_STATE_DIR is given.
    pub state_dir: Option<PathBuf>,
}

impl Config {
    /// Reads `explicit` (which must exist), or the default file if present.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let (path, must_exist) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(Config::default())
            }
            Err(e) => return Err(crate::errors::input_file_error("config", &path, e)),
        };
        Config::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut config: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                // toml's message spans several lines with a source excerpt;
                // keep ours to one line: file, line, message.
                let line = e
                    .span()
                    .map(|s| text[..s.start].matches('\n').count() + 1)
                    .map(|l| format!(": line {l}"))
                    .unwrap_or_default();
                // A config error is the admin's to fix: exit 2, like usage.
                crate::errors::usage!(
                    "config {}{line}: {}",
                    path.display(),
                    e.message().replace('\n', " ")
                );
            }
        };
        // A set must hold at least one member; the key is named because
        // `--maxelem` is not what the admin wrote.
        let zero_maxelem =
            std::iter::once(("defaults.maxelem".to_string(), config.defaults.maxelem))
                .chain(
                    config
                        .sets
                        .iter()
                        .map(|(name, set)| (format!("sets.{name}.maxelem"), set.maxelem)),
                )
                .find(|(_, maxelem)| *maxelem == Some(0));
        if let Some((key, _)) = zero_maxelem {
            crate::errors::usage!(
                "config {}: {key} = 0: a set must hold at least one member",
                path.display()
            );
        }
        if let Some(section) = &config.fleet_section {
            match section.validate(text, &path.display().to_string()) {
                Ok(fleet) => config.fleet = Some(fleet),
                Err(e) => crate::errors::usage!("config {e}"),
            }
        }
        config.origin = Some(path.to_path_buf());
        config.text = text.to_string();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxelem_zero_is_refused_naming_its_key() {
        let path = Path::new("/etc/banset/banset.toml");
        let e = Config::parse("[defaults]\nmaxelem = 0\n", path)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config /etc/banset/banset.toml: defaults.maxelem = 0: a set must hold at least one member"
        );
        let e = Config::parse("[sets.web]\nmaxelem = 0\n", path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(": sets.web.maxelem = 0: "), "{e}");
        assert!(Config::parse("[sets.web]\nmaxelem = 1\n", path).is_ok());
    }

    #[test]
    fn fleet_section_is_validated_naming_file_line_and_key() {
        let path = Path::new("/etc/banset/banset.toml");
        let c = Config::parse(
            "[fleet]\npublish_jails = [\"sshd\"]\nlongest_ban = \"1d\"\n",
            path,
        )
        .unwrap();
        let fleet = c.fleet.unwrap();
        assert_eq!(fleet.publish_jails, Some(vec!["sshd".to_string()]));
        assert_eq!(
            fleet.longest_ban,
            Some(std::time::Duration::from_secs(86_400))
        );
        let e = Config::parse("[sets.web]\n[fleet]\nwidest_v6 = 129\n", path)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config /etc/banset/banset.toml:3: fleet.widest_v6: 129 is not a prefix length (0-128)"
        );
        let e = Config::parse("[fleet]\npublish_set = []\n", path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("publish_set"), "{e}");
        assert!(Config::parse("", path).unwrap().fleet.is_none());
    }

    #[test]
    fn reads_defaults_and_ignore_list() {
        let c = Config::parse(
            "ignore = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n[defaults]\nbackend = \"nftables\"\ntimeout = \"7d\"\nmaxelem = 2000000\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.ignore.len(), 2);
        assert_eq!(c.defaults.timeout, Some(Timeout::Secs(604_800)));
        assert_eq!(c.defaults.maxelem, Some(2_000_000));
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = Config::parse(
            "ignore = [\"10.0.0.0/8\"]\nignroe = 1\n",
            Path::new("/etc/x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("config /etc/x.toml: line 2:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = Config::parse("ignore = [\"10.0.0.300\"]\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("10.0.0.300") && e.contains("line 1"), "{e}");
        let e = Config::parse("[defaults]\ntimeout = 0\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero is refused"), "{e}");
    }
}

/// The commented default config that `banset install` and the packages ship
/// must stay loadable, and each of its examples a key the loader takes.
#[cfg(test)]
mod shipped {
    use super::*;

    const SHIPPED: &str = crate::assets::DEFAULT_CONFIG;
    const ORIGIN: &str = "contrib/banset.toml";

    /// `#key = value` and `#[table]` lines are examples; `# text` is prose.
    fn is_example(line: &str) -> bool {
        line.strip_prefix('#')
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_lowercase() || c == '[')
    }

    fn uncommented(text: &str) -> String {
        text.lines()
            .map(|l| if is_example(l) { &l[1..] } else { l })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The example keys: `(table, key)`.
    fn example_keys() -> Vec<String> {
        SHIPPED
            .lines()
            .filter(|l| is_example(l))
            .filter_map(|l| l[1..].split_once(" = ").map(|(k, _)| k.to_string()))
            .collect()
    }

    #[test]
    fn the_shipped_config_loads_as_is() {
        let c = Config::parse(SHIPPED, Path::new(ORIGIN)).unwrap();
        assert!(c.jails.is_empty() && c.ignore.is_empty() && c.sets.is_empty());
        c.watch_section().validate(&c.text, ORIGIN).unwrap();
        // Every line is a comment or blank: installing it changes nothing.
        assert!(SHIPPED.lines().all(|l| l.is_empty() || l.starts_with('#')));
    }

    #[test]
    fn every_example_in_the_shipped_config_is_valid() {
        let text = uncommented(SHIPPED);
        let config = Config::parse(&text, Path::new(ORIGIN)).unwrap_or_else(|e| panic!("{e}"));
        let settings = config
            .watch_section()
            .validate(&config.text, ORIGIN)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.ignore.len(), 2);
        assert_eq!(config.defaults.backend.as_deref(), Some("nftables"));
        assert!(config.defaults.state_dir.is_some());
        let sshd = &config.sets["sshd"];
        crate::set_options::build_spec(
            crate::args::set_name("sshd").unwrap(),
            &sshd.options(),
            sshd.timeout,
            &config,
            false,
            false,
        )
        .unwrap();
        let names: Vec<&str> = settings.jails.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["myapp", "sshd"]);
        let sshd = &settings.jails[1];
        assert_eq!(sshd.sources.len(), 2, "logpath and journalmatch");
        assert!(sshd.escalation.is_some());
        assert_eq!(sshd.on_ban[0], "/usr/local/libexec/banset/mail-on-ban");
        assert!(!sshd.on_unban.is_empty());
        assert!(settings.recidive.is_some());
        let watch = &settings.watch;
        assert!(watch.metrics_file.is_some() && watch.metrics_listen.is_some());
    }

    /// Every key the loader takes is shown in the shipped file (and so, by
    /// the test below, explained in banset.toml(5)): a key added to a
    /// config struct without documentation fails here. serde's error for an
    /// unknown key lists the keys its table takes.
    #[test]
    fn the_shipped_config_shows_every_key_the_loader_takes() {
        let tables = [
            "",
            "[defaults]\n",
            "[sets.x]\n",
            "[jails.x]\n",
            "[jails.x.escalation]\n",
            "[recidive]\n",
            "[watch]\n",
            "[fail2ban]\n",
            "[fleet]\n",
        ];
        for table in tables {
            let text = format!("{table}zz_unknown = 1\n");
            let e = Config::parse(&text, Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            let (_, expected) = e
                .split_once("expected")
                .unwrap_or_else(|| panic!("{table:?}: {e}"));
            let keys: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            assert!(!keys.is_empty(), "{table:?}: {e}");
            for key in keys {
                assert!(
                    SHIPPED.contains(&format!("#{key} = "))
                        || SHIPPED.contains(&format!(" {key} = "))
                        || SHIPPED.contains(&format!("#[{key}")),
                    "contrib/banset.toml does not show {table:?} {key}"
                );
            }
        }
    }

    /// banset.toml(5) explains every key the shipped file shows.
    #[test]
    fn the_man_page_explains_every_key() {
        let keys = example_keys();
        assert!(keys.len() >= 40, "{keys:?}");
        for key in keys {
            assert!(
                crate::assets::CONFIG_MAN_PAGE.contains(&format!(".B {key}")),
                "banset.toml(5) does not explain {key}"
            );
        }
    }
}
