use proptest::prelude::*;

use super::*;

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn r(s: &str) -> AddrRange {
    AddrRange::of(&t(s))
}

fn prefixes(members: &[&str], adding: &[&str]) -> Option<Overlap> {
    let members: Vec<Target> = members.iter().map(|s| t(s)).collect();
    let adding: Vec<Target> = adding.iter().map(|s| t(s)).collect();
    find_prefix_overlap(&members, &adding)
}

/// The definition, pair by pair: O(n²), obviously right.
fn brute_force(members: &[AddrRange], adding: &[Target]) -> Option<Overlap> {
    for (i, new) in adding.iter().enumerate() {
        if new.is_host() {
            continue;
        }
        let mine = AddrRange::of(new);
        if let Some(other) = members.iter().find(|m| **m != mine && m.meets(&mine)) {
            return Some(Overlap {
                new: *new,
                other: *other,
                other_is_new: false,
            });
        }
        let earlier = adding[..i]
            .iter()
            .find(|e| !e.is_host() && **e != *new && e.overlaps(new));
        if let Some(other) = earlier {
            return Some(Overlap {
                new: *new,
                other: AddrRange::of(other),
                other_is_new: true,
            });
        }
    }
    None
}

#[test]
fn narrower_wider_and_within_the_batch() {
    let members = ["10.0.0.0/8", "192.168.1.0/24", "1.2.3.4"];
    let o = prefixes(&members, &["10.1.0.0/16"]).unwrap();
    assert_eq!(
        (o.new, o.other, o.other_is_new),
        (t("10.1.0.0/16"), r("10.0.0.0/8"), false)
    );
    let o = prefixes(&members, &["192.168.0.0/16"]).unwrap();
    assert_eq!(o.other, r("192.168.1.0/24"));
    // The later of two overlapping additions is the one refused.
    let o = prefixes(&[], &["2001:db8:5::/48", "2001:db8:5:1::/64"]).unwrap();
    assert_eq!(
        (o.new, o.other, o.other_is_new),
        (t("2001:db8:5:1::/64"), r("2001:db8:5::/48"), true)
    );
    let o = prefixes(&[], &["2001:db8:5:1::/64", "2001:db8:5::/48"]).unwrap();
    assert_eq!(o.new, t("2001:db8:5::/48"));
    // A member wins over an earlier addition.
    let o = prefixes(&["10.0.0.0/8"], &["10.2.0.0/16", "10.2.3.0/24"]).unwrap();
    assert_eq!((o.new, o.other_is_new), (t("10.2.0.0/16"), false));
}

#[test]
fn hosts_refreshes_and_other_families_are_no_overlap() {
    let members = ["10.0.0.0/8", "1.2.3.4"];
    assert_eq!(prefixes(&members, &["10.9.9.9", "10.0.0.0/8"]), None);
    assert_eq!(
        prefixes(&members, &["1.2.3.0/24"]),
        None,
        "prefix around a host member"
    );
    assert_eq!(prefixes(&members, &["11.0.0.0/8"]), None);
    assert_eq!(prefixes(&[], &["2001:db8::/32", "2001:db8::/32"]), None);
    assert_eq!(prefixes(&["::/96"], &["10.0.0.0/8"]), None);
    assert_eq!(prefixes(&["0.0.0.0/0"], &["::/0"]), None);
    // Members overlapping each other (written by hand) are not the batch's
    // fault, but refreshing one of them still meets the other.
    let hand_made = ["10.0.0.0/8", "10.1.0.0/16"];
    assert_eq!(prefixes(&hand_made, &["11.0.0.0/8"]), None);
    assert_eq!(
        prefixes(&hand_made, &["10.1.0.0/16"]).map(|o| o.other),
        Some(r("10.0.0.0/8"))
    );
    assert_eq!(
        prefixes(&hand_made, &["10.0.0.0/8"]).map(|o| o.other),
        Some(r("10.1.0.0/16"))
    );
}

