//! `[fleet]` in banset.toml: what this host publishes and what it accepts
//! from the others. The raw section is deserialized by the binary (it owns
//! the TOML reader); [`FleetSection::validate`] turns it into
//! [`FleetConfig`], naming file, line and key of what is wrong, as the
//! other sections' checks do.

use std::time::Duration;

use serde::Deserialize;

use super::policy::{FleetPolicy, DEFAULT_WIDEST_V4, DEFAULT_WIDEST_V6};
use crate::set_name::SetName;
use crate::timeout::Timeout;

/// The poll interval when notifications are lost (`poll_interval`).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest poll interval accepted: each poll is a query on the
/// engine, from every host.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// `[fleet]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// Publish this host's bans (default true).
    pub publish: Option<bool>,
    /// Sets whose bans are published (default all).
    pub publish_sets: Option<Vec<String>>,
    /// Jails whose bans are published (default all).
    pub publish_jails: Option<Vec<String>>,
    /// Host names whose bans are accepted (default all).
    pub accept_origins: Option<Vec<String>>,
    /// Sets whose remote bans are accepted (default all).
    pub accept_sets: Option<Vec<String>>,
    /// Widest IPv4 prefix accepted from others (default 24).
    pub widest_v4: Option<u8>,
    /// Widest IPv6 prefix accepted from others (default 48).
    pub widest_v6: Option<u8>,
    /// A duration (`"1d"`, seconds); `-1`/`"permanent"` is refused: it
    /// would bound nothing.
    pub longest_ban: Option<Timeout>,
    /// How often to look for changes when no notification comes (5s).
    pub poll_interval: Option<Timeout>,
}

/// `[fleet]`, checked, with its defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetConfig {
    /// Whether this host's bans are published at all.
    pub publish: bool,
    /// Sets whose bans are published; `None`: every set.
    pub publish_sets: Option<Vec<SetName>>,
    /// Jails whose bans are published; `None`: every jail.
    pub publish_jails: Option<Vec<String>>,
    /// Origins (host names) accepted; `None`: every origin.
    pub accept_origins: Option<Vec<String>>,
    /// Sets accepted; `None`: every set this host has.
    pub accept_sets: Option<Vec<SetName>>,
    /// Widest IPv4 prefix accepted from others.
    pub widest_v4: u8,
    /// Widest IPv6 prefix accepted from others.
    pub widest_v6: u8,
    /// Longest ban accepted from others; `None`: no bound.
    pub longest_ban: Option<Duration>,
    /// How often the puller looks without a notification.
    pub poll_interval: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            publish: true,
            publish_sets: None,
            publish_jails: None,
            accept_origins: None,
            accept_sets: None,
            widest_v4: DEFAULT_WIDEST_V4,
            widest_v6: DEFAULT_WIDEST_V6,
            longest_ban: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// A `[fleet]` key that is wrong: `origin:line: fleet.key: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: fleet.{key}: {message}")]
pub struct FleetConfigError {
    /// The file.
    pub origin: String,
    /// The key's line (1-based).
    pub line: usize,
    /// The key, under `fleet.`.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl FleetSection {
    /// Checks the section; `text` is the file's text, for line numbers,
    /// `origin` its name.
    pub fn validate(&self, text: &str, origin: &str) -> Result<FleetConfig, FleetConfigError> {
        let err = |key: &'static str, message: String| FleetConfigError {
            origin: origin.to_string(),
            line: line_of_key(text, key),
            key,
            message,
        };
        let sets = |key: &'static str, list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|names| {
                    names
                        .iter()
                        .map(|n| SetName::new(n).map_err(|e| err(key, format!("{n:?}: {e}"))))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
        };
        let widest = |key: &'static str, v: Option<u8>, default: u8, max: u8| match v {
            None => Ok(default),
            Some(v) if v <= max => Ok(v),
            Some(v) => Err(err(key, format!("{v} is not a prefix length (0-{max})"))),
        };
        let longest_ban = match self.longest_ban {
            None => None,
            Some(t) => match t.secs() {
                Some(0) | None => {
                    return Err(err(
                        "longest_ban",
                        "must be a positive duration (omit it for no bound)".into(),
                    ))
                }
                Some(s) => Some(Duration::from_secs(s)),
            },
        };
        let poll_interval = match self.poll_interval {
            None => DEFAULT_POLL_INTERVAL,
            Some(t) => match t.secs() {
                Some(s) if Duration::from_secs(s) >= MIN_POLL_INTERVAL => Duration::from_secs(s),
                _ => {
                    return Err(err(
                        "poll_interval",
                        "must be a duration of at least 1s".into(),
                    ))
                }
            },
        };
        let names = |key: &'static str, list: &Option<Vec<String>>| {
            if let Some(bad) = list.iter().flatten().find(|n| !valid_name(n)) {
                return Err(err(key, format!("{bad:?} is not a host or jail name")));
            }
            Ok(list.clone())
        };
        Ok(FleetConfig {
            publish: self.publish.unwrap_or(true),
            publish_sets: sets("publish_sets", &self.publish_sets)?,
            publish_jails: names("publish_jails", &self.publish_jails)?,
            accept_origins: names("accept_origins", &self.accept_origins)?,
            accept_sets: sets("accept_sets", &self.accept_sets)?,
            widest_v4: widest("widest_v4", self.widest_v4, DEFAULT_WIDEST_V4, 32)?,
            widest_v6: widest("widest_v6", self.widest_v6, DEFAULT_WIDEST_V6, 128)?,
            longest_ban,
            poll_interval,
        })
    }
}

