//! The worst time fail2ban's own filters with look-arounds,
//! back-references and conditionals (sshd, postfix, dovecot, in each mode)
//! take on one hostile line, through the pipeline the daemon runs. Lines
//! are built to make a backtracking search work hard: each start of a
//! failregex, then one fragment repeated (` from `, spaces, `[`, invalid
//! bytes...; `banset_watch::hostile`, the lines the bounded-work test
//! counts) to the longest line banset scans (`MAX_LINE_LEN`, 16 KiB)
//! and to 64 KiB (longer than that: not scanned). Used by
//! `bench/filter-worst`.
//!
//!     cargo run --release -p banset-watch --example filter-worst -- [/etc/fail2ban]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use banset_watch::fail2ban::load_filter;
use banset_watch::hostile::{line, FILLS, STARTS, STOCK_FILTERS};
use banset_watch::pipeline::{LinePipeline, RawEntry};
use banset_watch::MAX_LINE_LEN;

fn main() {
    let config = PathBuf::from(std::env::args().nth(1).unwrap_or("/etc/fail2ban".into()));
    let now = 1_795_262_400;
    println!("| filter | line length | worst line (start, fill) | worst time per line |");
    println!("|---|---|---|---|");
    for (name, mode, prefix) in STOCK_FILTERS {
        let args = [("mode".to_string(), mode.to_string())];
        let filter = load_filter(&config, name, &args, &Default::default(), None)
            .unwrap_or_else(|e| panic!("{name}[mode={mode}]: {e}"));
        let pipeline = LinePipeline::new(&[filter.def]).expect("stock filter compiles");
        for len in [MAX_LINE_LEN, 64 * 1024] {
            let mut worst = (Duration::ZERO, String::new());
            let mut out = Vec::new();
            for start in STARTS {
                for fill in FILLS {
                    let l = line(prefix, start, fill, len);
                    // Best of 3: the line's own cost, not the machine's noise.
                    let t = (0..3)
                        .map(|_| {
                            out.clear();
                            let t = Instant::now();
                            std::hint::black_box(pipeline.process(
                                RawEntry::Line(&l),
                                now,
                                &mut out,
                            ));
                            t.elapsed()
                        })
                        .min()
                        .unwrap_or_default();
                    if t > worst.0 {
                        worst = (t, format!("`{start}` + `{fill}`*"));
                    }
                }
            }
            println!(
                "| {name}[mode={mode}] | {} KiB | {} | {:.3} ms |",
                len / 1024,
                worst.1,
                worst.0.as_secs_f64() * 1e3
            );
        }
    }
}
