//! fail2ban's jails (`jail.conf`, `jail.local`, `jail.d/*`) mapped onto
//! banset's [`JailSettings`] and set wishes.
//!
//! Host names in `ignoreip` are refused with a notice, never resolved:
//! banset does no DNS at all, so a jail behaves the same whether or not a
//! resolver answers, and an admin sees at start which entries do nothing.

use std::path::{Path, PathBuf};

use banset_core::{BackendKind, SetName, Target, Timeout};

use super::error::{Error, Notice, Origin};
use super::filter::{load_filter, LoadedFilter};
use super::ini::Value;
use super::options::extract_options;
use super::reader::{Options, Stack};
use crate::filter::{DateRule, FilterDef, Pattern};
use crate::mail::MailAction;
use crate::pyregex::translate as translate_regex;
use crate::settings::{Escalation, JailSettings, SourceKey};

/// fail2ban's configuration as banset runs it.
#[derive(Debug, Clone, Default)]
pub struct Fail2banConfig {
    /// The enabled jails.
    pub jails: Vec<Fail2banJail>,
    /// What banset reads differently or not at all, once each.
    pub notices: Vec<Notice>,
}

/// One enabled jail.
#[derive(Debug, Clone)]
pub struct Fail2banJail {
    /// Ready for the daemon.
    pub settings: JailSettings,
    /// How its set should be created.
    pub set: SetWish,
    /// Where the jail's section starts.
    pub origin: String,
}

/// The set a jail's `banaction`/`action` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetWish {
    /// The backend the action maps onto (`None`: banset's default).
    pub backend: Option<BackendKind>,
    /// `port`, as fail2ban writes it (`ssh`, `smtp,465,submission`);
    /// `None` for all ports.
    pub ports: Option<String>,
    /// `tcp`, `udp`, or `None` (all).
    pub protocol: Option<String>,
    /// `drop` or `reject`.
    pub blocktype: Option<String>,
}

/// fail2ban's time values: seconds, `-1`, or `1w`, `1d 2h`, `10m`,
/// `1mo`, `1y` (fail2ban's `str2seconds`). `Ok(None)` for -1 (permanent).
pub fn parse_time(text: &str) -> Result<Option<u64>, TimeError> {
    let t = text.trim();
    if t == "-1" {
        return Ok(None);
    }
    if let Ok(n) = t.parse::<f64>() {
        if n < 0.0 {
            return Ok(None);
        }
        return Ok(Some(n as u64));
    }
    let mut total = 0f64;
    let mut rest = t;
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', '+']);
        if rest.is_empty() {
            break;
        }
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(TimeError::NoNumber(text.to_string()));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| TimeError::BadNumber(text.to_string()))?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].to_lowercase();
        rest = &rest[unit_len..];
        let mult = match unit.as_str() {
            "" | "s" | "ss" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "mm" | "mi" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hh" | "ho" | "hou" | "hour" | "hours" => 3600.0,
            "d" | "dd" | "da" | "day" | "days" => 86_400.0,
            "w" | "ww" | "we" | "wee" | "week" | "weeks" => 604_800.0,
            "mo" | "mon" | "month" | "months" => 2_629_800.0,
            "y" | "yy" | "ye" | "yea" | "year" | "years" => 31_557_600.0,
            _ => {
                return Err(TimeError::UnknownUnit {
                    text: text.to_string(),
                    unit,
                })
            }
        };
        total += n * mult;
        any = true;
    }
    if !any {
        return Err(TimeError::Empty(text.to_string()));
    }
    Ok(Some(total as u64))
}

/// A fail2ban time value ([`parse_time`]) that is not one; each carries
/// the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Something other than a number where one starts.
    #[error("{0:?} is not a time (like 600, 10m, 1h, 1d, 1w, -1)")]
    NoNumber(String),
    /// Digits and dots that are no number (`1.2.3`).
    #[error("{0:?}: bad number")]
    BadNumber(String),
    /// A unit fail2ban does not know.
    #[error("{text:?}: unknown unit {unit:?}")]
    UnknownUnit {
        /// The value as written.
        text: String,
        /// The unit, lower-cased.
        unit: String,
    },
    /// Only spaces and `+`.
    #[error("{0:?} is not a time")]
    Empty(String),
}

fn as_bool(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "enabled" => Some(true),
        "false" | "no" | "off" | "0" | "disabled" | "" => Some(false),
        _ => None,
    }
}

/// Most jails banset runs from one fail2ban configuration. Each enabled
/// jail loads and compiles its filter (tens of milliseconds), so a
/// configuration that enables thousands of them would hold `--check` and a
/// reload for minutes; real ones enable a few dozen at most (fail2ban's
/// `jail.conf` defines about a hundred).
const MAX_JAILS: usize = 256;

