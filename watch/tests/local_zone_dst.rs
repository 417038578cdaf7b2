//! Zone-less syslog dates are read with the local offset in force at each
//! date, so a daylight-saving change does not put every later date an hour
//! off until a restart. Its own test binary: it sets `TZ` for the process.

use banset_watch::pipeline::{LinePipeline, RawEntry};
use banset_watch::{FilterDef, Pattern};

extern "C" {
    fn tzset();
}

/// Unix time of a UTC date (days from civil, Howard Hinnant's algorithm).
fn utc(y: i64, m: i64, d: i64, h: i64, mi: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60
}

#[test]
fn syslog_dates_across_a_daylight_saving_change_take_the_offset_of_their_date() {
    // Central Europe as a POSIX rule (no tzdata needed): CET, CEST from
    // the last Sunday of March 02:00 to the last Sunday of October 03:00.
    // In 2026 those are March 29 and October 25.
    std::env::set_var("TZ", "CET-1CEST,M3.5.0,M10.5.0/3");
    // SAFETY: tzset reads TZ; this test binary runs one test, one thread.
    unsafe { tzset() };
    let p = LinePipeline::new(&[FilterDef::new(
        "t",
        vec![Pattern::new(r"^h x: fail from <HOST>$")],
        Vec::new(),
    )])
    .unwrap();
    let at = |line: &str, now: i64| {
        let mut out = Vec::new();
        p.process(RawEntry::Line(line.as_bytes()), now, &mut out);
        out[0].at
    };
    // Read in April (summer time): a March line before the change is CET.
    let april = utc(2026, 4, 2, 12, 0);
    assert_eq!(
        at("Mar 28 12:00:00 h x: fail from 192.0.2.1", april),
        utc(2026, 3, 28, 11, 0)
    );
    assert_eq!(
        at("Mar 30 12:00:00 h x: fail from 192.0.2.1", april),
        utc(2026, 3, 30, 10, 0)
    );
    // The hours around the spring change itself.
    assert_eq!(
        at("Mar 29 01:59:00 h x: fail from 192.0.2.1", april),
        utc(2026, 3, 29, 0, 59)
    );
    assert_eq!(
        at("Mar 29 03:00:00 h x: fail from 192.0.2.1", april),
        utc(2026, 3, 29, 1, 0)
    );
    // Read in November (winter time): an October line before the change
    // is CEST, one after is CET.
    let november = utc(2026, 11, 2, 12, 0);
    assert_eq!(
        at("Oct 24 12:00:00 h x: fail from 192.0.2.1", november),
        utc(2026, 10, 24, 10, 0)
    );
    assert_eq!(
        at("Oct 26 12:00:00 h x: fail from 192.0.2.1", november),
        utc(2026, 10, 26, 11, 0)
    );
    // ISO dates without a zone follow the same rule; with one, their own.
    assert_eq!(
        at("2026-10-24T12:00:00 h x: fail from 192.0.2.1", november),
        utc(2026, 10, 24, 10, 0)
    );
    assert_eq!(
        at("2026-10-24T12:00:00Z h x: fail from 192.0.2.1", november),
        utc(2026, 10, 24, 12, 0)
    );
}
