//! The one overlap check every backend makes before it sends a batch.
//!
//! banset keeps one ban per address range: a prefix may not overlap another
//! prefix, whether a member or one of the same batch, because then "is this
//! address banned, and until when?" has two answers (and nftables interval
//! sets refuse it outright, without saying which two collide). A host
//! inside a banned prefix is fine (redundant, and it may outlive the prefix
//! ban), and the same prefix again is a refresh.
//!
//! Backends differ only in what their members are, so they supply them:
//! pf, ipfw, ipset and the memory model their prefix members (hosts left
//! out, [`find_prefix_overlap`]), nftables the ranges of its interval set,
//! where a range written by hand with `nft` need not be one prefix
//! ([`find_overlap`]).
//!
//! Which overlap is reported is fixed, so every backend names the same one:
//! the first addition, in batch order, that overlaps a member or an earlier
//! addition; the member when both. That is also what a kernel applying the
//! batch entry by entry would stop at, which the memory model relies on.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::backend::{BackendError, ErrorKind};
use crate::target::{Family, Target};

/// An inclusive range of addresses of one family: a member as a kernel
/// holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrRange {
    family: Family,
    first: u128,
    last: u128,
}

impl AddrRange {
    /// `first..=last`, `None` when they are of different families or
    /// inverted.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<AddrRange> {
        let (family, first) = point(first);
        let (last_family, last) = point(last);
        (family == last_family && first <= last).then_some(AddrRange {
            family,
            first,
            last,
        })
    }

    /// The range a target covers.
    pub fn of(target: &Target) -> AddrRange {
        let (family, first) = point(target.addr());
        AddrRange {
            family,
            first,
            last: point(target.last()).1,
        }
    }

    /// The first address.
    pub fn first(&self) -> IpAddr {
        addr(self.family, self.first)
    }

    /// The last address.
    pub fn last(&self) -> IpAddr {
        addr(self.family, self.last)
    }

    /// The range as one prefix, when it is one.
    pub fn as_prefix(&self) -> Option<Target> {
        let span = self.last - self.first;
        let aligned = self.first & span == 0;
        let whole_blocks = span.checked_add(1).is_none_or(|n| n.is_power_of_two());
        if !aligned || !whole_blocks {
            return None;
        }
        let host_bits = 128 - span.leading_zeros();
        let len = u32::from(self.family.max_prefix_len()).checked_sub(host_bits)?;
        Target::listed(self.first(), u8::try_from(len).ok()?).ok()
    }

    /// Ordering key: families apart, IPv4 first, then by first address.
    fn start(&self) -> (Family, u128) {
        (self.family, self.first)
    }

    fn end(&self) -> (Family, u128) {
        (self.family, self.last)
    }

    fn meets(&self, other: &AddrRange) -> bool {
        self.start() <= other.end() && other.start() <= self.end()
    }
}

impl From<&Target> for AddrRange {
    fn from(target: &Target) -> AddrRange {
        AddrRange::of(target)
    }
}

impl fmt::Display for AddrRange {
    /// `10.0.0.0/8` when the range is one prefix, else `first-last`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_prefix() {
            Some(prefix) => write!(f, "{prefix}"),
            None => write!(f, "{}-{}", self.first(), self.last()),
        }
    }
}

fn point(a: IpAddr) -> (Family, u128) {
    match a {
        IpAddr::V4(v4) => (Family::V4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (Family::V6, u128::from(v6)),
    }
}

fn addr(family: Family, value: u128) -> IpAddr {
    match family {
        // An IPv4 range never holds a value above u32::MAX.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// A prefix that cannot be added: it overlaps a member or an earlier
/// addition of the same batch. The one wording every backend reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "prefix {new} overlaps {other} ({}); banset keeps one ban per address range, so remove \
     the other prefix first",
    if *.other_is_new { "added earlier in this batch" } else { "already in the set" }
)]
pub struct Overlap {
    /// The prefix being added.
    pub new: Target,
    /// What it overlaps: a member (a range, for an nftables member written
    /// by hand) or an earlier addition.
    pub other: AddrRange,
    /// Whether `other` is an earlier addition of the batch.
    pub other_is_new: bool,
}

impl Overlap {
    /// The refusal as a backend reports it ([`ErrorKind::Invalid`]);
    /// `context` names the operation and kernel object (`add to pf table
    /// banset/f2b`).
    pub fn into_error(self, context: impl Into<String>) -> BackendError {
        BackendError::new(ErrorKind::Invalid, context, self.to_string())
    }
}

/// [`find_overlap`] for a backend whose members are prefixes and hosts: a
/// host member never conflicts (a prefix around it is fine), so only the
/// prefix members count.
pub fn find_prefix_overlap<'a>(
    members: impl IntoIterator<Item = &'a Target>,
    adding: &[Target],
) -> Option<Overlap> {
    let members = members
        .into_iter()
        .filter(|t| !t.is_host())
        .map(AddrRange::of);
    find_overlap(members, adding)
}

