//! `logpath` patterns, read as fail2ban reads them: every line is a
//! `glob.glob` pattern (`/var/log/mail*.log`; a plain path matches itself
//! when it exists), a jail whose patterns match no file is refused, and a
//! pattern that matches nothing while others do is only noted.
//!
//! fail2ban expands the patterns once, at start; banset also looks again
//! while it runs ([`discover`]), so a log that appears later (a new
//! virtual host's, a service installed after the daemon started) is
//! followed without a reload.
//!
//! The start-up check (`watch --check`, start and reload run the same
//! [`resolve`]) and the daemon's later looks use this one expansion.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::settings::{JailSettings, SourceKey};

/// Paths one pattern may match (at every step of its expansion): each is a
/// file followed by its own thread, and `/*/*/*/*` must not make thousands.
pub const MAX_MATCHES: usize = 1000;

/// Why a jail's `logpath` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogpathError {
    /// No pattern of the jail matches a file.
    #[error("jail {jail}: no log file matches logpath {patterns} (fail2ban refuses such a jail too; create the file or fix the path)")]
    NoMatch {
        /// The jail.
        jail: String,
        /// Its patterns, space-separated.
        patterns: String,
    },
    /// A pattern matches too many paths.
    #[error("jail {jail}: logpath {pattern} matches more than {MAX_MATCHES} paths")]
    TooMany {
        /// The jail.
        jail: String,
        /// The pattern.
        pattern: String,
    },
}

