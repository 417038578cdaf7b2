//! Splits the date off a log line and reads it.
//!
//! Two forms cover syslog files: the traditional `Nov 21 12:00:00 ` (local
//! time, no year) and ISO 8601 `2026-11-21T12:00:00.123456+01:00 ` (rsyslog's
//! high-precision format, systemd's short-iso). fail2ban's filters match the
//! line with the date removed, and so do banset's.

/// The time context a date is read in.
#[derive(Debug, Clone, Copy)]
pub struct DateContext {
    /// Now, Unix seconds: fixes the missing year of traditional dates.
    pub now: i64,
    /// The zone of dates written without one.
    pub zone: Zone,
}

/// The zone a date without its own offset is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The system's local zone (`TZ`, `/etc/localtime`), asked for the
    /// offset in force at each date: an offset taken once would put every
    /// date an hour off after a daylight-saving change until a restart.
    Local,
    /// A fixed offset, seconds east of UTC.
    Fixed(i64),
}

impl Zone {
    /// Seconds east of UTC in force at Unix time `t`.
    pub fn offset_at(self, t: i64) -> i64 {
        match self {
            Zone::Fixed(o) => o,
            Zone::Local => local_offset_at(t),
        }
    }

    /// The Unix time of a wall-clock time `wall` (its fields read as if they
    /// were UTC): the offset in force at that wall time, found in two steps
    /// (guess with the offset at `wall` read as UTC, then correct with the
    /// offset at the guess). A time of the hour repeated in autumn reads as
    /// its later occurrence (the log does not say which); one of the hour
    /// skipped in spring, which a clock in that zone never shows, reads
    /// with the offset before the change.
    pub fn unix_of_wall(self, wall: i64) -> i64 {
        match self {
            Zone::Fixed(o) => wall - o,
            Zone::Local => {
                let first = wall - local_offset_at(wall);
                let second = wall - local_offset_at(first);
                if local_offset_at(second) == wall - second {
                    second
                } else {
                    first
                }
            }
        }
    }
}

