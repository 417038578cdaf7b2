//! Targets to kernel elements and back.
//!
//! Hash sets hold one element per address. Interval sets hold ranges as two
//! elements: the start (network address, carrying the timeout) and the end,
//! which is the first address *after* the range, flagged `INTERVAL_END`. A
//! range that reaches the top of the address space has no end element.
//! Listing reverses this: the dump's elements are sorted, paired, and each
//! range is cut back into prefixes (a range written by hand with `nft` need
//! not be one prefix).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::time::Duration;

use banset_core::{Family, KernelEntry, Target};

use crate::layout::timeout_ms;
use crate::msg::elements::{Element, ElementInfo, Key};
use crate::msg::DecodeError;

/// The kernel key of an address.
pub(crate) fn addr_key(addr: IpAddr) -> Key {
    match addr {
        IpAddr::V4(a) => key4(a),
        IpAddr::V6(a) => key6(a),
    }
}

fn key4(a: Ipv4Addr) -> Key {
    Key::new(&a.octets()).unwrap_or_else(|| unreachable!("4 bytes fit a key"))
}

fn key6(a: Ipv6Addr) -> Key {
    Key::new(&a.octets()).unwrap_or_else(|| unreachable!("16 bytes fit a key"))
}

/// Elements to send for `entries`, plus, per element, the index of the
/// entry it came from, so a failing message can be described by its targets.
/// An entry's timeout is `None` for removals (no timeout attribute),
/// `Some(None)` for a permanent member (explicit 0), `Some(Some(d))` otherwise.
pub(crate) fn to_elements(
    entries: impl Iterator<Item = (Target, Option<Option<Duration>>)>,
    interval: bool,
) -> (Vec<Element>, Vec<usize>) {
    let mut elements = Vec::new();
    let mut owners = Vec::new();
    for (i, (target, timeout)) in entries.enumerate() {
        let mut start = Element::new(addr_key(target.addr()));
        start.timeout_ms = timeout.map(timeout_ms);
        if !interval {
            elements.push(start);
            owners.push(i);
            continue;
        }
        match target.next_after() {
            Some(next) => {
                elements.push(start);
                elements.push(Element {
                    interval_end: true,
                    ..Element::new(addr_key(next))
                });
                owners.extend([i, i]);
            }
            None => {
                start.open_interval = true;
                elements.push(start);
                owners.push(i);
            }
        }
    }
    (elements, owners)
}

/// "elements 1.2.3.4 .. 5.6.7.8" or "element 1.2.3.4" for the targets behind
/// `range` of the elements.
pub(crate) fn describe(targets: &[Target], owners: &[usize], range: Range<usize>) -> String {
    let first = owners.get(range.start).and_then(|&i| targets.get(i));
    let last = range
        .end
        .checked_sub(1)
        .and_then(|e| owners.get(e))
        .and_then(|&i| targets.get(i));
    match (first, last) {
        (Some(a), Some(b)) if a == b => format!("element {a}"),
        (Some(a), Some(b)) => format!("elements {a} .. {b}"),
        _ => "no elements".to_string(),
    }
}

fn time_left(info: &ElementInfo) -> Option<Duration> {
    info.expiration_ms.map(Duration::from_millis)
}

fn addr_of(family: Family, key: &Key) -> Result<IpAddr, DecodeError> {
    let bytes = key.as_bytes();
    match family {
        Family::V4 => <[u8; 4]>::try_from(bytes).map(|b| IpAddr::V4(b.into())),
        Family::V6 => <[u8; 16]>::try_from(bytes).map(|b| IpAddr::V6(b.into())),
    }
    .map_err(|_| DecodeError::new(format!("{} bytes of key in an {family} set", bytes.len())))
}

/// The members of a hash set.
pub(crate) fn hosts_from(
    family: Family,
    infos: &[ElementInfo],
    out: &mut Vec<KernelEntry>,
) -> Result<(), DecodeError> {
    out.reserve(infos.len());
    for info in infos {
        out.push(KernelEntry {
            target: Target::host(addr_of(family, &info.key)?),
            timeout: time_left(info),
        });
    }
    Ok(())
}

fn as_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn top(family: Family) -> u128 {
    match family {
        Family::V4 => u128::from(u32::MAX),
        Family::V6 => u128::MAX,
    }
}

