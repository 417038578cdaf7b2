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

use super::ini::{self, IniFile, Origin, Value};
use super::Error;

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
}

/// Python's interpolation depth limit.
const MAX_DEPTH: usize = 10;

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
        let mut files = Vec::new();
        for r in expand_local(&roots) {
            includes(&r, &[], &mut files)?;
        }
        let mut stack = Stack::default();
        for f in &files {
            stack.merge(&ini::read(f)?);
        }
        stack.files = files;
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
    pub fn raw<'a>(&'a self, section: &str, key: &str, vars: &'a Options) -> Option<&'a Value> {
        vars.get(key)
            .or_else(|| self.sections.get(section).and_then(|s| s.get(key)))
            .or_else(|| self.defaults.get(key))
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
        let text = self.interpolate(&v.text, section, vars, &v.origin, 1)?;
        Ok(Some((text, v.origin.clone())))
    }

    /// fail2ban's `get_ex`: `sec/key` reads another section (`known/key`
    /// the overridden value, then the section's own), then plain `get`.
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
                let found = if c == "DEFAULT" {
                    self.defaults.get(opt)
                } else {
                    self.sections.get(&c).and_then(|s| s.get(opt))
                };
                if let Some(v) = found {
                    let text = self.interpolate(&v.text, &c, &Options::new(), &v.origin, 1)?;
                    return Ok(Some((text, v.origin.clone())));
                }
            }
        }
        self.get(section, key, vars)
    }

    fn lookup<'a>(&'a self, section: &str, name: &str, vars: &'a Options) -> Option<&'a Value> {
        if let Some(v) = self.raw(section, name, vars) {
            return Some(v);
        }
        let (sec, opt) = split_section_key(name)?;
        match sec.to_lowercase().as_str() {
            "default" => self.defaults.get(opt),
            "known" => self
                .sections
                .get(&format!("KNOWN/{section}"))
                .and_then(|s| s.get(opt))
                .or_else(|| self.defaults.get(opt)),
            _ => self
                .sections
                .get(sec)
                .and_then(|s| s.get(opt))
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
                let Some(close) = t.find(")s") else {
                    return Err(Error::at(
                        origin,
                        format!("bad interpolation {:?}: %( without )s", &rest[p..]),
                    ));
                };
                let name = t[..close].to_lowercase();
                let value = if name == "__name__" {
                    section.to_string()
                } else {
                    let v = self.lookup(section, &name, vars).ok_or_else(|| {
                        Error::at(
                            origin,
                            format!("%({name})s is not defined (section [{section}])"),
                        )
                    })?;
                    self.interpolate(&v.text, section, vars, origin, depth + 1)?
                };
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

/// Appends `file` with its includes, in merge order, to `out`.
fn includes(file: &Path, seen: &[PathBuf], out: &mut Vec<PathBuf>) -> Result<(), Error> {
    if !file.is_file() {
        // fail2ban skips an include that does not exist.
        return Ok(());
    }
    let parsed = ini::read(file)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let list = |key: &str| -> Result<Vec<PathBuf>, Error> {
        let Some(sec) = parsed.section("INCLUDES") else {
            return Ok(Vec::new());
        };
        let Some((_, v)) = sec.iter().find(|(k, _)| k == key) else {
            return Ok(Vec::new());
        };
        let stack = Stack::from_parsed(&parsed);
        let text = stack.interpolate(&v.text, "INCLUDES", &Options::new(), &v.origin, 1)?;
        Ok(text
            .split('\n')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| dir.join(s))
            .collect())
    };
    let mut seen2 = seen.to_vec();
    seen2.push(file.to_path_buf());
    for before in list("before")? {
        if seen.contains(&before) || before == file {
            continue;
        }
        for f in expand_local(&[before]) {
            includes(&f, &seen2, out)?;
        }
    }
    out.push(file.to_path_buf());
    for after in list("after")? {
        if seen.contains(&after) || after == file {
            continue;
        }
        for f in expand_local(&[after]) {
            includes(&f, &seen2, out)?;
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
}
