//! fail2ban's configuration, read as it is: `jail.conf`, `jail.local`,
//! `jail.d/*`, and `filter.d/*` with their `.local` overrides, mapped onto
//! banset's jails, filters and sets.
//!
//! The reader follows fail2ban's own semantics (Python `ConfigParser` plus
//! fail2ban's includes, `known/` values and `<tag>` substitution) so a
//! configuration that works with fail2ban means the same thing here.
//! Whatever banset cannot honour is reported once, with file and line, as
//! a [`Notice`]; nothing is dropped silently.

pub mod compat;
/// fail2ban's date templates and `datepattern`; they live below the
/// matcher, which uses them (the crate-private `datefind`).
pub mod date {
    pub use crate::datefind::*;
}
mod filter;
mod ini;
mod jail;
mod merge;
mod reader;
mod steer;

pub use crate::pyregex::translate as translate_regex;
pub use filter::MaxlinesError;
pub use filter::{is_filter_file, load_filter, load_filter_adding, load_filter_file, LoadedFilter};
pub use ini::Origin;
pub use jail::{load, parse_time, Fail2banConfig, Fail2banJail, SetWish, TimeError};
pub use merge::{merge, Merged};

/// Why fail2ban's configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A syntax or semantic problem at a place in a file.
    #[error("{origin}: {message}")]
    Syntax {
        /// Where.
        origin: Origin,
        /// What, on one line.
        message: String,
    },
    /// A problem without a single place.
    #[error("{0}")]
    Other(String),
    /// A failregex line a caller added to a filter (a banset.toml jail's).
    #[error("failregex {}: {message}", index + 1)]
    Added {
        /// 0-based, among the added lines.
        index: usize,
        /// What is wrong, on one line.
        message: String,
    },
}

impl Error {
    fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn at(origin: &Origin, message: String) -> Error {
        Error::Syntax {
            origin: origin.clone(),
            message,
        }
    }
}

/// Something in fail2ban's configuration banset reads differently or not
/// at all, reported once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `file:line` of the key, or the file, or empty.
    pub origin: String,
    /// The jail it concerns, if any.
    pub jail: Option<String>,
    /// What banset does instead, on one line.
    pub message: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.origin.is_empty() {
            write!(f, "{}: ", self.origin)?;
        }
        if let Some(j) = &self.jail {
            write!(f, "jail {j}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The notices as lines to show, one per difference: a notice that many
/// jails share (every jail inherits `[DEFAULT]`'s action) is one line
/// naming the jails, not one line per jail.
pub fn notice_lines(notices: &[Notice]) -> Vec<String> {
    const SHOWN: usize = 6;
    let mut groups: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for n in notices {
        let slot = groups
            .iter_mut()
            .find(|(o, m, _)| *o == n.origin && *m == n.message);
        match (slot, &n.jail) {
            (Some((_, _, jails)), Some(j)) if !jails.is_empty() => jails.push(j),
            _ => groups.push((
                &n.origin,
                &n.message,
                n.jail.iter().map(|j| j.as_str()).collect(),
            )),
        }
    }
    groups
        .into_iter()
        .map(|(origin, message, jails)| {
            let origin = if origin.is_empty() {
                String::new()
            } else {
                format!("{origin}: ")
            };
            let jails = match jails.len() {
                0 => String::new(),
                1 => format!("jail {}: ", jails[0]),
                n if n <= SHOWN => format!("jails {}: ", jails.join(", ")),
                n => format!(
                    "{n} jails ({}, and {} more): ",
                    jails[..SHOWN].join(", "),
                    n - SHOWN
                ),
            };
            format!("{origin}{jails}{message}")
        })
        .collect()
}

/// Splits fail2ban's `name[key=value, key2="v, 2"][key3=...]` into the name
/// and its options.
pub fn extract_options(text: &str) -> Result<(String, Vec<(String, String)>), OptionsError> {
    let text = text.trim();
    let err = |problem| OptionsError {
        text: text.to_string(),
        problem,
    };
    let (name, mut rest) = match text.find('[') {
        Some(p) => (&text[..p], &text[p..]),
        None => (text, ""),
    };
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(err(OptionsProblem::NoName));
    }
    let mut opts = Vec::new();
    while let Some(r) = rest.strip_prefix('[') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(']') {
                rest = r.trim_start();
                break;
            }
            let key_len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
                .unwrap_or(rest.len());
            let key = &rest[..key_len];
            let after = rest[key_len..].trim_start();
            let Some(after) = after.strip_prefix('=').filter(|_| !key.is_empty()) else {
                return Err(err(OptionsProblem::NotKeyValue(short(rest))));
            };
            let (value, tail) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &after[1..];
                    let end = body
                        .find(q)
                        .ok_or_else(|| err(OptionsProblem::UnterminatedQuote))?;
                    (&body[..end], &body[end + 1..])
                }
                _ => {
                    let end = after.find([',', ']']).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            opts.push((key.to_string(), value.trim().to_string()));
            let tail = tail.trim_start();
            rest = match tail.strip_prefix(',') {
                Some(t) => t,
                None if tail.starts_with(']') => tail,
                None if tail.is_empty() => return Err(err(OptionsProblem::MissingBracket)),
                None => return Err(err(OptionsProblem::Unexpected(short(tail)))),
            };
        }
    }
    if !rest.trim().is_empty() {
        return Err(err(OptionsProblem::AfterBracket(short(rest))));
    }
    Ok((name, opts))
}

