//! Address ranges and prefixes: the fewest prefixes that cover a range
//! exactly, and the merge of a feed's prefixes (adjacent and overlapping
//! ones become one; what they cover is unchanged).
//!
//! Addresses are `u128` for both families (IPv4 in the low 32 bits), so
//! one piece of arithmetic serves both; every step that could pass the
//! family's last address is checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bounds::MAX_FEED_ENTRIES;
use crate::{Family, Target};

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    /// The family: IPv4 sorts first.
    pub family: Family,
    /// The first address.
    pub first: u128,
    /// The last address (inclusive, so the whole space fits).
    pub last: u128,
}

impl Span {
    /// The addresses `target` covers.
    pub fn of(target: &Target) -> Span {
        let family = target.family();
        let first = to_u128(target.addr());
        let host_bits = u32::from(family.max_prefix_len() - target.prefix_len());
        Span {
            family,
            first,
            last: first | low_mask(host_bits),
        }
    }
}

/// The number as the family's address.
pub fn to_addr(family: Family, n: u128) -> IpAddr {
    match family {
        // Callers stay inside the family: a V4 span's numbers fit 32 bits.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// The address as a number.
pub fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The lowest `bits` bits set.
fn low_mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The fewest prefixes (address, prefix length) covering `span` exactly,
/// in address order. At most 2 × the family's bits of them.
pub fn span_to_prefixes(span: Span) -> Vec<(u128, u8)> {
    let width = u32::from(span.family.max_prefix_len());
    let mut out = Vec::new();
    let mut first = span.first;
    loop {
        // The largest block that starts at `first` (alignment) and ends
        // at or before `last` (size).
        let aligned = first.trailing_zeros().min(width);
        let rest = span.last - first; // addresses after `first`
        let fits = if rest == u128::MAX {
            128
        } else {
            127 - (rest + 1).leading_zeros()
        };
        let bits = aligned.min(fits);
        // `bits` ≤ `width` ≤ 128, so the length fits a u8.
        out.push((first, (width - bits) as u8));
        let end = first | low_mask(bits);
        if end >= span.last {
            return out;
        }
        first = end + 1;
    }
}

/// `spans` merged: sorted, with overlapping and adjacent spans of a
/// family joined.
pub fn merge_spans(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match out.last_mut() {
            Some(cur) if cur.family == span.family && span.first <= cur.last.saturating_add(1) => {
                cur.last = cur.last.max(span.last);
            }
            _ => out.push(span),
        }
    }
    out
}

/// The fewest prefixes covering exactly what `targets` cover, IPv4 first,
/// each family in address order.
pub fn merge(targets: &[Target]) -> Result<Vec<Target>, String> {
    spans_to_targets(targets.iter().map(Span::of).collect())
}

/// [`merge_spans`], as the fewest prefixes, at most
/// [`MAX_FEED_ENTRIES`]. A prefix that is no target (a range banset
/// refuses, e.g. one inside multicast space) is the error, as text.
pub fn spans_to_targets(spans: Vec<Span>) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for span in merge_spans(spans) {
        for (first, len) in span_to_prefixes(span) {
            let addr = to_addr(span.family, first);
            if out.len() == MAX_FEED_ENTRIES {
                return Err(format!("more than {MAX_FEED_ENTRIES} prefixes"));
            }
            out.push(Target::prefix(addr, len).map_err(|e| format!("{addr}/{len}: {e}"))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn shown(targets: &[Target]) -> Vec<String> {
        targets.iter().map(ToString::to_string).collect()
    }

    fn v4(first: &str, count: u128) -> Vec<String> {
        let first = to_u128(first.parse().unwrap());
        span_to_prefixes(Span {
            family: Family::V4,
            first,
            last: first + count - 1,
        })
        .into_iter()
        .map(|(a, l)| format!("{}/{l}", to_addr(Family::V4, a)))
        .collect()
    }

    #[test]
    fn a_power_of_two_at_its_alignment_is_one_prefix() {
        assert_eq!(v4("1.0.16.0", 4096), ["1.0.16.0/20"]);
        assert_eq!(v4("133.0.0.0", 1 << 24), ["133.0.0.0/8"]);
        assert_eq!(v4("192.0.2.7", 1), ["192.0.2.7/32"]);
    }

    #[test]
    fn odd_counts_split_into_the_fewest_prefixes() {
        // 768 = 512 + 256.
        assert_eq!(v4("1.0.0.0", 768), ["1.0.0.0/23", "1.0.2.0/24"]);
        // 1280 (five /24s) from a /24 that is not /23-aligned: 1 + 2 + 2.
        assert_eq!(
            v4("1.0.1.0", 1280),
            ["1.0.1.0/24", "1.0.2.0/23", "1.0.4.0/23"]
        );
        assert_eq!(v4("10.0.0.1", 3), ["10.0.0.1/32", "10.0.0.2/31"]);
        // 5120 addresses = 4096 + 1024: a /20 and a /22.
        assert_eq!(v4("27.0.0.0", 5120), ["27.0.0.0/20", "27.0.16.0/22"]);
    }

    #[test]
    fn the_whole_space_and_its_last_address_do_not_overflow() {
        assert_eq!(v4("0.0.0.0", 1 << 32), ["0.0.0.0/0"]);
        assert_eq!(v4("255.255.255.255", 1), ["255.255.255.255/32"]);
        let all = span_to_prefixes(Span {
            family: Family::V6,
            first: 0,
            last: u128::MAX,
        });
        assert_eq!(all, [(0, 0)]);
        let top = span_to_prefixes(Span {
            family: Family::V6,
            first: 1,
            last: u128::MAX,
        });
        assert_eq!(top.len(), 128);
    }

    #[test]
    fn merges_adjacent_overlapping_and_contained_prefixes() {
        let merged = merge(&[
            t("192.0.2.128/25"),
            t("192.0.2.0/25"),
            t("10.0.0.0/8"),
            t("10.1.0.0/16"),
            t("2001:db8::/33"),
            t("2001:db8:8000::/33"),
            t("198.51.100.0/24"),
            t("198.51.100.0/24"),
        ])
        .unwrap();
        assert_eq!(
            shown(&merged),
            [
                "10.0.0.0/8",
                "192.0.2.0/24",
                "198.51.100.0/24",
                "2001:db8::/32"
            ]
        );
    }

    #[test]
    fn adjacent_but_unaligned_ranges_stay_the_fewest_prefixes() {
        // 10.0.1.0/24 + 10.0.2.0/24 cannot be one prefix.
        let merged = merge(&[t("10.0.2.0/24"), t("10.0.1.0/24")]).unwrap();
        assert_eq!(shown(&merged), ["10.0.1.0/24", "10.0.2.0/24"]);
        let merged = merge(&[
            t("10.0.2.0/24"),
            t("10.0.1.0/24"),
            t("10.0.0.0/24"),
            t("10.0.3.0/24"),
        ])
        .unwrap();
        assert_eq!(shown(&merged), ["10.0.0.0/22"]);
    }

    #[test]
    fn families_never_merge_across() {
        // ::/96-adjacent numbers of the other family are not neighbours.
        let merged = merge(&[t("255.255.255.0/24"), t("::1:0:0/96")]).unwrap();
        assert_eq!(merged.len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn prefixes_cover_a_span_exactly_and_none_could_join(first: u32, extra in 0u32..100_000) {
            let last = u128::from(first.saturating_add(extra));
            let span = Span { family: Family::V4, first: u128::from(first), last };
            let pieces = span_to_prefixes(span);
            let mut next = u128::from(first);
            for (i, &(addr, len)) in pieces.iter().enumerate() {
                let bits = 32 - u32::from(len);
                proptest::prop_assert_eq!(addr, next);
                proptest::prop_assert_eq!(addr & low_mask(bits), 0, "unaligned");
                next = addr + (1u128 << bits);
                // Two neighbours of one size that form an aligned block
                // would be one prefix: the split was not the fewest.
                if let Some(&(other, olen)) = pieces.get(i + 1) {
                    let joined = addr & low_mask(bits + 1) == 0 && olen == len;
                    proptest::prop_assert!(!joined, "{addr}/{len} and {other}/{olen} join");
                }
            }
            proptest::prop_assert_eq!(next, last + 1);
        }

        #[test]
        fn merging_keeps_every_address_and_leaves_no_overlap(
            raw in proptest::collection::vec((0u32..4096, 20u8..=32), 1..40),
            probe in 0u32..4096,
        ) {
            // Prefixes inside 10.0.0.0/20, so that they meet often.
            let base = 0x0a00_0000u32;
            let targets: Vec<Target> = raw
                .iter()
                .map(|&(a, l)| Target::prefix(IpAddr::V4(Ipv4Addr::from(base + a)), l).unwrap())
                .collect();
            let merged = merge(&targets).unwrap();
            let probe = Target::host(IpAddr::V4(Ipv4Addr::from(base + probe))).unwrap();
            proptest::prop_assert_eq!(
                targets.iter().any(|t| t.contains(&probe)),
                merged.iter().any(|t| t.contains(&probe))
            );
            for pair in merged.windows(2) {
                let (a, b) = (Span::of(&pair[0]), Span::of(&pair[1]));
                proptest::prop_assert!(a.last < b.first, "{} then {}", pair[0], pair[1]);
            }
        }
    }
}
