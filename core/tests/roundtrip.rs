//! Property tests for the text forms whose input space is too large for
//! examples: whatever parses shows as text that parses back to the same
//! value, and no input makes a parser panic. (The fuzz targets in fuzz/
//! check the same on arbitrary bytes; these run with every `cargo test`.)
//!
//! Targets are generated as text and go through the public parser, never
//! built directly: inputs it refuses (an address it does not ban, a prefix
//! longer than the family's) are skipped, so the property holds whatever
//! the parser's policy on which addresses are bannable.

use std::net::IpAddr;

use banset_core::{SetName, Target, Timeout, MAX_TIMEOUT_SECS};
use proptest::prelude::*;

fn any_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        // IPv4-mapped IPv6, which has its own text form.
        any::<[u8; 4]>().prop_map(|[a, b, c, d]| {
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d])
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_target_shown_parses_back_to_itself(
        addr in any_addr(),
        len in proptest::option::of(0u8..=129),
        bracketed in any::<bool>(),
    ) {
        let addr_text = match (addr, bracketed) {
            (IpAddr::V6(a), true) => format!("[{a}]"),
            _ => addr.to_string(),
        };
        let text = match len {
            Some(l) => format!("{addr_text}/{l}"),
            None => addr_text,
        };
        if let Ok(t) = Target::parse(&text) {
            let shown = t.to_string();
            prop_assert_eq!(Target::parse(&shown), Ok(t), "{} shown as {}", text, shown);
            prop_assert!(t.contains(&t));
        }
    }

    #[test]
    fn target_parsing_never_panics(text in "[0-9a-fA-F:./\\[\\]% ]{0,64}") {
        if let Ok(t) = Target::parse(&text) {
            prop_assert_eq!(Target::parse(&t.to_string()), Ok(t));
        }
    }

    #[test]
    fn a_timeout_shown_parses_back_to_itself(secs in 1..=MAX_TIMEOUT_SECS) {
        let t = Timeout::from_secs(secs).expect("in range");
        let shown = t.to_string();
        prop_assert_eq!(Timeout::parse(&shown), Ok(t), "{} shown as {}", secs, shown);
    }

    #[test]
    fn timeout_text_round_trips(
        text in "(-1|never|permanent|[0-9]{1,7}(\\.[0-9]{1,2})?|([0-9]{1,5}[smhdw]){1,5})"
    ) {
        if let Ok(t) = Timeout::parse(&text) {
            let shown = t.to_string();
            prop_assert_eq!(Timeout::parse(&shown), Ok(t), "{} shown as {}", text, shown);
        }
    }

    #[test]
    fn a_set_name_shown_parses_back_to_itself(text in "[a-zA-Z0-9_.-]{0,40}") {
        if let Ok(n) = SetName::new(&text) {
            let shown = format!("{n}");
            prop_assert_eq!(SetName::new(&shown), Ok(n));
        }
    }
}

#[test]
fn the_permanent_timeout_round_trips() {
    assert_eq!(
        Timeout::parse(&Timeout::Never.to_string()),
        Ok(Timeout::Never)
    );
}
