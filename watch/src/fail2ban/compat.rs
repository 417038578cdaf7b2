//! How much of fail2ban's own filter collection banset runs, measured on
//! the sample logs fail2ban ships for its test suite.
//!
//! Each sample log (`tests/files/logs/NAME`) holds log lines, most preceded
//! by `# failJSON: {"match": true, "host": "192.0.2.1", ...}` saying what
//! fail2ban's filter `NAME` finds in it; `# filterOptions: [{"mode": ...}]`
//! switches the filter's arguments for the lines that follow. A line
//! without failJSON must not match.
//!
//! Agreement is counted over lines whose expected outcome is "no match" or
//! "a match of this address". Lines where fail2ban expects a host *name*
//! are counted apart: banset never bans by name, by design (the name comes
//! from the attacker's DNS). So are lines whose expected failure id is not
//! an address at all (`<F-ID>`: banset bans addresses only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use banset_core::Target;

use super::filter::load_filter;
use super::reader::Options;
use crate::pipeline::{LinePipeline, RawEntry};
use crate::Scan;

/// The result of a measurement.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Filter files (`filter.d/*.conf`, `common` files excluded).
    pub filters: usize,
    /// Those that load and compile in every mode.
    pub filters_loaded: usize,
    /// (`filter[mode=...]`, error) of those that did not.
    pub load_errors: Vec<(String, String)>,
    /// Filter/mode combinations tried.
    pub variants: usize,
    /// Combinations that loaded.
    pub variants_loaded: usize,
    /// Failregexes in all loaded variants, and how many banset runs.
    pub failregex_total: usize,
    /// See `failregex_total`.
    pub failregex_used: usize,
    /// Sample lines compared (line × filter options).
    pub compared: usize,
    /// Of those, where banset agrees with fail2ban.
    pub agreed: usize,
    /// Where it does not: (file:line, what fail2ban expects, what banset found).
    pub disagreements: Vec<(String, String, String)>,
    /// Lines where fail2ban expects a host name: banset never resolves.
    pub hostnames: usize,
    /// Of those, where banset found an address anyway (file:line, the
    /// name, the address): it must find none.
    pub hostname_addresses: Vec<(String, String, String)>,
    /// With [`measure_with_names`]: lines whose expected address was
    /// replaced by a host name.
    pub renamed: usize,
    /// Of those, where banset still found an address (file:line, the line
    /// as fed, the address).
    pub renamed_addresses: Vec<(String, String, String)>,
    /// Lines where fail2ban's failure id is not an address.
    pub non_addresses: usize,
    /// Lines not compared: Python conditions (`constraint`,
    /// `test.condition`) of a form banset does not evaluate.
    pub skipped: usize,
    /// Sample files read.
    pub sample_files: usize,
}

impl Report {
    /// Percentage of filter files that load in every mode.
    pub fn load_percent(&self) -> f64 {
        percent(self.filters_loaded, self.filters)
    }

    /// Percentage of compared lines where banset agrees.
    pub fn agreement_percent(&self) -> f64 {
        percent(self.agreed, self.compared)
    }
}

