//! Which kernel sets a logical set is made of, and what they are created
//! with.

use std::time::Duration;

use banset_core::{Family, SetSpec, Timeout};

use crate::msg::{NFPROTO_IPV4, NFPROTO_IPV6};

/// ipset's timeout cap, as the [`Duration`] banset's capabilities report.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(crate::msg::MAX_TIMEOUT_SECS as u64);

/// One kernel set: `NAME` for IPv4, `NAME6` for IPv6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSet {
    /// The ipset name.
    pub name: String,
    /// The family it holds.
    pub family: Family,
    /// `hash:ip`, or `hash:net` when the spec allows prefixes.
    pub typename: &'static str,
}

impl KernelSet {
    /// The `NFPROTO_*` of the set's family.
    pub fn nfproto(&self) -> u8 {
        match self.family {
            Family::V4 => NFPROTO_IPV4,
            Family::V6 => NFPROTO_IPV6,
        }
    }

    /// Whether entries carry a prefix length.
    pub fn is_net(&self) -> bool {
        self.typename == HASH_NET
    }

    /// `ipset` wording for messages: `ipset f2b6 (hash:net, inet6)`.
    pub fn describe(&self) -> String {
        format!(
            "ipset {} ({}, {})",
            self.name,
            self.typename,
            family_name(self.family)
        )
    }
}

/// `hash:ip`: single addresses. Given a CIDR it would add (or delete!) every
/// address of the range, so prefixes never reach such a set.
pub const HASH_IP: &str = "hash:ip";
/// `hash:net`: prefixes; a host is a /32 or /128 member.
pub const HASH_NET: &str = "hash:net";

/// ipset's family names.
pub fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "inet",
        Family::V6 => "inet6",
    }
}

/// The kernel set of one family.
pub fn kernel_set(spec: &SetSpec, family: Family) -> KernelSet {
    let name = match family {
        Family::V4 => spec.name.as_str().to_string(),
        Family::V6 => format!("{}6", spec.name),
    };
    KernelSet {
        name,
        family,
        typename: if spec.prefixes { HASH_NET } else { HASH_IP },
    }
}

/// The kernel sets of a spec, IPv4 first.
pub fn kernel_sets(spec: &SetSpec) -> Vec<KernelSet> {
    spec.families
        .list()
        .iter()
        .map(|&f| kernel_set(spec, f))
        .collect()
}

/// The set's default timeout: the spec's, capped, or 0 for "never". Entries
/// always get an explicit timeout, so the default only matters to entries
/// added by hand with `ipset add`.
pub fn default_timeout(spec: &SetSpec) -> u32 {
    match spec.timeout {
        Timeout::Never => 0,
        Timeout::Secs(s) => s.min(u64::from(crate::msg::MAX_TIMEOUT_SECS)) as u32,
    }
}

/// `maxelem`: the spec's bound, or the largest ipset takes when the spec
/// sets none.
pub fn maxelem(spec: &SetSpec) -> u32 {
    spec.max_elements.unwrap_or(u32::MAX)
}

/// The initial number of hash buckets for a set of `maxelem` entries. The
/// kernel grows a table when a bucket overflows, rehashing everything, which
/// is what makes a million-entry bulk add slow if the table starts at
/// ipset's 1,024 buckets. Starting at one bucket per 8 entries (up to 65,536
/// buckets, 512 KiB of pointers) keeps large sets to one or two resizes,
/// while small sets stay at ipset's default.
pub fn hash_size(maxelem: u32) -> u32 {
    (maxelem / 8).max(1).next_power_of_two().clamp(1024, 65_536)
}

/// A ban timeout ipset cannot hold as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryTimeoutError {
    /// Zero: the kernel would make the entry permanent.
    #[error("a timeout of 0 s would make the ban permanent in ipset")]
    Zero,
    /// Above ipset's cap (in whole seconds, rounded up): the kernel would
    /// silently shorten it.
    #[error(
        "timeout {secs} s is above ipset's cap of {cap} s (24.8 days); the kernel would silently \
         shorten it. banset keeps longer bans in its ledger and `banset sync` refreshes them",
        cap = crate::msg::MAX_TIMEOUT_SECS
    )]
    AboveCap {
        /// The timeout asked for.
        secs: u64,
    },
}

/// The kernel's timeout for an entry: 0 for permanent, otherwise whole
/// seconds rounded up. Refused: a timeout above ipset's cap (the kernel
/// would silently shorten it) or a zero one (the kernel would make it
/// permanent).
pub fn entry_timeout(timeout: Option<Duration>) -> Result<u32, EntryTimeoutError> {
    let Some(d) = timeout else {
        return Ok(0);
    };
    if d.is_zero() {
        return Err(EntryTimeoutError::Zero);
    }
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match u32::try_from(secs) {
        Ok(s) if s <= crate::msg::MAX_TIMEOUT_SECS => Ok(s),
        _ => Err(EntryTimeoutError::AboveCap { secs }),
    }
}

#[cfg(test)]
mod tests {
    use banset_core::{BackendKind, Families, SetName};

    use super::*;

    #[test]
    fn names_types_and_families() {
        let mut spec = SetSpec::new(SetName::new("f2b").unwrap(), BackendKind::Ipset);
        let sets = kernel_sets(&spec);
        assert_eq!(sets.len(), 2);
        assert_eq!(
            (sets[0].name.as_str(), sets[0].typename),
            ("f2b", "hash:net")
        );
        assert_eq!((sets[1].name.as_str(), sets[1].nfproto()), ("f2b6", 10));
        assert_eq!(sets[1].describe(), "ipset f2b6 (hash:net, inet6)");
        spec.prefixes = false;
        spec.families = Families::Inet6;
        let sets = kernel_sets(&spec);
        assert_eq!(sets.len(), 1);
        assert_eq!(
            (sets[0].name.as_str(), sets[0].typename),
            ("f2b6", "hash:ip")
        );
    }

    #[test]
    fn timeouts_defaults_and_sizes() {
        let mut spec = SetSpec::new(SetName::new("f2b").unwrap(), BackendKind::Ipset);
        assert_eq!(default_timeout(&spec), 86_400);
        spec.timeout = Timeout::Secs(365 * 86_400);
        assert_eq!(default_timeout(&spec), 2_147_483);
        spec.timeout = Timeout::Never;
        assert_eq!(default_timeout(&spec), 0);
        assert_eq!(maxelem(&spec), 1 << 20);
        spec.max_elements = None;
        assert_eq!(maxelem(&spec), u32::MAX);

        assert_eq!(entry_timeout(None), Ok(0));
        assert_eq!(entry_timeout(Some(Duration::from_millis(1_500))), Ok(2));
        assert_eq!(entry_timeout(Some(MAX_TIMEOUT)), Ok(2_147_483));
        let above = entry_timeout(Some(MAX_TIMEOUT + Duration::from_secs(1))).unwrap_err();
        assert_eq!(above, EntryTimeoutError::AboveCap { secs: 2_147_484 });
        assert!(above.to_string().contains("2147483"));
        assert!(matches!(
            entry_timeout(Some(Duration::from_secs(u64::MAX))),
            Err(EntryTimeoutError::AboveCap { secs: u64::MAX })
        ));
        assert_eq!(
            entry_timeout(Some(Duration::ZERO)),
            Err(EntryTimeoutError::Zero)
        );

        assert_eq!(hash_size(4), 1024);
        assert_eq!(hash_size(65_536), 8_192);
        assert_eq!(hash_size(1 << 20), 65_536);
        assert_eq!(hash_size(u32::MAX), 65_536);
    }
}
