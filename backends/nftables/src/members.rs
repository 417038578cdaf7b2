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

use banset_core::{AddrRange, Family, KernelEntry, Overlap, Target};

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
            target: in_family(
                family,
                Target::listed(addr_of(family, &info.key)?, family.max_prefix_len())
                    .map_err(|e| DecodeError::new(format!("set member: {e}")))?,
            )?,
            timeout: time_left(info),
        });
    }
    Ok(())
}

/// `target`, when it belongs to a set of `family`.
///
/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) in an IPv6 set is a
/// target of the IPv4 family (banset bans it as `1.2.3.4`, in the IPv4
/// set), so banset never writes one there; only `nft` can. Listed as the
/// IPv4 target, it would be looked for, refreshed and removed in the IPv4
/// set, never where it is, and a hand-written range over `::ffff:0:0/96`
/// would list as `0.0.0.0/0`. So such an element is refused by name:
/// decided over skipping it, which would hide a kernel member from `list`
/// and `sync` without a word.
fn in_family(family: Family, target: Target) -> Result<Target, DecodeError> {
    if target.family() == family {
        return Ok(target);
    }
    Err(DecodeError::new(format!(
        "element {target} (IPv4-mapped) in an {family} set: banset never writes one there; \
         delete it with nft"
    )))
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

/// A range as the kernel holds it in an interval set, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Interval {
    pub first: u128,
    pub last: u128,
    pub left: Option<Duration>,
}

/// The range a target covers.
pub(crate) fn span_of(target: &Target) -> (u128, u128) {
    (as_u128(target.addr()), as_u128(target.last()))
}

/// Pairs the start and end elements of an interval set's dump into ranges.
/// Linear after the sort.
pub(crate) fn intervals_from(
    family: Family,
    infos: &[ElementInfo],
) -> Result<Vec<Interval>, DecodeError> {
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
    let mut out = Vec::with_capacity(points.len() / 2 + 1);
    let mut open: Option<(u128, Option<Duration>)> = None;
    for (at, is_start, left) in points {
        if is_start {
            // A start while another range is open: the kernel matches the
            // open range up to this start, so that is where it ends.
            if let Some((first, left)) = open.replace((at, left)) {
                // Two ranges cannot start at one key: the kernel keys its
                // interval tree by the start. A dump saying so is corrupt
                // (or not the kernel's); `at - 1` would wrap below `first`.
                if at <= first {
                    return Err(DecodeError::new(format!(
                        "two ranges start at {} in one {family} interval set",
                        addr_at(family, at)
                    )));
                }
                out.push(Interval {
                    first,
                    last: at - 1,
                    left,
                });
            }
        } else if let Some((first, left)) = open.take() {
            if at > first {
                out.push(Interval {
                    first,
                    last: at - 1,
                    left,
                });
            }
        }
        // An end with nothing open is nft's `0.0.0.0` sentinel: no range.
    }
    if let Some((first, left)) = open {
        out.push(Interval {
            first,
            last: top(family),
            left,
        });
    }
    Ok(out)
}

/// The members of a kernel set from the elements of its dump: one per
/// element of a hash set, prefixes for an interval set. Listing takes this
/// path, and so does the fuzz target: every dump the kernel (or anything
/// posing as it) can send ends here as members or a [`DecodeError`].
pub fn members_of(
    family: Family,
    interval: bool,
    infos: &[ElementInfo],
) -> Result<Vec<KernelEntry>, DecodeError> {
    let mut out = Vec::new();
    if interval {
        prefixes_from(family, &intervals_from(family, infos)?, &mut out)?;
    } else {
        hosts_from(family, infos, &mut out)?;
    }
    Ok(out)
}