fn percent(a: usize, b: usize) -> f64 {
    if b == 0 {
        100.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

/// The modes a filter offers: for a failregex written `<PREFIX-<mode>SUFFIX>`,
/// the `X` of every `PREFIX-XSUFFIX` key without a further dash.
pub fn filter_modes(dir: &Path, name: &str) -> Vec<String> {
    let Ok(Some(stack)) = super::reader::Stack::read(dir, &format!("filter.d/{name}")) else {
        return Vec::new();
    };
    let Some(def) = stack.sections.get("Definition") else {
        return Vec::new();
    };
    let mut modes = std::collections::BTreeSet::new();
    for v in def.values() {
        let t = &v.text;
        let mut from = 0;
        while let Some(p) = t[from..].find("<mode>") {
            let at = from + p;
            from = at + 6;
            let Some(open) = t[..at].rfind('<') else {
                continue;
            };
            let prefix = &t[open + 1..at];
            let suffix_end = t[from..].find('>').map(|e| from + e);
            let Some(end) = suffix_end else { continue };
            let suffix = &t[from..end];
            if prefix.contains(char::is_whitespace) || suffix.contains(char::is_whitespace) {
                continue;
            }
            for key in def.keys() {
                if let Some(m) = key
                    .strip_prefix(prefix)
                    .and_then(|k| k.strip_suffix(suffix))
                {
                    if !m.is_empty() && !m.contains('-') && !m.contains('?') {
                        modes.insert(m.to_string());
                    }
                }
            }
        }
    }
    modes.into_iter().collect()
}

/// Measures `config_dir` (an `/etc/fail2ban`) against `logs_dir`
/// (fail2ban's `tests/files/logs`).
pub fn measure(config_dir: &Path, logs_dir: &Path) -> Report {
    measure_as(config_dir, logs_dir, false)
}

/// The host name [`measure_with_names`] puts where an address was.
pub const RENAMED_HOST: &str = "attacker-host.example.net";

/// Like [`measure`], but every sample line where fail2ban expects an
/// address that the line spells out has that address replaced by
/// [`RENAMED_HOST`] ([`Report::renamed`]); the other lines are fed as they
/// are, so multi-line filters keep their state. fail2ban would resolve the
/// name; banset never does, and must then find no address at all
/// ([`Report::renamed_addresses`]), never another one on the line.
pub fn measure_with_names(config_dir: &Path, logs_dir: &Path) -> Report {
    measure_as(config_dir, logs_dir, true)
}

fn measure_as(config_dir: &Path, logs_dir: &Path, rename: bool) -> Report {
    let mut report = Report::default();
    let mut names: Vec<String> = std::fs::read_dir(config_dir.join("filter.d"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            let stem = n.strip_suffix(".conf")?.to_string();
            (!stem.ends_with("common") && !stem.starts_with('.')).then_some(stem)
        })
        .collect();
    names.sort();
    for name in &names {
        report.filters += 1;
        let mut modes: Vec<Option<String>> = vec![None];
        modes.extend(filter_modes(config_dir, name).into_iter().map(Some));
        let mut all_ok = true;
        for mode in modes {
            report.variants += 1;
            let args: Vec<(String, String)> = mode
                .iter()
                .map(|m| ("mode".to_string(), m.clone()))
                .collect();
            match load_filter(config_dir, name, &args, &Options::new(), None) {
                Ok(f) => {
                    report.variants_loaded += 1;
                    report.failregex_total += f.failregex_total;
                    report.failregex_used += f.def.failregex.len();
                }
                Err(e) => {
                    all_ok = false;
                    let label = match &mode {
                        Some(m) => format!("{name}[mode={m}]"),
                        None => name.clone(),
                    };
                    report.load_errors.push((label, e.to_string()));
                }
            }
        }
        if all_ok {
            report.filters_loaded += 1;
        }
        if logs_dir.join(name).is_file() {
            compare_samples(config_dir, logs_dir, name, rename, &mut report);
        }
    }
    report
}

struct Variant {
    journal: bool,
    prefix: String,
    opts: serde_json::Map<String, serde_json::Value>,
}

fn compare_samples(
    config_dir: &Path,
    logs_dir: &Path,
    name: &str,
    rename: bool,
    report: &mut Report,
) {
    let mut files: Vec<PathBuf> = vec![logs_dir.join(name)];
    let mut cache: BTreeMap<String, Option<LinePipeline>> = BTreeMap::new();
    let mut i = 0;
    let mut common = serde_json::Map::new();
    let mut variants: Vec<(String, Variant)> = Vec::new();
    let mut ignore_block = false;
    while i < files.len() {
        let path = files[i].clone();
        i += 1;
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        report.sample_files += 1;
        let text = String::from_utf8_lossy(&text).into_owned();
        let lines: Vec<&str> = text.split('\n').collect();
        let mut n = 0;
        while n < lines.len() {
            let raw = lines[n].strip_suffix('\r').unwrap_or(lines[n]);
            n += 1;
            let mut expect: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
            let line: &str;
            let lineno;
            if let Some((kind, json)) = annotation(raw) {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
                    continue;
                };
                match kind {
                    "fileOptions" => {
                        if let Some(o) = value.as_object() {
                            common = o.clone();
                        }
                        continue;
                    }
                    "filterOptions" => {
                        variants.clear();
                        ignore_block = false;
                        let list = match value {
                            serde_json::Value::Array(a) => a,
                            v => vec![v],
                        };
                        for o in list {
                            let Some(o) = o.as_object() else { continue };
                            let mut opts = common.clone();
                            opts.extend(o.clone());
                            if let Some(c) = opts.get("test.condition").and_then(|c| c.as_str()) {
                                ignore_block = !condition(c, name, &opts).unwrap_or(false);
                                if ignore_block {
                                    continue;
                                }
                            }
                            let key = ensure(&mut cache, config_dir, name, &opts);
                            let journal =
                                opts.get("logtype").and_then(|v| v.as_str()) == Some("journal");
                            let prefix = opts
                                .get("test.prefix-line")
                                .and_then(|v| v.as_str())
                                .unwrap_or("")
                                .to_string();
                            variants.push((
                                key,
                                Variant {
                                    journal,
                                    prefix,
                                    opts,
                                },
                            ));
                        }
                        continue;
                    }
                    "addFILE" => {
                        if let Some(f) = value.as_str() {
                            files.push(logs_dir.join(f));
                        }
                        continue;
                    }
                    _ => {}
                }
                let Some(next) = lines.get(n) else { break };
                line = next.strip_suffix('\r').unwrap_or(next);
                lineno = n + 1;
                n += 1;
                if let Some(o) = value.as_object() {
                    expect = o.clone();
                }
            } else if ignore_block || raw.starts_with('#') || raw.trim().is_empty() {
                continue;
            } else {
                line = raw;
                lineno = n;
            }
            if ignore_block {
                report.skipped += 1;
                continue;
            }
            if variants.is_empty() {
                let key = ensure(&mut cache, config_dir, name, &common);
                variants.push((
                    key,
                    Variant {
                        journal: false,
                        prefix: String::new(),
                        opts: common.clone(),
                    },
                ));
            }
            for (key, v) in &variants {
                if let Some(c) = expect.get("constraint") {
                    match c.as_str().and_then(|c| condition(c, name, &v.opts)) {
                        // Not a case for this filter variant.
                        Some(false) => continue,
                        Some(true) => {}
                        None => {
                            report.skipped += 1;
                            continue;
                        }
                    }
                }
                let Some(Some(matcher)) = cache.get(key) else {
                    // The filter did not load: every expected match is missed.
                    record(report, &path, lineno, &expect, None);
                    continue;
                };
                if rename {
                    match renamed(line, &expect) {
                        Some(named) => {
                            report.renamed += 1;
                            if let Some(found) = run(matcher, &named, v) {
                                report.renamed_addresses.push((
                                    format!("{}:{lineno}", path.display()),
                                    named,
                                    found.to_string(),
                                ));
                            }
                        }
                        None => {
                            run(matcher, line, v);
                        }
                    }
                    continue;
                }
                let found = run(matcher, line, v);
                record(report, &path, lineno, &expect, found);
            }
        }
    }
}

/// The Python conditions fail2ban's sample files use: `name == 'sshd'` and
/// `opts.get('mode') != 'aggressive'` (`==`/`!=`). `None` for others.
fn condition(
    expr: &str,
    name: &str,
    opts: &serde_json::Map<String, serde_json::Value>,
) -> Option<bool> {
    let e: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs, equal) = match e.split_once("!=") {
        Some((l, r)) => (l, r, false),
        None => {
            let (l, r) = e.split_once("==")?;
            (l, r, true)
        }
    };
    let rhs = rhs.trim_matches(['\'', '"']);
    let value = if lhs == "name" {
        Some(name.to_string())
    } else if let Some(key) = lhs
        .strip_prefix("opts.get(")
        .and_then(|k| k.strip_suffix(')'))
    {
        opts.get(key.trim_matches(['\'', '"'])).map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
    } else {
        return None;
    };
    Some((value.as_deref() == Some(rhs)) == equal)
}