/// The first prefix of `adding`, in order, that overlaps one of `members`
/// or an earlier prefix of `adding`, with what it overlaps (a member when
/// both). `members` is the set as the batch meets it (after its removals)
/// and holds only what a new prefix must not overlap. Hosts being added
/// never conflict; a range equal to the prefix is a refresh, not an
/// overlap; members overlapping each other are not banset's to judge.
/// O((m + n) log(m + n)).
pub fn find_overlap(
    members: impl IntoIterator<Item = AddrRange>,
    adding: &[Target],
) -> Option<Overlap> {
    let prefixes: Vec<(usize, Target)> = adding
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, t)| !t.is_host())
        .collect();
    if prefixes.is_empty() {
        return None;
    }
    let members = MemberIndex::new(members);
    let earlier = earliest_overlapping_addition(&prefixes);
    for (k, &(i, t)) in prefixes.iter().enumerate() {
        if let Some(other) = members.overlapping(&AddrRange::of(&t)) {
            return Some(Overlap {
                new: t,
                other,
                other_is_new: false,
            });
        }
        if let Some(j) = earlier[k].filter(|&j| j < i) {
            return Some(Overlap {
                new: t,
                other: AddrRange::of(&adding[j]),
                other_is_new: true,
            });
        }
    }
    None
}

/// Members sorted by first address, with, for every prefix of that order,
/// the two distinct ranges reaching furthest. A range overlaps a member
/// other than itself exactly when, among the members starting at or before
/// its end, the furthest-reaching one other than itself reaches its start.
/// Keeping two is what lets "other than itself" exclude a refresh.
struct MemberIndex {
    starts: Vec<(Family, u128)>,
    furthest: Vec<[Option<AddrRange>; 2]>,
}

impl MemberIndex {
    fn new(members: impl IntoIterator<Item = AddrRange>) -> MemberIndex {
        let mut sorted: Vec<AddrRange> = members.into_iter().collect();
        sorted.sort_unstable_by_key(|r| (r.start(), r.end()));
        sorted.dedup();
        let mut furthest = Vec::with_capacity(sorted.len());
        let mut best: [Option<AddrRange>; 2] = [None, None];
        for r in &sorted {
            let reaches_past = |b: Option<AddrRange>| b.is_none_or(|b| r.end() > b.end());
            if reaches_past(best[0]) {
                best = [Some(*r), best[0]];
            } else if reaches_past(best[1]) {
                best[1] = Some(*r);
            }
            furthest.push(best);
        }
        MemberIndex {
            starts: sorted.iter().map(AddrRange::start).collect(),
            furthest,
        }
    }

    fn overlapping(&self, r: &AddrRange) -> Option<AddrRange> {
        let n = self.starts.partition_point(|s| *s <= r.end());
        let [a, b] = *self.furthest.get(n.checked_sub(1)?)?;
        let other = if a == Some(*r) { b } else { a };
        other.filter(|o| o.meets(r))
    }
}

/// For each of `prefixes` (batch index, prefix; hosts left out), the
/// earliest batch index of a different prefix overlapping it. Prefixes are
/// nested or disjoint, so overlapping means ancestor or descendant in the
/// containment tree; one walk in address order (wider first at a shared
/// start) visits that tree depth first, carrying the earliest index of the
/// ancestors down and the earliest of each subtree up.
fn earliest_overlapping_addition(prefixes: &[(usize, Target)]) -> Vec<Option<usize>> {
    // One node per distinct prefix, holding its earliest batch index.
    let mut order: Vec<usize> = (0..prefixes.len()).collect();
    let range = |k: usize| AddrRange::of(&prefixes[k].1);
    order.sort_by_key(|&k| {
        let r = range(k);
        (r.start(), std::cmp::Reverse(r.end()), prefixes[k].0)
    });
    struct Node {
        range: AddrRange,
        first_index: usize,
        /// Earliest index among strict ancestors.
        above: Option<usize>,
        /// Earliest index among strict descendants, filled as the walk
        /// leaves them.
        below: Option<usize>,
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut node_of = vec![0; prefixes.len()];
    let mut open: Vec<usize> = Vec::new();
    let min = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let close = |nodes: &mut Vec<Node>, open: &mut Vec<usize>| {
        if let Some(done) = open.pop() {
            let subtree = min(Some(nodes[done].first_index), nodes[done].below);
            if let Some(&parent) = open.last() {
                nodes[parent].below = min(nodes[parent].below, subtree);
            }
        }
    };
    for &k in &order {
        let r = range(k);
        if let Some(last) = nodes.last() {
            if last.range == r {
                // The same prefix again: a refresh of the same node.
                node_of[k] = nodes.len() - 1;
                continue;
            }
        }
        while let Some(&top) = open.last() {
            if nodes[top].range.meets(&r) {
                break;
            }
            close(&mut nodes, &mut open);
        }
        let above = open
            .last()
            .map(|&top| min(nodes[top].above, Some(nodes[top].first_index)))
            .unwrap_or(None);
        nodes.push(Node {
            range: r,
            first_index: prefixes[k].0,
            above,
            below: None,
        });
        node_of[k] = nodes.len() - 1;
        open.push(nodes.len() - 1);
    }
    while !open.is_empty() {
        close(&mut nodes, &mut open);
    }
    node_of
        .iter()
        .map(|&n| min(nodes[n].above, nodes[n].below))
        .collect()
}

#[cfg(test)]
mod tests;
