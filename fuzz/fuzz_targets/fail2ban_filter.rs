//! fail2ban's configuration reader and filter compiler (banset-watch):
//! the input is written as `filter.d/fuzz.conf` and loaded as a jail's
//! filter would be, then compiled into a matcher and run on sample lines;
//! the same text is then read as `jail.conf`. The reader works on files,
//! so the input goes through a private directory (tmpfs under /tmp).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use banset_watch::fail2ban::{load, load_filter};
use banset_watch::logtime::split_date;
use banset_watch::Matcher;
use libfuzzer_sys::fuzz_target;

const LINES: &[&[u8]] = &[
    b"Nov 21 12:00:00 host sshd[123]: Failed password for root from 192.0.2.7 port 22 ssh2",
    b"2026-11-21T12:00:00.123456+01:00 host sshd[9]: Invalid user admin from 2001:db8::7 port 4",
    b"host postfix/smtpd[1]: warning: unknown[198.51.100.9]: SASL LOGIN authentication failed",
    b"Nov 21 12:00:00 host nginx: 203.0.113.5 - - \"GET / HTTP/1.1\" 401",
];

const COMMON: &str = r"[INCLUDES]
after = common.local

[DEFAULT]
_daemon = \S*
__pid_re = (?:\[\d+\])
__daemon_re = [\[\(]?%(_daemon)s(?:\(\S+\))?[\]\)]?:?
__hostname = \S+
__prefix_line = \s*(?:%(__hostname)s )?(?:%(__daemon_re)s%(__pid_re)s?:?\s+)?
";

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("banset-fuzz-f2b-{}", std::process::id()));
        std::fs::create_dir_all(d.join("filter.d")).expect("create the fuzz directory");
        // What filters written for fail2ban include: a small common.conf
        // of the same shape as fail2ban's, so seeds taken from real
        // filters load.
        std::fs::write(d.join("filter.d/common.conf"), COMMON).expect("write common.conf");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let filter = dir.join("filter.d/fuzz.conf");
    std::fs::write(&filter, data).expect("write the filter");
    if let Ok(loaded) = load_filter(dir, "fuzz", &[], &Default::default(), None) {
        if let Ok(m) = Matcher::new(&[loaded.def]) {
            let mut hits = Vec::new();
            for line in LINES {
                let (_, rest) = split_date(line);
                m.scan_line(line, rest, &mut hits);
            }
        }
    }
    std::fs::write(dir.join("jail.conf"), data).expect("write the jail file");
    let _ = load(dir);
    let _ = std::fs::remove_file(dir.join("jail.conf"));
});
