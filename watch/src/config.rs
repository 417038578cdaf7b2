//! The watcher's part of `banset.toml`: `[jails.NAME]`, `[recidive]` and
//! `[watch]`, and their validation into [`JailSettings`].
//!
//! ```toml
//! [jails.sshd]
//! filter = "sshd"                 # a built-in, a fail2ban filter file
//!                                 # (/etc/fail2ban/filter.d/NAME.conf[mode=...]),
//!                                 # or only failregex = [...] inline
//! failregex = []                  # with a filter: lines added to it
//! logpath = ["/var/log/auth.log"] # a path or a list, globs; or journalmatch
//! maxretry = 5
//! findtime = "10m"
//! bantime = "1h"
//! set = "sshd"                    # default: the jail's name
//! ignore = ["192.0.2.0/24"]
//! escalation = { factor = 2, max = "4w" }
//!
//! [recidive]
//! bans = 5
//! findtime = "1d"
//! bantime = "1w"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use banset_core::{SetName, Target, Timeout};
use serde::Deserialize;
use toml::Spanned;

use crate::builtin::{builtin_filter, BUILTIN_FILTERS};
use crate::filter::{FilterDef, Pattern};
use crate::settings::NO_FILTER;
pub use crate::settings::{
    valid_journal_match, ConfigError, Escalation, JailAddition, JailSettings, Recidive, Settings,
    SourceKey, WatchSettings,
};

/// `[jails.NAME]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JailConfig {
    /// `false` keeps the jail in the file but inactive.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A built-in filter's name. Either this or `failregex`.
    pub filter: Option<Spanned<String>>,
    /// Inline failregexes in fail2ban's dialect (`<HOST>` etc.).
    #[serde(default)]
    pub failregex: Vec<Spanned<String>>,
    /// Inline ignoreregexes; added to the filter's own.
    #[serde(default)]
    pub ignoreregex: Vec<Spanned<String>>,
    /// Log files to follow: one path or a list, each may be a glob
    /// (`/var/log/mail*.log`), as fail2ban's `logpath`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub logpath: Vec<PathBuf>,
    /// systemd journal matches (`_SYSTEMD_UNIT=ssh.service`); the jail reads
    /// the journal when given.
    #[serde(default)]
    pub journalmatch: Vec<Spanned<String>>,
    /// Failures within `findtime` that make a ban (default 5).
    pub maxretry: Option<u32>,
    /// The window of `maxretry` (default 10m).
    pub findtime: Option<Timeout>,
    /// How long a first ban lasts (default 1h; `-1`/`never` is permanent).
    pub bantime: Option<Timeout>,
    /// The set bans go to (default: the jail's name).
    pub set: Option<Spanned<String>>,
    /// Addresses and prefixes this jail never bans.
    #[serde(default)]
    pub ignore: Vec<Target>,
    /// Longer bans for repeat offenders.
    pub escalation: Option<EscalationConfig>,
    /// A command run (by argv, never a shell) after each ban of this jail,
    /// with ADDRESS JAIL SET TIMEOUT_SECONDS FAILURES appended.
    #[serde(default)]
    pub on_ban: Vec<Spanned<String>>,
    /// The same when a ban in the jail's set ends.
    #[serde(default)]
    pub on_unban: Vec<Spanned<String>>,
}

fn yes() -> bool {
    true
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}

/// `escalation = { ... }` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// Each earlier ban multiplies the bantime by this (default 2).
    pub factor: Option<f64>,
    /// The longest ban escalation gives (default 4 weeks).
    pub max: Option<Timeout>,
    /// How far back earlier bans count (default 30 days).
    pub remember: Option<Timeout>,
}

/// `[recidive]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecidiveConfig {
    /// Bans (in any jail) within `findtime` that make a recidive ban
    /// (default 5).
    pub bans: Option<u32>,
    /// Default 1 day.
    pub findtime: Option<Timeout>,
    /// Default 1 week.
    pub bantime: Option<Timeout>,
    /// Default `recidive`; the set should block all ports.
    pub set: Option<Spanned<String>>,
    /// Run after each recidive ban, as a jail's `on_ban`.
    #[serde(default)]
    pub on_ban: Vec<Spanned<String>>,
    /// Run when a recidive ban ends, as a jail's `on_unban`.
    #[serde(default)]
    pub on_unban: Vec<Spanned<String>>,
}