/// fail2ban's `name[key=value]` ([`extract_options`]) that cannot be
/// read: the text as written, and what is wrong at which place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: {problem}")]
pub struct OptionsError {
    /// The whole value, trimmed.
    pub text: String,
    /// What is wrong.
    pub problem: OptionsProblem,
}

/// What is wrong in a `name[key=value]` value. The texts quoted are the
/// first 25 characters where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsProblem {
    /// `[a=1]`.
    #[error("no name before the options")]
    NoName,
    /// `x[=1]`, `x[mode]`.
    #[error("expected key=value at {0:?}")]
    NotKeyValue(String),
    /// `x[a="1]`.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// `x[a=1`.
    #[error("missing ]")]
    MissingBracket,
    /// `x[a="1" b=2]`.
    #[error("unexpected {0:?}")]
    Unexpected(String),
    /// `x[a=1] y`.
    #[error("unexpected {0:?} after ]")]
    AfterBracket(String),
}

fn short(s: &str) -> String {
    s.chars().take(25).collect()
}

/// fail2ban's `substituteRecursiveTags`: replaces `<tag>` in every value by
/// the value of `tag` (or what `extra` finds for it), until nothing changes.
/// Unknown tags stay (they are regex tags like `<HOST>`). A tag that refers
/// to itself, or is replaced more than 25 times, is an error.
pub fn substitute_tags(
    tags: &mut [(String, String)],
    ignore: &[String],
    extra: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<(), TagError> {
    let mut counts: std::collections::HashMap<(usize, String), usize> = Default::default();
    let mut done = vec![false; tags.len()];
    // Bytes written by all replacements: tags that each name the next one
    // twice double at every level, and a configuration must not make this
    // loop run for minutes or fill memory.
    let mut work = 0usize;
    const MAX_WORK: usize = 64 * reader::MAX_EXPANSION;
    loop {
        let mut again = false;
        for i in 0..tags.len() {
            if done[i] || ignore.contains(&tags[i].0) {
                continue;
            }
            let tag = tags[i].0.clone();
            let original = tags[i].1.clone();
            let mut value = original.clone();
            let mut from = 0;
            while let Some((start, end)) = find_tag(&value, from) {
                let rtag = value[start + 1..end - 1].to_string();
                if ignore.contains(&rtag) {
                    from = end;
                    continue;
                }
                let n = counts.entry((i, rtag.clone())).or_insert(0);
                if rtag == tag || *n > 25 {
                    return Err(TagError::Cycle { tag, through: rtag });
                }
                let repl = tags
                    .iter()
                    .find(|(k, _)| *k == rtag)
                    .map(|(_, v)| v.clone())
                    .or_else(|| extra(&rtag));
                let Some(repl) = repl else {
                    from = end;
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                work = work.saturating_add(value.len());
                if value.len() > reader::MAX_EXPANSION || work > MAX_WORK {
                    return Err(TagError::TooLarge { tag, through: rtag });
                }
                *counts.get_mut(&(i, rtag)).expect("inserted above") += 1;
                from = start;
            }
            if value != original {
                if find_tag(&value, 0).is_some() {
                    again = true;
                }
                tags[i].1 = value.clone();
            }
            if !value.contains('<') {
                done[i] = true;
            }
        }
        if !again {
            return Ok(());
        }
    }
}

/// A `<tag>` that [`substitute_tags`] cannot resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// The tag names itself, directly or through others.
    #[error("<{tag}> refers to itself through <{through}> and cannot be resolved")]
    Cycle {
        /// The tag being resolved.
        tag: String,
        /// The tag whose replacement led back.
        through: String,
    },
    /// Replacing grew the value past the bound.
    #[error("<{tag}> grows past {} KiB when <{through}> is substituted (tags that each name another several times?)", reader::MAX_EXPANSION >> 10)]
    TooLarge {
        /// The tag being resolved.
        tag: String,
        /// The tag whose replacement made it too large.
        through: String,
    },
}

/// The next `<name>` (name without space, `<` or `>`) at or after `from`.
fn find_tag(s: &str, from: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && !matches!(b[j], b' ' | b'<' | b'>') {
                j += 1;
            }
            if j < b.len() && b[j] == b'>' && j > i + 1 {
                return Some((i, j + 1));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_in_brackets() {
        assert_eq!(extract_options("sshd").unwrap(), ("sshd".into(), vec![]));
        let (n, o) =
            extract_options(r#"iptables[port="smtp,465", protocol=tcp, name='x y'][chain=INPUT]"#)
                .unwrap();
        assert_eq!(n, "iptables");
        assert_eq!(
            o,
            vec![
                ("port".into(), "smtp,465".into()),
                ("protocol".into(), "tcp".into()),
                ("name".into(), "x y".into()),
                ("chain".into(), "INPUT".into())
            ]
        );
        assert_eq!(
            extract_options("sshd[mode=aggressive]").unwrap().1,
            vec![("mode".into(), "aggressive".into())]
        );
        assert!(extract_options("x[mode").is_err());
        assert!(extract_options("x[=1]").is_err());
        assert!(extract_options("[a=1]").is_err());
    }

    #[test]
    fn notices_many_jails_share_are_one_line() {
        let n = |jail: Option<&str>, message: &str| Notice {
            origin: "jail.conf:263".into(),
            jail: jail.map(str::to_string),
            message: message.into(),
        };
        let mut all = vec![n(None, "general")];
        for j in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            all.push(n(Some(j), "same action"));
        }
        all.push(n(Some("a"), "another"));
        all.push(n(Some("x"), "one jail"));
        all.push(n(Some("y"), "one jail"));
        assert_eq!(
            notice_lines(&all),
            [
                "jail.conf:263: general",
                "jail.conf:263: 8 jails (a, b, c, d, e, f, and 2 more): same action",
                "jail.conf:263: jail a: another",
                "jail.conf:263: jails x, y: one jail",
            ]
        );
    }

    #[test]
    fn tags_substitute_recursively() {
        let mut t = vec![
            (
                "failregex".to_string(),
                "^a <mdre-<mode>> <HOST>".to_string(),
            ),
            ("mode".into(), "aggressive".into()),
            ("mdre-aggressive".into(), "<x>!".into()),
            ("x".into(), "X".into()),
        ];
        substitute_tags(&mut t, &[], &mut |k| (k == "lt/y").then(|| "Y".into())).unwrap();
        assert_eq!(t[0].1, "^a X! <HOST>");
        let mut t = vec![
            ("a".to_string(), "<b>".to_string()),
            ("b".into(), "<a>".into()),
        ];
        assert!(substitute_tags(&mut t, &[], &mut |_| None).is_err());
        let mut t = vec![("a".to_string(), "<lt/y> <F-USER>".to_string())];
        substitute_tags(&mut t, &[], &mut |k| (k == "lt/y").then(|| "Y".into())).unwrap();
        assert_eq!(t[0].1, "Y <F-USER>");
    }
}
