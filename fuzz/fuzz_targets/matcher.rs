//! The matcher (banset-watch) with arbitrary filters, and the built-in
//! filters, against arbitrary lines.
//!
//! Input: filter lines, a blank line, then log lines. A filter line is a
//! failregex, or `ignore:REGEX`, `pref:REGEX` (fail2ban's prefregex),
//! `maxlines:N`, `date:PATTERN` (fail2ban's datepattern).

#![no_main]

use std::sync::OnceLock;

use banset_watch::logtime::split_date;
use banset_watch::{builtin_filter, DateRule, FilterDef, Matcher, Pattern, BUILTIN_FILTERS};
use libfuzzer_sys::fuzz_target;

fn builtins() -> &'static Matcher {
    static MATCHER: OnceLock<Matcher> = OnceLock::new();
    MATCHER.get_or_init(|| {
        let defs: Vec<FilterDef> = BUILTIN_FILTERS
            .iter()
            .map(|n| builtin_filter(n).expect("a listed built-in exists"))
            .collect();
        Matcher::new(&defs).expect("the built-in filters compile")
    })
}

fn filter_of(spec: &str) -> FilterDef {
    let mut def = FilterDef::new("fuzz", Vec::new(), Vec::new());
    for line in spec.lines() {
        if let Some(re) = line.strip_prefix("ignore:") {
            def.ignoreregex.push(Pattern::new(re));
        } else if let Some(re) = line.strip_prefix("pref:") {
            def.prefregex = Some(Pattern::new(re));
        } else if let Some(n) = line.strip_prefix("maxlines:") {
            // The loader caps it at MAX_MAXLINES; so does this.
            def.maxlines = n.trim().parse().unwrap_or(1).clamp(1, 50);
        } else if let Some(p) = line.strip_prefix("date:") {
            def.date = DateRule::Fail2ban(Some(p.to_string()).filter(|p| !p.is_empty()));
        } else {
            def.failregex.push(Pattern::new(line));
        }
    }
    def
}

fuzz_target!(|data: &[u8]| {
    let (spec, log) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &b""[..]),
    };
    let custom = std::str::from_utf8(spec)
        .ok()
        .map(filter_of)
        .filter(|d| !d.failregex.is_empty())
        .and_then(|d| Matcher::new(&[d]).ok());
    let mut hits = Vec::new();
    for line in log.split(|&b| b == b'\n') {
        let (_, rest) = split_date(line);
        for m in [Some(builtins()), custom.as_ref()].into_iter().flatten() {
            hits.clear();
            m.scan_line(line, rest, &mut hits);
            for h in &hits {
                assert!(h.filter < m.filter_names().len());
                assert!(h.regex < m.failregex_count(h.filter));
            }
        }
    }
});
