//! The one error a feed gives: where (file, and line when there is one)
//! and why.

use std::fmt;

/// A feed that cannot be used. Shown as `FILE: line N: REASON` (or
/// `FILE: REASON` for the file as a whole); the reason quotes at most
/// [`QUOTE_LEN`] bytes of the input, escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FeedError {
    /// The file as the user named it (`standard input` for `-`).
    pub source_name: String,
    /// The 1-based line, when one line is at fault.
    pub line: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// The most bytes of a hostile line an error message repeats.
pub const QUOTE_LEN: usize = 80;

impl FeedError {
    pub(crate) fn at(source_name: &str, line: u64, reason: impl Into<String>) -> FeedError {
        FeedError {
            source_name: source_name.to_string(),
            line: Some(line),
            reason: reason.into(),
        }
    }

    pub(crate) fn file(source_name: &str, reason: impl Into<String>) -> FeedError {
        FeedError {
            source_name: source_name.to_string(),
            line: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.source_name, self.reason),
            None => write!(f, "{}: {}", self.source_name, self.reason),
        }
    }
}

/// `text` cut to [`QUOTE_LEN`] bytes (on a character boundary) and
/// escaped, for a message.
pub(crate) fn quote(text: &str) -> String {
    let mut end = text.len().min(QUOTE_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "..." } else { "" };
    format!("{:?}{cut}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_is_bounded_and_escaped() {
        assert_eq!(quote("a\tb"), r#""a\tb""#);
        let long = "é".repeat(100);
        let q = quote(&long);
        assert!(q.len() < QUOTE_LEN + 8 && q.ends_with("..."), "{q}");
    }

    #[test]
    fn shows_file_and_line() {
        assert_eq!(FeedError::at("f", 3, "bad").to_string(), "f: line 3: bad");
        assert_eq!(FeedError::file("f", "empty").to_string(), "f: empty");
    }
}