/// Reads fail2ban's configuration in `dir` (an `/etc/fail2ban`).
pub fn load(dir: &Path) -> Result<Fail2banConfig, Error> {
    let mut stack = Stack::read(dir, "jail")?.ok_or_else(|| {
        Error::Other(format!(
            "{}: no jail.conf or jail.local (is this fail2ban's configuration directory?)",
            dir.display()
        ))
    })?;
    let static_value = |text: &str| Value {
        text: text.to_string(),
        origin: Origin {
            file: "fail2ban".into(),
            line: 0,
        },
    };
    stack
        .defaults
        .insert("fail2ban_version".into(), static_value("1.0.2"));
    stack.defaults.insert(
        "fail2ban_confpath".into(),
        static_value(&dir.display().to_string().replace('%', "%%")),
    );
    let mut out = Fail2banConfig::default();
    let names: Vec<String> = stack
        .order
        .iter()
        .filter(|n| *n != "INCLUDES" && !n.starts_with("KNOWN/"))
        .cloned()
        .collect();
    for name in names {
        // Where the jail's section is, before loading adds to it.
        let at = stack
            .sections
            .get(&name)
            .and_then(|s| s.values().map(|v| v.origin.clone()).min_by_key(|o| o.line))
            .map(|o| format!("{}: ", o.file))
            .unwrap_or_default();
        match load_jail(dir, &mut stack, &name, &mut out.notices) {
            Ok(Some(_)) if out.jails.len() == MAX_JAILS => {
                return Err(Error::Other(format!(
                    "{at}jail {name}: more than {MAX_JAILS} jails are enabled; banset runs at most {MAX_JAILS}"
                )));
            }
            Ok(Some(j)) => out.jails.push(j),
            Ok(None) => {}
            Err(e) => {
                return Err(e);
            }
        }
    }
    // One notice per distinct message and place.
    let mut seen = std::collections::HashSet::new();
    out.notices.retain(|n| seen.insert(n.to_string()));
    Ok(out)
}

fn load_jail(
    dir: &Path,
    stack: &mut Stack,
    name: &str,
    notices: &mut Vec<Notice>,
) -> Result<Option<Fail2banJail>, Error> {
    let mut jail = JailReader::new(stack, name);
    if !jail.enabled(stack)? {
        return Ok(None);
    }
    let journal = jail.backend(stack)?;
    jail.vars = definition_vars(stack, name);
    let loaded = jail.named_filter(dir, stack, journal)?;
    let filter = jail.filter(stack, loaded.as_ref())?;
    let (sources, logpath) = if journal {
        (
            vec![jail.journal_source(stack, loaded.as_ref())?],
            Vec::new(),
        )
    } else {
        jail.file_sources(stack)?
    };
    let maxretry = jail.maxretry(stack)?;
    let findtime = jail.findtime(stack)?;
    let bantime = jail.bantime(stack)?;
    let escalation = jail.escalation(stack)?;
    let ignore = jail.ignored(stack)?;
    jail.note_unsupported(stack)?;
    let set_text = format!("f2b-{name}");
    let set = SetName::new(&set_text).map_err(|e| jail.other(format!("set {set_text}: {e}")))?;
    let (wish, mail) = set_wish(stack, name, &mut |o, m| jail.note(o, m))?;
    notices.append(&mut jail.notices);
    notices.append(&mut jail.filter_notices);
    Ok(Some(Fail2banJail {
        settings: JailSettings {
            name: name.to_string(),
            filter,
            sources,
            logpath,
            // The whole tree is checked as the jail's own.
            fail2ban_dir: None,
            maxretry,
            findtime,
            bantime,
            set,
            ignore,
            escalation,
            // fail2ban's mail actions are sent (`mail`); its other actions
            // (reports to abuse lists) are reported, not run.
            on_ban: Vec::new(),
            on_unban: Vec::new(),
            mail,
        },
        set: wish,
        origin: jail.here,
    }))
}

/// The jail's own Definition-type options (and `enabled`, `backend`,
/// `filter`), which take precedence over its filter's as in fail2ban.
fn definition_vars(stack: &Stack, name: &str) -> Options {
    let none = Options::new();
    let mut vars = Options::new();
    for k in ["enabled", "backend", "filter"] {
        if let Some(v) = stack.raw(name, k, &none) {
            vars.insert(k.to_string(), v.clone());
        }
    }
    for k in [
        "failregex",
        "ignoreregex",
        "prefregex",
        "datepattern",
        "maxlines",
        "journalmatch",
        "usedns",
    ] {
        if stack.sections.get(name).is_some_and(|s| s.contains_key(k)) {
            vars.insert(
                k.to_string(),
                stack.raw(name, k, &none).cloned().expect("checked"),
            );
        }
    }
    vars
}