/// The members of an interval set, as prefixes: a range written by hand
/// with `nft` need not be one prefix, and is then split.
pub(crate) fn prefixes_from(
    family: Family,
    intervals: &[Interval],
    out: &mut Vec<KernelEntry>,
) -> Result<(), DecodeError> {
    for i in intervals {
        push_range(family, i.first, i.last, i.left, out)?;
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
    // Callers pass ranges they built, but an inverted one must be an error,
    // not `last - first` wrapping into a walk of ~2^96 blocks.
    if first > last || last > top(family) {
        return Err(DecodeError::new(format!(
            "range {}-{} is not a range of {family} addresses",
            addr_at(family, first),
            addr_at(family, last)
        )));
    }
    loop {
        // The largest block aligned at `first` that does not pass `last`.
        let mut size_bits = first.trailing_zeros().min(bits);
        while size_bits > 0 && span(size_bits) > last - first {
            size_bits -= 1;
        }
        let addr = addr_at(family, first);
        let target = Target::listed(addr, (bits - size_bits) as u8)
            .map_err(|e| DecodeError::new(format!("range start {addr}: {e}")))?;
        let target = in_family(family, target)?;
        out.push(KernelEntry { target, timeout });
        let block_last = first + span(size_bits);
        if block_last >= last {
            return Ok(());
        }
        first = block_last + 1;
    }
}

/// The address at `value` (cut to 32 bits for IPv4, for messages about
/// values that may not fit).
fn addr_at(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
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

/// The first prefix of `adding` that overlaps one of the set's `current`
/// ranges (minus those removed in the same batch) or an earlier addition.
/// The kernel refuses overlapping intervals (`EEXIST`, atomically) but
/// cannot say which two collide; this can. Every range counts, a single
/// address written by hand into the interval set included: the kernel
/// would refuse a prefix over it.
pub(crate) fn find_overlap(
    family: Family,
    current: &[Interval],
    adding: &[Target],
) -> Option<Overlap> {
    let ranges = current
        .iter()
        .filter_map(|i| AddrRange::new(addr_at(family, i.first), addr_at(family, i.last)));
    banset_core::find_overlap(ranges, adding)
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
        let intervals = intervals_from(Family::V4, &infos).unwrap();
        assert_eq!(intervals.len(), 4);
        let mut out = Vec::new();
        prefixes_from(Family::V4, &intervals, &mut out).unwrap();
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
        assert!(intervals_from(Family::V4, &[info(&[1, 2], false, None)]).is_err());
    }

    /// Issue 13 item 18: two starts at one key made `intervals_from`
    /// compute `at - 1` below the range's first address (wrapping at key 0)
    /// and `push_range` then walk ~2^96 blocks until out of memory; with
    /// `panic = "abort"` the daemon died. An impossible dump is an error.
    #[test]
    fn two_interval_starts_at_the_same_key_are_refused() {
        for key in [[10u8, 0, 0, 0], [0, 0, 0, 0]] {
            let infos = [
                info(&key, false, Some(5)),
                info(&key, false, None),
                info(&[11, 0, 0, 0], true, None),
            ];
            let e = intervals_from(Family::V4, &infos).unwrap_err();
            assert!(e.to_string().contains("two ranges start at"), "{e}");
            assert!(members_of(Family::V4, true, &infos).is_err());
        }
        let v6 = [0x20u8, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let infos = [info(&v6, false, None), info(&v6, false, None)];
        assert!(members_of(Family::V6, true, &infos).is_err());
        // The same key twice in a hash set is two listed hosts, no harm.
        let hosts = members_of(Family::V4, false, &infos[..0]).unwrap();
        assert!(hosts.is_empty());
    }

    /// The other half of item 18: a range whose last address lies before
    /// its first is an error, not a walk of `last - first` wrapped.
    #[test]
    fn an_inverted_range_is_refused_not_walked() {
        let mut out = Vec::new();
        assert!(push_range(Family::V4, 20, 5, None, &mut out).is_err());
        assert!(push_range(Family::V4, 1 << 40, 1 << 41, None, &mut out).is_err());
        let inverted = Interval {
            first: 10 << 24,
            last: (10 << 24) - 1,
            left: None,
        };
        assert!(prefixes_from(Family::V6, &[inverted], &mut out).is_err());
        assert!(out.is_empty());
    }

    /// Item 18 from the bytes up: a NEWSETELEM dump part carrying two range
    /// starts at 10.0.0.0 (and one end) decodes to a [`DecodeError`].
    #[test]
    fn dump_with_two_starts_at_one_key_is_a_decode_error() {
        use crate::msg::elements::parse_elements;
        use crate::msg::NlMsg;
        #[rustfmt::skip]
        let payload: Vec<u8> = [
            &[1u8, 0, 0, 0][..],                        // nfgenmsg: inet
            &[11, 0, 1, 0], b"banset\0\0",              // LIST_TABLE
            &[12, 0, 2, 0], b"f_v4net\0",               // LIST_SET
            &[76, 0, 3, 0x80],                          // LIST_ELEMENTS
            &[24, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80], &[8, 0, 1, 0], &[11, 0, 0, 0], // KEY 11.0.0.0
            &[8, 0, 3, 0], &[0, 0, 0, 1],               //   FLAGS = INTERVAL_END
            &[24, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80], &[8, 0, 1, 0], &[10, 0, 0, 0], // KEY 10.0.0.0
            &[8, 0, 3, 0], &[0, 0, 0, 0],               //   FLAGS = 0: a start
            &[24, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80], &[8, 0, 1, 0], &[10, 0, 0, 0], // KEY 10.0.0.0 again
            &[8, 0, 3, 0], &[0, 0, 0, 0],               //   FLAGS = 0: a start
        ].concat();
        let msg = NlMsg {
            ty: 0x0a0c,
            flags: 2,
            seq: 1,
            payload: &payload,
        };
        let mut infos = Vec::new();
        parse_elements(&msg, &mut infos).unwrap();
        assert_eq!(infos.len(), 3);
        let e = members_of(Family::V4, true, &infos).unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed netlink reply: two ranges start at 10.0.0.0 in one IPv4 interval set"
        );
    }

    mod roundtrip {
        use proptest::prelude::*;

        use super::*;
        use crate::msg::batch::Batch;
        use crate::msg::elements::{parse_elements, set_elements, ElemOp};
        use crate::msg::MsgIter;

        /// Targets of one family, through the public parser (whatever it
        /// refuses is left out), without overlaps for an interval set.
        fn targets(v6: bool, interval: bool, raw: Vec<(Vec<u8>, u8)>) -> Vec<Target> {
            let mut out: Vec<Target> = Vec::new();
            for (bytes, len) in raw {
                let addr = if v6 {
                    let b: [u8; 16] = bytes[..16].try_into().unwrap();
                    IpAddr::from(b)
                } else {
                    let b: [u8; 4] = bytes[..4].try_into().unwrap();
                    IpAddr::from(b)
                };
                let bits = if v6 { 128 } else { 32 };
                // Mostly narrow prefixes, sometimes wide ones.
                let len = if interval {
                    bits - len % (bits + 1)
                } else {
                    bits
                };
                let Ok(t) = Target::parse(&format!("{addr}/{len}")) else {
                    continue;
                };
                if !out.iter().any(|o| o.overlaps(&t)) {
                    out.push(t);
                }
            }
            out.sort();
            out
        }

        proptest! {
            /// Targets -> elements -> NEWSETELEM bytes -> parsed elements
            /// -> members: the same targets, for hash and interval sets of
            /// both families.
            #[test]
            fn elements_encode_and_decode_to_the_same_targets(
                v6 in any::<bool>(),
                interval in any::<bool>(),
                raw in proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 16), any::<u8>()),
                    0..40,
                ),
            ) {
                let family = if v6 { Family::V6 } else { Family::V4 };
                let targets = targets(v6, interval, raw);
                let entries = targets.iter().map(|&t| (t, Some(Some(Duration::from_secs(60)))));
                let (elements, _) = to_elements(entries, interval);
                let mut batch = Batch::new(1);
                set_elements(&mut batch, ElemOp::Add, "banset", "s", &elements, &|_| String::new());
                let chunks = batch.len();
                let sealed = batch.finish().unwrap();
                let mut infos = Vec::new();
                for msg in MsgIter::new(sealed.bytes()).skip(1).take(chunks) {
                    parse_elements(&msg.unwrap(), &mut infos).unwrap();
                }
                prop_assert_eq!(infos.len(), elements.len());
                let mut got: Vec<Target> = members_of(family, interval, &infos)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.target)
                    .collect();
                got.sort();
                prop_assert_eq!(got, targets);
            }
        }
    }

    /// Found by the nftables_dump fuzz target: an IPv4-mapped key in an
    /// IPv6 set listed as an IPv4 target (a range over `::ffff:0:0/96` as
    /// `0.0.0.0/0`), which banset would then look for in the IPv4 set.
    #[test]
    fn an_ipv4_mapped_element_in_an_ipv6_set_is_refused() {
        let mapped = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4];
        let e = members_of(Family::V6, false, &[info(&mapped, false, None)]).unwrap_err();
        assert!(e.to_string().contains("IPv4-mapped"), "{e}");
        let e = members_of(Family::V6, true, &[info(&mapped, false, None)]).unwrap_err();
        assert!(e.to_string().contains("IPv4-mapped"), "{e}");
        // A hand-written range whose first block is ::ffff:0:0/96 (up to
        // 0:0:0:1::), which listed as 0.0.0.0/0.
        let start = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
        let end = [0u8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let infos = [info(&start, false, None), info(&end, true, None)];
        assert!(members_of(Family::V6, true, &infos).is_err());
        // A /95 over the mapped block is an IPv6 prefix like any other.
        let start = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 0, 0];
        let infos = [info(&start, false, None), info(&end, true, None)];
        let got = members_of(Family::V6, true, &infos).unwrap();
        assert_eq!(got[0].target, t("::fffe:0:0/95"));
        // Next to it, the rest of the space lists as before.
        let v6 = [0x20u8, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let got = members_of(Family::V6, false, &[info(&v6, false, None)]).unwrap();
        assert_eq!(got[0].target, t("2001:db8::"));
    }

    fn iv(s: &str) -> Interval {
        let (first, last) = span_of(&t(s));
        Interval {
            first,
            last,
            left: None,
        }
    }

    #[test]
    fn overlaps_name_both_prefixes() {
        let v4 = Family::V4;
        let current = [iv("10.0.0.0/8"), iv("192.168.0.0/16")];
        // Refresh of an existing prefix, disjoint new ones, duplicates in the batch.
        assert_eq!(
            find_overlap(
                v4,
                &current,
                &[t("10.0.0.0/8"), t("172.16.0.0/12"), t("172.16.0.0/12")],
            ),
            None
        );
        let e = find_overlap(v4, &current, &[t("10.1.0.0/16")]).unwrap();
        assert_eq!(
            (e.new, e.other.to_string().as_str(), e.other_is_new),
            (t("10.1.0.0/16"), "10.0.0.0/8", false)
        );
        let e = find_overlap(v4, &current, &[t("192.0.0.0/4")]).unwrap();
        assert_eq!(
            (e.new, e.other.to_string().as_str()),
            (t("192.0.0.0/4"), "192.168.0.0/16")
        );
        let e = find_overlap(v4, &[], &[t("1.0.0.0/24"), t("1.0.0.128/25")]).unwrap();
        assert_eq!(
            (e.new, e.other.to_string().as_str(), e.other_is_new),
            (t("1.0.0.128/25"), "1.0.0.0/24", true)
        );
        // A hand-written range that is not a prefix is named as a range.
        let odd = Interval {
            first: 5,
            last: 20,
            left: None,
        };
        let e = find_overlap(v4, &[odd], &[t("0.0.0.16/28")]).unwrap();
        assert_eq!(e.other.to_string(), "0.0.0.5-0.0.0.20");
        // ...and a prefix equal to a piece of it is an overlap, not a refresh.
        assert!(find_overlap(v4, &[odd], &[t("0.0.0.8/29")]).is_some());
        assert_eq!(find_overlap(v4, &[odd], &[t("0.0.0.21")]), None);
    }
}
