//! `banset history TARGET`: every ban and unban of a target the ledger
//! remembers (who, when, why, for how long), kept after the bans are over.

use std::io::Write;

use anyhow::Result;
use banset_core::{format_duration, EventKind, HistoryEvent, Target};
use serde::Serialize;

use crate::args::HistoryArgs;
use crate::context::Context;
use crate::output::{print_json, stdout};

#[derive(Serialize)]
struct History<'a> {
    target: String,
    events: &'a [HistoryEvent],
}

pub fn run(ctx: &mut Context, args: HistoryArgs) -> Result<Option<i32>> {
    let target = Target::parse(&args.target)?;
    let events = ctx.fw.ledger.read()?.history(&target, args.limit)?;
    if args.json {
        print_json(&History {
            target: target.to_string(),
            events: &events,
        })?;
        return Ok(None);
    }
    let mut out = stdout();
    if events.is_empty() {
        writeln!(out, "no history of {target} (kept for 90 days by default)")?;
    }
    for e in &events {
        writeln!(out, "{}", describe(e))?;
    }
    Ok(None)
}

/// One line: `UNIX-TIME ban f2b-sshd for 7d by jail sshd: reason`.
fn describe(e: &HistoryEvent) -> String {
    let what = match e.kind {
        EventKind::Ban => match e.length() {
            Some(secs) => format!(
                "ban    {} for {}",
                e.set,
                format_duration(secs.max(0) as u64)
            ),
            None => format!("ban    {} permanent", e.set),
        },
        EventKind::Unban => format!("unban  {}", e.set),
        EventKind::Flush => format!("flush  {}", e.set),
        EventKind::Destroy => format!("destroy {}", e.set),
        EventKind::Expire => format!("expire {}", e.set),
    };
    let when = utc_time(e.at);
    match (&e.reason, e.kind) {
        (Some(reason), EventKind::Ban) => format!("{when}  {what} by {}: {reason}", e.by),
        _ => format!("{when}  {what} by {}", e.by),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` without a date library: days since the epoch
/// to a civil date (Howard Hinnant's algorithm).
pub(crate) fn utc_time(at: i64) -> String {
    let days = at.div_euclid(86_400);
    let secs = at.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_time;

    #[test]
    fn utc_dates_read_as_calendars_do() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