/// One jail's section as it is read, step by step: each step checks one
/// group of keys and reports `file:line: jail NAME: key ...`.
struct JailReader<'a> {
    name: &'a str,
    /// `file:line` where the section starts, for what has no single key.
    here: String,
    /// No extra options: what `Stack::get` is given.
    none: Options,
    /// The jail's own Definition-type options ([`definition_vars`]).
    vars: Options,
    /// What banset reads differently, in the order found.
    notices: Vec<Notice>,
    /// The filter's notices, reported after the jail's own.
    filter_notices: Vec<Notice>,
}

impl<'a> JailReader<'a> {
    fn new(stack: &Stack, name: &'a str) -> Self {
        let here = stack
            .sections
            .get(name)
            .and_then(|s| s.values().map(|v| v.origin.clone()).min_by_key(|o| o.line))
            .map(|o| format!("{}:{}", o.file, o.line.saturating_sub(1).max(1)))
            .unwrap_or_default();
        JailReader {
            name,
            here,
            none: Options::new(),
            vars: Options::new(),
            notices: Vec::new(),
            filter_notices: Vec::new(),
        }
    }

    fn get(&self, stack: &Stack, key: &str) -> Result<Option<(String, Origin)>, Error> {
        stack.get(self.name, key, &self.none)
    }

    fn note(&mut self, origin: &Option<Origin>, message: String) {
        self.notices.push(Notice {
            origin: origin.as_ref().map(|o| o.to_string()).unwrap_or_default(),
            jail: Some(self.name.to_string()),
            message,
        })
    }

    /// A problem of the whole section, at its start.
    fn other(&self, message: String) -> Error {
        Error::Other(format!("{}: jail {}: {message}", self.here, self.name))
    }

    /// `enabled`: false when absent.
    fn enabled(&self, stack: &Stack) -> Result<bool, Error> {
        Ok(match self.get(stack, "enabled")? {
            Some((v, o)) => as_bool(&v)
                .ok_or_else(|| Error::at(&o, format!("enabled = {v:?} is not true or false")))?,
            None => false,
        })
    }

    /// `backend`: files or the journal (`true`); its options are unused.
    fn backend(&mut self, stack: &Stack) -> Result<bool, Error> {
        let name = self.name;
        let backend = self.get(stack, "backend")?;
        let backend_name = backend
            .as_ref()
            .map_or("auto".to_string(), |(v, _)| v.trim().to_string());
        let (backend_kind, backend_args) = extract_options(&backend_name)
            .map_err(|m| Error::Other(format!("jail {name}: backend: {m}")))?;
        let journal = match backend_kind.as_str() {
            "auto" | "polling" | "pyinotify" | "gamin" => false,
            "systemd" => true,
            other => {
                return Err(Error::at(
                    &backend.map(|b| b.1).unwrap_or_else(|| origin_of(&self.here)),
                    format!("jail {name}: backend = {other:?}: banset reads files (auto, polling, pyinotify) or the journal (systemd)"),
                ))
            }
        };
        if !backend_args.is_empty() {
            self.note(
                &backend.as_ref().map(|b| b.1.clone()),
                format!("backend options {backend_args:?} are not used: banset runs journalctl with the jail's journalmatch"),
            );
        }
        Ok(journal)
    }

    /// `filter = NAME[options]`: its file, loaded with the jail's own
    /// options taking precedence; fail2ban makes the filter's options
    /// visible as `%(known/...)s`, so they join the jail's section.
    fn named_filter(
        &mut self,
        dir: &Path,
        stack: &mut Stack,
        journal: bool,
    ) -> Result<Option<LoadedFilter>, Error> {
        let name = self.name;
        let filter_text = self.get(stack, "filter")?;
        let (filter_name, filter_args) = match &filter_text {
            Some((t, o)) if !t.trim().is_empty() => {
                extract_options(t).map_err(|m| Error::at(o, format!("jail {name}: filter: {m}")))?
            }
            _ => (String::new(), Vec::new()),
        };
        if filter_name.is_empty() {
            return Ok(None);
        }
        let f = load_filter(dir, &filter_name, &filter_args, &self.vars, Some(journal)).map_err(
            |e| match (&filter_text, e) {
                (Some((_, o)), Error::Other(m)) => Error::at(o, format!("jail {name}: {m}")),
                (_, e) => e,
            },
        )?;
        let section = stack.sections.entry(name.to_string()).or_default();
        for (k, v) in &f.combined {
            section.insert(
                format!("known/{k}"),
                Value {
                    text: v.replace('%', "%%"),
                    origin: f.origin.clone().unwrap_or_else(|| origin_of(&self.here)),
                },
            );
        }
        self.filter_notices.extend(f.notices.iter().map(|n| Notice {
            jail: Some(name.to_string()),
            ..n.clone()
        }));
        Ok(Some(f))
    }

