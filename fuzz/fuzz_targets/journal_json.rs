//! One line of `journalctl -o json` (banset-watch): no panic, and the
//! syslog-shaped line it builds is handed to the date split as the
//! watcher does.

#![no_main]

use banset_watch::follow::parse_journal_json;
use banset_watch::logtime::split_date;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(entry) = parse_journal_json(data) {
        let _ = split_date(&entry.line);
    }
});
