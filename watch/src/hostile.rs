//! Hostile lines for fail2ban's own look-around filters (sshd, postfix,
//! dovecot, in each mode): each start of one of their failregexes after
//! the prefregex, then one fragment repeated (` from `, spaces, `[`,
//! invalid bytes...) that makes a backtracking search work hard. The same
//! lines feed the bounded-work test (`hostile::tests`) and the timing
//! example (`examples/filter-worst.rs`, `bench/filter-worst`), so the
//! table in bench/README.md times what the test counts.

/// (filter file, mode, what the prefregex takes before the content).
pub const STOCK_FILTERS: &[(&str, &str, &str)] = &[
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
pub const STARTS: &[&str] = &[
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

/// What each start is followed by, repeated: the texts the failregexes'
/// look-aheads, lazy repeats and conditionals stop at or skip over.
pub const FILLS: &[&str] = &[
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

/// `prefix`, `start`, then `fill` repeated while the line stays within
/// `len` bytes.
pub fn line(prefix: &str, start: &str, fill: &str, len: usize) -> Vec<u8> {
    let mut v = format!("{prefix}{start}").into_bytes();
    while v.len() + fill.len() <= len {
        v.extend_from_slice(fill.as_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::{BACKTRACK_LIMIT, FANCY_LIMITS, FANCY_RUNS};
    use crate::fail2ban::load_filter;
    use crate::pipeline::{LinePipeline, RawEntry};
    use crate::MAX_LINE_LEN;

    fn counted() -> (u64, u64) {
        (FANCY_RUNS.with(|c| c.get()), FANCY_LIMITS.with(|c| c.get()))
    }

    /// Issue 16: a line crafted against fail2ban's look-around failregexes
    /// must not make a filter exponential. Work is counted, never timed:
    /// per line, at most one backtracking search per look-around pattern
    /// of the filter (no retry per start position or per candidate), none
    /// of them cut off at the engine's limit (a search that reaches
    /// [`BACKTRACK_LIMIT`] backtracks on a crafted line is super-linear on
    /// it, and its line would go uncounted), and nothing at all on a line
    /// longer than [`MAX_LINE_LEN`] (64 KiB: not scanned). Skips without
    /// fail2ban's configuration; CI installs it.
    #[test]
    fn stock_look_around_filters_do_bounded_work_on_hostile_lines() {
        let config = std::path::Path::new("/etc/fail2ban");
        if !config.join("filter.d/sshd.conf").is_file() {
            eprintln!("skipped: fail2ban is not installed (apt-get install fail2ban)");
            return;
        }
        let now = 1_795_262_400;
        for (name, mode, prefix) in STOCK_FILTERS {
            let args = [("mode".to_string(), mode.to_string())];
            let filter = load_filter(config, name, &args, &Default::default(), None)
                .unwrap_or_else(|e| panic!("{name}[mode={mode}]: {e}"));
            let def = filter.def;
            let patterns = def.failregex.len() + def.ignoreregex.len() + 1;
            let pipeline = LinePipeline::new(&[def]).expect("stock filter compiles");
            let mut out = Vec::new();
            for len in [MAX_LINE_LEN, 64 * 1024] {
                for start in STARTS {
                    for fill in FILLS {
                        let l = line(prefix, start, fill, len);
                        let (runs, limits) = counted();
                        out.clear();
                        pipeline.process(RawEntry::Line(&l), now, &mut out);
                        let (runs, limits) = (counted().0 - runs, counted().1 - limits);
                        let what =
                            format!("{name}[mode={mode}], {len} bytes, {start:?} + {fill:?}*");
                        assert!(
                            runs as usize <= patterns,
                            "{what}: {runs} backtracking searches for {patterns} patterns"
                        );
                        assert_eq!(
                            limits, 0,
                            "{what}: a search reached {BACKTRACK_LIMIT} backtracks"
                        );
                        if len > MAX_LINE_LEN {
                            assert_eq!(runs, 0, "{what}: a line too long to scan was searched");
                        }
                    }
                }
            }
        }
    }
}
