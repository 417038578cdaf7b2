//! `Timeout`: how long a ban lasts.
//!
//! Accepts what admins and fail2ban write: whole seconds (`604800`), fail2ban's
//! occasional float rendering (`2629800.0`, fail2ban/fail2ban#3056), units
//! (`7d`, `1h30m`, `2w`), and `-1`, `never`, `permanent` for a ban without end.
//! Zero is refused because every kernel reads a zero timeout as "never": a
//! typo would silently become a permanent ban.

use std::fmt;
use std::time::Duration;

use crate::target::truncate_for_error;

/// Longest finite timeout accepted: 100 years, far beyond any real ban, small
/// enough that deadline arithmetic in seconds and kernel milliseconds never
/// overflows.
pub const MAX_TIMEOUT_SECS: u64 = 100 * 365 * 86_400;

/// How long a ban lasts: whole seconds, or without end.
///
/// [`Timeout::parse`] accepts what admins and fail2ban write. `Display`
/// renders the largest exact units (`7d`, `1h30m`, `never`), which parse back
/// to the same value; serde writes seconds, `-1` for [`Timeout::Never`], as
/// fail2ban and scripts expect, and reads either form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timeout {
    /// A ban of this many seconds (always at least 1).
    Secs(u64),
    /// A ban without end (fail2ban's `bantime = -1`).
    Never,
}

/// Why a string is not a [`Timeout`]. The message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timeout {input:?}: {reason}")]
pub struct ParseTimeoutError {
    /// The rejected input, cut to 80 bytes so that hostile input cannot
    /// become an oversized log line.
    pub input: String,
    /// What is wrong with it, and what to write instead.
    pub reason: &'static str,
}

impl Timeout {
    /// Parses whole seconds (`604800`), fail2ban's float rendering
    /// (`2629800.0`, rounded to the nearest second), units `s m h d w` with every
    /// number carrying one (`7d`, `1h30m`), and `-1`, `never` or `permanent` for
    /// [`Timeout::Never`].
    ///
    /// Zero (also `0.4`, which rounds to it) is refused, because every kernel
    /// reads a zero timeout as "never" and a typo would become a permanent ban;
    /// so are other negative numbers, values above [`MAX_TIMEOUT_SECS`], and
    /// inputs longer than 32 bytes.
    pub fn parse(input: &str) -> Result<Timeout, ParseTimeoutError> {
        let err = |reason| ParseTimeoutError {
            input: truncate_for_error(input),
            reason,
        };
        match input {
            "" => return Err(err("empty")),
            "-1" | "never" | "permanent" => return Ok(Timeout::Never),
            _ => {}
        }
        if input.len() > 32 {
            return Err(err("too long"));
        }
        if input.starts_with('-') {
            return Err(err(
                "negative; use -1, never or permanent for a ban without end",
            ));
        }
        let secs = if input.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            parse_plain_seconds(input).ok_or_else(|| err("not a number of seconds"))?
        } else {
            parse_with_units(input)
                .ok_or_else(|| err("use seconds or units s, m, h, d, w (e.g. 604800, 7d, 1h30m)"))?
        };
        if secs == 0 {
            return Err(err(
                "zero is refused: kernels treat 0 as no timeout; use never for a permanent ban",
            ));
        }
        if secs > MAX_TIMEOUT_SECS {
            return Err(err("longer than 100 years; use never for a permanent ban"));
        }
        Ok(Timeout::Secs(secs))
    }

    /// A finite timeout of `secs` seconds; `None` for 0 (kernels read it as
    /// "never") or for more than [`MAX_TIMEOUT_SECS`].
    pub fn from_secs(secs: u64) -> Option<Timeout> {
        (1..=MAX_TIMEOUT_SECS)
            .contains(&secs)
            .then_some(Timeout::Secs(secs))
    }

    /// The duration, or `None` for a permanent ban.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Timeout::Secs(s) => Some(Duration::from_secs(*s)),
            Timeout::Never => None,
        }
    }

    /// The length in seconds, or `None` for a permanent ban.
    pub fn secs(&self) -> Option<u64> {
        match self {
            Timeout::Secs(s) => Some(*s),
            Timeout::Never => None,
        }
    }
}

/// `123` or `123.0`: a fractional part is rounded to the nearest second.
fn parse_plain_seconds(input: &str) -> Option<u64> {
    let (int, frac) = match input.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (input, None),
    };
    if int.is_empty() || frac.is_some_and(|f| f.is_empty() || f.contains('.')) {
        return None;
    }
    let mut secs: u64 = int.parse().ok()?;
    if frac.is_some_and(|f| f.as_bytes()[0] >= b'5') {
        secs = secs.checked_add(1)?;
    }
    Some(secs)
}

/// `1h30m`, `7d`, `2w`, `90s`: each number must carry a unit.
fn parse_with_units(input: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in input.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if number.is_some() {
        return None;
    }
    Some(total)
}

impl std::str::FromStr for Timeout {
    type Err = ParseTimeoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timeout::parse(s)
    }
}

impl fmt::Display for Timeout {
    /// Renders in the largest exact units (`7d`, `1h30m`, `never`), which
    /// parse back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeout::Never => f.write_str("never"),
            Timeout::Secs(s) => f.write_str(&format_duration(*s)),
        }
    }
}

/// `90061` -> `1d1h1m1s`. Used for timeouts and remaining times.
pub fn format_duration(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&(secs / unit).to_string());
            out.push(name);
            secs %= unit;
        }
    }
    out
}

impl serde::Serialize for Timeout {
    /// Seconds, or -1 for never: what fail2ban and scripts expect.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Timeout::Secs(v) => s.serialize_i64(*v as i64),
            Timeout::Never => s.serialize_i64(-1),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Timeout {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(i) => i.to_string(),
            Raw::Str(s) => s,
        };
        Timeout::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_admins_write() {
        let cases = [
            ("604800", Timeout::Secs(604_800)),
            ("2629800.0", Timeout::Secs(2_629_800)),
            ("1.6", Timeout::Secs(2)),
            ("7d", Timeout::Secs(604_800)),
            ("1w", Timeout::Secs(604_800)),
            ("1h30m", Timeout::Secs(5_400)),
            ("90s", Timeout::Secs(90)),
            ("10m", Timeout::Secs(600)),
            ("-1", Timeout::Never),
            ("never", Timeout::Never),
            ("permanent", Timeout::Never),
        ];
        for (input, want) in cases {
            assert_eq!(Timeout::parse(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn refuses_zero_negative_and_garbage() {
        for bad in [
            "",
            "0",
            "0s",
            "0.0",
            "0.4",
            "-2",
            "-1346",
            "abc",
            "7x",
            "1h30",
            "h",
            "1..2",
            "1.",
            ".5",
            "99999999999999999999",
            "3650000d",
            "7 d",
            "7d;",
            "1e5",
        ] {
            let e = Timeout::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["7d", "1h30m", "never", "1d1h1m1s", "45s"] {
            assert_eq!(Timeout::parse(s).unwrap().to_string(), s);
        }
        for secs in [1u64, 59, 60, 3_601, 604_800, 2_147_483, MAX_TIMEOUT_SECS] {
            let t = Timeout::Secs(secs);
            assert_eq!(Timeout::parse(&t.to_string()).unwrap(), t);
        }
    }
}