/// Loads the filter for `opts` once; returns its cache key.
fn ensure(
    cache: &mut BTreeMap<String, Option<LinePipeline>>,
    config_dir: &Path,
    name: &str,
    opts: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let args = filter_args(opts);
    let key = format!("{args:?}");
    cache.entry(key.clone()).or_insert_with(|| {
        load_filter(config_dir, name, &args, &Options::new(), None)
            .ok()
            .and_then(|f| LinePipeline::new(&[f.def]).ok())
    });
    key
}

/// Filter arguments from a sample's options (without `test.` keys).
fn filter_args(opts: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = opts
        .iter()
        .filter(|(k, _)| !k.starts_with("test."))
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    v.sort();
    v
}

fn annotation(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches('#');
    if rest.len() == line.len() {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    for kind in ["failJSON", "fileOptions", "filterOptions", "addFILE"] {
        if let Some(json) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(':')) {
            return Some((kind, json));
        }
    }
    None
}

/// `line` with the address fail2ban expects in it replaced by a host name;
/// `None` for lines expected not to match, or whose expected address the
/// line does not spell out as written.
fn renamed(line: &str, expect: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    if expect.get("match").and_then(|v| v.as_bool()) != Some(true) {
        return None;
    }
    let host = expect.get("host")?.as_str()?.trim_matches(['[', ']']);
    Target::parse(host).ok()?;
    // A mapped form (`::ffff:192.0.2.1`) is renamed whole: a name never
    // follows `::ffff:`, and what is left of it plus the name's first
    // letters would read as an address, in fail2ban too.
    let mapped = format!("::ffff:{host}");
    let spelled = if line.contains(&mapped) {
        &mapped
    } else {
        host
    };
    line.contains(spelled)
        .then(|| line.replace(spelled, RENAMED_HOST))
}

