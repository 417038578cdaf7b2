//! The configuration file (`/etc/banset/banset.toml`). For the CLI it holds
//! the defaults of new sets and the ignore list; the watcher adds its jails.
//!
//! Unknown keys are errors, not warnings: a misspelt `ignore` would silently
//! leave an admin's own network bannable.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use banset_core::{Target, Timeout};
use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/banset/banset.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub defaults: Defaults,
    /// Addresses and prefixes never banned (besides loopback and the host's
    /// own addresses, which always are).
    #[serde(default)]
    pub ignore: Vec<Target>,
    /// Where the file was read from, for error messages.
    #[serde(skip)]
    pub origin: Option<PathBuf>,
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
            Err(e) => return Err(e).with_context(|| format!("config {}", path.display())),
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
                bail!(
                    "config {}{line}: {}",
                    path.display(),
                    e.message().replace('\n', " ")
                );
            }
        };
        config.origin = Some(path.to_path_buf());
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
