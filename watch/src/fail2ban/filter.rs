//! A `filter.d/NAME.conf` (with its `.local`, `NAME.d/`, includes and the
//! jail's `[mode=...]` arguments) read into a banset [`FilterDef`].

use std::path::Path;

use super::error::{Error, Notice, Origin};
use super::ini::Value;
use super::options::{extract_options, substitute_tags, TagError};
use super::reader::{Options, Stack};
use crate::filter::{DateRule, FilterDef, Pattern};
use crate::pyregex::translate as translate_regex;
use crate::Matcher;

/// The `[Definition]` keys fail2ban reads from a filter.
const FILTER_KEYS: [&str; 7] = [
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// A filter as banset will run it, and what it could not take over.
#[derive(Debug, Clone)]
pub struct LoadedFilter {
    /// The filter, ready to compile.
    pub def: FilterDef,
    /// fail2ban's `journalmatch` lines (for jails on the journal).
    pub journalmatch: Vec<String>,
    /// Where the filter's `failregex` was written, for messages.
    pub origin: Option<Origin>,
    /// Failregexes banset cannot run, and other differences.
    pub notices: Vec<Notice>,
    /// All combined options after substitution (a jail's `known/...`).
    pub combined: Vec<(String, String)>,
    /// Failregexes in the file, before any was set aside.
    pub failregex_total: usize,
}

/// Whether `text` names a fail2ban filter file (`.../filter.d/NAME.conf`
/// or `.local`, maybe with `[mode=...]`) rather than a built-in filter or
/// a regex.
pub fn is_filter_file(text: &str) -> bool {
    let path = text.split('[').next().unwrap_or("");
    path.ends_with(".conf") || path.ends_with(".local")
}

/// A fail2ban filter file named by its path with its options
/// (`/etc/fail2ban/filter.d/postfix.conf[mode=aggressive]`), read with its
/// includes and `.local` as `--fail2ban` reads it; what `regex-test` and a
/// banset.toml jail's `filter` both use. Also returns the fail2ban
/// configuration directory it was read from (above `filter.d`), whose
/// files must be trusted as the daemon (root) reads them. `journal` as in
/// [`load_filter`].
pub fn load_filter_file(
    text: &str,
    journal: bool,
    added: &[String],
) -> Result<(LoadedFilter, std::path::PathBuf), Error> {
    let (path, options) = extract_options(text).map_err(|e| Error::Other(format!("filter {e}")))?;
    let path = Path::new(&path);
    let name = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let filter_d = path.parent().unwrap_or(Path::new(""));
    if filter_d.file_name().is_none_or(|d| d != "filter.d") {
        return Err(Error::Other(format!(
            "filter {}: a fail2ban filter file must be in a filter.d directory (its includes are read from there)",
            path.display()
        )));
    }
    let dir = filter_d.parent().unwrap_or(Path::new(""));
    if !path.is_file() {
        return Err(Error::Other(format!(
            "filter {}: no such file",
            path.display()
        )));
    }
    let loaded = load_filter_adding(dir, name, &options, &Options::new(), Some(journal), added)
        .map_err(|e| match e {
            Error::Added { .. } => e,
            e => Error::Other(format!("filter {}: {e}", path.display())),
        })?;
    Ok((loaded, dir.to_path_buf()))
}

/// Reads `dir/filter.d/NAME` with `args` (the jail's `filter =
/// NAME[key=value]`) and `jail_vars` (options the jail defines, which take
/// precedence as in fail2ban). `journal` says the jail reads the journal
/// (fail2ban's `logtype`).
pub fn load_filter(
    dir: &Path,
    name: &str,
    args: &[(String, String)],
    jail_vars: &Options,
    journal: Option<bool>,
) -> Result<LoadedFilter, Error> {
    load_filter_adding(dir, name, args, jail_vars, journal, &[])
}

/// [`load_filter`], with `added` failregex lines read as if a `.local`
/// appended them to the filter's own (`%(known/failregex)s` plus these):
/// `%(name)s` and `<name>` of the filter's options are substituted in
/// them, and they run as its own lines do (after its prefregex). Unlike
/// the file's own lines, an added line that does not compile is an error
/// ([`Error::Added`] names it), not a notice: its author is the caller.
pub fn load_filter_adding(
    dir: &Path,
    name: &str,
    args: &[(String, String)],
    jail_vars: &Options,
    journal: Option<bool>,
    added: &[String],
) -> Result<LoadedFilter, Error> {
    let stack = read_filter_file(dir, name)?;
    let FilterOptions {
        combined,
        origin,
        own_failregex,
        lookup_error,
    } = filter_options(&stack, name, args, jail_vars, journal, added)?;
    let get = |k: &str| {
        combined
            .iter()
            .find(|(ck, _)| ck == k)
            .map(|(_, v)| v.clone())
    };
    let lines = |k: &str| -> Vec<String> {
        get(k)
            .map(|v| {
                v.split('\n')
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut notices = Vec::new();
    let at = |o: &Option<Origin>| o.as_ref().map(|o| o.to_string()).unwrap_or_default();
    let failregex: Vec<String> = lines("failregex");
    let failregex_total = failregex.len();
    let prefregex = get("prefregex")
        .filter(|p| !p.trim().is_empty())
        .map(|p| Pattern::new(translate_regex(&p)));
    let maxlines = match get("maxlines") {
        Some(m) => parse_maxlines(&m).map_err(|e| {
            Error::Other(format!(
                "{}filter {name}: {e}",
                origin
                    .as_ref()
                    .map(|o| format!("{o}: "))
                    .unwrap_or_default()
            ))
        })?,
        None => 1,
    };
    let datepattern = get("datepattern").filter(|d| !d.trim().is_empty());
    let mut def = FilterDef {
        name: filter_display_name(name, args),
        failregex: Vec::new(),
        ignoreregex: lines("ignoreregex")
            .iter()
            .map(|p| Pattern::new(translate_regex(p)))
            .collect(),
        prefregex,
        date: DateRule::Fail2ban(datepattern),
        maxlines,
    };
    // Keep each failregex that compiles with the rest of the filter; set
    // the others aside, with the reason.
    let hardened: Vec<(Pattern, Option<String>)> = failregex
        .iter()
        .map(|p| match super::steer::harden(name, p) {
            Some((first, last, why)) => (
                Pattern {
                    regex: translate_regex(first),
                    gate: None,
                    twin: Some(translate_regex(last)),
                },
                Some(why),
            ),
            None => (Pattern::new(translate_regex(p)), None),
        })
        .collect();
    // The common case first: the whole filter, every failregex with its
    // ignoreregexes, builds the matcher the caller builds next (its
    // patterns, scan and date finder shared while anything holds them, see
    // `crate::shared::keeping`). Then every failregex compiles with the
    // rest, and the final check below is this one: one compile where the
    // check took two and a third was the caller's own.
    let mut all = def.clone();
    all.failregex = hardened.iter().map(|(p, _)| p.clone()).collect();
    let whole = Matcher::new(std::slice::from_ref(&all)).ok();
    // Else, where they all compile together (without the ignoreregexes,
    // whose errors the final check reports), each compiles with the rest
    // on its own: one compile instead of one per failregex (each compiled
    // the prefregex again). What fails is found as before, with the same
    // messages.
    let all_compile = whole.is_some() || {
        all.ignoreregex.clear();
        all.compile().is_ok()
    };
    for (i, (pattern, why)) in hardened.into_iter().enumerate() {
        if let Some(why) = why {
            notices.push(Notice {
                origin: at(&origin),
                jail: None,
                message: format!("{why} (failregex {})", i + 1),
            });
        }
        if all_compile {
            def.failregex.push(pattern);
            continue;
        }
        let mut one = def.clone();
        one.failregex = vec![pattern.clone()];
        one.ignoreregex.clear();
        match one.compile() {
            Ok(_) => def.failregex.push(pattern),
            Err(e) if i >= own_failregex && i - own_failregex < added.len() => {
                return Err(Error::Added {
                    index: i - own_failregex,
                    message: e.reason,
                })
            }
            Err(e) => notices.push(Notice {
                origin: at(&origin),
                jail: None,
                message: format!("filter {name}: failregex {} not used: {}", i + 1, e.reason),
            }),
        }
    }
    if let Some(warning) = super::steer::unhardened(name, &failregex) {
        notices.push(Notice {
            origin: at(&origin),
            jail: None,
            message: warning,
        });
    }
    if def.failregex.is_empty() {
        if let Some(e) = lookup_error {
            return Err(e);
        }
        return Err(Error::Other(format!(
            "{}filter {name}: no failregex banset can use{}",
            origin.map(|o| format!("{o}: ")).unwrap_or_default(),
            notices
                .last()
                .map(|n| format!(" ({})", n.message))
                .unwrap_or_default()
        )));
    }
    // The ignoreregexes, and the whole, must compile too (checked already
    // when the whole filter built above).
    if whole.is_none() {
        if let Err(e) = Matcher::new(std::slice::from_ref(&def)) {
            return Err(Error::Other(format!(
                "{}{e}",
                origin.map(|o| format!("{o}: ")).unwrap_or_default()
            )));
        }
    }
    Ok(LoadedFilter {
        def,
        journalmatch: lines("journalmatch"),
        origin,
        notices,
        combined,
        failregex_total,
    })
}

/// The filter's options once fail2ban has combined and substituted them.
struct FilterOptions {
    /// Definition options, added lines and Init options, substituted.
    combined: Vec<(String, String)>,
    /// Where the filter's `failregex` was written.
    origin: Option<Origin>,
    /// How many failregex lines are the file's own (the added follow).
    own_failregex: usize,
    /// The first option that could not be looked up during substitution,
    /// reported only if no failregex is left.
    lookup_error: Option<Error>,
}

/// `filter.d/NAME.conf` with its includes and `.local`: a plain file
/// name, and the file must exist.
fn read_filter_file(dir: &Path, name: &str) -> Result<Stack, Error> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::Other(format!(
            "filter name {name:?} is not a file name"
        )));
    }
    Stack::read(dir, &format!("filter.d/{name}"))?.ok_or_else(|| {
        Error::Other(format!(
            "{}: no filter {name:?} (filter.d/{name}.conf)",
            dir.display()
        ))
    })
}

/// The filter's options as fail2ban combines them: `[Definition]`'s own
/// (the jail's variables taking precedence), the `added` failregex lines,
/// `[Init]` and the jail's arguments, with `<tag>`s substituted.
fn filter_options(
    stack: &Stack,
    name: &str,
    args: &[(String, String)],
    jail_vars: &Options,
    journal: Option<bool>,
    added: &[String],
) -> Result<FilterOptions, Error> {
    let here = Origin {
        file: stack
            .files
            .last()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
            .into(),
        line: 0,
    };
    let arg_value = |text: &str| Value {
        text: text.to_string(),
        origin: here.clone(),
    };
    let mut init = init_options(stack, args, journal);
    let mut vars: Options = jail_vars.clone();
    for (k, v) in &init {
        vars.insert(k.to_lowercase(), arg_value(v));
    }
    let (mut opts, origin) = definition_options(stack, &vars)?;
    // Lines with newlines would be several: each added line is one.
    let own_failregex = opts
        .iter()
        .find(|(k, _)| k == "failregex")
        .map_or(0, |(_, v)| v.split('\n').filter(|l| !l.is_empty()).count());
    append_added_failregex(stack, &vars, &here, &mut opts, added)?;
    add_init_section(stack, &mut init);
    add_other_definitions(stack, &vars, &mut opts);
    let mut combined = opts;
    for (k, v) in init {
        match combined.iter_mut().find(|(ck, _)| *ck == k) {
            Some(slot) => slot.1 = v,
            None => combined.push((k, v)),
        }
    }
    let lookup_error = substitute_filter_tags(stack, &vars, &mut combined)
        .map_err(|m| Error::Other(format!("{}: filter {name}: {m}", here.file)))?;
    Ok(FilterOptions {
        combined,
        origin,
        own_failregex,
        lookup_error,
    })
}

/// fail2ban's init options: the jail's arguments, then `logtype` (file or
/// journal) unless the filter or the jail sets it.
fn init_options(
    stack: &Stack,
    args: &[(String, String)],
    journal: Option<bool>,
) -> Vec<(String, String)> {
    let mut init: Vec<(String, String)> = args.to_vec();
    if let Some(journal) = journal {
        let own_logtype = stack
            .sections
            .get("Definition")
            .is_some_and(|s| s.contains_key("logtype"));
        if !own_logtype && !init.iter().any(|(k, _)| k == "logtype") {
            init.push((
                "logtype".into(),
                if journal { "journal" } else { "file" }.into(),
            ));
        }
    }
    init
}

/// Options as (name, value), in the order fail2ban reads them.
type OptionList = Vec<(String, String)>;

/// `[Definition]`'s filter keys the jail does not set, and where its
/// `failregex` was written.
fn definition_options(
    stack: &Stack,
    vars: &Options,
) -> Result<(OptionList, Option<Origin>), Error> {
    let mut opts: Vec<(String, String)> = Vec::new();
    let mut origin = None;
    for key in FILTER_KEYS {
        if vars.contains_key(key) {
            continue;
        }
        if let Some((v, o)) = stack.get("Definition", key, vars)? {
            if key == "failregex" {
                origin = Some(o);
            }
            opts.push((key.to_string(), v));
        }
    }
    Ok((opts, origin))
}

/// The caller's failregex lines, each one non-empty line, interpolated as
/// the filter's own and appended to them ([`Error::Added`] names a bad one).
fn append_added_failregex(
    stack: &Stack,
    vars: &Options,
    here: &Origin,
    opts: &mut Vec<(String, String)>,
    added: &[String],
) -> Result<(), Error> {
    for (i, line) in added.iter().enumerate() {
        if line.contains(['\n', '\r']) || line.trim().is_empty() {
            return Err(Error::Added {
                index: i,
                message: "a failregex is one non-empty line".into(),
            });
        }
        let text = stack
            .interpolate_in("Definition", line, vars, here)
            .map_err(|e| Error::Added {
                index: i,
                message: e.to_string(),
            })?;
        match opts.iter_mut().find(|(k, _)| k == "failregex") {
            Some((_, v)) => {
                v.push('\n');
                v.push_str(&text);
            }
            None => opts.push(("failregex".into(), text)),
        }
    }
    Ok(())
}

/// `[Init]`'s options, also as `known/NAME`, after the jail's arguments.
fn add_init_section(stack: &Stack, init: &mut Vec<(String, String)>) {
    if stack.has_section("Init") {
        for opt in stack.own_options("Init") {
            let Ok(Some((v, _))) = stack.get("Init", &opt, &Options::new()) else {
                continue;
            };
            if !opt.starts_with("known/") {
                init.push((format!("known/{opt}"), v.clone()));
            }
            if !init.iter().any(|(k, _)| *k == opt) {
                init.push((opt, v));
            }
        }
    }
}

/// `[Definition]`'s other options, which tags may refer to.
fn add_other_definitions(stack: &Stack, vars: &Options, opts: &mut Vec<(String, String)>) {
    for opt in stack.own_options("Definition") {
        if opts.iter().any(|(k, _)| *k == opt) || vars.contains_key(&opt) {
            continue;
        }
        // An option only some other option refers to: a broken one is
        // fail2ban's problem only if it is used.
        if let Ok(Some((v, _))) = stack.get("Definition", &opt, &Options::new()) {
            opts.push((opt, v));
        }
    }
}

/// Substitutes `<tag>`s (keys `NAME?...` stay); returns the first lookup
/// that failed, which matters only if no failregex is left.
fn substitute_filter_tags(
    stack: &Stack,
    vars: &Options,
    combined: &mut [(String, String)],
) -> Result<Option<Error>, TagError> {
    let ignore: Vec<String> = combined
        .iter()
        .filter_map(|(k, _)| k.split_once('?').map(|(n, _)| n.to_string()))
        .collect();
    let mut lookup_error = None;
    substitute_tags(
        combined,
        &ignore,
        &mut |tag| match stack.get_ex("Definition", tag, vars) {
            Ok(v) => v.map(|(v, _)| v),
            Err(e) => {
                lookup_error.get_or_insert(e);
                None
            }
        },
    )?;
    Ok(lookup_error)
}

/// fail2ban's `maxlines`: a whole number from 1 (to banset's limit).
pub(crate) fn parse_maxlines(text: &str) -> Result<usize, MaxlinesError> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=crate::filter::MAX_MAXLINES).contains(&n) => Ok(n),
        _ => Err(MaxlinesError(text.to_string())),
    }
}

