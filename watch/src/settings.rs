//! The watcher's validated settings: what [`crate::config`] makes of
//! banset.toml and [`crate::fail2ban`] of fail2ban's configuration, and
//! what the policy, the pipeline and the daemon read. Types only (and the
//! last step of joining the two, [`Settings::merge_additions`]), below
//! both readers: the fail2ban reader builds them, and banset.toml's
//! validation reads fail2ban filter files, so neither reader may sit
//! under the other. Public as `banset_watch::config::*`.

use std::path::PathBuf;

use banset_core::{SetName, Target, Timeout};

use crate::filter::FilterDef;
use crate::mail::MailAction;

/// Where a jail reads from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKey {
    /// A log file.
    File(PathBuf),
    /// The journal, with these matches (sorted).
    Journal(Vec<String>),
}

impl std::fmt::Display for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceKey::File(p) => write!(f, "{}", p.display()),
            SourceKey::Journal(m) => write!(f, "journal[{}]", m.join(" ")),
        }
    }
}

/// Escalation of bantimes for repeat offenders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Escalation {
    /// Multiplier per earlier ban.
    pub factor: f64,
    /// Cap, seconds.
    pub max: u64,
    /// Earlier bans count back this far, seconds.
    pub remember: u64,
}

impl Escalation {
    /// The bantime for an address banned `earlier` times before within
    /// `remember`: `base × factor^earlier`, at most `max`. Permanent stays
    /// permanent; escalation never shortens a ban.
    pub fn bantime(&self, base: Timeout, earlier: usize) -> Timeout {
        let Some(secs) = base.secs() else {
            return Timeout::Never;
        };
        let scaled = secs as f64 * self.factor.powi(earlier.min(64) as i32);
        let capped = if scaled.is_finite() {
            scaled.min(self.max as f64) as u64
        } else {
            self.max
        };
        Timeout::from_secs(capped.max(secs)).unwrap_or(base)
    }
}

/// A validated jail.
#[derive(Debug, Clone)]
pub struct JailSettings {
    /// The jail's name.
    pub name: String,
    /// Its filter (built-in or inline), ready to compile.
    pub filter: FilterDef,
    /// Where it reads: the files its `logpath` matches (after
    /// [`crate::logpath::resolve`]; the patterns themselves before), and
    /// the journal.
    pub sources: Vec<SourceKey>,
    /// `logpath` as written: absolute paths, possibly globs.
    pub logpath: Vec<PathBuf>,
    /// The fail2ban configuration directory a banset.toml jail's filter
    /// file was read from, whose files must be trusted as fail2ban's.
    pub fail2ban_dir: Option<PathBuf>,
    /// See [`crate::config::JailConfig`].
    pub maxretry: u32,
    /// Seconds.
    pub findtime: u64,
    /// The first ban's length.
    pub bantime: Timeout,
    /// The set bans go to.
    pub set: SetName,
    /// Never banned by this jail.
    pub ignore: Vec<Target>,
    /// Longer bans for repeat offenders.
    pub escalation: Option<Escalation>,
    /// argv run after each ban (arguments appended), if any.
    pub on_ban: Vec<String>,
    /// argv run when a ban of the jail's set ends, if any.
    pub on_unban: Vec<String>,
    /// fail2ban's mail actions of the jail (`sendmail-whois-lines`...),
    /// sent after each ban besides `on_ban`.
    pub mail: Vec<MailAction>,
}

/// A validated `[recidive]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recidive {
    /// Bans within `findtime` that trigger.
    pub bans: u32,
    /// Seconds.
    pub findtime: u64,
    /// The recidive ban's length.
    pub bantime: Timeout,
    /// Its set.
    pub set: SetName,
    /// argv run after each recidive ban, if any.
    pub on_ban: Vec<String>,
    /// argv run when a recidive ban ends, if any.
    pub on_unban: Vec<String>,
    /// Mails after each recidive ban (fail2ban's recidive jail's actions).
    pub mail: Vec<MailAction>,
}

impl Recidive {
    /// Whether `bans_in_window` bans (this one included) within `findtime`
    /// call for a recidive ban.
    pub fn triggered(&self, bans_in_window: usize) -> bool {
        bans_in_window >= self.bans as usize
    }
}

/// A validated `[watch]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    /// Seconds.
    pub keeper_interval: u64,
    /// Seconds.
    pub sync_interval: u64,
    /// `journalctl` to run.
    pub journalctl: PathBuf,
    /// See [`crate::config::WatchConfig`].
    pub metrics_file: Option<PathBuf>,
    /// Seconds.
    pub metrics_interval: u64,
    /// Seconds the ban history is kept, at least.
    pub history_retention: u64,
    /// Rows of ban history, at most.
    pub history_max_events: u64,
    /// A loopback socket address.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Seconds.
    pub notify_timeout: u64,
    /// At least 1.
    pub notify_concurrency: u32,
}