/// `[watch]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// How often the keeper expires due bans and checks kernels without a
    /// change monitor (default 10s). A ban on a kernel without timeouts
    /// outlives its deadline by at most this.
    pub keeper_interval: Option<Timeout>,
    /// How often every set is fully re-synced, which also re-arms bans
    /// longer than a kernel's timeout cap (default 1h).
    pub sync_interval: Option<Timeout>,
    /// The `journalctl` to run for journal sources (default: found in PATH).
    pub journalctl: Option<PathBuf>,
    /// Prometheus textfile-collector file, rewritten every `metrics_interval`.
    pub metrics_file: Option<PathBuf>,
    /// How often metrics are written (default 15s).
    pub metrics_interval: Option<Timeout>,
    /// How long the ban history (`banset history`) is kept (default 90d);
    /// escalation and recidive keep what they need beyond it.
    pub history_retention: Option<Timeout>,
    /// At most this many history rows; the oldest go first (default 1000000).
    pub history_max_events: Option<u64>,
    /// A loopback address and port to serve `/metrics` on (`127.0.0.1:9731`).
    pub metrics_listen: Option<Spanned<String>>,
    /// A notification command still running after this is killed (default 30s).
    pub notify_timeout: Option<Timeout>,
    /// Notification commands running at once, at most (default 4).
    pub notify_concurrency: Option<u32>,
    /// The `on_ban` of every jail (and recidive) that has none of its own.
    #[serde(default)]
    pub on_ban: Vec<Spanned<String>>,
    /// The `on_unban` of every jail (and recidive) that has none of its own.
    #[serde(default)]
    pub on_unban: Vec<Spanned<String>>,
}

/// The most notification commands that may run at once. Each slot is a
/// thread started with the daemon: 100,000 of them spent the process's
/// thread and memory limits before the first ban. A notification is a mail
/// or a web hook; 64 at once is far past what one host's bans need, and the
/// bounded queue behind them absorbs a burst.
pub const MAX_NOTIFY_CONCURRENCY: u32 = 64;

/// Everything the watcher reads from the file, besides sets.
#[derive(Debug, Clone, Default)]
pub struct WatchSection {
    /// `[jails.NAME]`, by name.
    pub jails: BTreeMap<String, JailConfig>,
    /// `[recidive]`.
    pub recidive: Option<RecidiveConfig>,
    /// `[watch]`.
    pub watch: WatchConfig,
}

/// Default `maxretry`.
pub const DEFAULT_MAXRETRY: u32 = 5;
/// Default `findtime`, seconds.
pub const DEFAULT_FINDTIME: u64 = 600;
/// Default `bantime`, seconds.
pub const DEFAULT_BANTIME: u64 = 3600;

impl WatchSection {
    /// Validates the section. `text` is the file's text, for line numbers;
    /// `origin` its name.
    pub fn validate(&self, text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let doc = Doc { text, origin };
        let mut jails = Vec::new();
        let mut additions = Vec::new();
        let mut notices = Vec::new();
        for (name, jail) in &self.jails {
            match doc.jail(name, jail, &mut notices)? {
                Checked::Disabled => {}
                Checked::Addition(a) => additions.push(a),
                Checked::Jail(j) => jails.push(*j),
            }
        }
        Ok(Settings {
            jails,
            recidive: self
                .recidive
                .as_ref()
                .map(|r| doc.recidive(r))
                .transpose()?,
            watch: doc.watch(&self.watch)?,
            additions,
            default_on_ban: doc.argv("watch.on_ban".into(), &self.watch.on_ban)?,
            default_on_unban: doc.argv("watch.on_unban".into(), &self.watch.on_unban)?,
            notices,
            compiled: crate::shared::Kept::default(),
        })
    }
}

/// The file being validated: every check reports `origin: line N: key:`.
struct Doc<'a> {
    text: &'a str,
    origin: &'a str,
}

/// What a `[jails.NAME]` table turned out to be.
enum Checked {
    /// `enabled = false`.
    Disabled,
    /// Only notifications, added to a jail of fail2ban's configuration.
    Addition(JailAddition),
    /// A whole jail (boxed: it is far larger than the others).
    Jail(Box<JailSettings>),
}

/// A jail's filter before the table's inline regexes join it.
struct ChosenFilter {
    def: FilterDef,
    /// The fail2ban tree of a filter file, whose dialect the table's
    /// regexes then use.
    fail2ban_dir: Option<PathBuf>,
    /// The filter file took the table's failregex lines already.
    took_failregex: bool,
}

