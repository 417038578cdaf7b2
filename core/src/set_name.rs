//! `SetName`: the one name an admin gives a ban set, valid on every backend.
//!
//! Each backend derives its kernel object names from it (nftables `NAME_v4`,
//! ipset `NAME` and `NAME6`, pf table `NAME`), so the rule is the tightest of
//! them: ipset and pf allow 31 bytes, and ipset's v6 twin needs one more byte
//! for its `6`, hence 30. The first character is a letter or digit, so a name
//! can never be mistaken for an option when it is passed to iptables or pfctl
//! as an argument.

use std::fmt;

use crate::target::truncate_for_error;

/// Longest accepted name, in bytes: ipset and pf allow 31, and ipset's IPv6
/// twin appends a `6` to the name.
pub const MAX_SET_NAME_LEN: usize = 30;

/// The name of a logical ban set, valid unchanged on every backend.
///
/// 1 to [`MAX_SET_NAME_LEN`] bytes of `A-Z a-z 0-9 _ . -`, starting with a
/// letter or digit (so it can never be taken for an option when passed to
/// iptables or pfctl), and not `all` (reserved by ipfw). Each backend derives
/// its kernel object names from it (nftables `NAME_v4`, ipset `NAME` and
/// `NAME6`, pf table `NAME`). Serde reads and writes it as a string, and
/// validates on the way in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetName(String);

/// Why a string is not a [`SetName`]. The message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid set name {input:?}: {reason}")]
pub struct ParseSetNameError {
    /// The rejected input, cut to 80 bytes so that hostile input cannot
    /// become an oversized log line.
    pub input: String,
    /// What is wrong with it, in words meant for the admin.
    pub reason: String,
}

impl SetName {
    /// Validates a set name. Fails when `input` is empty, longer than
    /// [`MAX_SET_NAME_LEN`] bytes, starts with something other than a letter or
    /// digit, holds a character outside `A-Z a-z 0-9 _ . -`, or is `all`.
    pub fn new(input: &str) -> Result<SetName, ParseSetNameError> {
        let err = |reason: String| ParseSetNameError {
            input: truncate_for_error(input),
            reason,
        };
        if input.is_empty() {
            return Err(err("empty".into()));
        }
        if input.len() > MAX_SET_NAME_LEN {
            return Err(err(format!(
                "{} bytes, at most {MAX_SET_NAME_LEN} allowed (ipset and pf limit names to 31 bytes, and the IPv6 twin adds a '6')",
                input.len()
            )));
        }
        if !input.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(err("must start with a letter or digit".into()));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(err(format!(
                "character {c:?} not allowed (use A-Z a-z 0-9 _ . -)"
            )));
        }
        if input == "all" {
            return Err(err("\"all\" is reserved by ipfw".into()));
        }
        Ok(SetName(input.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SetName {
    type Err = ParseSetNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SetName::new(s)
    }
}

impl fmt::Display for SetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SetName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for SetName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SetName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SetName::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_fail2ban_style_names() {
        for ok in [
            "f2b-postfix",
            "f2b-postfix-sasl",
            "sshd",
            "a",
            "x.y_z-1",
            &"a".repeat(30),
        ] {
            assert_eq!(SetName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_bad_names_quoting_them() {
        for bad in [
            "",
            "-x",
            ".x",
            "a b",
            "a/b",
            "a;b",
            "ä",
            "all",
            &"a".repeat(31),
        ] {
            let e = SetName::new(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
