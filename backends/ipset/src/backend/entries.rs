//! Targets to ipset entries and back.

use std::net::IpAddr;

use banset_core::{Family, InvalidTarget, Target};

use crate::layout::KernelSet;
use crate::msg::replies::ListedEntry;
use crate::msg::requests::Entry;

pub(super) fn to_entry(set: &KernelSet, target: &Target, timeout: Option<u32>) -> Entry {
    Entry {
        addr: target.addr(),
        // hash:net: every entry carries its length, hosts included, except
        // for TEST of a host, which must not (see `contains`).
        cidr: (set.is_net() && !(timeout.is_none() && target.is_host()))
            .then_some(target.prefix_len()),
        timeout,
    }
}

/// A single host's prefix length in `addr`'s own family (an IPv4-mapped
/// address is folded to its /32 by [`Target::listed`]).
pub(super) fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

pub(super) fn to_target(set: &KernelSet, e: &ListedEntry) -> Result<Target, ListedEntryError> {
    listed_target(set.family, set.is_net(), e)
}

/// A member listed from the kernel that banset cannot take as a target:
/// the address (and length, if the entry has one) as listed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListedEntryError {
    /// Not a target at all (`0.0.0.0`, a length past the family's).
    #[error("listed entry {addr}{}: {why}", len.map(|l| format!("/{l}")).unwrap_or_default())]
    Invalid {
        /// The address listed.
        addr: IpAddr,
        /// Its prefix length, when the set is a `hash:net`.
        len: Option<u8>,
        /// What is wrong with it.
        why: InvalidTarget,
    },
    /// An IPv4-mapped address in an `inet6` set.
    #[error(
        "listed entry {addr} (IPv4-mapped) in an {family} set: banset never writes one there; \
         delete it with ipset"
    )]
    WrongFamily {
        /// The address listed.
        addr: IpAddr,
        /// The family of the set it is in.
        family: Family,
    },
}

/// The target of an entry listed from an ipset of `family` (`is_net`: a
/// `hash:net`, whose entries carry a prefix length). An IPv4-mapped
/// address in an `inet6` set is refused, as in the nftables backend
/// (`members_of`): it is a target of the IPv4 family, which banset keeps
/// in the `inet` set, so it would be looked for and removed there, never
/// where it is. Refused by name rather than skipped, which would hide a
/// kernel member from `list` and `sync` without a word.
pub fn listed_target(
    family: Family,
    is_net: bool,
    e: &ListedEntry,
) -> Result<Target, ListedEntryError> {
    let len = e.cidr.filter(|_| is_net);
    let target = Target::listed(e.addr, len.unwrap_or_else(|| max_len(e.addr))).map_err(|why| {
        ListedEntryError::Invalid {
            addr: e.addr,
            len,
            why,
        }
    })?;
    if target.family() != family {
        return Err(ListedEntryError::WrongFamily {
            addr: e.addr,
            family,
        });
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout;

    #[test]
    fn hosts_in_hash_net_carry_their_length_except_in_tests() {
        let net = KernelSet {
            name: "n".into(),
            family: Family::V4,
            typename: layout::HASH_NET,
        };
        let ip = KernelSet {
            typename: layout::HASH_IP,
            ..net.clone()
        };
        let host: Target = "192.0.2.1".parse().unwrap();
        assert_eq!(to_entry(&net, &host, Some(5)).cidr, Some(32));
        assert_eq!(to_entry(&net, &host, None).cidr, None);
        assert_eq!(to_entry(&ip, &host, Some(5)).cidr, None);
        let prefix: Target = "10.0.0.0/8".parse().unwrap();
        assert_eq!(to_entry(&net, &prefix, None).cidr, Some(8));
    }

    /// As in the nftables backend (found there by the nftables_dump fuzz
    /// target): `::ffff:1.2.3.4` listed from an inet6 set became the IPv4
    /// target 1.2.3.4, which banset would look for in the inet set.
    #[test]
    fn an_ipv4_mapped_entry_in_an_inet6_set_is_refused() {
        let entry = |addr: &str, cidr| ListedEntry {
            addr: addr.parse().unwrap(),
            cidr,
            timeout: None,
            nomatch: false,
        };
        for is_net in [false, true] {
            let e = listed_target(Family::V6, is_net, &entry("::ffff:1.2.3.4", Some(128)));
            let e = e.unwrap_err();
            assert!(matches!(
                e,
                ListedEntryError::WrongFamily {
                    family: Family::V6,
                    ..
                }
            ));
            assert!(e.to_string().contains("IPv4-mapped"));
        }
        let ok = listed_target(Family::V6, true, &entry("2001:db8::", Some(32))).unwrap();
        assert_eq!(ok, "2001:db8::/32".parse::<Target>().unwrap());
        let ok = listed_target(Family::V4, false, &entry("192.0.2.1", None)).unwrap();
        assert_eq!(ok, "192.0.2.1".parse::<Target>().unwrap());
    }
}