/// What banset finds: `None` no failure, `Some(address)`. Journal
/// samples (`logtype = journal`) are entries: their text is the prefix the
/// sample names and the line, with no date cut out of it.
fn run(pipeline: &LinePipeline, line: &str, v: &Variant) -> Option<Target> {
    let mut found = Vec::new();
    let full;
    let entry = if v.journal {
        full = format!("{}{line}", v.prefix);
        RawEntry::Journal {
            line: full.as_bytes(),
            at: None,
        }
    } else {
        RawEntry::Line(line.as_bytes())
    };
    // Only what matched is compared here, not when (2100-01-01).
    if pipeline.process(entry, 4_102_444_800, &mut found) != Scan::Hit {
        return None;
    }
    found.into_iter().find(|h| !h.ignored).map(|h| h.target)
}

fn record(
    report: &mut Report,
    path: &Path,
    lineno: usize,
    expect: &serde_json::Map<String, serde_json::Value>,
    found: Option<Target>,
) {
    let want_match = expect
        .get("match")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let host = expect.get("host").and_then(|h| h.as_str());
    let place = format!("{}:{lineno}", path.display());
    let show = |t: &Option<Target>| t.map_or("no match".to_string(), |t| t.to_string());
    if !want_match {
        report.compared += 1;
        if found.is_none() {
            report.agreed += 1;
        } else {
            report
                .disagreements
                .push((place, "no match".into(), show(&found)));
        }
        return;
    }
    let expected = host.and_then(|h| Target::parse(h.trim_matches(['[', ']'])).ok());
    match (host, expected) {
        (Some(h), None) => {
            let looks_like_name = h.contains('.')
                && h.bytes().any(|b| b.is_ascii_alphabetic())
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
            if looks_like_name {
                report.hostnames += 1;
                if let Some(found) = found {
                    report
                        .hostname_addresses
                        .push((place, h.to_string(), found.to_string()));
                }
            } else {
                report.non_addresses += 1;
            }
        }
        (_, expected) => {
            report.compared += 1;
            let ok = match expected {
                Some(e) => found == Some(e),
                None => found.is_some(),
            };
            if ok {
                report.agreed += 1;
            } else {
                report.disagreements.push((
                    place,
                    format!("match {}", host.unwrap_or("")),
                    show(&found),
                ));
            }
        }
    }
}
