//! What every layer of the wire format shares, below both the attribute
//! TLVs and the message framing: 4-byte alignment, and the two errors
//! encoding and decoding end in. Its own module so that `attrs` and
//! `message` both depend on it instead of on each other.

use std::fmt;

/// Netlink aligns messages and attributes to 4 bytes.
pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Building a message failed: a bug in the caller's chunking or a name
/// that slipped past validation, never user input or a kernel answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError(pub &'static str);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for EncodeError {}

/// A reply from the kernel did not parse. Replies are untrusted input as far
/// as banset is concerned: a malformed one is an error, never a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    /// An error saying what did not parse.
    pub fn new(what: impl Into<String>) -> DecodeError {
        DecodeError(what.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed netlink reply: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}