/// The whole validated watcher configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Enabled jails, by name.
    pub jails: Vec<JailSettings>,
    /// `[recidive]`, if configured.
    pub recidive: Option<Recidive>,
    /// `[watch]`.
    pub watch: WatchSettings,
    /// `[jails.NAME]` tables that only add `on_ban`/`on_unban` to a jail
    /// read from fail2ban; see [`Settings::merge_additions`].
    pub additions: Vec<JailAddition>,
    /// `[watch] on_ban`: every jail's and recidive's without one.
    pub default_on_ban: Vec<String>,
    /// `[watch] on_unban`: the same.
    pub default_on_unban: Vec<String>,
    /// What a jail's fail2ban filter file asks for that banset does
    /// differently (a failregex it cannot run), one line each.
    pub notices: Vec<String>,
    /// What checking these settings compiled (filters, each source's
    /// scan, date finders; see [`crate::shared::keeping`]), held so that building
    /// the sources from them compiles nothing again. Empty until the
    /// caller fills it; drop it once the sources run, so a reload frees
    /// what they no longer use.
    pub compiled: crate::shared::Kept,
}

/// A `[jails.NAME]` with neither filter nor source, only notifications: it
/// adds them to the jail NAME of fail2ban's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailAddition {
    /// The jail it adds to.
    pub name: String,
    /// Its table's line, for errors.
    pub line: Option<usize>,
    /// See [`crate::config::JailConfig`].
    pub on_ban: Vec<String>,
    /// See [`crate::config::JailConfig`].
    pub on_unban: Vec<String>,
}

/// A configuration error: where and what, on one line.
#[derive(Debug, thiserror::Error)]
#[error("{origin}{line}: {key}: {message}")]
pub struct ConfigError {
    /// The file.
    pub origin: String,
    /// `: line N`, or empty when unknown.
    pub line: String,
    /// The dotted key (`jails.sshd.filter`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

pub(crate) const NO_FILTER: &str =
    "no filter: set filter = \"sshd\" (or another built-in, or a fail2ban filter file) or failregex = [...]";

impl Settings {
    /// Completes the jails once fail2ban's (if any) have joined
    /// `self.jails` and its recidive `self.recidive`.
    ///
    /// The rule (decided): a `[jails.NAME]` with a filter and a source is a
    /// whole jail, and replaces a fail2ban jail of the same name; one with
    /// only `on_ban`/`on_unban` adds them to the jail NAME (from fail2ban;
    /// `recidive` names the recidive jail), keeping its filter, sources,
    /// actions and mails. Last, `[watch] on_ban`/`on_unban` fill every jail
    /// and recidive that still has none. `origin` names the config file.
    pub fn merge_additions(&mut self, origin: &str) -> Result<(), ConfigError> {
        for add in std::mem::take(&mut self.additions) {
            let (on_ban, on_unban) = if let Some(j) =
                self.jails.iter_mut().find(|j| j.name == add.name)
            {
                (&mut j.on_ban, &mut j.on_unban)
            } else if let (Some(r), "recidive") = (self.recidive.as_mut(), add.name.as_str()) {
                (&mut r.on_ban, &mut r.on_unban)
            } else {
                return Err(ConfigError {
                    origin: origin.to_string(),
                    line: add.line.map(|l| format!(": line {l}")).unwrap_or_default(),
                    key: format!("jails.{}", add.name),
                    message: format!(
                        "{NO_FILTER}; a table with only on_ban/on_unban adds them to a jail of fail2ban's configuration, and none named {} is enabled",
                        add.name
                    ),
                });
            };
            if !add.on_ban.is_empty() {
                *on_ban = add.on_ban;
            }
            if !add.on_unban.is_empty() {
                *on_unban = add.on_unban;
            }
        }
        let fill = |own: &mut Vec<String>, default: &Vec<String>| {
            if own.is_empty() {
                own.clone_from(default);
            }
        };
        for j in &mut self.jails {
            fill(&mut j.on_ban, &self.default_on_ban);
            fill(&mut j.on_unban, &self.default_on_unban);
        }
        if let Some(r) = &mut self.recidive {
            fill(&mut r.on_ban, &self.default_on_ban);
            fill(&mut r.on_unban, &self.default_on_unban);
        }
        Ok(())
    }
}

/// `FIELD=value` with FIELD of upper-case letters, digits and `_`, or `+`
/// (journalctl's OR).
pub fn valid_journal_match(m: &str) -> bool {
    if m == "+" {
        return true;
    }
    match m.split_once('=') {
        Some((field, _)) => {
            !field.is_empty()
                && field
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        }
        None => false,
    }
}
