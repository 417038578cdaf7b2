//! Client-side checks mirroring the schema's CHECK constraints, so a bad
//! value is refused with a message naming it before any round trip, and a
//! batch is never half-sent.

use crate::error::FleetError;
use crate::types::{Publish, Status};

pub(crate) const MAX_JAIL: usize = 64;
pub(crate) const MAX_REASON: usize = 256;
/// A host name becomes part of a role name (`banset.NAME`).
pub(crate) const MAX_HOST: usize = 40;

fn invalid(what: &'static str, value: &str, reason: &'static str) -> FleetError {
    FleetError::Invalid {
        what,
        value: value.chars().take(80).collect(),
        reason,
    }
}

pub(crate) fn set(name: &str) -> Result<(), FleetError> {
    let ok = !name.is_empty()
        && name.len() <= 30
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "set",
            name,
            "1-30 of A-Z a-z 0-9 _ . -, starting with a letter or digit",
        ))
    }
}

pub(crate) fn target(text: &str) -> Result<(), FleetError> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let ok = addr.parse::<std::net::IpAddr>().is_ok()
        && len
            .is_none_or(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(invalid("target", text, "an IP address or ADDRESS/LENGTH"))
    }
}

pub(crate) fn publish(change: &Publish) -> Result<(), FleetError> {
    set(&change.set)?;
    target(&change.target)?;
    if let Some(jail) = &change.jail {
        if jail.len() > MAX_JAIL {
            return Err(invalid("jail", jail, "longer than 64 bytes"));
        }
    }
    if let Some(reason) = &change.reason {
        if reason.len() > MAX_REASON {
            return Err(invalid("reason", reason, "longer than 256 bytes"));
        }
    }
    if let Status::Banned {
        remaining: Some(left),
    } = change.status
    {
        if left.is_zero() {
            return Err(invalid("ban", &change.target, "has no time left"));
        }
    }
    Ok(())
}

/// Host names: lower case, so `Mail1` and `mail1` cannot be two hosts.
pub(crate) fn host(name: &str) -> Result<(), FleetError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_HOST
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "host name",
            name,
            "1-40 of a-z 0-9 _ -, starting with a letter or digit",
        ))
    }
}

/// A database name for `ensure_database`: plain, so it can sit unquoted in
/// a DSN.
pub(crate) fn database(name: &str) -> Result<(), FleetError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "database",
            name,
            "1-63 of A-Z a-z 0-9 _, starting with a letter",
        ))
    }
}