    /// A key the jail itself sets (one of [`definition_vars`]), as lines.
    fn own_lines(&self, stack: &Stack, key: &str) -> Result<Option<(Vec<String>, Origin)>, Error> {
        if !self.vars.contains_key(key) {
            return Ok(None);
        }
        Ok(self.get(stack, key)?.map(|(v, o)| {
            (
                v.split('\n')
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
                o,
            )
        }))
    }

    /// The filter with the jail's own `failregex`, `ignoreregex`,
    /// `prefregex`, `datepattern` and `maxlines` replacing its file's: it
    /// must have a failregex, and compile.
    fn filter(&self, stack: &Stack, loaded: Option<&LoadedFilter>) -> Result<FilterDef, Error> {
        let name = self.name;
        let mut filter = match loaded {
            Some(f) => f.def.clone(),
            None => FilterDef {
                name: name.to_string(),
                failregex: Vec::new(),
                ignoreregex: Vec::new(),
                prefregex: None,
                date: DateRule::Fail2ban(None),
                maxlines: 1,
            },
        };
        let patterns = |lines: &[String]| -> Vec<Pattern> {
            lines
                .iter()
                .map(|p| Pattern::new(translate_regex(p)))
                .collect()
        };
        if let Some((lines, _)) = self.own_lines(stack, "failregex")? {
            filter.failregex = patterns(&lines);
        }
        if let Some((lines, _)) = self.own_lines(stack, "ignoreregex")? {
            filter.ignoreregex = patterns(&lines);
        }
        if let Some((lines, _)) = self.own_lines(stack, "prefregex")? {
            filter.prefregex = lines.first().map(|p| Pattern::new(translate_regex(p)));
        }
        if let Some((lines, _)) = self.own_lines(stack, "datepattern")? {
            filter.date = DateRule::Fail2ban(Some(lines.join("\n")));
        }
        if let Some((lines, o)) = self.own_lines(stack, "maxlines")? {
            filter.maxlines =
                super::filter::parse_maxlines(lines.first().map_or("", |l| l.as_str()))
                    .map_err(|e| Error::at(&o, format!("jail {name}: {e}")))?;
        }
        if filter.failregex.is_empty() {
            return Err(self.other("no filter and no failregex".into()));
        }
        if let Err(e) = crate::Matcher::new(std::slice::from_ref(&filter)) {
            return Err(self.other(e.to_string()));
        }
        Ok(filter)
    }

    /// `journalmatch` (the jail's, else its filter's): `FIELD=value` or `+`.
    fn journal_source(
        &mut self,
        stack: &Stack,
        loaded: Option<&LoadedFilter>,
    ) -> Result<SourceKey, Error> {
        let matches = match self.own_lines(stack, "journalmatch")? {
            Some((l, _)) => l,
            None => loaded.map(|f| f.journalmatch.clone()).unwrap_or_default(),
        };
        let mut words = Vec::new();
        for line in matches {
            // fail2ban adds each line as a match group of its own (one
            // `addjournalmatch` per line), so lines are alternatives: joined
            // without `+`, journalctl would AND them and match nothing.
            if !words.is_empty() && line.split_whitespace().next().is_some() {
                words.push("+".to_string());
            }
            for w in line.split_whitespace() {
                if !crate::settings::valid_journal_match(w) {
                    return Err(self.other(format!("journalmatch {w:?} is not FIELD=value or +")));
                }
                words.push(w.to_string());
            }
        }
        if words.is_empty() {
            self.note(
                &None,
                "backend = systemd without journalmatch: every journal entry is scanned".into(),
            );
        }
        Ok(SourceKey::Journal(words))
    }