/// A `maxlines` that is not a whole number from 1 to banset's limit; it
/// carries the value as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maxlines = {0:?}: give a whole number of lines from 1 to {max}", max = crate::filter::MAX_MAXLINES)]
pub struct MaxlinesError(pub String);

/// `sshd` or `sshd[mode=aggressive]`.
fn filter_display_name(name: &str, args: &[(String, String)]) -> String {
    if args.is_empty() {
        return name.to_string();
    }
    let a: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{name}[{}]", a.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Scan;

    fn dir_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "banset-f2b-filter-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        for (name, text) in files {
            let p = d.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    fn hit(f: &FilterDef, line: &str) -> Option<String> {
        let m = Matcher::new(std::slice::from_ref(f)).unwrap();
        let mut hits = Vec::new();
        let (_, rest) = crate::logtime::split_date(line.as_bytes());
        match m.scan_line(line.as_bytes(), rest, &mut hits) {
            Scan::Hit if !hits[0].ignored => Some(hits[0].target.to_string()),
            _ => None,
        }
    }

    const COMMON: &str = "[DEFAULT]\n_daemon = \\S*\n__prefix_line = \\s*(?:\\S+ )?%(_daemon)s(?:\\[\\d+\\])?:\\s+\n";

    /// `<t0>` is `<t1><t1>`, `<t1>` is `<t2><t2>`...: 2^40 bytes if
    /// nothing stops it.
    #[test]
    fn doubling_tags_stop_with_an_error_naming_the_file() {
        let mut text = "[Definition]\nfailregex = <t0> <HOST>\n".to_string();
        for n in 0..40 {
            text.push_str(&format!("t{n} = <t{m}><t{m}>\n", m = n + 1));
        }
        text.push_str("t40 = lol\n");
        let dir = dir_with(&[("filter.d/doubling.conf", &text)]);
        let e = load_filter(&dir, "doubling", &[], &Options::new(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("filter.d/doubling.conf") && e.contains("grows past"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Newer fail2ban's recidive.conf: the failregex of `[lt_file]` is
    /// written only in `[DEFAULT]`, and `<lt_<logtype>/failregex>` must
    /// find it there as Python's `ConfigParser.get` does.
    #[test]
    fn recidive_failregex_only_in_default_is_found_through_its_section() {
        let d = dir_with(&[
            ("filter.d/common.conf", COMMON),
            (
                "filter.d/recidive.conf",
                "[INCLUDES]\nbefore = common.conf\n[DEFAULT]\n_daemon = fail2ban\\.actions\\s*\n_jailname = recidive\nfailregex = ^%(__prefix_line)sNOTICE\\s+\\[(?!%(_jailname)s\\])(?:.*)\\]\\s+Ban\\s+<HOST>\\s*$\n[lt_file]\n[lt_journal]\nfailregex = ^journal only <HOST>$\n[Definition]\nfailregex = <lt_<logtype>/failregex>\n",
            ),
        ]);
        let f = load_filter(&d, "recidive", &[], &Options::new(), Some(false)).unwrap();
        assert_eq!(
            hit(
                &f.def,
                "Nov 21 12:00:00 h fail2ban.actions: NOTICE [sshd] Ban 192.0.2.9"
            )
            .as_deref(),
            Some("192.0.2.9")
        );
        assert_eq!(
            hit(
                &f.def,
                "Nov 21 12:00:00 h fail2ban.actions: NOTICE [recidive] Ban 192.0.2.9"
            ),
            None
        );
        let f = load_filter(&d, "recidive", &[], &Options::new(), Some(true)).unwrap();
        assert_eq!(f.def.failregex.len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn modes_tags_and_local_overrides() {
        let d = dir_with(&[
            ("filter.d/common.conf", COMMON),
            (
                "filter.d/demo.conf",
                "[INCLUDES]\nbefore = common.conf\n[DEFAULT]\n_daemon = demo\n[Definition]\nnormal = ^%(__prefix_line)sbad password from <HOST>$\naggressive = <normal>\n             ^%(__prefix_line)sprobe from <HOST>$\nfailregex = <<mode>>\nmode = normal\n",
            ),
            (
                "filter.d/demo.local",
                "[Definition]\nfailregex = %(known/failregex)s\n            ^%(__prefix_line)slocal rule <HOST>$\n",
            ),
        ]);
        let f = load_filter(&d, "demo", &[], &Options::new(), Some(false)).unwrap();
        assert_eq!(f.def.failregex.len(), 2, "{:?}", f.def.failregex);
        assert_eq!(
            hit(
                &f.def,
                "Nov 21 12:00:00 h demo[1]: bad password from 192.0.2.1"
            )
            .as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            hit(&f.def, "Nov 21 12:00:00 h demo[1]: probe from 192.0.2.1"),
            None
        );
        assert_eq!(
            hit(&f.def, "Nov 21 12:00:00 h demo[1]: local rule 192.0.2.3").as_deref(),
            Some("192.0.2.3")
        );
        let f = load_filter(
            &d,
            "demo",
            &[("mode".into(), "aggressive".into())],
            &Options::new(),
            Some(false),
        )
        .unwrap();
        assert_eq!(f.def.name, "demo[mode=aggressive]");
        assert_eq!(
            hit(&f.def, "Nov 21 12:00:00 h demo[1]: probe from 192.0.2.2").as_deref(),
            Some("192.0.2.2")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn prefregex_runs_failregexes_on_the_content_and_nofail_is_no_failure() {
        let d = dir_with(&[
            ("filter.d/common.conf", COMMON),
            (
                "filter.d/two.conf",
                "[INCLUDES]\nbefore = common.conf\n[DEFAULT]\n_daemon = two\n[Definition]\nprefregex = ^%(__prefix_line)s(?:client <ADDR>: )?<F-CONTENT>.+</F-CONTENT>$\nfailregex = ^auth failed$\n            ^user \\S+ unknown from <HOST>$\n            ^<F-NOFAIL>login ok</F-NOFAIL> from <HOST>$\n",
            ),
        ]);
        let f = load_filter(&d, "two", &[], &Options::new(), Some(false)).unwrap();
        assert!(f.def.prefregex.is_some());
        assert_eq!(f.def.failregex.len(), 3);
        // The address from the prefregex, the failregex on the content.
        assert_eq!(
            hit(
                &f.def,
                "Nov 21 12:00:00 h two[9]: client 192.0.2.7: auth failed"
            )
            .as_deref(),
            Some("192.0.2.7")
        );
        // `^` of a failregex anchors at the content's start.
        assert_eq!(
            hit(
                &f.def,
                "Nov 21 12:00:00 h two[9]: client 192.0.2.7: x auth failed"
            ),
            None
        );
        // The failregex's own address wins.
        assert_eq!(
            hit(
                &f.def,
                "Nov 21 12:00:00 h two[9]: user x unknown from 2001:db8::5"
            )
            .as_deref(),
            Some("2001:db8::5")
        );
        assert_eq!(
            hit(&f.def, "Nov 21 12:00:00 h two[9]: login ok from 192.0.2.8"),
            None
        );
        // Not our daemon: the prefregex does not match.
        assert_eq!(
            hit(
                &f.def,
                "Nov 21 12:00:00 h other[9]: client 192.0.2.7: auth failed"
            ),
            None
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_connection_gives_its_address_to_lines_without_one() {
        let d = dir_with(&[(
            "filter.d/conn.conf",
            "[Definition]\nprefregex = ^<F-MLFID>\\S+ d\\[\\d+\\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$\nfailregex = ^Too many failures$\n            ^<F-NOFAIL><F-MLFFORGET>Closed</F-MLFFORGET></F-NOFAIL> by <HOST>$\n            ^<F-NOFAIL>Connect</F-NOFAIL> from <HOST>$\n            ^<F-MLFGAINED>Accepted</F-MLFGAINED> from <HOST>$\n",
        )]);
        let f = load_filter(&d, "conn", &[], &Options::new(), None).unwrap();
        let m = Matcher::new(std::slice::from_ref(&f.def)).unwrap();
        let scan = |line: &str| {
            let mut hits = Vec::new();
            m.scan(line.as_bytes(), &mut hits);
            hits.first().map(|h| h.target.to_string())
        };
        // The address from an earlier line of the same connection (pid).
        assert_eq!(scan("h d[1]: Connect from 192.0.2.1"), None);
        assert_eq!(scan("h d[2]: Connect from 192.0.2.2"), None);
        assert_eq!(
            scan("h d[1]: Too many failures").as_deref(),
            Some("192.0.2.1")
        );
        // A failure before the address: counted when the address comes.
        assert_eq!(scan("h d[3]: Too many failures"), None);
        assert_eq!(
            scan("h d[3]: Closed by 192.0.2.3").as_deref(),
            Some("192.0.2.3")
        );
        // The connection ended: its next closing line is nothing.
        assert_eq!(scan("h d[3]: Closed by 192.0.2.3"), None);
        // A login clears a waiting failure.
        assert_eq!(scan("h d[4]: Too many failures"), None);
        assert_eq!(scan("h d[4]: Accepted from 192.0.2.4"), None);
        assert_eq!(scan("h d[4]: Closed by 192.0.2.4"), None);
        // Another connection's address is never borrowed.
        assert_eq!(scan("h d[5]: Too many failures"), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_connection_that_tries_several_users_fails_even_on_a_login() {
        let d = dir_with(&[(
            "filter.d/users.conf",
            "[Definition]\nprefregex = ^<F-MLFID>\\S+ d\\[\\d+\\]: </F-MLFID><F-CONTENT>.+</F-CONTENT>$\nfailregex = ^<F-NOFAIL>auth failure</F-NOFAIL> ruser=<F-ALT_USER>\\S*</F-ALT_USER> rhost=<HOST>$\n            ^<F-MLFFORGET><F-MLFGAINED>Accepted</F-MLFGAINED></F-MLFFORGET> for <F-USER>\\S+</F-USER> from <HOST>$\n",
        )]);
        let f = load_filter(&d, "users", &[], &Options::new(), None).unwrap();
        let m = Matcher::new(std::slice::from_ref(&f.def)).unwrap();
        let scan = |line: &str| {
            let mut hits = Vec::new();
            m.scan(line.as_bytes(), &mut hits);
            hits.first().map(|h| h.target.to_string())
        };
        // One user, then a login as that user: no failure.
        assert_eq!(
            scan("h d[1]: auth failure ruser=root rhost=192.0.2.1"),
            None
        );
        assert_eq!(
            scan("h d[1]: auth failure ruser=root rhost=192.0.2.1"),
            None
        );
        assert_eq!(scan("h d[1]: Accepted for root from 192.0.2.1"), None);
        // A second user name: a failure, and the login after it too.
        assert_eq!(
            scan("h d[2]: auth failure ruser=root rhost=192.0.2.2"),
            None
        );
        assert_eq!(
            scan("h d[2]: auth failure ruser=admin rhost=192.0.2.2").as_deref(),
            Some("192.0.2.2")
        );
        assert_eq!(
            scan("h d[2]: Accepted for known from 192.0.2.2").as_deref(),
            Some("192.0.2.2")
        );
        // The login ended that connection: a new one with the same id
        // starts clean.
        assert_eq!(scan("h d[2]: auth failure ruser=x rhost=192.0.2.2"), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn multi_line_filters_search_the_latest_lines_and_keep_skipped_ones() {
        let d = dir_with(&[(
            "filter.d/ml.conf",
            "[Definition]\nfailregex = ^conn=(?P<_c>\\d+) ACCEPT from IP=<HOST>\\s*<SKIPLINES>conn=(?P=_c) RESULT err=49$\n            ^.*\\nWARNING: attempt from <HOST> failed$\nignoreregex = ^conn=\\d+ ACCEPT from IP=192\\.0\\.2\\.9\nmaxlines = 4\n",
        )]);
        let f = load_filter(&d, "ml", &[], &Options::new(), None).unwrap();
        assert_eq!(f.def.maxlines, 4);
        let m = Matcher::new(std::slice::from_ref(&f.def)).unwrap();
        let scan = |line: &str| {
            let mut hits = Vec::new();
            m.scan(line.as_bytes(), &mut hits);
            hits.first()
                .filter(|h| !h.ignored)
                .map(|h| h.target.to_string())
        };
        // Two interleaved connections: each result finds its own accept,
        // past the other's lines, which stay buffered for their match.
        assert_eq!(scan("conn=1 ACCEPT from IP=192.0.2.1"), None);
        assert_eq!(scan("conn=2 ACCEPT from IP=192.0.2.2"), None);
        assert_eq!(scan("conn=2 RESULT err=49").as_deref(), Some("192.0.2.2"));
        assert_eq!(scan("conn=1 RESULT err=49").as_deref(), Some("192.0.2.1"));
        // Matched lines left the buffer: the same result again is nothing.
        assert_eq!(scan("conn=1 RESULT err=49"), None);
        // Beyond maxlines the accept has left the buffer.
        assert_eq!(scan("conn=3 ACCEPT from IP=192.0.2.3"), None);
        for _ in 0..4 {
            assert_eq!(scan("noise"), None);
        }
        assert_eq!(scan("conn=3 RESULT err=49"), None);
        // An ignoreregex looks at the matched lines.
        assert_eq!(scan("conn=4 ACCEPT from IP=192.0.2.9"), None);
        assert_eq!(scan("conn=4 RESULT err=49"), None);
        // `^.*\n`: the line before, whatever it is.
        assert_eq!(scan("Nov 21 2026 header"), None);
        assert_eq!(
            scan("WARNING: attempt from 192.0.2.5 failed").as_deref(),
            Some("192.0.2.5")
        );
        let bad = dir_with(&[(
            "filter.d/bad.conf",
            "[Definition]\nfailregex = ^x <HOST>$\nmaxlines = 0\n",
        )]);
        let e = load_filter(&bad, "bad", &[], &Options::new(), None).unwrap_err();
        assert!(e.to_string().contains("maxlines = \"0\""), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&bad).unwrap();
    }

    #[test]
    fn unusable_failregexes_are_set_aside_with_a_notice() {
        let d = dir_with(&[(
            "filter.d/ids.conf",
            "[Definition]\nfailregex = ^session <F-ID>\\S+</F-ID> failed$\n            ^bad from <HOST>$\n",
        )]);
        let f = load_filter(&d, "ids", &[], &Options::new(), None).unwrap();
        assert_eq!(f.def.failregex.len(), 1);
        assert_eq!(f.failregex_total, 2);
        assert!(
            f.notices[0].to_string().contains("failregex 1 not used"),
            "{:?}",
            f.notices
        );
        assert!(
            f.notices[0].origin.ends_with("ids.conf:2"),
            "{:?}",
            f.notices
        );
        let e = load_filter(&d, "none", &[], &Options::new(), None).unwrap_err();
        assert!(e.to_string().contains("no filter \"none\""), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
