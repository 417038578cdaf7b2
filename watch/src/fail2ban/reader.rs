//! A stack of fail2ban configuration files read as one, the way fail2ban's
//! `ConfigReader` does:
//! - `NAME.conf`, `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local`, in that
//!   order; each file pulls in `[INCLUDES] before = ...` ahead of itself and
//!   `after = ...` behind, and every file its `.local` twin;
//! - later files override earlier ones key by key; an overridden value stays
//!   reachable as `%(known/KEY)s` (fail2ban's `KNOWN/section`);
//! - `%(key)s` interpolation with Python's rules (`%%` is a percent sign,
//!   ten levels deep at most) plus fail2ban's `%(section/key)s`,
//!   `%(default/key)s` and `%(known/key)s`;
//! - conditional sections (`[Init?family=inet6]`) fold into their base
//!   section as `key?family=inet6`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{Error, Origin};
use super::ini::{self, IniFile, Value, MAX_SECTIONS};

/// Merged options of one section: key → value (last writer wins).
pub type Options = BTreeMap<String, Value>;

/// The merged files.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// `[DEFAULT]`.
    pub defaults: Options,
    /// Sections in the order they first appeared.
    pub order: Vec<String>,
    /// Sections by name, `KNOWN/NAME` included.
    pub sections: BTreeMap<String, Options>,
    /// The files read, in merge order.
    pub files: Vec<PathBuf>,
    /// `%(name)s` substitutions all values of the stack may still take
    /// ([`MAX_STACK_SUBSTITUTIONS`]): one value's budget is not enough when
    /// thousands of sections each spend nearly all of theirs.
    spent: std::cell::Cell<usize>,
}

/// Python's interpolation depth limit.
const MAX_DEPTH: usize = 10;

// Bounds on the work a configuration can make the reader do. A file
// anyone with write access to the tree planted (or a careless one) must
// fail with an error naming it, not hold the daemon for minutes: ten
// levels of `%(x)s` that each name the level below ten times make 10^10
// substitutions, a diamond of includes doubles at each level, and so on.
// Each bound is far above what fail2ban's own configuration uses (its
// longest interpolated value is a few KiB, its deepest include chain 3
// files, a stack at most 8 files).

/// Longest interpolated value, in bytes.
pub(crate) const MAX_EXPANSION: usize = 1 << 20;
/// `%(name)s` substitutions made for one value.
const MAX_SUBSTITUTIONS: usize = 100_000;
/// ... and for all values of one stack.
const MAX_STACK_SUBSTITUTIONS: usize = 2_000_000;
/// Files merged into one stack (includes, `.d/` and `.local` files).
const MAX_FILES: usize = 256;
/// Includes within includes.
const MAX_INCLUDE_DEPTH: usize = 16;

/// What is left of the work one value may take ([`MAX_SUBSTITUTIONS`]).
struct Budget {
    substitutions: usize,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            substitutions: MAX_SUBSTITUTIONS,
        }
    }
}

/// The directory given as fail2ban's configuration, resolved. Every file
/// the reader opens must resolve (symbolic links followed) to a file
/// inside it: an `[INCLUDES]` line, a `.local` twin or a `NAME.d/` entry
/// must not make banset (root) read `/etc/shadow`, and a parse error must
/// not then print a line of it.
struct Tree {
    root: PathBuf,
}

impl Tree {
    /// The file to read for `file`: its resolved path, if that is inside
    /// the tree.
    fn confine(&self, file: &Path) -> Result<PathBuf, Error> {
        let real = file.canonicalize().map_err(|e| Error::io(file, e))?;
        if !real.starts_with(&self.root) {
            return Err(Error::Other(format!(
                "{}: resolves to {}, outside the fail2ban configuration directory {}; banset reads configuration only from inside it",
                file.display(),
                real.display(),
                self.root.display()
            )));
        }
        Ok(real)
    }
}

impl Stack {
    /// Reads `dir/base.conf` and its companions (see the module
    /// documentation). `Ok(None)` when none of the files exists.
    pub fn read(dir: &Path, base: &str) -> Result<Option<Stack>, Error> {
        let basename = dir.join(base);
        let mut roots = vec![with_ext(&basename, "conf")];
        let d = with_ext(&basename, "d");
        roots.extend(sorted_glob(&d, ".conf"));
        roots.push(with_ext(&basename, "local"));
        roots.extend(sorted_glob(&d, ".local"));
        let roots: Vec<PathBuf> = roots.into_iter().filter(|p| p.is_file()).collect();
        if roots.is_empty() {
            return Ok(None);
        }
        let tree = Tree {
            root: dir.canonicalize().map_err(|e| Error::io(dir, e))?,
        };
        let mut files = Vec::new();
        for r in expand_local(&roots) {
            includes(&tree, &r, &[], &mut files)?;
        }
        let mut stack = Stack::default();
        for (f, parsed) in &files {
            stack.merge(parsed);
            if stack.sections.len() > MAX_SECTIONS {
                return Err(Error::Other(format!(
                    "{}: more than {MAX_SECTIONS} sections in {} and the files it includes",
                    f.display(),
                    basename.display()
                )));
            }
        }
        stack.files = files.into_iter().map(|(f, _)| f).collect();
        Ok(Some(stack))
    }

