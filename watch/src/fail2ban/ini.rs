//! One fail2ban configuration file, read the way Python's `ConfigParser`
//! reads it (fail2ban builds on it): `[section]` headers, `key = value` or
//! `key: value`, values continued on indented lines (failregex lists),
//! full-line comments starting with `#` or `;`, inline comments after ` ;`,
//! option names folded to lower case, a duplicate option or section in one
//! file an error. Every value remembers its file and line, so a later
//! complaint can point at it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use super::error::{Error, Origin};

/// Sections of one stack (every file merged).
pub(crate) const MAX_SECTIONS: usize = 10_000;

/// A raw (not yet interpolated) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The text; continuation lines joined with `\n`.
    pub text: String,
    /// Where it was written.
    pub origin: Origin,
}

/// A section's options, in file order.
pub type Section = Vec<(String, Value)>;

/// A parsed file.
#[derive(Debug, Clone, Default)]
pub struct IniFile {
    /// `[DEFAULT]`.
    pub defaults: Section,
    /// Other sections, in file order.
    pub sections: Vec<(String, Section)>,
}

impl IniFile {
    /// The section `name`, if the file has it.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }
}

/// Largest configuration file read, in bytes. fail2ban's largest
/// (`jail.conf`) is about 30 KiB.
const MAX_FILE_SIZE: u64 = 4 << 20;

/// Reads and parses `real`, naming it `shown` in origins and errors.
pub fn read_config(real: &Path, shown: &Path) -> Result<IniFile, Error> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(real)
        .and_then(|f| f.take(MAX_FILE_SIZE + 1).read_to_end(&mut text))
        .map_err(|e| Error::io(shown, e))?;
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(Error::Other(format!(
            "{}: larger than {} MiB, which no fail2ban configuration file is",
            shown.display(),
            MAX_FILE_SIZE >> 20
        )));
    }
    // fail2ban reads its files as UTF-8; a stray byte is not worth refusing
    // a whole file over, and it cannot change the structure.
    let text = String::from_utf8_lossy(&text);
    parse(&text, &shown.display().to_string())
}

/// At most this many characters of a line are quoted in an error.
const QUOTED: usize = 60;

/// `text` quoted for an error, cut to [`QUOTED`] characters.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Parses `text`, naming it `file` in origins and errors.
pub fn parse(text: &str, file: &str) -> Result<IniFile, Error> {
    let file: Arc<str> = Arc::from(file);
    let mut out = IniFile::default();
    // The current section: `None` before the first header, `Some(None)`
    // for DEFAULT, `Some(Some(k))` for `out.sections[k]`.
    let mut cur: Option<Option<usize>> = None;
    // The option being continued: its index in the current section.
    let mut option: Option<usize> = None;
    let mut indent_level = 0usize;
    // Names seen, so a duplicate is found in one look, not by a scan that
    // makes a file of many sections quadratic.
    let mut section_names: HashSet<String> = HashSet::new();
    let mut option_names: HashSet<(Option<usize>, String)> = HashSet::new();
    let err = |line: usize, message: String| Error::Syntax {
        origin: Origin {
            file: file.clone(),
            line,
        },
        message,
    };
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let stripped = raw.trim();
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        let content = if is_comment {
            ""
        } else {
            inline_comment_cut(raw).trim()
        };
        if content.is_empty() {
            // Python keeps empty lines inside a value (a list may have blank
            // lines) but not comment lines; neither ends the value.
            if let (false, Some(idx), Some(o)) = (is_comment, cur, option) {
                push_line(&mut out, idx, o, "");
            }
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        if let (Some(idx), Some(o)) = (cur, option) {
            if indent > indent_level {
                push_line(&mut out, idx, o, content);
                continue;
            }
        }
        indent_level = indent;
        if let Some(rest) = content.strip_prefix('[') {
            if let Some(end) = rest.rfind(']') {
                let name = &rest[..end];
                if name.is_empty() {
                    return Err(err(
                        lineno,
                        format!("bad section header {}", quoted(content)),
                    ));
                }
                option = None;
                if name == "DEFAULT" {
                    cur = Some(None);
                } else {
                    if !section_names.insert(name.to_string()) {
                        return Err(err(
                            lineno,
                            format!("section [{}] appears twice in this file", quoted(name)),
                        ));
                    }
                    if out.sections.len() >= MAX_SECTIONS {
                        return Err(err(
                            lineno,
                            format!("more than {MAX_SECTIONS} sections in one file"),
                        ));
                    }
                    out.sections.push((name.to_string(), Vec::new()));
                    cur = Some(Some(out.sections.len() - 1));
                }
                continue;
            }
        }
        let Some(idx) = cur else {
            return Err(err(
                lineno,
                format!("{} is outside any [section]", quoted(content)),
            ));
        };
        let Some(pos) = content.find(['=', ':']) else {
            return Err(err(
                lineno,
                format!(
                    "{} is neither a [section], a key = value nor a continuation",
                    quoted(content)
                ),
            ));
        };
        let name = content[..pos].trim_end().to_lowercase();
        let value = content[pos + 1..].trim_start();
        if name.is_empty() {
            return Err(err(lineno, format!("{} has no key", quoted(content))));
        }
        if !option_names.insert((idx, name.clone())) {
            return Err(err(
                lineno,
                format!(
                    "key {} appears twice in the same section of this file",
                    quoted(&name)
                ),
            ));
        }
        let sec = section_mut(&mut out, idx);
        sec.push((
            name,
            Value {
                text: value.to_string(),
                origin: Origin {
                    file: file.clone(),
                    line: lineno,
                },
            },
        ));
        option = Some(sec.len() - 1);
    }
    // Python joins the lines and strips the end: trailing blank lines go.
    for sec in std::iter::once(&mut out.defaults).chain(out.sections.iter_mut().map(|(_, s)| s)) {
        for (_, v) in sec.iter_mut() {
            let trimmed = v.text.trim_end().len();
            v.text.truncate(trimmed);
        }
    }
    Ok(out)
}

fn section_mut(out: &mut IniFile, idx: Option<usize>) -> &mut Section {
    match idx {
        None => &mut out.defaults,
        Some(k) => &mut out.sections[k].1,
    }
}

fn push_line(out: &mut IniFile, idx: Option<usize>, option: usize, line: &str) {
    let v = &mut section_mut(out, idx)[option].1;
    v.text.push('\n');
    v.text.push_str(line);
}

/// Cuts an inline comment: `;` at the start or after white space (Python's
/// `inline_comment_prefixes = ";"`, which fail2ban sets). `#` is not an
/// inline comment: regexes are full of it.
fn inline_comment_cut(line: &str) -> &str {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b';' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}
