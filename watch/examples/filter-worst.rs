//! The worst time fail2ban's own filters with look-arounds,
//! back-references and conditionals (sshd, postfix, dovecot, in each mode)
//! take on one hostile line, through the pipeline the daemon runs. Lines
//! are built to make a backtracking search work hard: each start of a
//! failregex, then one fragment repeated (` from `, spaces, `[`, invalid
//! bytes...) to the longest line banset scans (`MAX_LINE_LEN`, 16 KiB)
//! and to 64 KiB (longer than that: not scanned). Used by
//! `bench/filter-worst`.
//!
//!     cargo run --release -p banset-watch --example filter-worst -- [/etc/fail2ban]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use banset_watch::fail2ban::load_filter;
use banset_watch::pipeline::{LinePipeline, RawEntry};
use banset_watch::MAX_LINE_LEN;

const FILTERS: &[(&str, &str, &str)] = &[
    ("sshd", "normal", "Nov 21 12:00:00 h sshd[1]: "),
    ("sshd", "aggressive", "Nov 21 12:00:00 h sshd[1]: "),
    ("postfix", "normal", "Nov 21 12:00:00 h postfix/smtpd[1]: "),
    (
        "postfix",
        "aggressive",
        "Nov 21 12:00:00 h postfix/smtpd[1]: ",
    ),
    ("postfix", "auth", "Nov 21 12:00:00 h postfix/smtpd[1]: "),
    (
        "dovecot",
        "normal",
        "Nov 21 12:00:00 h dovecot: imap-login: ",
    ),
    (
        "dovecot",
        "aggressive",
        "Nov 21 12:00:00 h dovecot: imap-login: ",
    ),
];

/// How failregexes of these filters start (after the prefregex).
const STARTS: &[&str] = &[
    "",
    "Failed password for ",
    "Failed password for invalid user ",
    "Failed publickey for invalid user ",
    "Invalid user ",
    "User x from 192.0.2.1 not allowed because ",
    "Disconnecting: Too many authentication failures for ",
    "Connection closed by authenticating user ",
    "Disconnected from invalid user ",
    "Unable to negotiate with 192.0.2.1 port 22: no matching ",
    "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed:",
    "NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 ",
    "Disconnected (auth failed, 1 attempts): user=<",
    "Aborted login",
    "pam(x,192.0.2.1): pam_authenticate() failed: ",
];

/// What each start is followed by, repeated.
const FILLS: &[&str] = &[
    "a",
    " ",
    " from ",
    " from x",
    " from 192.0.2.1",
    " port 22",
    " on x",
    " [preauth]",
    ": ",
    "[192.0.2.1]",
    "x(",
    " user ",
    "a ",
    "\u{e9}",
    "\u{fffd}",
    " Connection lost to authentication server",
    ": (",
    "rip=192.0.2.1, ",
];

fn line(prefix: &str, start: &str, fill: &str, len: usize) -> Vec<u8> {
    let mut v = format!("{prefix}{start}").into_bytes();
    while v.len() + fill.len() <= len {
        v.extend_from_slice(fill.as_bytes());
    }
    v
}

fn main() {
    let config = PathBuf::from(std::env::args().nth(1).unwrap_or("/etc/fail2ban".into()));
    let now = 1_795_262_400;
    println!("| filter | line length | worst line (start, fill) | worst time per line |");
    println!("|---|---|---|---|");
    for (name, mode, prefix) in FILTERS {
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
