//! The errors and notices of reading fail2ban's configuration, and where
//! in it they are: the vocabulary every reader below `fail2ban` shares,
//! apart from `mod.rs` so that none of them imports its parent.

use std::sync::Arc;

/// Where a value was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: Arc<str>,
    /// 1-based line of the option's first line.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

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
    pub(super) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(super) fn at(origin: &Origin, message: String) -> Error {
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
