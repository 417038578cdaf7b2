//! Reading a feed line by line with every bound the input controls: the
//! length of a line and the number of lines. `--file /dev/zero` or an
//! endless stream of newlines ends with an error, not with memory or time
//! running out.

use std::io::{BufRead, Read};

use super::error::FeedError;

/// The longest line, newline excluded. A delegated-statistics record is
/// under 100 bytes, a list line one prefix and a comment.
pub const MAX_LINE_LEN: usize = 4096;

/// The most lines a feed may have. The largest registry file (RIPE NCC's
/// extended statistics) has about 250,000 lines.
pub const MAX_LINES: u64 = 4_000_000;

/// A bounded line reader: UTF-8, `\r\n` or `\n`, numbered from 1.
pub struct Lines<R> {
    reader: R,
    source_name: String,
    number: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// Reads `reader`, naming it `source_name` in errors.
    pub fn new(reader: R, source_name: &str) -> Lines<R> {
        Lines {
            reader,
            source_name: source_name.to_string(),
            number: 0,
            buf: Vec::with_capacity(128),
        }
    }

    /// The number of the line [`Lines::next_line`] returned last.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// An error at the current line.
    pub fn error(&self, reason: impl Into<String>) -> FeedError {
        FeedError::at(&self.source_name, self.number, reason)
    }

    /// The next line without its line ending; `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<&str>, FeedError> {
        self.buf.clear();
        // One byte past the bound tells a line that is too long from one
        // exactly as long as allowed.
        let read = (&mut self.reader)
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| FeedError::file(&self.source_name, format!("cannot read: {e}")))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.number > MAX_LINES {
            return Err(self.error(format!("more than {MAX_LINES} lines")));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.buf.len() > MAX_LINE_LEN {
            return Err(self.error(format!("longer than {MAX_LINE_LEN} bytes")));
        }
        match std::str::from_utf8(&self.buf) {
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(FeedError::at(
                &self.source_name,
                self.number,
                "not UTF-8 text",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<String>, FeedError> {
        let mut lines = Lines::new(input, "f");
        let mut out = Vec::new();
        while let Some(l) = lines.next_line()? {
            out.push(l.to_string());
        }
        Ok(out)
    }

    #[test]
    fn strips_crlf_and_numbers_lines() {
        assert_eq!(all(b"a\r\nb\n\nc").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            all(b"a\n\xff\n").unwrap_err().to_string(),
            "f: line 2: not UTF-8 text"
        );
    }

    #[test]
    fn an_endless_line_is_refused_after_one_bounded_read() {
        let endless = std::io::BufReader::new(std::io::repeat(b'0'));
        let mut lines = Lines::new(endless, "/dev/zero");
        assert_eq!(
            lines.next_line().unwrap_err().to_string(),
            "/dev/zero: line 1: longer than 4096 bytes"
        );
        let mut at_bound = vec![b'x'; MAX_LINE_LEN];
        at_bound.push(b'\n');
        assert_eq!(all(&at_bound).unwrap().len(), 1);
    }

    #[test]
    fn endless_newlines_are_refused_at_the_line_bound() {
        let endless = std::io::BufReader::new(std::io::repeat(b'\n'));
        let mut lines = Lines::new(endless, "s");
        let e = loop {
            match lines.next_line() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("an endless input ended"),
                Err(e) => break e,
            }
        };
        assert_eq!(e.line, Some(MAX_LINES + 1));
    }
}