/// The members of an interval set, as prefixes. Linear after the sort.
pub(crate) fn prefixes_from(
    family: Family,
    infos: &[ElementInfo],
    out: &mut Vec<KernelEntry>,
) -> Result<(), DecodeError> {
    let mut points = Vec::with_capacity(infos.len());
    for info in infos {
        points.push((
            as_u128(addr_of(family, &info.key)?),
            !info.is_interval_end(),
            time_left(info),
        ));
    }
    // At equal keys the end of one range sorts before the start of the next
    // (adjacent ranges share that key).
    points.sort_unstable_by_key(|&(at, is_start, _)| (at, is_start));
    let mut open: Option<(u128, Option<Duration>)> = None;
    for (at, is_start, left) in points {
        if is_start {
            // A start while another range is open: the kernel matches the
            // open range up to this start, so that is where it ends.
            if let Some((from, left)) = open.replace((at, left)) {
                push_range(family, from, at - 1, left, out)?;
            }
        } else if let Some((from, left)) = open.take() {
            if at > from {
                push_range(family, from, at - 1, left, out)?;
            }
        }
        // An end with nothing open is nft's `0.0.0.0` sentinel: no range.
    }
    if let Some((from, left)) = open {
        push_range(family, from, top(family), left, out)?;
    }
    Ok(())
}

/// Splits `[first, last]` into the fewest prefixes covering it.
fn push_range(
    family: Family,
    mut first: u128,
    last: u128,
    timeout: Option<Duration>,
    out: &mut Vec<KernelEntry>,
) -> Result<(), DecodeError> {
    let bits = u32::from(family.max_prefix_len());
    loop {
        // The largest block aligned at `first` that does not pass `last`.
        let mut size_bits = first.trailing_zeros().min(bits);
        while size_bits > 0 && span(size_bits) > last - first {
            size_bits -= 1;
        }
        let addr = match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(first as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(first)),
        };
        let target = Target::prefix(addr, (bits - size_bits) as u8)
            .map_err(|e| DecodeError::new(format!("range start {addr}: {e}")))?;
        out.push(KernelEntry { target, timeout });
        let block_last = first + span(size_bits);
        if block_last >= last {
            return Ok(());
        }
        first = block_last + 1;
    }
}

/// `2^size_bits - 1`, the distance from a block's first to its last address.
fn span(size_bits: u32) -> u128 {
    if size_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << size_bits) - 1
    }
}

/// Why a batch of prefixes cannot go into an interval set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overlap {
    pub new: Target,
    pub other: Target,
}

