//! Log dates (banset-watch): the fast syslog/ISO split and read
//! (`logtime`), fail2ban's default date templates, and a `datepattern`
//! taken from the input. Input: 8 bytes of clock (now and the zone
//! offset, both kept in realistic ranges), then a datepattern line, then
//! log lines.

#![no_main]

use std::sync::OnceLock;

use banset_watch::fail2ban::date::DateFinder;
use banset_watch::logtime::{parse_date, split_date, DateContext, Zone};
use libfuzzer_sys::fuzz_target;

fn defaults() -> &'static DateFinder {
    static FINDER: OnceLock<DateFinder> = OnceLock::new();
    FINDER.get_or_init(|| DateFinder::new(None).expect("the default templates compile"))
}

fuzz_target!(|data: &[u8]| {
    let Some((clock, text)) = data.split_first_chunk::<8>() else {
        return;
    };
    let raw = u64::from_le_bytes(*clock);
    let ctx = DateContext {
        // 1970 .. ~2514, and offsets of at most 14 hours: what a clock
        // and a time zone can say.
        now: (raw >> 30) as i64 % (1 << 34),
        zone: Zone::Fixed(
            (raw & 0xffff) as i64 % (14 * 3600 + 1) * if raw & 1 << 16 != 0 { -1 } else { 1 },
        ),
    };
    let mut lines = text.split(|&b| b == b'\n');
    let pattern = lines.next().unwrap_or_default();
    let custom = std::str::from_utf8(pattern)
        .ok()
        .filter(|p| !p.is_empty())
        .and_then(|p| DateFinder::new(Some(p)).ok());
    for line in lines {
        let (date, rest) = split_date(line);
        assert!(rest.len() <= line.len());
        if !date.is_empty() {
            let _ = parse_date(date, &ctx);
        }
        for finder in [Some(defaults()), custom.as_ref()].into_iter().flatten() {
            let stripped = finder.strip(line);
            assert!(stripped.len() <= line.len());
            if let Ok(text) = std::str::from_utf8(line) {
                if let Some(span) = finder.find(text) {
                    assert!(span.start <= span.end && span.end <= text.len());
                }
            }
        }
    }
});
