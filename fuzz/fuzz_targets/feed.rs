//! Feeds (banset-core's `feed`): CIDR lists and the registries' delegated
//! statistics. Whatever the input, no panic; what parses is merged (in
//! order, no two prefixes overlapping) and reads back, as a CIDR list, as
//! the same prefixes.

#![no_main]

use banset_core::feed::rir::{self, Country};
use banset_core::feed::{cidr_list, ranges::Span};
use banset_core::Target;
use libfuzzer_sys::fuzz_target;

fn check_merged(targets: &[Target]) {
    for pair in targets.windows(2) {
        let (a, b) = (Span::of(&pair[0]), Span::of(&pair[1]));
        assert!(a < b && (a.family != b.family || a.last < b.first), "{pair:?}");
    }
    let text: String = targets.iter().map(|t| format!("{t}\n")).collect();
    let again = cidr_list::parse(text.as_bytes(), "again").expect("merged output reads back");
    assert_eq!(again, targets);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(targets) = cidr_list::parse(data, "fuzz") {
        check_merged(&targets);
    }
    let countries = [Country::parse("JP").unwrap(), Country::parse("ZZ").unwrap()];
    if let Ok(feed) = rir::parse(data, "fuzz", &countries) {
        assert!(feed.targets.len() <= feed.records.saturating_mul(64));
        check_merged(&feed.targets);
    }
});