impl Doc<'_> {
    fn err(&self, line: Option<usize>, key: String, message: String) -> ConfigError {
        ConfigError {
            origin: self.origin.to_string(),
            line: line.map(|l| format!(": line {l}")).unwrap_or_default(),
            key,
            message,
        }
    }

    fn line_of_offset(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn line_of<T>(&self, value: &Spanned<T>) -> usize {
        self.line_of_offset(value.span().start)
    }

    /// The line of the `[header]` table, if written.
    fn table_line(&self, header: &str) -> Option<usize> {
        self.text
            .lines()
            .position(|l| {
                let l = l.trim();
                l.starts_with('[') && l.trim_matches(|c| c == '[' || c == ']').trim() == header
            })
            .map(|i| i + 1)
    }

    /// A notification command: its program must be an absolute path.
    fn argv(&self, key: String, items: &[Spanned<String>]) -> Result<Vec<String>, ConfigError> {
        if let Some(first) = items.first() {
            if !Path::new(first.get_ref()).is_absolute() {
                return Err(self.err(
                    Some(self.line_of(first)),
                    key,
                    format!(
                        "{:?}: the command must be an absolute path (it is run directly, never through a shell)",
                        first.get_ref()
                    ),
                ));
            }
        }
        Ok(items.iter().map(|s| s.get_ref().clone()).collect())
    }

    /// `[jails.NAME]`.
    fn jail(
        &self,
        name: &str,
        jail: &JailConfig,
        notices: &mut Vec<String>,
    ) -> Result<Checked, ConfigError> {
        let here = self.table_line(&format!("jails.{name}"));
        let key = |k: &str| format!("jails.{name}.{k}");
        if SetName::new(name).is_err() {
            return Err(self.err(
                here,
                format!("jails.{name}"),
                "a jail's name must be 1-30 characters of A-Z a-z 0-9 _ . - (it names its set)"
                    .into(),
            ));
        }
        if !jail.enabled {
            return Ok(Checked::Disabled);
        }
        let Some(chosen) = self.jail_filter(name, jail, here, notices)? else {
            return Ok(Checked::Addition(JailAddition {
                name: name.to_string(),
                line: here,
                on_ban: self.argv(key("on_ban"), &jail.on_ban)?,
                on_unban: self.argv(key("on_unban"), &jail.on_unban)?,
            }));
        };
        let fail2ban_dir = chosen.fail2ban_dir.clone();
        let filter = self.jail_regexes(name, jail, here, chosen)?;
        let sources = self.jail_sources(name, jail, here)?;
        let maxretry = jail.maxretry.unwrap_or(DEFAULT_MAXRETRY);
        if maxretry == 0 {
            return Err(self.err(here, key("maxretry"), "must be at least 1".into()));
        }
        let findtime = match jail.findtime {
            None => DEFAULT_FINDTIME,
            Some(Timeout::Secs(s)) => s,
            Some(Timeout::Never) => {
                return Err(self.err(
                    here,
                    key("findtime"),
                    "must be a duration, not never".into(),
                ))
            }
        };
        let set_text = jail.set.as_ref().map_or(name, |s| s.get_ref());
        let set = SetName::new(set_text).map_err(|e| {
            self.err(
                jail.set.as_ref().map(|s| self.line_of(s)).or(here),
                key("set"),
                e.to_string(),
            )
        })?;
        Ok(Checked::Jail(Box::new(JailSettings {
            name: name.to_string(),
            filter,
            sources,
            logpath: jail.logpath.clone(),
            fail2ban_dir,
            maxretry,
            findtime,
            bantime: jail.bantime.unwrap_or(Timeout::Secs(DEFAULT_BANTIME)),
            set,
            ignore: jail.ignore.clone(),
            escalation: self.jail_escalation(name, jail, here)?,
            on_ban: self.argv(key("on_ban"), &jail.on_ban)?,
            on_unban: self.argv(key("on_unban"), &jail.on_unban)?,
            mail: Vec::new(),
        })))
    }

    /// `filter`: a built-in or a fail2ban filter file (with its
    /// `[mode=...]`), and inline failregexes: the whole filter, or lines
    /// added to the named one (so one log never needs two overlapping
    /// jails, which would count each line twice for recidive). Added lines
    /// run as the filter's own do: after its prefregex, if it has one.
    /// `None`: the table only adds notifications to a fail2ban jail.
    fn jail_filter(
        &self,
        name: &str,
        jail: &JailConfig,
        here: Option<usize>,
        notices: &mut Vec<String>,
    ) -> Result<Option<ChosenFilter>, ConfigError> {
        let key = |k: &str| format!("jails.{name}.{k}");
        let builtin = |def| ChosenFilter {
            def,
            fail2ban_dir: None,
            took_failregex: false,
        };
        Ok(Some(match &jail.filter {
            Some(f) if crate::fail2ban::is_filter_file(f.get_ref()) => {
                let line = Some(self.line_of(f));
                let file = f.get_ref().split('[').next().unwrap_or_default();
                if !Path::new(file).is_absolute() {
                    return Err(self.err(
                        line,
                        key("filter"),
                        format!("{file}: a fail2ban filter file must be an absolute path"),
                    ));
                }
                let journal = jail.logpath.is_empty() && !jail.journalmatch.is_empty();
                let added: Vec<String> =
                    jail.failregex.iter().map(|p| p.get_ref().clone()).collect();
                let (loaded, dir) =
                    crate::fail2ban::load_filter_file(f.get_ref(), journal, &added).map_err(
                        |e| match e {
                            crate::fail2ban::Error::Added { index, ref message } => self.err(
                                jail.failregex.get(index).map(|p| self.line_of(p)),
                                key("failregex"),
                                message.clone(),
                            ),
                            e => self.err(line, key("filter"), e.to_string()),
                        },
                    )?;
                notices.extend(
                    crate::fail2ban::notice_lines(&loaded.notices)
                        .into_iter()
                        .map(|n| format!("jail {name}: {n}")),
                );
                ChosenFilter {
                    def: loaded.def,
                    fail2ban_dir: Some(dir),
                    took_failregex: true,
                }
            }
            Some(f) => builtin(builtin_filter(f.get_ref()).ok_or_else(|| {
                self.err(
                    Some(self.line_of(f)),
                    key("filter"),
                    format!(
                        "unknown filter {:?} (built-in: {}; or a fail2ban filter file, /etc/fail2ban/filter.d/NAME.conf[mode=...])",
                        f.get_ref(),
                        BUILTIN_FILTERS.join(", ")
                    ),
                )
            })?),
            None if !jail.failregex.is_empty() => {
                builtin(FilterDef::new(name.to_string(), Vec::new(), Vec::new()))
            }
            None if jail.is_addition() => return Ok(None),
            None => return Err(self.err(here, format!("jails.{name}"), NO_FILTER.into())),
        }))
    }

    /// `failregex` and `ignoreregex` join the filter, which must then
    /// compile, so `--check` reports a bad regex with its line.
    fn jail_regexes(
        &self,
        name: &str,
        jail: &JailConfig,
        here: Option<usize>,
        chosen: ChosenFilter,
    ) -> Result<FilterDef, ConfigError> {
        let mut filter = chosen.def;
        // The filter's own regexes come first: a compile error's index
        // past them is the jail's line.
        let own_failregex = filter.failregex.len();
        let own_ignoreregex = filter.ignoreregex.len();
        // A fail2ban filter's lines are in Python's regex dialect, and
        // so are the lines added to it.
        let dialect = |p: &Spanned<String>| match chosen.fail2ban_dir {
            Some(_) => Pattern::new(crate::fail2ban::translate_regex(p.get_ref())),
            None => Pattern::new(p.get_ref().clone()),
        };
        if !chosen.took_failregex {
            filter.failregex.extend(jail.failregex.iter().map(dialect));
        }
        filter
            .ignoreregex
            .extend(jail.ignoreregex.iter().map(dialect));
        if let Err(e) = crate::Matcher::new(std::slice::from_ref(&filter)) {
            let (spans, own): (&[Spanned<String>], usize) = if e.kind == "failregex" {
                (&jail.failregex, own_failregex)
            } else {
                (&jail.ignoreregex, own_ignoreregex)
            };
            let line = spans
                .get(e.index.wrapping_sub(1 + own))
                .map(|s| self.line_of(s))
                .or(jail.filter.as_ref().map(|f| self.line_of(f)))
                .or(here);
            return Err(self.err(line, format!("jails.{name}.{}", e.kind), e.to_string()));
        }
        Ok(filter)
    }

    /// `logpath` (absolute paths) and `journalmatch` (`FIELD=value`):
    /// at least one.
    fn jail_sources(
        &self,
        name: &str,
        jail: &JailConfig,
        here: Option<usize>,
    ) -> Result<Vec<SourceKey>, ConfigError> {
        let key = |k: &str| format!("jails.{name}.{k}");
        let mut sources: Vec<SourceKey> =
            jail.logpath.iter().cloned().map(SourceKey::File).collect();
        for p in &jail.logpath {
            if !p.is_absolute() {
                return Err(self.err(
                    here,
                    key("logpath"),
                    format!("{}: log paths must be absolute", p.display()),
                ));
            }
        }
        if !jail.journalmatch.is_empty() {
            let mut matches = Vec::new();
            for m in &jail.journalmatch {
                let text = m.get_ref();
                if !valid_journal_match(text) {
                    return Err(self.err(
                        Some(self.line_of(m)),
                        key("journalmatch"),
                        format!("{text:?} is not FIELD=value (FIELD of A-Z 0-9 _) or +"),
                    ));
                }
                matches.push(text.clone());
            }
            sources.push(SourceKey::Journal(matches));
        }
        if sources.is_empty() {
            return Err(self.err(
                here,
                format!("jails.{name}"),
                "no source: give logpath = [\"/var/log/...\"] or journalmatch = [...]".into(),
            ));
        }
        Ok(sources)
    }

    /// `escalation = { factor, max, remember }`, defaults filled in; the
    /// factor must be at least 1.
    fn jail_escalation(
        &self,
        name: &str,
        jail: &JailConfig,
        here: Option<usize>,
    ) -> Result<Option<Escalation>, ConfigError> {
        let escalation = jail.escalation.as_ref().map(|e| Escalation {
            factor: e.factor.unwrap_or(2.0),
            max: e.max.and_then(|m| m.secs()).unwrap_or(28 * 86_400),
            remember: e.remember.and_then(|m| m.secs()).unwrap_or(30 * 86_400),
        });
        if let Some(e) = &escalation {
            if !(e.factor.is_finite() && e.factor >= 1.0) {
                return Err(self.err(
                    here,
                    format!("jails.{name}.escalation.factor"),
                    format!("{} must be a number of at least 1", e.factor),
                ));
            }
        }
        Ok(escalation)
    }

    /// `[recidive]`: its set's name, and at least one ban.
    fn recidive(&self, r: &RecidiveConfig) -> Result<Recidive, ConfigError> {
        let here = self.table_line("recidive");
        let set_text = r.set.as_ref().map_or("recidive", |s| s.get_ref());
        let set = SetName::new(set_text)
            .map_err(|e| self.err(here, "recidive.set".into(), e.to_string()))?;
        let bans = r.bans.unwrap_or(5);
        if bans == 0 {
            return Err(self.err(here, "recidive.bans".into(), "must be at least 1".into()));
        }
        Ok(Recidive {
            bans,
            findtime: r.findtime.and_then(|t| t.secs()).unwrap_or(86_400),
            bantime: r.bantime.unwrap_or(Timeout::Secs(7 * 86_400)),
            set,
            on_ban: self.argv("recidive.on_ban".into(), &r.on_ban)?,
            on_unban: self.argv("recidive.on_unban".into(), &r.on_unban)?,
            mail: Vec::new(),
        })
    }

    /// `[watch]`: intervals, metrics and notification limits.
    fn watch(&self, w: &WatchConfig) -> Result<WatchSettings, ConfigError> {
        let secs = |t: Option<Timeout>, default: u64, key: &str| match t {
            None => Ok(default),
            Some(Timeout::Secs(s)) => Ok(s),
            Some(Timeout::Never) => Err(self.err(
                self.table_line("watch"),
                format!("watch.{key}"),
                "must be a duration, not never".into(),
            )),
        };
        let metrics_listen = w
            .metrics_listen
            .as_ref()
            .map(|text| self.metrics_listen(text))
            .transpose()?;
        if let Some(file) = &w.metrics_file {
            self.check_metrics_file(file)?;
        }
        if let Some(n) = w.notify_concurrency {
            if !(1..=MAX_NOTIFY_CONCURRENCY).contains(&n) {
                return Err(self.err(
                    self.table_line("watch"),
                    "watch.notify_concurrency".into(),
                    format!("{n} is not between 1 and {MAX_NOTIFY_CONCURRENCY}"),
                ));
            }
        }
        Ok(WatchSettings {
            keeper_interval: secs(w.keeper_interval, 10, "keeper_interval")?,
            sync_interval: secs(w.sync_interval, 3600, "sync_interval")?,
            metrics_file: w.metrics_file.clone(),
            metrics_interval: secs(w.metrics_interval, 15, "metrics_interval")?,
            history_retention: secs(
                w.history_retention,
                banset_core::DEFAULT_RETENTION,
                "history_retention",
            )?,
            history_max_events: w
                .history_max_events
                .unwrap_or(banset_core::DEFAULT_MAX_EVENTS),
            metrics_listen,
            notify_timeout: secs(w.notify_timeout, 30, "notify_timeout")?,
            notify_concurrency: w.notify_concurrency.unwrap_or(4),
            journalctl: w
                .journalctl
                .clone()
                .unwrap_or_else(|| PathBuf::from("journalctl")),
        })
    }

    /// `watch.metrics_listen`: an `ADDRESS:PORT` on loopback.
    fn metrics_listen(&self, text: &Spanned<String>) -> Result<SocketAddr, ConfigError> {
        let line = Some(self.line_of(text));
        let addr: SocketAddr = text.get_ref().parse().map_err(|_| {
            self.err(
                line,
                "watch.metrics_listen".into(),
                format!(
                    "{:?} is not ADDRESS:PORT (e.g. 127.0.0.1:9731)",
                    text.get_ref()
                ),
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(self.err(
                line,
                "watch.metrics_listen".into(),
                format!("{addr}: metrics are served on loopback only (put a proxy in front to publish them)"),
            ));
        }
        Ok(addr)
    }

    /// `watch.metrics_file`: the daemon writes this file as root in a
    /// directory another user may own (node_exporter's). Whoever controls
    /// that user could move the directory: keeping the name `*.prom`,
    /// which only a textfile collector reads, means root can only ever
    /// write metrics where nothing else looks. node_exporter reads nothing
    /// else anyway.
    fn check_metrics_file(&self, file: &Path) -> Result<(), ConfigError> {
        let ok = file.is_absolute()
            && file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() > ".prom".len() && n.ends_with(".prom"));
        if !ok {
            return Err(self.err(
                self.table_line("watch"),
                "watch.metrics_file".into(),
                format!(
                    "{}: must be an absolute path whose name ends in .prom (node_exporter reads no other)",
                    file.display()
                ),
            ));
        }
        Ok(())
    }
}

impl JailConfig {
    /// A table with neither filter nor source, and nothing but
    /// notifications: it adds to a jail of fail2ban's configuration.
    fn is_addition(&self) -> bool {
        let JailConfig {
            enabled: _,
            filter,
            failregex,
            ignoreregex,
            logpath,
            journalmatch,
            maxretry,
            findtime,
            bantime,
            set,
            ignore,
            escalation,
            on_ban,
            on_unban,
        } = self;
        filter.is_none()
            && failregex.is_empty()
            && ignoreregex.is_empty()
            && logpath.is_empty()
            && journalmatch.is_empty()
            && maxretry.is_none()
            && findtime.is_none()
            && bantime.is_none()
            && set.is_none()
            && ignore.is_empty()
            && escalation.is_none()
            && !(on_ban.is_empty() && on_unban.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::MailAction;

    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        jails: BTreeMap<String, JailConfig>,
        recidive: Option<RecidiveConfig>,
        #[serde(default)]
        watch: WatchConfig,
    }

    fn settings(text: &str) -> Result<Settings, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        WatchSection {
            jails: f.jails,
            recidive: f.recidive,
            watch: f.watch,
        }
        .validate(text, "/etc/banset/banset.toml")
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_toml_jail_with_only_on_ban_adds_to_a_fail2ban_jail_and_defaults_fill_the_rest() {
        let mut s = settings(
            "[jails.sshd]\non_ban = [\"/bin/a\"]\n[jails.recidive]\non_unban = [\"/bin/r\"]\n[jails.own]\nfilter = \"sshd\"\nlogpath = [\"/l\"]\non_ban = [\"/bin/own\"]\n[jails.plain]\nfilter = \"sshd\"\nlogpath = [\"/l\"]\n[recidive]\n[watch]\non_ban = [\"/bin/d\"]\non_unban = [\"/bin/du\"]\n",
        )
        .unwrap();
        assert_eq!(s.additions.len(), 2);
        // fail2ban's sshd, as the daemon adds it, with a mail action.
        let mut f2b = s.jails[0].clone();
        f2b.name = "sshd".into();
        f2b.on_ban.clear();
        f2b.on_unban.clear();
        f2b.mail = vec![MailAction::from_fail2ban("sendmail-whois", &[])
            .unwrap()
            .unwrap()];
        s.jails.push(f2b);
        s.merge_additions("banset.toml").unwrap();
        let by = |n: &str| s.jails.iter().find(|j| j.name == n).unwrap();
        assert_eq!(by("sshd").on_ban, ["/bin/a"]);
        assert_eq!(by("sshd").on_unban, ["/bin/du"]);
        assert_eq!(
            by("sshd").mail.len(),
            1,
            "the addition keeps fail2ban's mail"
        );
        assert_eq!(by("own").on_ban, ["/bin/own"]);
        assert_eq!(by("plain").on_ban, ["/bin/d"]);
        let r = s.recidive.as_ref().unwrap();
        assert_eq!(
            (r.on_ban.as_slice(), r.on_unban.as_slice()),
            (&["/bin/d".to_string()][..], &["/bin/r".to_string()][..])
        );
        // An addition without a jail to add to is the old "no filter"
        // error, saying why; one with other keys is not an addition.
        let mut s = settings("[jails.nosuch]\non_ban = [\"/bin/a\"]\n").unwrap();
        let e = s.merge_additions("banset.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("banset.toml: line 1: jails.nosuch: no filter")
                && e.contains("none named nosuch is enabled"),
            "{e}"
        );
        let e = settings("[jails.sshd]\nmaxretry = 3\non_ban = [\"/bin/a\"]\n").unwrap_err();
        assert!(e.contains("jails.sshd: no filter"), "{e}");
        let e = settings("[jails.sshd]\non_ban = [\"a\"]\n").unwrap_err();
        assert!(
            e.contains("jails.sshd.on_ban") && e.contains("absolute path"),
            "{e}"
        );
    }

    #[test]
    fn a_full_jail_validates_with_defaults_filled_in() {
        let s = settings(
            "[jails.sshd]\nfilter = \"sshd\"\nlogpath = [\"/var/log/auth.log\"]\nbantime = \"1d\"\nescalation = { factor = 3 }\n\n[jails.mail]\nfailregex = ['^x <HOST>$']\njournalmatch = [\"_SYSTEMD_UNIT=postfix.service\"]\nset = \"mailbans\"\n[recidive]\nbans = 3\n",
        )
        .unwrap();
        assert_eq!(s.jails.len(), 2);
        let mail = &s.jails[0];
        assert_eq!(mail.name, "mail");
        assert_eq!(mail.set.as_str(), "mailbans");
        assert_eq!(
            mail.sources,
            vec![SourceKey::Journal(vec![
                "_SYSTEMD_UNIT=postfix.service".into()
            ])]
        );
        let sshd = &s.jails[1];
        assert_eq!(
            (sshd.maxretry, sshd.findtime),
            (DEFAULT_MAXRETRY, DEFAULT_FINDTIME)
        );
        assert_eq!(sshd.bantime, Timeout::Secs(86_400));
        assert_eq!(sshd.escalation.unwrap().factor, 3.0);
        assert_eq!(s.recidive.unwrap().set.as_str(), "recidive");
        assert_eq!(s.watch.keeper_interval, 10);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = settings("\n[jails.sshd]\nlogpath = [\"/var/log/auth.log\"]\nfilter = \"ssdh\"\n")
            .unwrap_err();
        assert!(
            e.starts_with(
                "/etc/banset/banset.toml: line 4: jails.sshd.filter: unknown filter \"ssdh\""
            ),
            "{e}"
        );
        let e = settings("[jails.x]\nlogpath = [\"/l\"]\nfailregex = [\n  '^ok <HOST>$',\n  '^bad ( <HOST>',\n]\n").unwrap_err();
        assert!(e.contains("line 5: jails.x.failregex:"), "{e}");
        let e = settings("[jails.x]\nfilter = \"sshd\"\n").unwrap_err();
        assert!(e.contains("line 1: jails.x: no source"), "{e}");
        let e =
            settings("[jails.x]\nfilter = \"sshd\"\njournalmatch = [\"unit=ssh\"]\n").unwrap_err();
        assert!(e.contains("line 3: jails.x.journalmatch"), "{e}");
        let e = settings("[jails.x]\nfilter = \"sshd\"\nlogpath = [\"rel/log\"]\n").unwrap_err();
        assert!(e.contains("must be absolute"), "{e}");
        let e = settings("[jails.x]\nfilter = \"sshd\"\nlogpath = [\"/l\"]\nmaxretry = 0\n")
            .unwrap_err();
        assert!(e.contains("jails.x.maxretry: must be at least 1"), "{e}");
        let e =
            settings("[jails.x]\nlogpath = [\"/l\"]\nfailregex = ['no host tag']\n").unwrap_err();
        assert!(e.contains("no <HOST>"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    fn hit(f: &FilterDef, line: &str) -> Option<String> {
        let m = crate::Matcher::new(std::slice::from_ref(f)).unwrap();
        let mut hits = Vec::new();
        let (_, rest) = crate::logtime::split_date(line.as_bytes());
        match m.scan_line(line.as_bytes(), rest, &mut hits) {
            crate::matcher::Scan::Hit if !hits[0].ignored => Some(hits[0].target.to_string()),
            _ => None,
        }
    }

    /// One jail reads one log with a fail2ban filter file in its mode and
    /// lines of its own, where two overlapping jails were needed before.
    #[test]
    fn a_native_jail_uses_a_fail2ban_filter_file_with_its_mode_and_adds_failregex_lines() {
        let dir = std::env::temp_dir().join(format!("banset-native-f2b-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        std::fs::write(
            dir.join("filter.d/common.conf"),
            "[DEFAULT]\n__prefix_line = \\s*\\S+ <_daemon>\\[\\d+\\]:\\s+\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("filter.d/demo.conf"),
            "[INCLUDES]\nbefore = common.conf\n[Definition]\n_daemon = demo\nnormal = ^%(__prefix_line)sbad password from <HOST>$\naggressive = <normal>\n             ^%(__prefix_line)sprobe from <HOST>$\nfailregex = <<mode>>\nmode = normal\nignoreregex = ^%(__prefix_line)s.* from 192\\.0\\.2\\.99$\n",
        )
        .unwrap();
        let conf = |filter: &str, extra: &str| {
            settings(&format!(
                "[jails.demo]\nfilter = \"{}/filter.d/{filter}\"\nlogpath = \"/var/log/demo.log\"\n{extra}",
                dir.display()
            ))
        };
        let s = conf(
            "demo.conf[mode=aggressive]",
            "failregex = ['^%(__prefix_line)sown rule <HOST>$']\nignoreregex = ['from 192\\.0\\.2\\.98$']\n",
        )
        .unwrap();
        let j = &s.jails[0];
        assert_eq!(j.filter.name, "demo[mode=aggressive]");
        assert_eq!(j.filter.failregex.len(), 3);
        assert_eq!(j.fail2ban_dir.as_deref(), Some(dir.as_path()));
        let at = "Nov 21 12:00:00 h demo[1]:";
        for (line, want) in [
            (
                format!("{at} bad password from 192.0.2.1"),
                Some("192.0.2.1"),
            ),
            (format!("{at} probe from 192.0.2.2"), Some("192.0.2.2")),
            (format!("{at} own rule 192.0.2.3"), Some("192.0.2.3")),
            (format!("{at} probe from 192.0.2.99"), None),
            (format!("{at} probe from 192.0.2.98"), None),
        ] {
            assert_eq!(hit(&j.filter, &line).as_deref(), want, "{line}");
        }
        // The default mode: no probe rule.
        let s = conf("demo.conf", "").unwrap();
        assert_eq!(
            hit(&s.jails[0].filter, &format!("{at} probe from 192.0.2.2")),
            None
        );
        // A bad added line is named by its own line, not the filter's.
        let e = conf(
            "demo.conf",
            "failregex = [\n  '^ok <HOST>$',\n  '^bad ( <HOST>',\n]\n",
        )
        .unwrap_err();
        assert!(e.contains("line 6: jails.demo.failregex:"), "{e}");
        let e = conf("none.conf", "").unwrap_err();
        assert!(
            e.contains("line 2: jails.demo.filter: filter ") && e.contains("no such file"),
            "{e}"
        );
        let e =
            settings("[jails.x]\nfilter = \"filter.d/demo.conf\"\nlogpath = \"/l\"\n").unwrap_err();
        assert!(e.contains("must be an absolute path"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn notifications_and_metrics_are_validated() {
        let s = settings("[jails.x]\nfilter = \"sshd\"\nlogpath = [\"/l\"]\non_ban = [\"/usr/local/bin/mail-on-ban\", \"--to\", \"root\"]\n[watch]\nmetrics_listen = \"127.0.0.1:9731\"\nmetrics_file = \"/var/lib/node/banset.prom\"\n").unwrap();
        assert_eq!(
            s.jails[0].on_ban,
            ["/usr/local/bin/mail-on-ban", "--to", "root"]
        );
        assert_eq!(s.watch.metrics_listen.unwrap().port(), 9731);
        assert_eq!(
            (s.watch.notify_timeout, s.watch.notify_concurrency),
            (30, 4)
        );
        let e = settings(
            "[jails.x]\nfilter = \"sshd\"\nlogpath = [\"/l\"]\non_ban = [\"mail -s x\"]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("line 4: jails.x.on_ban") && e.contains("absolute path"),
            "{e}"
        );
        let e = settings("[watch]\nmetrics_file = \"/etc/cron.d/banset\"\n").unwrap_err();
        assert!(
            e.contains("watch.metrics_file") && e.contains("ends in .prom"),
            "{e}"
        );
        let e = settings("[watch]\nmetrics_listen = \"0.0.0.0:9731\"\n").unwrap_err();
        assert!(e.contains("loopback only"), "{e}");
        let e = settings("[watch]\nnotify_concurrency = 0\n").unwrap_err();
        assert!(e.contains("watch.notify_concurrency"), "{e}");
        let e = settings("[watch]\nnotify_concurrency = 100000\n").unwrap_err();
        assert!(
            e.contains("watch.notify_concurrency") && e.contains("100000 is not between 1 and 64"),
            "{e}"
        );
        assert!(settings("[watch]\nnotify_concurrency = 64\n").is_ok());
    }

    #[test]
    fn disabled_jails_are_skipped() {
        let s = settings("[jails.x]\nenabled = false\n").unwrap();
        assert!(s.jails.is_empty());
    }

    #[test]
    fn escalation_multiplies_caps_and_never_shortens() {
        let e = Escalation {
            factor: 2.0,
            max: 86_400,
            remember: 0,
        };
        assert_eq!(e.bantime(Timeout::Secs(3600), 0), Timeout::Secs(3600));
        assert_eq!(e.bantime(Timeout::Secs(3600), 3), Timeout::Secs(28_800));
        assert_eq!(e.bantime(Timeout::Secs(3600), 10), Timeout::Secs(86_400));
        assert_eq!(
            e.bantime(Timeout::Secs(3600), 10_000),
            Timeout::Secs(86_400)
        );
        assert_eq!(e.bantime(Timeout::Secs(200_000), 2), Timeout::Secs(200_000));
        assert_eq!(e.bantime(Timeout::Never, 2), Timeout::Never);
    }
}