    /// `logpath`: absolute paths, at least one.
    fn file_sources(&self, stack: &Stack) -> Result<(Vec<SourceKey>, Vec<PathBuf>), Error> {
        let name = self.name;
        let Some((written, o)) = self.get(stack, "logpath")? else {
            return Err(self.other("no logpath".into()));
        };
        let mut sources = Vec::new();
        let mut logpath = Vec::new();
        for line in written.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
            // `PATH [head|tail]`: banset always starts at the end.
            let path = match line.rsplit_once(' ') {
                Some((p, "head" | "tail")) => p.trim(),
                _ => line,
            };
            if !path.starts_with('/') {
                return Err(Error::at(
                    &o,
                    format!("jail {name}: logpath {path:?} must be absolute"),
                ));
            }
            // Expanded (globs, files that exist) by `crate::logpath::resolve`,
            // which banset.toml's jails go through too.
            logpath.push(PathBuf::from(path));
            sources.push(SourceKey::File(PathBuf::from(path)));
        }
        if sources.is_empty() {
            return Err(Error::at(&o, format!("jail {name}: logpath is empty")));
        }
        Ok((sources, logpath))
    }

    /// `maxretry`: at least 1, default 5.
    fn maxretry(&self, stack: &Stack) -> Result<u32, Error> {
        let name = self.name;
        Ok(match self.get(stack, "maxretry")? {
            Some((v, o)) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    Error::at(
                        &o,
                        format!("jail {name}: maxretry = {v:?} is not a number of at least 1"),
                    )
                })?,
            None => 5,
        })
    }

    /// A time key ([`parse_time`]), with where it was written.
    fn time(
        &self,
        stack: &Stack,
        key: &str,
        default: Option<u64>,
    ) -> Result<(Option<u64>, Option<Origin>), Error> {
        match self.get(stack, key)? {
            Some((v, o)) => parse_time(&v)
                .map(|t| (t, Some(o.clone())))
                .map_err(|m| Error::at(&o, format!("jail {}: {key}: {m}", self.name))),
            None => Ok((default, None)),
        }
    }

    /// `findtime`: a positive duration, default 600 s.
    fn findtime(&self, stack: &Stack) -> Result<u64, Error> {
        let (findtime, fo) = self.time(stack, "findtime", Some(600))?;
        findtime.filter(|s| *s > 0).ok_or_else(|| {
            Error::Other(format!(
                "{}: jail {}: findtime must be a positive duration",
                fo.map(|o| o.to_string()).unwrap_or_default(),
                self.name
            ))
        })
    }

    /// `bantime`: not 0, negative for permanent, default 600 s.
    fn bantime(&self, stack: &Stack) -> Result<Timeout, Error> {
        let (bantime, bo) = self.time(stack, "bantime", Some(600))?;
        Ok(match bantime {
            None => Timeout::Never,
            Some(0) => {
                return Err(Error::Other(format!(
                    "{}: jail {}: bantime 0 bans for nothing",
                    bo.map(|o| o.to_string()).unwrap_or_default(),
                    self.name
                )))
            }
            Some(s) => Timeout::Secs(s),
        })
    }

    /// `bantime.increment` and its `bantime.*` options: banset doubles,
    /// up to `bantime.maxtime`; other formulas are noted.
    fn escalation(&mut self, stack: &Stack) -> Result<Option<Escalation>, Error> {
        Ok(match self.get(stack, "bantime.increment")? {
            Some((v, _)) if as_bool(&v) == Some(true) => {
                let (maxtime, _) = self.time(stack, "bantime.maxtime", None)?;
                if let Some((f, fo)) = self.get(stack, "bantime.factor")? {
                    if !f.trim().parse::<f64>().is_ok_and(|f| f == 1.0) {
                        self.note(&Some(fo), format!("bantime.factor = {f}: banset doubles the bantime per earlier ban of the address in this jail (fail2ban's default formula with factor 1)"));
                    }
                }
                for key in ["bantime.formula", "bantime.multipliers", "bantime.rndtime"] {
                    if let Some((v, ko)) = self.get(stack, key)? {
                        if !v.trim().is_empty() {
                            self.note(&Some(ko), format!("{key} is not supported: banset doubles the bantime per earlier ban"));
                        }
                    }
                }
                if let Some((v, ko)) = self.get(stack, "bantime.overalljails")? {
                    if as_bool(&v) == Some(true) {
                        self.note(&Some(ko), "bantime.overalljails: banset counts earlier bans per jail; use [recidive] in banset.toml for bans across jails".into());
                    }
                }
                Some(Escalation {
                    factor: 2.0,
                    max: maxtime.unwrap_or(28 * 86_400),
                    remember: 30 * 86_400,
                })
            }
            Some((v, o)) if as_bool(&v).is_none() => {
                return Err(Error::at(
                    &o,
                    format!(
                        "jail {}: bantime.increment = {v:?} is not true or false",
                        self.name
                    ),
                ))
            }
            _ => None,
        })
    }

    /// `ignoreip` (addresses and prefixes; names are noted, not resolved)
    /// and `ignoreself`.
    fn ignored(&mut self, stack: &Stack) -> Result<Vec<Target>, Error> {
        let mut ignore = Vec::new();
        if let Some((v, o)) = self.get(stack, "ignoreip")? {
            for word in v.split([' ', ',', '\n', '\t']).filter(|w| !w.is_empty()) {
                match Target::parse(word) {
                    Ok(t) => ignore.push(t),
                    Err(_) => self.note(&Some(o.clone()), format!("ignoreip {word:?} is not an address or prefix; banset resolves no names, so it is not ignored: write its addresses")),
                }
            }
        }
        if let Some((v, o)) = self.get(stack, "ignoreself")? {
            if as_bool(&v) == Some(false) {
                self.note(
                    &Some(o),
                    "ignoreself = false: banset never bans the host's own addresses".into(),
                );
            }
        }
        Ok(ignore)
    }

    /// Keys banset does not honour: noted when set to something that
    /// would matter.
    fn note_unsupported(&mut self, stack: &Stack) -> Result<(), Error> {
        for (key, harmless) in [
            ("ignorecommand", ""),
            ("ignorecache", ""),
            ("logtimezone", ""),
        ] {
            if let Some((v, o)) = self.get(stack, key)? {
                if v.trim() != harmless {
                    self.note(&Some(o), format!("{key} is not supported"));
                }
            }
        }
        if let Some((v, o)) = self.get(stack, "usedns")? {
            if v.trim().eq_ignore_ascii_case("yes") {
                self.note(&Some(o), "usedns = yes: banset never resolves host names from logs (an attacker controls them)".into());
            }
        }
        if let Some((v, o)) = self.get(stack, "logencoding")? {
            if !matches!(
                v.trim().to_lowercase().as_str(),
                "auto" | "utf-8" | "utf8" | "ascii"
            ) {
                self.note(
                    &Some(o),
                    format!(
                        "logencoding = {v}: banset reads bytes; non-UTF-8 text matches only byte-wise"
                    ),
                );
            }
        }
        Ok(())
    }
}

