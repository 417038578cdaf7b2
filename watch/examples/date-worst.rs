//! The worst time fail2ban's date templates take on one line: every
//! `datepattern` of a fail2ban configuration's filters (and the default
//! templates, for filters without one) against hostile lines of
//! `MAX_LINE_LEN` bytes that hold no date. Used by `bench/date-worst`.
//!
//!     cargo run --release -p banset-watch --example date-worst -- [/etc/fail2ban]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use banset_watch::fail2ban::date::DateFinder;
use banset_watch::fail2ban::load_filter;
use banset_watch::{DateRule, MAX_LINE_LEN};

/// Lines that look almost like dates everywhere, so a backtracking search
/// starts (and fails) at every position.
fn hostile_lines() -> Vec<(&'static str, Vec<u8>)> {
    let fill = |unit: &str| -> Vec<u8> {
        let mut v = b"x ".to_vec();
        while v.len() + unit.len() <= MAX_LINE_LEN {
            v.extend_from_slice(unit.as_bytes());
        }
        v
    };
    vec![
        ("letters", fill("a")),
        ("digits", fill("1")),
        ("spaces", fill(" ")),
        ("month names", fill("Jan ")),
        ("day and month", fill("Mon Jan 01 ")),
        ("almost syslog", fill("Jan 01 12:00:")),
        ("almost ISO", fill("2026-11-21 12:")),
        ("almost apache", fill("21/Nov/2026:12:00:")),
        ("clock runs", fill("12:00:0")),
        ("number runs", fill("1234567890.")),
        ("mixed", fill("Jan 2026-11 12:00 21/Nov/ @0123 ")),
        ("non-ASCII", fill("é2026-11-21 12:")),
    ]
}

fn main() {
    let config = PathBuf::from(std::env::args().nth(1).unwrap_or("/etc/fail2ban".into()));
    let mut patterns: BTreeSet<Option<String>> = BTreeSet::new();
    patterns.insert(None);
    if let Ok(dir) = std::fs::read_dir(config.join("filter.d")) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(name) = name.strip_suffix(".conf") else {
                continue;
            };
            if let Ok(f) = load_filter(&config, name, &[], &Default::default(), None) {
                if let DateRule::Fail2ban(p) = f.def.date {
                    patterns.insert(p);
                }
            }
        }
    }
    let lines = hostile_lines();
    let mut worst = (Duration::ZERO, String::new(), "");
    println!("| datepattern | worst line | worst time per line |");
    println!("|---|---|---|");
    for p in &patterns {
        let finder = DateFinder::new(p.as_deref()).expect("stock datepattern compiles");
        let mut here = (Duration::ZERO, "");
        for (kind, line) in &lines {
            // Best of 3: the line's own cost, not the machine's noise.
            let t = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(finder.strip(line));
                    t.elapsed()
                })
                .min()
                .unwrap_or_default();
            if t > here.0 {
                here = (t, kind);
            }
        }
        let name = p
            .as_deref()
            .unwrap_or("(default templates)")
            .replace('\n', " / ");
        println!(
            "| `{name}` | {} | {:.3} ms |",
            here.1,
            here.0.as_secs_f64() * 1e3
        );
        if here.0 > worst.0 {
            worst = (here.0, name, here.1);
        }
    }
    println!(
        "\nworst: {:.3} ms per {MAX_LINE_LEN}-byte line ({}, {} patterns tried)",
        worst.0.as_secs_f64() * 1e3,
        worst.1,
        patterns.len()
    );
}
