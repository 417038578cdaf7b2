//! fail2ban's option syntax: `name[key=value, ...]` and `<tag>`
//! substitution, shared by the filter and jail readers.

use super::reader;

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
