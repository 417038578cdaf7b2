//! Target, timeout and set-name parsing (banset-core): whatever the
//! input, no panic; whatever parses, shows as text that parses back to
//! the same value.

#![no_main]

use banset_core::{SetName, Target, Timeout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Target::parse(text) {
        let shown = t.to_string();
        let again = Target::parse(&shown)
            .unwrap_or_else(|e| panic!("{text:?} parsed, its display {shown:?} did not: {e}"));
        assert_eq!(again, t, "{text:?} -> {shown:?}");
        assert!(t.contains(&t));
        // A prefix's first address may itself be refused as a host
        // (0.0.0.0/16 starts at the unspecified address).
        if let Ok(h) = Target::host(t.addr()) {
            assert_eq!(h.family(), t.family());
        }
        // The range arithmetic the backends build on.
        let _ = (t.last(), t.next_after(), t.addr_octets());
    }
    if let Ok(d) = Timeout::parse(text) {
        let shown = d.to_string();
        let again = Timeout::parse(&shown)
            .unwrap_or_else(|e| panic!("{text:?} parsed, its display {shown:?} did not: {e}"));
        assert_eq!(again, d, "{text:?} -> {shown:?}");
        let _ = (d.duration(), d.secs());
    }
    if let Ok(n) = SetName::new(text) {
        assert_eq!(SetName::new(n.as_str()).as_ref(), Ok(&n));
        assert_eq!(n.to_string(), n.as_str());
    }
});