    /// A stack of in-memory texts (tests).
    #[cfg(test)]
    pub fn from_texts(texts: &[(&str, &str)]) -> Result<Stack, Error> {
        let mut stack = Stack::default();
        for (name, text) in texts {
            stack.merge(&ini::parse(text, name)?);
        }
        Ok(stack)
    }

    fn merge(&mut self, file: &IniFile) {
        for (k, v) in &file.defaults {
            self.defaults.insert(k.clone(), v.clone());
        }
        for (name, opts) in &file.sections {
            let (name, cond) = match name.split_once('?') {
                Some((n, c)) if !n.is_empty() && n.bytes().all(is_word) => {
                    (n.to_string(), format!("?{c}"))
                }
                _ => (name.clone(), String::new()),
            };
            let opts: Vec<(String, Value)> = opts
                .iter()
                .map(|(k, v)| (format!("{k}{cond}"), v.clone()))
                .collect();
            match self.sections.get_mut(&name) {
                Some(existing) => {
                    let known: Vec<(String, Value)> = opts
                        .iter()
                        .filter_map(|(k, _)| existing.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    existing.extend(opts);
                    self.sections
                        .entry(format!("KNOWN/{name}"))
                        .or_default()
                        .extend(known);
                }
                None => {
                    self.order.push(name.clone());
                    self.sections.insert(name, opts.into_iter().collect());
                }
            }
        }
    }

    /// Whether the section exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// The section's own option names (no DEFAULT).
    pub fn own_options(&self, section: &str) -> Vec<String> {
        self.sections
            .get(section)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The raw value of `key` in `section` (or DEFAULT), `vars` first.
    /// Option names are case-insensitive, as `ConfigParser` folds them.
    pub fn raw<'a>(&'a self, section: &str, key: &str, vars: &'a Options) -> Option<&'a Value> {
        let key = key.to_lowercase();
        vars.get(&key)
            .or_else(|| self.sections.get(section).and_then(|s| s.get(&key)))
            .or_else(|| self.defaults.get(&key))
    }

    /// `ConfigParser.get(section, key, raw=True)` without vars: `DEFAULT`
    /// is the defaults; an existing section is its own value, else the
    /// default one; a section that does not exist has nothing (Python's
    /// `NoSectionError`, which fail2ban's callers treat as unset).
    fn section_raw(&self, section: &str, key: &str) -> Option<&Value> {
        let key = key.to_lowercase();
        if section == "DEFAULT" {
            return self.defaults.get(&key);
        }
        let own = self.sections.get(section)?;
        own.get(&key).or_else(|| self.defaults.get(&key))
    }

    /// The interpolated value of `key` in `section`, `None` if unset.
    pub fn get(
        &self,
        section: &str,
        key: &str,
        vars: &Options,
    ) -> Result<Option<(String, Origin)>, Error> {
        let Some(v) = self.raw(section, key, vars) else {
            return Ok(None);
        };
        let text = self.interpolate(&v.text, section, vars, &v.origin, 1, &mut Budget::new())?;
        Ok(Some((text, v.origin.clone())))
    }

    /// fail2ban's `get_ex` (what a `<sec/key>` tag reads): `sec/key` is
    /// `ConfigParser.get(sec, key)`, so a section that has no `key` gives
    /// `[DEFAULT]`'s (newer fail2ban's filters rely on it:
    /// `<lt_file/failregex>` with the value only in `[DEFAULT]`);
    /// `known/key` tries `KNOWN/section` first, then the section itself;
    /// then plain `get` of the whole name.
    pub fn get_ex(
        &self,
        section: &str,
        key: &str,
        vars: &Options,
    ) -> Result<Option<(String, Origin)>, Error> {
        if let Some((sec, opt)) = split_section_key(key) {
            let candidates: Vec<String> = match sec.to_lowercase().as_str() {
                "known" => vec![format!("KNOWN/{section}"), section.to_string()],
                "default" => vec!["DEFAULT".into()],
                _ => vec![sec.to_string()],
            };
            for c in candidates {
                if let Some(v) = self.section_raw(&c, opt) {
                    let text = self.interpolate(
                        &v.text,
                        &c,
                        &Options::new(),
                        &v.origin,
                        1,
                        &mut Budget::new(),
                    )?;
                    return Ok(Some((text, v.origin.clone())));
                }
            }
        }
        self.get(section, key, vars)
    }

    /// `text` interpolated as a value of `section` would be (a line a
    /// caller adds to a filter).
    pub(crate) fn interpolate_in(
        &self,
        section: &str,
        text: &str,
        vars: &Options,
        origin: &Origin,
    ) -> Result<String, Error> {
        self.interpolate(text, section, vars, origin, 1, &mut Budget::new())
    }

    /// What `%(name)s` stands for in `section` (fail2ban's
    /// `_map_section_options` over `BasicInterpolation`): an option of
    /// `vars`, the section or DEFAULT; else `sec/opt` read raw from `sec`
    /// (`default/opt` from DEFAULT, `known/opt` from `KNOWN/section`),
    /// falling back to DEFAULT when `sec` lacks `opt` but not when `sec`
    /// does not exist. Python looks the name up folded to lower case
    /// while the section form is stored as written, so a `%(Sec/opt)s`
    /// written with capitals is never found there; the same here.
    fn lookup<'a>(&'a self, section: &str, written: &str, vars: &'a Options) -> Option<&'a Value> {
        if let Some(v) = self.raw(section, written, vars) {
            return Some(v);
        }
        if written.to_lowercase() != written {
            return None;
        }
        let (sec, opt) = written.split_once('/')?;
        if sec.is_empty()
            || !sec
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        match sec {
            "default" => self.defaults.get(opt),
            "known" => self
                .sections
                .get(&format!("KNOWN/{section}"))
                .and_then(|s| s.get(opt))
                .or_else(|| self.defaults.get(opt)),
            _ => self
                .sections
                .get(sec)?
                .get(opt)
                .or_else(|| self.defaults.get(opt)),
        }
    }

    fn interpolate(
        &self,
        text: &str,
        section: &str,
        vars: &Options,
        origin: &Origin,
        depth: usize,
        budget: &mut Budget,
    ) -> Result<String, Error> {
        if !text.contains('%') {
            return Ok(text.to_string());
        }
        if depth > MAX_DEPTH {
            return Err(Error::at(
                origin,
                format!("interpolation deeper than {MAX_DEPTH} levels (a loop?) in {text:?}"),
            ));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            let tail = &rest[p + 1..];
            if let Some(t) = tail.strip_prefix('%') {
                out.push('%');
                rest = t;
            } else if let Some(t) = tail.strip_prefix('(') {
                // Python's `%\(([^)]+)\)s`: the name ends at the first `)`.
                let close = t
                    .find(')')
                    .filter(|&c| c > 0 && t[c + 1..].starts_with('s'));
                let Some(close) = close else {
                    return Err(Error::at(
                        origin,
                        format!("bad interpolation {:?}: %( without )s", &rest[p..]),
                    ));
                };
                let written = &t[..close];
                let name = written.to_lowercase();
                let value = if name == "__name__" {
                    section.to_string()
                } else {
                    let v = self.lookup(section, written, vars).ok_or_else(|| {
                        Error::at(
                            origin,
                            format!("%({name})s is not defined (section [{section}])"),
                        )
                    })?;
                    budget.substitutions = budget.substitutions.checked_sub(1).ok_or_else(|| {
                        Error::at(
                            origin,
                            format!("more than {MAX_SUBSTITUTIONS} %(name)s substitutions for one value (values that each name another several times?)"),
                        )
                    })?;
                    self.spent.set(self.spent.get() + 1);
                    if self.spent.get() > MAX_STACK_SUBSTITUTIONS {
                        return Err(Error::at(
                            origin,
                            format!("more than {MAX_STACK_SUBSTITUTIONS} %(name)s substitutions in this file and the files read with it"),
                        ));
                    }
                    self.interpolate(&v.text, section, vars, origin, depth + 1, budget)?
                };
                if out.len() + value.len() > MAX_EXPANSION {
                    return Err(Error::at(
                        origin,
                        format!("the value grows past {} KiB when %({name})s is substituted (values that each name another several times?)", MAX_EXPANSION >> 10),
                    ));
                }
                out.push_str(&value);
                rest = &t[close + 2..];
            } else {
                return Err(Error::at(
                    origin,
                    format!("'%' must be followed by '%' or '(' in {text:?} (write %% for a percent sign)"),
                ));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `sec/key` as fail2ban splits it: a section name of word characters and
/// `-`, a key without white space or `>`.
fn split_section_key(name: &str) -> Option<(&str, &str)> {
    let (sec, opt) = name.split_once('/')?;
    let ok = !sec.is_empty()
        && sec.bytes().all(|b| is_word(b) || b == b'-')
        && !opt.is_empty()
        && !opt.contains(|c: char| c.is_whitespace() || c == '>');
    ok.then_some((sec, opt))
}

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn sorted_glob(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix) && !n.starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

/// Each file followed by its `.local` twin when that exists and is not
/// listed already.
fn expand_local(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in files {
        out.push(f.clone());
        let local = f.with_extension("local");
        if !files.contains(&local) && local.is_file() && local != *f {
            out.push(local);
        }
    }
    out
}

/// Appends `file` with its includes, in merge order, to `out` (each file
/// with what it parsed to).
fn includes(
    tree: &Tree,
    file: &Path,
    seen: &[PathBuf],
    out: &mut Vec<(PathBuf, IniFile)>,
) -> Result<(), Error> {
    if !file.is_file() {
        // fail2ban skips an include that does not exist.
        return Ok(());
    }
    if out.len() >= MAX_FILES {
        return Err(Error::Other(format!(
            "{}: more than {MAX_FILES} files to read through [INCLUDES] (includes that each include the same files again?)",
            seen.first().map_or(file, |f| f.as_path()).display()
        )));
    }
    if seen.len() >= MAX_INCLUDE_DEPTH {
        return Err(Error::Other(format!(
            "{}: [INCLUDES] nested more than {MAX_INCLUDE_DEPTH} deep (through {})",
            seen[0].display(),
            file.display()
        )));
    }
    let parsed = ini::read_config(&tree.confine(file)?, file)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let list = |key: &str| -> Result<Vec<PathBuf>, Error> {
        let Some(sec) = parsed.section("INCLUDES") else {
            return Ok(Vec::new());
        };
        let Some((_, v)) = sec.iter().find(|(k, _)| k == key) else {
            return Ok(Vec::new());
        };
        let stack = Stack::from_parsed(&parsed);
        let text = stack.interpolate(
            &v.text,
            "INCLUDES",
            &Options::new(),
            &v.origin,
            1,
            &mut Budget::new(),
        )?;
        text.split('\n')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                // fail2ban's includes are its own `.conf`/`.local` files;
                // any other name is refused before it is opened.
                if s.ends_with(".conf") || s.ends_with(".local") {
                    Ok(dir.join(s))
                } else {
                    Err(Error::at(
                        &v.origin,
                        format!(
                            "[INCLUDES] {key} = {s:?}: an include must be a .conf or .local file"
                        ),
                    ))
                }
            })
            .collect()
    };
    let mut seen2 = seen.to_vec();
    seen2.push(file.to_path_buf());
    let before = list("before")?;
    let after = list("after")?;
    for before in before {
        if seen.contains(&before) || before == file {
            continue;
        }
        for f in expand_local(&[before]) {
            includes(tree, &f, &seen2, out)?;
        }
    }
    out.push((file.to_path_buf(), parsed));
    for after in after {
        if seen.contains(&after) || after == file {
            continue;
        }
        for f in expand_local(&[after]) {
            includes(tree, &f, &seen2, out)?;
        }
    }
    Ok(())
}

impl Stack {
    fn from_parsed(file: &IniFile) -> Stack {
        let mut s = Stack::default();
        s.merge(file);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Options {
        Options::new()
    }

    fn get(s: &Stack, sec: &str, key: &str) -> String {
        s.get(sec, key, &vars()).unwrap().unwrap().0
    }

    #[test]
    fn continuation_comments_and_case() {
        let s = Stack::from_texts(&[(
            "f.conf",
            "# comment\n[Definition]\nFailRegex = ^a <HOST>$\n    ^b <HOST>$\n\n    ^c <HOST>$\n  # not a regex\n    ^d <HOST>$\nkey: v ; inline\nsemi = a;b\n",
        )])
        .unwrap();
        assert_eq!(
            get(&s, "Definition", "failregex"),
            "^a <HOST>$\n^b <HOST>$\n\n^c <HOST>$\n^d <HOST>$"
        );
        assert_eq!(get(&s, "Definition", "key"), "v");
        assert_eq!(get(&s, "Definition", "semi"), "a;b");
        let empty = vars();
        let v = s.raw("Definition", "key", &empty).unwrap();
        assert_eq!(v.origin.to_string(), "f.conf:9");
    }

    #[test]
    fn interpolation_defaults_known_and_sections() {
        let s = Stack::from_texts(&[
            (
                "a.conf",
                "[DEFAULT]\nd = dflt\n[Definition]\nx = 1%(d)s\ny = %(x)s-%(__name__)s\nz = 50%%\n[other]\no = O\n",
            ),
            (
                "a.local",
                "[Definition]\nx = %(known/x)s+2\nw = %(other/o)s %(default/d)s\n",
            ),
        ])
        .unwrap();
        assert_eq!(get(&s, "Definition", "x"), "1dflt+2");
        assert_eq!(get(&s, "Definition", "y"), "1dflt+2-Definition");
        assert_eq!(get(&s, "Definition", "z"), "50%");
        assert_eq!(get(&s, "Definition", "w"), "O dflt");
        let mut v = vars();
        v.insert(
            "d".into(),
            Value {
                text: "var".into(),
                origin: Origin {
                    file: "jail".into(),
                    line: 1,
                },
            },
        );
        assert_eq!(
            s.get("Definition", "y", &v).unwrap().unwrap().0,
            "1var+2-Definition"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Stack::from_texts(&[("x.conf", "\nkey = v\n")]).unwrap_err();
        assert!(e.to_string().starts_with("x.conf:2: "), "{e}");
        let e = Stack::from_texts(&[("x.conf", "[a]\nk = 1\nk = 2\n")]).unwrap_err();
        assert!(e.to_string().starts_with("x.conf:3: "), "{e}");
        let e = Stack::from_texts(&[("x.conf", "[a]\njunk\n")]).unwrap_err();
        assert!(e.to_string().starts_with("x.conf:2: "), "{e}");
        let s = Stack::from_texts(&[("x.conf", "[a]\nk = 1\nl = %(nope)s\nm = 5%\nn = %(n)s\n")])
            .unwrap();
        let e = s.get("a", "l", &vars()).unwrap_err().to_string();
        assert!(e.starts_with("x.conf:3: ") && e.contains("nope"), "{e}");
        let e = s.get("a", "m", &vars()).unwrap_err().to_string();
        assert!(e.starts_with("x.conf:4: "), "{e}");
        let e = s.get("a", "n", &vars()).unwrap_err().to_string();
        assert!(e.contains("deeper"), "{e}");
    }

    #[test]
    fn conditional_sections_fold_into_their_base() {
        let s = Stack::from_texts(&[("a.conf", "[Init]\nt = 4\n[Init?family=inet6]\nt = 6\n")])
            .unwrap();
        assert_eq!(get(&s, "Init", "t"), "4");
        assert_eq!(get(&s, "Init", "t?family=inet6"), "6");
    }

    #[test]
    fn files_includes_and_local_overrides_from_disk() {
        let dir = std::env::temp_dir().join(format!("banset-f2b-reader-{}", std::process::id()));
        let fd = dir.join("filter.d");
        std::fs::create_dir_all(&fd).unwrap();
        std::fs::write(fd.join("common.conf"), "[DEFAULT]\nc = common\n").unwrap();
        std::fs::write(fd.join("common.local"), "[DEFAULT]\nc = common-local\n").unwrap();
        std::fs::write(
            fd.join("x.conf"),
            "[INCLUDES]\nbefore = common.conf\nafter = x-after.conf\n[Definition]\nv = %(c)s\nw = conf\n",
        )
        .unwrap();
        std::fs::write(fd.join("x-after.conf"), "[Definition]\nafter = yes\n").unwrap();
        std::fs::write(fd.join("x.local"), "[Definition]\nw = local\n").unwrap();
        std::fs::create_dir_all(fd.join("x.d")).unwrap();
        std::fs::write(fd.join("x.d/10.conf"), "[Definition]\nw = d-conf\nd = 1\n").unwrap();
        let s = Stack::read(&dir, "filter.d/x").unwrap().unwrap();
        let names: Vec<String> = s
            .files
            .iter()
            .map(|p| p.strip_prefix(&fd).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "common.conf",
                "common.local",
                "x.conf",
                "x-after.conf",
                "x.d/10.conf",
                "x.local",
            ]
        );
        assert_eq!(get(&s, "Definition", "v"), "common-local");
        // fail2ban's order: conf, d/*.conf, local, d/*.local.
        assert_eq!(get(&s, "Definition", "w"), "local");
        assert_eq!(get(&s, "Definition", "d"), "1");
        assert_eq!(get(&s, "Definition", "after"), "yes");
        assert!(Stack::read(&dir, "filter.d/none").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("banset-f2b-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf/filter.d")).unwrap();
        dir
    }

    #[test]
    fn includes_outside_the_configuration_tree_are_refused_and_never_quoted() {
        let dir = scratch("confine");
        let conf = dir.join("conf");
        let fd = conf.join("filter.d");
        // Files outside the tree, as /etc/shadow would be: not INI, so a
        // parse error would quote their first line.
        std::fs::write(dir.join("secret.conf"), "root:SECRET-HASH:19000::::::\n").unwrap();
        std::fs::write(dir.join("secret"), "root:SECRET-HASH:19000::::::\n").unwrap();
        let refused = |base: &str, why: &str| {
            let e = Stack::read(&conf, base).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{base}: {e}");
            assert!(e.contains(why), "{base}: {e}");
        };
        std::fs::write(
            fd.join("up.conf"),
            "[INCLUDES]\nbefore = ../../secret.conf\n",
        )
        .unwrap();
        refused(
            "filter.d/up",
            "outside the fail2ban configuration directory",
        );
        std::fs::write(
            fd.join("shadow.conf"),
            "[INCLUDES]\nbefore = ../../../../../../../../etc/shadow\n",
        )
        .unwrap();
        refused("filter.d/shadow", "must be a .conf or .local file");
        std::fs::write(fd.join("bare.conf"), "[INCLUDES]\nafter = ../../secret\n").unwrap();
        refused("filter.d/bare", "must be a .conf or .local file");
        // Symbolic links out of the tree: an include, a filter itself, its
        // .local twin, a NAME.d/ entry.
        std::os::unix::fs::symlink(dir.join("secret.conf"), fd.join("link.conf")).unwrap();
        std::fs::write(fd.join("vialink.conf"), "[INCLUDES]\nbefore = link.conf\n").unwrap();
        refused(
            "filter.d/vialink",
            "outside the fail2ban configuration directory",
        );
        refused(
            "filter.d/link",
            "outside the fail2ban configuration directory",
        );
        std::fs::write(fd.join("twin.conf"), "[Definition]\nx = 1\n").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.conf"), fd.join("twin.local")).unwrap();
        refused(
            "filter.d/twin",
            "outside the fail2ban configuration directory",
        );
        std::fs::write(fd.join("dd.conf"), "[Definition]\nx = 1\n").unwrap();
        std::fs::create_dir_all(fd.join("dd.d")).unwrap();
        std::os::unix::fs::symlink(dir.join("secret.conf"), fd.join("dd.d/10.conf")).unwrap();
        refused(
            "filter.d/dd",
            "outside the fail2ban configuration directory",
        );
        // A link that stays inside the tree is fine.
        std::fs::write(fd.join("real.conf"), "[Definition]\nv = inside\n").unwrap();
        std::os::unix::fs::symlink(fd.join("real.conf"), fd.join("alias.conf")).unwrap();
        std::fs::write(fd.join("ok.conf"), "[INCLUDES]\nbefore = alias.conf\n").unwrap();
        let s = Stack::read(&conf, "filter.d/ok").unwrap().unwrap();
        assert_eq!(get(&s, "Definition", "v"), "inside");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_quote_at_most_a_short_piece_of_a_line() {
        let long = format!("{}SECRET-TAIL", "x".repeat(200));
        let e = Stack::from_texts(&[("x.conf", &format!("[a]\n{long}\n"))])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.conf:2: ") && !e.contains("SECRET"), "{e}");
    }

    /// Values that each name the one below ten times, as deep as Python's
    /// depth limit lets them go (10^9 substitutions), with text and with
    /// empty values.
    #[test]
    fn billion_laughs_interpolation_stops_with_an_error_naming_the_file() {
        for leaf in ["lol", ""] {
            let mut text = format!("[Definition]\nx0 = {leaf}\n");
            for level in 1..=8 {
                let below = format!("%(x{})s", level - 1);
                text.push_str(&format!("x{level} = {}\n", below.repeat(10)));
            }
            text.push_str("failregex = %(x8)s <HOST>\n");
            let dir = scratch("laughs");
            std::fs::write(dir.join("conf/filter.d/laughs.conf"), &text).unwrap();
            let s = Stack::read(&dir.join("conf"), "filter.d/laughs")
                .unwrap()
                .unwrap();
            let e = s
                .get("Definition", "failregex", &vars())
                .unwrap_err()
                .to_string();
            assert!(e.contains("filter.d/laughs.conf:11: "), "{e}");
            assert!(
                e.contains("substitutions") || e.contains("grows past"),
                "{e}"
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// Each file includes the same two files of the next level: 2^30
    /// visits if nothing stops it.
    #[test]
    fn an_exponential_include_graph_stops_with_an_error_naming_the_file() {
        let dir = scratch("diamond");
        let fd = dir.join("conf/filter.d");
        for level in 0..30 {
            std::fs::write(
                fd.join(format!("a{level}.conf")),
                format!(
                    "[INCLUDES]\nbefore = a{n}.conf\n  b{n}.conf\n",
                    n = level + 1
                ),
            )
            .unwrap();
            std::fs::write(
                fd.join(format!("b{level}.conf")),
                format!(
                    "[INCLUDES]\nbefore = a{n}.conf\n  b{n}.conf\n",
                    n = level + 1
                ),
            )
            .unwrap();
        }
        let e = Stack::read(&dir.join("conf"), "filter.d/a0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("filter.d/a0.conf") && e.contains("more than"),
            "{e}"
        );
        // A plain chain deeper than any real configuration.
        for level in 0..40 {
            std::fs::write(
                fd.join(format!("c{level}.conf")),
                format!("[INCLUDES]\nbefore = c{}.conf\n", level + 1),
            )
            .unwrap();
        }
        let e = Stack::read(&dir.join("conf"), "filter.d/c0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("filter.d/c0.conf") && e.contains("nested"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hundred_thousand_sections_stop_with_an_error_naming_the_file() {
        let dir = scratch("sections");
        let mut text = String::new();
        for n in 0..100_000 {
            text.push_str(&format!("[jail{n}]\nenabled = false\n"));
        }
        std::fs::write(dir.join("conf/jail.local"), &text).unwrap();
        let e = Stack::read(&dir.join("conf"), "jail")
            .unwrap_err()
            .to_string();
        assert!(e.contains("jail.local:") && e.contains("sections"), "{e}");
        // Spread over files, the stack's total is bounded too.
        std::fs::remove_file(dir.join("conf/jail.local")).unwrap();
        std::fs::create_dir_all(dir.join("conf/jail.d")).unwrap();
        for f in 0..20 {
            let mut text = String::new();
            for n in 0..1_000 {
                text.push_str(&format!("[j{f}x{n}]\nenabled = false\n"));
            }
            std::fs::write(dir.join(format!("conf/jail.d/{f:02}.conf")), &text).unwrap();
        }
        let e = Stack::read(&dir.join("conf"), "jail")
            .unwrap_err()
            .to_string();
        assert!(e.contains("jail.d/") && e.contains("sections"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_oversized_file_is_refused_unread() {
        let dir = scratch("big");
        let mut text = "[Definition]\nx = ".to_string();
        text.push_str(&"y".repeat(5 << 20));
        std::fs::write(dir.join("conf/filter.d/big.conf"), &text).unwrap();
        let e = Stack::read(&dir.join("conf"), "filter.d/big")
            .unwrap_err()
            .to_string();
        assert!(e.contains("big.conf") && e.contains("larger than"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Thousands of sections that each spend nearly a value's budget.
    #[test]
    fn many_sections_of_costly_values_stop_with_an_error_naming_the_file() {
        let dir = scratch("costly");
        let mut text = "[DEFAULT]\nx0 = \n".to_string();
        for level in 1..=4 {
            let below = format!("%(x{})s", level - 1);
            text.push_str(&format!("x{level} = {}\n", below.repeat(15)));
        }
        for n in 0..1_000 {
            text.push_str(&format!("[j{n}]\nenabled = %(x4)s\n"));
        }
        std::fs::write(dir.join("conf/jail.conf"), &text).unwrap();
        let s = Stack::read(&dir.join("conf"), "jail").unwrap().unwrap();
        let e = (0..1_000)
            .find_map(|n| s.get(&format!("j{n}"), "enabled", &vars()).err())
            .expect("the stack's budget runs out")
            .to_string();
        assert!(
            e.contains("jail.conf:") && e.contains("files read with it"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Python's `ConfigParser` as fail2ban extends it, rule by rule: each case
/// is a set of files and what `get` (a `%(name)s` reference) or `get_ex`
/// (a `<sec/name>` tag) returns. When Debian's fail2ban and its Python are
/// installed, the same table is run through fail2ban's own
/// `SafeConfigParserWithIncludes`, so the expectations are Python's, not
/// ours.
#[cfg(test)]
mod configparser_rules {
    use super::*;

    /// What a query gives: a value, unset (`NoOptionError`,
    /// `NoSectionError`), or an error (fail2ban refuses the file).
    #[derive(Debug, Clone, PartialEq)]
    enum Want {
        Is(&'static str),
        Unset,
        Refused,
    }
    use Want::*;

    struct Case {
        rule: &'static str,
        /// `x.conf` is read (with its includes and `x.local`).
        files: &'static [(&'static str, &'static str)],
        /// (`get` or `get_ex`, section, option, result)
        queries: &'static [(&'static str, &'static str, &'static str, Want)],
    }

    const CASES: &[Case] = &[
        Case {
            rule: "%(x)s reads the same section, then DEFAULT",
            files: &[("x.conf", "[DEFAULT]\nd = dflt\nx = dx\n[s]\nx = sx\na = %(x)s/%(d)s\n[t]\na = %(x)s\n")],
            queries: &[("get", "s", "a", Is("sx/dflt")), ("get", "t", "a", Is("dx"))],
        },
        Case {
            rule: "%% is a percent sign; a lone % and a bad %( are errors",
            files: &[("x.conf", "[s]\na = 50%%\nb = 5%\nc = %(a\nd = %(a)x)s\ne = %()s\nf = %%(a)s\n")],
            queries: &[
                ("get", "s", "a", Is("50%")),
                ("get", "s", "b", Refused),
                ("get", "s", "c", Refused),
                ("get", "s", "d", Refused),
                ("get", "s", "e", Refused),
                ("get", "s", "f", Is("%(a)s")),
            ],
        },
        Case {
            rule: "a missing name and a loop are errors; __name__ is the section",
            files: &[("x.conf", "[s]\na = %(nope)s\nb = %(c)s\nc = %(b)s\nn = %(__name__)s-%(__NAME__)s\n")],
            queries: &[
                ("get", "s", "a", Refused),
                ("get", "s", "b", Refused),
                ("get", "s", "n", Is("s-s")),
                ("get", "s", "nope", Unset),
            ],
        },
        Case {
            rule: "option names are case-insensitive, section names are not",
            files: &[("x.conf", "[S]\nFailRegex = F\nb = %(FAILREGEX)s\n[default]\nx = not-the-default\n")],
            queries: &[
                ("get", "S", "failregex", Is("F")),
                ("get", "S", "FAILREGEX", Is("F")),
                ("get", "S", "b", Is("F")),
                ("get_ex", "S", "default/x", Unset),
                ("get_ex", "S", "S/FailRegex", Is("F")),
            ],
        },
        Case {
            rule: "continuation lines, blank lines kept, comment lines dropped",
            files: &[("x.conf", "[s]\na = one\n    two\n\n    three\n  # comment\n  ; comment\n    four\n\nb : colon ; inline\nc = a;b # hash stays\nd = x\n  ;\n")],
            queries: &[
                ("get", "s", "a", Is("one\ntwo\n\nthree\nfour")),
                ("get", "s", "b", Is("colon")),
                ("get", "s", "c", Is("a;b # hash stays")),
                ("get", "s", "d", Is("x")),
            ],
        },
        Case {
            rule: "%(sec/x)s reads sec, then DEFAULT, and never a missing section",
            files: &[("x.conf", "[DEFAULT]\nonly = from-default\ny = dy\n[s]\na = %(t/o)s\nb = %(t/only)s\nc = %(nosec/only)s\nd = %(t/ref)s\ny = sy\ne = %(T/o)s\nf = %(t/O)s\n[t]\no = O\nref = %(y)s\ny = ty\n")],
            queries: &[
                ("get", "s", "a", Is("O")),
                ("get", "s", "b", Is("from-default")),
                ("get", "s", "c", Refused),
                // The value is read raw and interpolated where it is used.
                ("get", "s", "d", Is("sy")),
                // Python stores the reference as written and looks it up
                // folded: capitals never match.
                ("get", "s", "e", Refused),
                ("get", "s", "f", Refused),
            ],
        },
        Case {
            rule: "%(default/x)s and %(known/x)s",
            files: &[
                ("x.conf", "[DEFAULT]\nd = dflt\n[s]\nx = conf\ny = %(default/d)s\n"),
                ("x.local", "[s]\nx = %(known/x)s+local\nz = %(known/d)s\n"),
            ],
            queries: &[
                ("get", "s", "x", Is("conf+local")),
                ("get", "s", "y", Is("dflt")),
                ("get", "s", "z", Is("dflt")),
            ],
        },
        Case {
            rule: "<sec/x> (get_ex) falls back to DEFAULT as ConfigParser.get does",
            files: &[("x.conf", "[DEFAULT]\nfailregex = ^from default <HOST>$\n_d = dd\n[lt_file]\n_d = fd\n[lt_short]\nfailregex = ^short %(_d)s$\n[Definition]\n_d = defd\nown = mine\n")],
            queries: &[
                ("get_ex", "Definition", "lt_file/failregex", Is("^from default <HOST>$")),
                // Interpolated in the section it is read from.
                ("get_ex", "Definition", "lt_short/failregex", Is("^short dd$")),
                ("get_ex", "Definition", "lt_short/FAILREGEX", Is("^short dd$")),
                ("get_ex", "Definition", "lt_none/failregex", Unset),
                ("get_ex", "Definition", "default/_d", Is("dd")),
                ("get_ex", "Definition", "known/own", Is("mine")),
                ("get_ex", "Definition", "own", Is("mine")),
                ("get_ex", "Definition", "HOST", Unset),
            ],
        },
        Case {
            rule: "<known/x> reads KNOWN/section (with DEFAULT) before the section",
            files: &[
                ("x.conf", "[DEFAULT]\nd = dflt\n[Definition]\nx = conf\n"),
                ("x.local", "[Definition]\nx = local\n"),
            ],
            queries: &[
                ("get_ex", "Definition", "known/x", Is("conf")),
                ("get_ex", "Definition", "known/d", Is("dflt")),
                ("get", "Definition", "x", Is("local")),
            ],
        },
        Case {
            rule: "before/after includes: conf overrides before, after overrides conf, local last",
            files: &[
                ("x.conf", "[INCLUDES]\nbefore = b.conf\nafter = a.conf\n[s]\nv = conf\nw = conf\nu = conf\nk = %(known/u)s\n"),
                ("b.conf", "[s]\nv = before\nonly_b = b\nu = before\n"),
                ("b.local", "[s]\nonly_b = b-local\n"),
                ("a.conf", "[s]\nw = after\n"),
                ("x.local", "[s]\nu = local\n"),
            ],
            queries: &[
                ("get", "s", "v", Is("conf")),
                ("get", "s", "w", Is("after")),
                ("get", "s", "only_b", Is("b-local")),
                ("get", "s", "u", Is("local")),
                ("get", "s", "k", Is("conf")),
                ("get_ex", "s", "known/w", Is("conf")),
            ],
        },
    ];

    fn scratch(n: usize) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("banset-cp-rules-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn ours(dir: &Path, kind: &str, sec: &str, key: &str) -> Want {
        let s = Stack::read(dir, "x").unwrap().unwrap();
        let r = match kind {
            "get" => s.get(sec, key, &Options::new()),
            _ => s.get_ex(sec, key, &Options::new()),
        };
        match r {
            Ok(Some((v, _))) => Is(Box::leak(v.into_boxed_str())),
            Ok(None) => Unset,
            Err(_) => Refused,
        }
    }

    /// fail2ban's own reader, answering each query of `case` as
    /// `ok:<value>`, `unset` or `error` in JSON; `None` when Debian's
    /// fail2ban is not installed.
    fn python(dir: &Path, case: &Case) -> Option<Vec<Want>> {
        const SCRIPT: &str = r#"
import json, sys
from configparser import NoOptionError, NoSectionError
from fail2ban.client.configparserinc import SafeConfigParserWithIncludes
p = SafeConfigParserWithIncludes()
p.read(sys.argv[1] + '/x.conf')
out = []
for kind, sec, key in json.loads(sys.argv[2]):
    try:
        v = p.get(sec, key) if kind == 'get' else p.get_ex(sec, key)
        out.append('ok:' + v)
    except (NoOptionError, NoSectionError):
        out.append('unset')
    except Exception:
        out.append('error')
print(json.dumps(out))
"#;
        let queries: Vec<(&str, &str, &str)> = case
            .queries
            .iter()
            .map(|(k, s, o, _)| (*k, *s, *o))
            .collect();
        let out = std::process::Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(SCRIPT)
            .arg(dir)
            .arg(serde_json::to_string(&queries).unwrap())
            .output()
            .ok()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("No module named 'fail2ban'"),
                "{}: python failed: {err}",
                case.rule
            );
            return None;
        }
        let answers: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        Some(
            answers
                .into_iter()
                .map(|a| match a.strip_prefix("ok:") {
                    Some(v) => Is(Box::leak(v.to_string().into_boxed_str())),
                    None if a == "unset" => Unset,
                    None => Refused,
                })
                .collect(),
        )
    }

    #[test]
    fn section_option_references_fall_back_to_default_as_configparser_does() {
        let mut oracle_ran = false;
        for (n, case) in CASES.iter().enumerate() {
            let dir = scratch(n);
            for (name, text) in case.files {
                std::fs::write(dir.join(name), text).unwrap();
            }
            let py = python(&dir, case);
            for (i, (kind, sec, key, want)) in case.queries.iter().enumerate() {
                let got = ours(&dir, kind, sec, key);
                assert_eq!(&got, want, "{}: {kind} [{sec}] {key}", case.rule);
                if let Some(py) = &py {
                    assert_eq!(&py[i], want, "{}: Python's {kind} [{sec}] {key}", case.rule);
                }
            }
            oracle_ran |= py.is_some();
            std::fs::remove_dir_all(&dir).unwrap();
        }
        if !oracle_ran {
            eprintln!("fail2ban's Python reader is not installed: the table was checked against its expectations only");
        }
    }
}