impl FleetConfig {
    /// Whether a ban in `set` (by `jail`, `None` for a manual ban) is
    /// published. A manual ban is published only when asked (`add
    /// --fleet`), which is the caller's decision, not this one.
    pub fn publishes(&self, set: &SetName, jail: Option<&str>) -> bool {
        self.publish
            && self.publish_sets.as_ref().is_none_or(|s| s.contains(set))
            && match (jail, &self.publish_jails) {
                (_, None) => true,
                (Some(j), Some(list)) => list.iter().any(|x| x == j),
                (None, Some(_)) => true,
            }
    }

    /// The acceptance policy of host `this_host` (its own rows are skipped).
    pub fn policy(&self, this_host: &str) -> FleetPolicy {
        FleetPolicy {
            this_host: this_host.to_string(),
            origins: self.accept_origins.clone(),
            sets: self.accept_sets.clone(),
            widest_v4: self.widest_v4,
            widest_v6: self.widest_v6,
            longest: self.longest_ban.map(|d| d.as_secs()),
        }
    }
}

/// Host and jail names: what the fleet's schema takes (letters, digits,
/// `._-`), so a typo is caught here rather than never matching.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The line of `key` inside `[fleet]` (1-based), or the table's header
/// line, or 1: enough for an admin to find it.
fn line_of_key(text: &str, key: &str) -> usize {
    let mut in_fleet = false;
    let mut header = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_fleet = t == "[fleet]";
            if in_fleet {
                header = Some(i + 1);
            }
            continue;
        }
        if in_fleet {
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return i + 1;
                }
            }
        }
    }
    header.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> Result<FleetConfig, FleetConfigError> {
        // What the binary does: a TOML table; here the few shapes tested.
        let mut s = FleetSection::default();
        for line in text.lines().skip(1) {
            let (k, v) = line.split_once('=').unwrap();
            let v = v.trim();
            match k.trim() {
                "widest_v4" => s.widest_v4 = Some(v.parse().unwrap()),
                "longest_ban" => s.longest_ban = Some(v.trim_matches('"').parse().unwrap()),
                "poll_interval" => s.poll_interval = Some(v.trim_matches('"').parse().unwrap()),
                "accept_origins" => s.accept_origins = Some(vec![v.trim_matches('"').into()]),
                "publish_sets" => s.publish_sets = Some(vec![v.trim_matches('"').into()]),
                _ => unreachable!(),
            }
        }
        s.validate(text, "banset.toml")
    }

    #[test]
    fn defaults_fill_an_empty_section() {
        let c = section("[fleet]").unwrap();
        assert_eq!(c, FleetConfig::default());
        assert!(c.publishes(&SetName::new("ssh").unwrap(), Some("sshd")));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = section("[fleet]\nwidest_v4 = 40").unwrap_err();
        assert_eq!(
            e.to_string(),
            "banset.toml:2: fleet.widest_v4: 40 is not a prefix length (0-32)"
        );
        let e = section("[fleet]\nwidest_v4 = 24\nlongest_ban = \"-1\"").unwrap_err();
        assert_eq!((e.line, e.key), (3, "longest_ban"));
        let e = section("[fleet]\npoll_interval = \"-1\"").unwrap_err();
        assert_eq!((e.line, e.key), (2, "poll_interval"));
        let e = section("[fleet]\naccept_origins = \"a b\"").unwrap_err();
        assert_eq!(e.key, "accept_origins");
        let e = section("[fleet]\npublish_sets = \"no such/set\"").unwrap_err();
        assert_eq!(e.key, "publish_sets");
    }

    #[test]
    fn publish_filters_by_set_and_jail() {
        let ssh = SetName::new("ssh").unwrap();
        let web = SetName::new("web").unwrap();
        let c = FleetConfig {
            publish_sets: Some(vec![ssh.clone()]),
            publish_jails: Some(vec!["sshd".into()]),
            ..FleetConfig::default()
        };
        assert!(c.publishes(&ssh, Some("sshd")));
        assert!(!c.publishes(&ssh, Some("postfix")));
        assert!(!c.publishes(&web, Some("sshd")));
        assert!(c.publishes(&ssh, None), "manual bans: the caller asked");
        let off = FleetConfig {
            publish: false,
            ..FleetConfig::default()
        };
        assert!(!off.publishes(&ssh, Some("sshd")));
    }
}