fn origin_of(here: &str) -> Origin {
    let (file, line) = here.rsplit_once(':').unwrap_or((here, "0"));
    Origin {
        file: file.into(),
        line: line.parse().unwrap_or(0),
    }
}

/// The set from `action` (or `banaction`), `port`, `protocol` and the
/// action's `blocktype`; and the mails among the actions.
fn set_wish(
    stack: &Stack,
    name: &str,
    note: &mut dyn FnMut(&Option<Origin>, String),
) -> Result<(SetWish, Vec<MailAction>), Error> {
    let none = Options::new();
    let mut wish = SetWish::default();
    let mut mails = Vec::new();
    let action = stack.get(name, "action", &none)?;
    let Some((action, ao)) = action else {
        return Ok((wish, mails));
    };
    let mut firewall_seen = false;
    for entry in split_actions(&action) {
        let (act, opts) = match extract_options(&entry) {
            Ok(x) => x,
            Err(m) => {
                note(
                    &Some(ao.clone()),
                    format!("action {entry:?}: {m}; not used"),
                );
                continue;
            }
        };
        // In `act[a=1][a=2]` the later value wins, as in fail2ban.
        let opt = |k: &str| {
            opts.iter()
                .rev()
                .find(|(ok, _)| ok == k)
                .map(|(_, v)| v.clone())
        };
        let (kind, allports) = match act.as_str() {
            "nftables" | "nftables-multiport" | "nftables-common" => {
                (Some(BackendKind::Nftables), false)
            }
            "nftables-allports" => (Some(BackendKind::Nftables), true),
            a if a.starts_with("iptables-ipset") => {
                (Some(BackendKind::Ipset), a.contains("allports"))
            }
            "iptables" | "iptables-multiport" | "iptables-new" | "iptables-multiport-log" => {
                note(&Some(ao.clone()), format!("action {act}: banset keeps the bans in an ipset set with one iptables rule, not one rule per address"));
                (Some(BackendKind::Ipset), false)
            }
            "iptables-allports" => (Some(BackendKind::Ipset), true),
            a if a.starts_with("firewallcmd") => {
                (Some(BackendKind::Firewalld), a.contains("allports"))
            }
            "pf" => (Some(BackendKind::Pf), false),
            "bsd-ipfw" | "ipfw" => (Some(BackendKind::Ipfw), false),
            "banset" => (None, false),
            _ => {
                match MailAction::from_fail2ban(&act, &opts) {
                    Ok(Some(mail)) => mails.push(mail),
                    Ok(None) => note(
                        &Some(ao.clone()),
                        format!("action {act} is not run: banset only bans in the firewall and sends fail2ban's mails"),
                    ),
                    Err(m) => note(&Some(ao.clone()), m.to_string()),
                }
                continue;
            }
        };
        let allports = allports
            || opt("actiontype").is_some_and(|t| t.contains("allports"))
            || opt("type").is_some_and(|t| t == "allports");
        let port =
            opt("port").or_else(|| stack.get(name, "port", &none).ok().flatten().map(|p| p.0));
        let mut ports = match port {
            Some(p)
                if !allports
                    && !matches!(p.trim(), "" | "0:65535" | "1:65535" | "0-65535" | "1-65535") =>
            {
                Some(p.replace(' ', ""))
            }
            _ => None,
        };
        let protocol = opt("protocol").or_else(|| {
            stack
                .get(name, "protocol", &none)
                .ok()
                .flatten()
                .map(|p| p.0)
        });
        let protocol = match protocol.as_deref().map(str::trim) {
            _ if ports.is_none() => None,
            Some("tcp") | None => Some("tcp".to_string()),
            Some("udp") => Some("udp".to_string()),
            Some(other) => {
                note(&Some(ao.clone()), format!("protocol = {other}: banset blocks tcp or udp ports, or all ports; using all ports"));
                ports = None;
                None
            }
        };
        if firewall_seen {
            // A jail's set has one blocking rule. A second action for the
            // same ports adds nothing; one for other ports or the other
            // protocol (asterisk's tcp and udp) must not be lost, so the
            // rule widens to every port rather than leave it open.
            if (&ports, &protocol) != (&wish.ports, &wish.protocol) && wish.ports.is_some() {
                note(
                    &Some(ao.clone()),
                    format!(
                        "action {act}: a second firewall action for {}; a jail's set has one blocking rule, so banset blocks every port of a banned address",
                        match (&ports, &protocol) {
                            (Some(p), Some(pr)) => format!("{pr} ports {p}"),
                            _ => "all ports".to_string(),
                        }
                    ),
                );
                wish.ports = None;
                wish.protocol = None;
            }
            continue;
        }
        firewall_seen = true;
        wish.backend = kind;
        wish.ports = ports;
        wish.protocol = protocol;
        let blocktype = opt("blocktype").or_else(|| {
            stack
                .get(name, "blocktype", &none)
                .ok()
                .flatten()
                .map(|p| p.0)
        });
        wish.blocktype = blocktype.map(|b| {
            if b.to_uppercase().contains("DROP") || b.trim() == "drop" {
                "drop".to_string()
            } else {
                "reject".to_string()
            }
        });
    }
    Ok((wish, mails))
}