/// localtime_r's offset of the local zone at `t`; 0 (UTC) if the zone
/// cannot say.
fn local_offset_at(t: i64) -> i64 {
    // time_t is 64 bits wherever banset runs; a date beyond a 32-bit one
    // would only be off in its zone.
    let t = t as libc::time_t;
    // SAFETY: localtime_r writes into a zeroed tm we own; `t` is a valid
    // time_t. It reads the zone tzset() loaded, safe across threads.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

/// The line split at its date: where the rest starts, and the date's
/// bytes, read only when needed ([`parse_date`]).
pub fn split_date(line: &[u8]) -> (&[u8], &[u8]) {
    let len = if is_traditional(line) {
        15
    } else if is_iso(line) {
        line.iter().position(|&b| b == b' ').unwrap_or(line.len())
    } else {
        return (&[], line);
    };
    let rest = &line[len..];
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    (&line[..len], rest)
}

fn is_traditional(l: &[u8]) -> bool {
    // `Mmm dd HH:MM:SS`, day space-padded.
    l.len() >= 16
        && l[0].is_ascii_uppercase()
        && l[1].is_ascii_lowercase()
        && l[2].is_ascii_lowercase()
        && l[3] == b' '
        && (l[4] == b' ' || l[4].is_ascii_digit())
        && l[5].is_ascii_digit()
        && l[6] == b' '
        && l[9] == b':'
        && l[12] == b':'
        && l[15] == b' '
}

fn is_iso(l: &[u8]) -> bool {
    l.len() >= 19
        && l[..4].iter().all(u8::is_ascii_digit)
        && l[4] == b'-'
        && l[7] == b'-'
        && l[10] == b'T'
        && l[13] == b':'
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Reads a date [`split_date`] found, as Unix seconds. `None` if it is not
/// a valid date after all.
pub fn parse_date(date: &[u8], ctx: &DateContext) -> Option<i64> {
    if date.len() == 15 && is_traditional(&[date, b" "].concat()) {
        let month = MONTHS.iter().position(|m| &date[..3] == *m)? as u32 + 1;
        let day = num(&[if date[4] == b' ' { b'0' } else { date[4] }, date[5]])?;
        let (h, mi, s) = (num(&date[7..9])?, num(&date[10..12])?, num(&date[13..15])?);
        let local_now = ctx.now + ctx.zone.offset_at(ctx.now);
        let year = civil_from_days(local_now.div_euclid(86_400)).0;
        let at = |year| unix_time(year, month, day, h, mi, s).map(|t| ctx.zone.unix_of_wall(t));
        let t = at(year)?;
        // A date more than a day ahead is from last year (December lines
        // read in January).
        return if t > ctx.now + 86_400 {
            at(year - 1)
        } else {
            Some(t)
        };
    }
    if !is_iso(date) {
        return None;
    }
    let year = i64::from(num(&date[..4])?);
    let (month, day) = (num(&date[5..7])?, num(&date[8..10])?);
    let (h, mi, s) = (
        num(&date[11..13])?,
        num(&date[14..16])?,
        num(&date[17..19])?,
    );
    if date[16] != b':' {
        return None;
    }
    let mut rest = &date[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        rest = &frac[digits..];
    }
    let wall = unix_time(year, month, day, h, mi, s)?;
    let offset = match rest {
        [] => return Some(ctx.zone.unix_of_wall(wall)),
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), hh, hh2, b':', mm, mm2]
        | [sign @ (b'+' | b'-'), hh, hh2, mm, mm2] => {
            let o = i64::from(num(&[*hh, *hh2])?) * 3600 + i64::from(num(&[*mm, *mm2])?) * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    Some(wall - offset)
}

fn num(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn unix_time(year: i64, month: u32, day: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil (year, month, day) of a day number; inverse of the above.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-21T12:00:00Z
    const NOW: i64 = 1_795_262_400;

    fn ctx(offset: i64) -> DateContext {
        DateContext {
            now: NOW,
            zone: Zone::Fixed(offset),
        }
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in [-1000, 0, 11_017, 20_000, 20_778] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(unix_time(2026, 11, 21, 12, 0, 0), Some(NOW));
    }

    #[test]
    fn splits_traditional_and_iso_dates() {
        let (d, rest) = split_date(b"Nov 21 11:59:00 host sshd[1]: x");
        assert_eq!(rest, b"host sshd[1]: x");
        assert_eq!(parse_date(d, &ctx(0)), Some(NOW - 60));
        assert_eq!(parse_date(d, &ctx(3600)), Some(NOW - 60 - 3600));
        let (d, rest) = split_date(b"Nov  1 00:00:00 host x");
        assert_eq!(rest, b"host x");
        assert_eq!(parse_date(d, &ctx(0)), unix_time(2026, 11, 1, 0, 0, 0));
        let (d, rest) = split_date(b"2026-11-21T12:00:00.123456+01:00 host sshd[1]: x");
        assert_eq!(rest, b"host sshd[1]: x");
        assert_eq!(parse_date(d, &ctx(0)), Some(NOW - 3600));
        let (d, _) = split_date(b"2026-11-21T11:00:00Z h x");
        assert_eq!(parse_date(d, &ctx(7200)), Some(NOW - 3600));
        let (d, _) = split_date(b"2026-11-21T11:00:00 h x");
        assert_eq!(parse_date(d, &ctx(-3600)), Some(NOW));
    }

    #[test]
    fn a_december_date_read_in_january_is_last_year() {
        let jan = unix_time(2027, 1, 1, 0, 10, 0).unwrap();
        let c = DateContext {
            now: jan,
            zone: Zone::Fixed(0),
        };
        let (d, _) = split_date(b"Dec 31 23:59:00 h x");
        assert_eq!(parse_date(d, &c), unix_time(2026, 12, 31, 23, 59, 0));
    }

    #[test]
    fn lines_without_a_date_are_left_whole() {
        let (d, rest) = split_date(b"sshd[1]: Failed password");
        assert!(d.is_empty());
        assert_eq!(rest, b"sshd[1]: Failed password");
        assert_eq!(parse_date(b"Xyz 99 99:99:99", &ctx(0)), None);
        assert_eq!(parse_date(b"2026-13-01T00:00:00", &ctx(0)), None);
    }
}