/// Checks that the prefixes to add overlap neither each other nor the set's
/// current members (minus those removed in the same batch). The kernel
/// refuses overlapping intervals (`EEXIST`, atomically), but cannot say which
/// two collide; this can. The same prefix twice is a refresh, not an overlap.
/// Prefixes are either nested or disjoint, so sorting by start and keeping a
/// stack of enclosing prefixes finds every containment in O(n log n).
pub(crate) fn check_overlaps(
    current: impl Iterator<Item = Target>,
    adding: &[Target],
) -> Result<(), Overlap> {
    let mut all: Vec<(Target, bool)> = current.map(|t| (t, false)).collect();
    all.extend(adding.iter().map(|&t| (t, true)));
    all.sort_unstable_by_key(|&(t, is_new)| (as_u128(t.addr()), t.prefix_len(), !is_new));
    all.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 |= later.1;
            true
        } else {
            false
        }
    });
    let mut enclosing: Vec<(Target, bool)> = Vec::new();
    for (target, is_new) in all {
        while enclosing
            .last()
            .is_some_and(|(outer, _)| !outer.contains(&target))
        {
            enclosing.pop();
        }
        if let Some(&(outer, outer_new)) = enclosing.last() {
            if is_new {
                return Err(Overlap {
                    new: target,
                    other: outer,
                });
            }
            if outer_new {
                return Err(Overlap {
                    new: outer,
                    other: target,
                });
            }
        }
        enclosing.push((target, is_new));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        s.parse().unwrap()
    }

    fn info(key: &[u8], end: bool, left: Option<u64>) -> ElementInfo {
        ElementInfo {
            key: Key::new(key).unwrap(),
            flags: u32::from(end),
            timeout_ms: None,
            expiration_ms: left,
        }
    }

    #[test]
    fn prefixes_become_start_and_end() {
        let targets = [t("10.0.0.0/8"), t("255.0.0.0/8"), t("1.2.3.4")];
        let entries = targets
            .iter()
            .map(|&x| (x, Some(Some(Duration::from_secs(5)))));
        let (elements, owners) = to_elements(entries, true);
        assert_eq!(owners, [0, 0, 1, 2, 2]);
        assert_eq!(elements[0].key.as_bytes(), [10, 0, 0, 0]);
        assert_eq!(elements[0].timeout_ms, Some(5000));
        assert_eq!(elements[1].key.as_bytes(), [11, 0, 0, 0]);
        assert!(elements[1].interval_end && elements[1].timeout_ms.is_none());
        assert!(elements[2].open_interval, "255.0.0.0/8 has no next address");
        assert_eq!(elements[4].key.as_bytes(), [1, 2, 3, 5]);
        assert_eq!(describe(&targets, &owners, 0..2), "element 10.0.0.0/8");
        assert_eq!(
            describe(&targets, &owners, 1..5),
            "elements 10.0.0.0/8 .. 1.2.3.4"
        );
        let (plain, _) = to_elements([(t("1.2.3.4"), None)].into_iter(), false);
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].timeout_ms, None);
        let (perm, _) = to_elements([(t("1.2.3.4"), Some(None))].into_iter(), false);
        assert_eq!(perm[0].timeout_ms, Some(0), "permanent is an explicit 0");
    }

    #[test]
    fn intervals_pair_up_in_any_order() {
        // As 6.18 dumps them: descending, with nft's 0.0.0.0 end sentinel.
        let infos = [
            info(&[11, 0, 0, 0], true, None),
            info(&[10, 0, 0, 0], false, Some(1500)),
            info(&[192, 168, 1, 0], false, None),
            info(&[192, 168, 2, 0], true, None),
            info(&[255, 0, 0, 0], false, Some(7)),
            info(&[0, 0, 0, 0], true, None),
            info(&[12, 0, 0, 0], true, None),
            info(&[11, 0, 0, 0], false, None), // adjacent to 10/8
        ];
        let mut out = Vec::new();
        prefixes_from(Family::V4, &infos, &mut out).unwrap();
        let got: Vec<(String, Option<Duration>)> = out
            .iter()
            .map(|e| (e.target.to_string(), e.timeout))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.0/8".to_string(), Some(Duration::from_millis(1500))),
                ("11.0.0.0/8".to_string(), None),
                ("192.168.1.0/24".to_string(), None),
                ("255.0.0.0/8".to_string(), Some(Duration::from_millis(7))),
            ]
        );
    }

    #[test]
    fn ranges_that_are_not_prefixes_are_split() {
        let mut out = Vec::new();
        push_range(Family::V4, 5, 20, None, &mut out).unwrap();
        let got: Vec<String> = out.iter().map(|e| e.target.to_string()).collect();
        assert_eq!(
            got,
            [
                "0.0.0.5",
                "0.0.0.6/31",
                "0.0.0.8/29",
                "0.0.0.16/30",
                "0.0.0.20"
            ]
        );
        let mut out = Vec::new();
        push_range(Family::V6, 0, u128::MAX, None, &mut out).unwrap();
        assert_eq!(out[0].target.to_string(), "::/0");
        let mut out = Vec::new();
        push_range(Family::V4, 0, u128::from(u32::MAX), None, &mut out).unwrap();
        assert_eq!(out[0].target.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn hosts_and_bad_keys() {
        let mut out = Vec::new();
        hosts_from(Family::V4, &[info(&[1, 2, 3, 4], false, None)], &mut out).unwrap();
        assert_eq!(out[0].target, t("1.2.3.4"));
        assert_eq!(out[0].timeout, None);
        assert!(hosts_from(Family::V6, &[info(&[1, 2, 3, 4], false, None)], &mut out).is_err());
        assert!(prefixes_from(Family::V4, &[info(&[1, 2], false, None)], &mut out).is_err());
    }

    #[test]
    fn overlaps_name_both_prefixes() {
        let current = [t("10.0.0.0/8"), t("192.168.0.0/16")];
        // Refresh of an existing prefix, disjoint new ones, duplicates in the batch.
        check_overlaps(
            current.iter().copied(),
            &[t("10.0.0.0/8"), t("172.16.0.0/12"), t("172.16.0.0/12")],
        )
        .unwrap();
        let e = check_overlaps(current.iter().copied(), &[t("10.1.0.0/16")]).unwrap_err();
        assert_eq!((e.new, e.other), (t("10.1.0.0/16"), t("10.0.0.0/8")));
        let e = check_overlaps(current.iter().copied(), &[t("192.0.0.0/4")]).unwrap_err();
        assert_eq!((e.new, e.other), (t("192.0.0.0/4"), t("192.168.0.0/16")));
        let e =
            check_overlaps(std::iter::empty(), &[t("1.0.0.0/24"), t("1.0.0.128/25")]).unwrap_err();
        assert_eq!((e.new, e.other), (t("1.0.0.128/25"), t("1.0.0.0/24")));
        // Pre-existing nesting (added by hand) is not banset's to report.
        check_overlaps(
            [t("10.0.0.0/8"), t("10.1.0.0/16")].into_iter(),
            &[t("11.0.0.0/8")],
        )
        .unwrap();
    }
}