/// Whether `pattern` has glob characters (Python's `glob.has_magic`).
pub fn has_magic(pattern: &Path) -> bool {
    pattern
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The existing non-directory paths `pattern` matches now, sorted; `None`
/// when more than [`MAX_MATCHES`] paths turn up at any step.
pub fn expand(pattern: &Path) -> Option<Vec<PathBuf>> {
    let usable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| !m.is_dir());
    if !has_magic(pattern) {
        return Some(if usable(pattern) {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let text = pattern.to_string_lossy();
    let mut current = vec![PathBuf::from("/")];
    for comp in text.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if comp.contains(['*', '?', '[']) {
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut found: Vec<PathBuf> = Vec::new();
                for e in rd.flatten() {
                    let n = e.file_name();
                    let n = n.as_encoded_bytes();
                    // Python's glob: a wildcard never matches a leading dot.
                    if !n.starts_with(b".") && fnmatch(comp.as_bytes(), n) {
                        if found.len() + next.len() >= MAX_MATCHES {
                            return None;
                        }
                        found.push(e.path());
                    }
                }
                found.sort();
                next.extend(found);
            } else {
                next.push(dir.join(comp));
            }
        }
        current = next;
    }
    current.retain(|p| usable(p));
    Some(current)
}

/// Resolves every jail's `logpath` patterns into the files they match
/// now, which become its file sources (its journal source, if any, stays).
/// A jail whose patterns match nothing is refused unless it also reads the
/// journal; a pattern that matches nothing while others do is returned as
/// a notice (the daemon looks for it again while it runs).
pub fn resolve(jails: &mut [JailSettings]) -> Result<Vec<String>, LogpathError> {
    let mut notices = Vec::new();
    for jail in jails.iter_mut() {
        if jail.logpath.is_empty() {
            continue;
        }
        jail.sources.retain(|s| !matches!(s, SourceKey::File(_)));
        let mut files = BTreeSet::new();
        for pattern in &jail.logpath {
            let found = expand(pattern).ok_or_else(|| LogpathError::TooMany {
                jail: jail.name.clone(),
                pattern: pattern.display().to_string(),
            })?;
            if found.is_empty() {
                notices.push(format!(
                    "jail {}: logpath {}: no file matches now; banset looks again every keeper_interval",
                    jail.name,
                    pattern.display()
                ));
            }
            files.extend(found);
        }
        if files.is_empty() && jail.sources.is_empty() {
            return Err(LogpathError::NoMatch {
                jail: jail.name.clone(),
                patterns: jail
                    .logpath
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        let mut sources: Vec<SourceKey> = files.into_iter().map(SourceKey::File).collect();
        sources.append(&mut jail.sources);
        jail.sources = sources;
    }
    Ok(notices)
}

/// Looks at every jail's patterns again: files that match now and are not
/// the jail's sources yet are added to it, and returned (each once) so the
/// daemon starts following them. A pattern that matches too many paths
/// adds nothing and is returned in the second list.
pub fn discover(jails: &mut [JailSettings]) -> (Vec<SourceKey>, Vec<LogpathError>) {
    let mut new = BTreeSet::new();
    let mut errors = Vec::new();
    let known: BTreeSet<SourceKey> = jails
        .iter()
        .flat_map(|j| j.sources.iter().cloned())
        .collect();
    for jail in jails.iter_mut() {
        for pattern in &jail.logpath {
            let Some(found) = expand(pattern) else {
                errors.push(LogpathError::TooMany {
                    jail: jail.name.clone(),
                    pattern: pattern.display().to_string(),
                });
                continue;
            };
            for file in found {
                let key = SourceKey::File(file);
                if !jail.sources.contains(&key) {
                    jail.sources.push(key.clone());
                    if !known.contains(&key) {
                        new.insert(key);
                    }
                }
            }
        }
    }
    (new.into_iter().collect(), errors)
}

/// Shell-style matching of one path component (`*`, `?`, `[...]`,
/// `[!...]`). Every item but `*` takes one character, so on a mismatch it
/// is enough to let the latest `*` take one more character and go on from
/// there: the work is at most pattern × name, where trying every split for
/// every `*` was exponential (`logpath = /var/log/*a*a*a*a*a*a*a*a*b` in a
/// directory of long names held a reload for hours).
pub(crate) fn fnmatch(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // (pattern index after the latest `*`, name index it resumes at).
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if p.get(pi) == Some(&b'*') {
            pi += 1;
            star = Some((pi, si));
            continue;
        }
        if let Some(len) = one_char(p, pi, s[si]) {
            pi += len;
            si += 1;
            continue;
        }
        let Some((after, from)) = star else {
            return false;
        };
        pi = after;
        si = from + 1;
        star = Some((after, from + 1));
    }
    p[pi.min(p.len())..].iter().all(|&b| b == b'*')
}

/// Whether the one-character item of `p` at `pi` (`?`, `[...]` or a
/// literal) takes `c`; its length in `p` if so.
fn one_char(p: &[u8], pi: usize, c: u8) -> Option<usize> {
    match *p.get(pi)? {
        b'?' => Some(1),
        b'[' => {
            let Some(end) = p[pi..]
                .iter()
                .skip(1)
                .position(|&b| b == b']')
                .map(|e| e + 1)
            else {
                // An unclosed `[` is a literal.
                return (c == b'[').then_some(1);
            };
            let (neg, set) = match &p[pi + 1..pi + end] {
                [b'!', rest @ ..] => (true, rest),
                set => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            (hit != neg).then_some(end + 1)
        }
        a => (a == c).then_some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WatchSection;

    /// Jails from banset.toml text (`{dir}` stands for `dir`).
    fn jails(text: &str, dir: &Path) -> Vec<JailSettings> {
        let text = text.replace("{dir}", &dir.display().to_string());
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            jails: std::collections::BTreeMap<String, crate::config::JailConfig>,
        }
        let f: File = toml::from_str(&text).unwrap();
        WatchSection {
            jails: f.jails,
            recidive: None,
            watch: Default::default(),
        }
        .validate(&text, "banset.toml")
        .unwrap()
        .jails
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("banset-logpath-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files(j: &JailSettings) -> Vec<String> {
        j.sources
            .iter()
            .map(|s| match s {
                SourceKey::File(p) => p.file_name().unwrap().to_string_lossy().to_string(),
                SourceKey::Journal(_) => "journal".into(),
            })
            .collect()
    }

    #[test]
    fn logpath_globs_expand_as_fail2ban_does_and_a_jail_matching_nothing_is_refused() {
        let dir = scratch("globs");
        for f in [
            "mail.log",
            "mail-b.log",
            ".mail-hidden.log",
            "mail.log.1",
            "other.log",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        std::fs::create_dir_all(dir.join("mail-dir.log")).unwrap();
        // A string or a list; globs and plain paths; one pattern matching
        // nothing next to others is only noted.
        let mut js = jails(
            "[jails.a]\nfilter = \"sshd\"\nlogpath = \"{dir}/mail*.log\"\n\
             [jails.b]\nfilter = \"sshd\"\nlogpath = [\"{dir}/other.log\", \"{dir}/later-*.log\", \"{dir}/none.log\"]\n",
            &dir,
        );
        let notices = resolve(&mut js).unwrap();
        assert_eq!(files(&js[0]), ["mail-b.log", "mail.log"]);
        assert_eq!(files(&js[1]), ["other.log"]);
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(notices[0].contains("later-*.log") && notices[1].contains("none.log"));
        // Nothing matches: refused, naming the jail and its patterns.
        let mut js = jails(
            "[jails.c]\nfilter = \"sshd\"\nlogpath = [\"{dir}/none-*.log\", \"{dir}/none.log\"]\n",
            &dir,
        );
        let e = resolve(&mut js).unwrap_err().to_string();
        assert!(
            e.starts_with("jail c: no log file matches logpath ")
                && e.contains("none-*.log")
                && e.contains("none.log "),
            "{e}"
        );
        // ... unless the jail also reads the journal.
        let mut js = jails(
            "[jails.d]\nfilter = \"sshd\"\nlogpath = \"{dir}/none.log\"\njournalmatch = [\"_COMM=sshd\"]\n",
            &dir,
        );
        resolve(&mut js).unwrap();
        assert_eq!(files(&js[0]), ["journal"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_glob_matching_thousands_of_files_is_refused() {
        let dir = scratch("many");
        for n in 0..=MAX_MATCHES {
            std::fs::write(dir.join(format!("{n}.log")), "").unwrap();
        }
        let mut js = jails(
            "[jails.a]\nfilter = \"sshd\"\nlogpath = \"{dir}/*.log\"\n",
            &dir,
        );
        let e = resolve(&mut js).unwrap_err().to_string();
        assert!(e.contains("more than 1000 paths"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_glob_matches_are_discovered_once_and_given_to_every_jail_that_matches() {
        let dir = scratch("discover");
        std::fs::write(dir.join("mail.log"), "").unwrap();
        let mut js = jails(
            "[jails.a]\nfilter = \"sshd\"\nlogpath = \"{dir}/mail*.log\"\n\
             [jails.b]\nfilter = \"sshd\"\nlogpath = [\"{dir}/*.log\"]\n\
             [jails.c]\nfilter = \"sshd\"\nlogpath = [\"{dir}/mail.log\", \"{dir}/gone.log\"]\n",
            &dir,
        );
        resolve(&mut js).unwrap();
        assert_eq!(discover(&mut js), (vec![], vec![]));
        std::fs::write(dir.join("mail-new.log"), "").unwrap();
        std::fs::write(dir.join("gone.log"), "").unwrap();
        let (new, errors) = discover(&mut js);
        assert!(errors.is_empty());
        let new: Vec<String> = new.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            new,
            [
                dir.join("gone.log").display().to_string(),
                dir.join("mail-new.log").display().to_string()
            ]
        );
        assert_eq!(files(&js[0]), ["mail.log", "mail-new.log"]);
        assert_eq!(files(&js[1]), ["mail.log", "gone.log", "mail-new.log"]);
        assert_eq!(files(&js[2]), ["mail.log", "gone.log"]);
        assert_eq!(discover(&mut js), (vec![], vec![]));
        // A followed file that vanishes stays a source (it waits).
        std::fs::remove_file(dir.join("gone.log")).unwrap();
        assert_eq!(discover(&mut js), (vec![], vec![]));
        assert_eq!(files(&js[2]), ["mail.log", "gone.log"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