#[test]
fn ranges_that_are_not_prefixes_are_named_as_ranges() {
    let odd = AddrRange::new("0.0.0.5".parse().unwrap(), "0.0.0.20".parse().unwrap()).unwrap();
    let o = find_overlap([odd], &[t("0.0.0.16/28")]).unwrap();
    assert_eq!(o.other.to_string(), "0.0.0.5-0.0.0.20");
    // A prefix equal to a piece of the range overlaps it.
    assert!(find_overlap([odd], &[t("0.0.0.8/29")]).is_some());
    assert_eq!(find_overlap([odd], &[t("0.0.0.21")]), None);
    assert_eq!(r("10.0.0.0/8").to_string(), "10.0.0.0/8");
    assert_eq!(r("::/0").to_string(), "::/0");
    assert_eq!(r("0.0.0.0/0").to_string(), "0.0.0.0/0");
    assert_eq!(r("2001:db8::1").to_string(), "2001:db8::1");
    assert_eq!(
        AddrRange::new("10.0.0.1".parse().unwrap(), "::1".parse().unwrap()),
        None
    );
    assert_eq!(
        AddrRange::new("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap()),
        None
    );
}

#[test]
fn one_wording_names_both_and_where_the_other_is() {
    let o = prefixes(&["198.51.100.0/24"], &["198.51.100.128/25"]).unwrap();
    let e = o.into_error("add to x");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(
        e.to_string(),
        "add to x: prefix 198.51.100.128/25 overlaps 198.51.100.0/24 (already in the set); \
         banset keeps one ban per address range, so remove the other prefix first"
    );
    let o = prefixes(&[], &["10.0.0.0/8", "10.0.0.0/9"]).unwrap();
    assert!(
        o.to_string().contains("(added earlier in this batch)"),
        "{o}"
    );
}

#[test]
fn a_large_batch_is_not_quadratic() {
    // 200,000 disjoint /30s against 200,000 members: a pairwise check
    // would make 4 * 10^10 comparisons; this finishes in a blink.
    let prefix = |i: u32| Target::prefix(IpAddr::V4(Ipv4Addr::from(i << 2)), 30).unwrap();
    let members: Vec<Target> = (0..200_000).map(prefix).collect();
    let adding: Vec<Target> = (200_000..400_000).map(prefix).collect();
    assert_eq!(find_prefix_overlap(&members, &adding), None);
    let mut adding = adding;
    adding.push(Target::prefix(IpAddr::V4(Ipv4Addr::from(8)), 29).unwrap());
    let o = find_prefix_overlap(&members, &adding).unwrap();
    assert_eq!((o.new, o.other_is_new), (t("0.0.0.8/29"), false));
    assert!(
        [r("0.0.0.8/30"), r("0.0.0.12/30")].contains(&o.other),
        "{o}"
    );
}

/// A small address space, so that random prefixes collide often.
fn small_target() -> impl Strategy<Value = Target> {
    (any::<bool>(), 0u32..64, 0u8..=6).prop_map(|(v6, low, host_bits)| {
        let (addr, max) = if v6 {
            (IpAddr::V6(Ipv6Addr::from(u128::from(low))), 128)
        } else {
            (IpAddr::V4(Ipv4Addr::from(low)), 32)
        };
        Target::listed(addr, max - host_bits).unwrap()
    })
}

fn small_range() -> impl Strategy<Value = AddrRange> {
    prop_oneof![
        small_target().prop_map(|t| AddrRange::of(&t)),
        (any::<bool>(), 0u128..64, 0u128..16).prop_map(|(v6, first, len)| {
            let (first, last) = if v6 {
                (
                    Ipv6Addr::from(first).into(),
                    Ipv6Addr::from(first + len).into(),
                )
            } else {
                (
                    Ipv4Addr::from(first as u32).into(),
                    Ipv4Addr::from((first + len) as u32).into(),
                )
            };
            AddrRange::new(first, last).unwrap()
        }),
    ]
}

proptest! {
    /// Same answer as the pairwise definition: the same refused prefix,
    /// the same kind of other, the same earlier addition; a member that
    /// truly overlaps it when there are several.
    #[test]
    fn agrees_with_the_pairwise_definition(
        members in proptest::collection::vec(small_range(), 0..12),
        adding in proptest::collection::vec(small_target(), 0..12),
    ) {
        let fast = find_overlap(members.iter().copied(), &adding);
        let slow = brute_force(&members, &adding);
        match (fast, slow) {
            (None, None) => {}
            (Some(f), Some(s)) => {
                prop_assert_eq!(f.new, s.new);
                prop_assert_eq!(f.other_is_new, s.other_is_new);
                if f.other_is_new {
                    prop_assert_eq!(f.other, s.other);
                } else {
                    let mine = AddrRange::of(&f.new);
                    prop_assert!(members.contains(&f.other));
                    prop_assert!(f.other != mine && f.other.meets(&mine));
                }
            }
            (f, s) => prop_assert!(false, "fast {:?}, pairwise {:?}", f, s),
        }
    }
}