/// Splits fail2ban's `action` value into its actions: one per line, or
/// several on a line separated by white space outside brackets.
fn split_actions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (c, quote) {
            ('"' | '\'', None) if depth > 0 => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('[', None) => depth += 1,
            (']', None) => depth -= 1,
            (c, None) if c.is_whitespace() && depth <= 0 => {
                if !cur.trim().is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logpath::fnmatch;

    #[test]
    fn times_in_fail2ban_forms() {
        assert_eq!(parse_time("600"), Ok(Some(600)));
        assert_eq!(parse_time("10m"), Ok(Some(600)));
        assert_eq!(parse_time("1w"), Ok(Some(604_800)));
        assert_eq!(parse_time("1d 2h"), Ok(Some(93_600)));
        assert_eq!(parse_time("1d2h"), Ok(Some(93_600)));
        assert_eq!(parse_time("-1"), Ok(None));
        assert_eq!(parse_time("2629800.0"), Ok(Some(2_629_800)));
        assert_eq!(parse_time("1mo"), Ok(Some(2_629_800)));
        assert!(parse_time("soon").is_err());
        assert!(parse_time("1 fortnight").is_err());
    }

    #[test]
    fn globs_and_actions() {
        assert!(fnmatch(b"*.log", b"auth.log"));
        assert!(fnmatch(b"tomcat[0-9]", b"tomcat9"));
        assert!(!fnmatch(b"tomcat[!0-9]", b"tomcat9"));
        assert!(!fnmatch(b"*.log", b"auth.log.1"));
        assert!(fnmatch(b"*", b""));
        assert!(fnmatch(b"a*", b"a"));
        assert!(fnmatch(b"*a*b?c", b"xxaxxbyc"));
        assert!(!fnmatch(b"*a*b?c", b"xxaxxbc"));
        assert!(fnmatch(b"x[ab", b"x[ab"));
        assert!(fnmatch(b"**.log", b"a.log"));
        assert_eq!(
            split_actions("iptables[port=\"ssh, 22\", protocol=tcp]\n   sendmail-whois[dest=root]"),
            vec![
                "iptables[port=\"ssh, 22\", protocol=tcp]",
                "sendmail-whois[dest=root]"
            ]
        );
    }

    #[test]
    fn thousands_of_enabled_jails_stop_with_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("banset-f2b-jails-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        std::fs::write(
            dir.join("filter.d/f.conf"),
            "[Definition]\nfailregex = ^x <HOST>$\n",
        )
        .unwrap();
        let mut text = String::new();
        for n in 0..5_000 {
            text.push_str(&format!(
                "[j{n}]\nenabled = true\nfilter = f\nlogpath = /dev/null\nbackend = auto\n"
            ));
        }
        std::fs::write(dir.join("jail.conf"), text).unwrap();
        let e = load(&dir).unwrap_err().to_string();
        assert!(
            e.contains("jail.conf") && e.contains("more than 256 jails"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn journalmatch_lines_are_alternatives_not_one_conjunction() {
        let dir = std::env::temp_dir().join(format!("banset-f2b-jmatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        std::fs::write(
            dir.join("filter.d/f.conf"),
            "[Definition]\nfailregex = ^x <HOST>$\n\
             journalmatch = _SYSTEMD_UNIT=a.service\n  _SYSTEMD_UNIT=b.service _COMM=b\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("jail.conf"),
            "[j]\nenabled = true\nfilter = f\nbackend = systemd\n",
        )
        .unwrap();
        let loaded = load(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let f2b = loaded.unwrap();
        let words: Vec<&str> = [
            "_SYSTEMD_UNIT=a.service",
            "+",
            "_SYSTEMD_UNIT=b.service",
            "_COMM=b",
        ]
        .to_vec();
        assert!(
            matches!(&f2b.jails[0].settings.sources[..], [SourceKey::Journal(w)] if *w == words),
            "{:?}",
            f2b.jails[0].settings.sources
        );
    }

    #[test]
    fn a_glob_of_many_stars_on_a_long_name_is_not_exponential() {
        let pattern = "*a".repeat(20) + "*b";
        let name = "a".repeat(200);
        assert!(!fnmatch(pattern.as_bytes(), name.as_bytes()));
        assert!(fnmatch(pattern.as_bytes(), format!("{name}b").as_bytes()));
    }

    /// Bug 9: fail2ban's mail actions were only reported; they map to
    /// banset's mail with the action's own parameters, beside the
    /// firewall action, and one banset cannot send without a shell is
    /// reported, not sent.
    #[test]
    fn fail2ban_mail_actions_become_the_jails_mail() {
        let dir = std::env::temp_dir().join(format!("banset-f2b-mail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        let log = dir.join("x.log");
        std::fs::write(&log, "").unwrap();
        std::fs::write(
            dir.join("filter.d/x.conf"),
            "[Definition]\nfailregex = ^bad <HOST>$\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("jail.conf"),
            format!(
                "[DEFAULT]\ndestemail = admin@example.org\nsender = f2b@<fq-hostname>\n\
                 action_mwl = nftables-multiport\n   sendmail-whois-lines[sender=\"%(sender)s\", dest=\"%(destemail)s\", grepmax=5]\n   \
                 mail-whois[dest=\"%(destemail)s\", mailcmd=\"mail | tee\"]\n\
                 [x]\nenabled = true\nfilter = x\nport = ssh\nlogpath = {}\naction = %(action_mwl)s\n",
                log.display()
            ),
        )
        .unwrap();
        let f2b = load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let jail = &f2b.jails[0];
        assert_eq!(jail.set.backend, Some(BackendKind::Nftables));
        assert_eq!(
            jail.settings.mail,
            [MailAction {
                action: "sendmail-whois-lines".into(),
                command: vec![
                    "/usr/sbin/sendmail".into(),
                    "-f".into(),
                    "<sender>".into(),
                    "<dest>".into()
                ],
                headers: true,
                dest: "admin@example.org".into(),
                sender: "f2b@<fq-hostname>".into(),
                sendername: "Fail2Ban".into(),
                whois: true,
                lines: 5,
            }]
        );
        let notices: Vec<&str> = f2b.notices.iter().map(|n| n.message.as_str()).collect();
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("action mail-whois: mailcmd = \"mail | tee\" needs a shell")),
            "{notices:?}"
        );
    }
}
