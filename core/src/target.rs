//! `Target`: the thing a ban applies to, an IPv4/IPv6 address or prefix.
//!
//! Targets arrive from fail2ban tags, cron scripts and log lines, so parsing is
//! strict and every error echoes the input. A target is normalised once, here,
//! so that every later comparison (ledger keys, kernel listings, overlap
//! checks) can compare values instead of spellings:
//! - host bits below the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`);
//! - IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is folded to IPv4, because that is the
//!   address the kernel sees on the wire for such a peer;
//! - zone ids (`fe80::1%eth0`) are refused: a ban is not per interface.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The address family of a target or of a kernel set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Longest prefix length in this family (a single host).
    pub fn max_prefix_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `IPv4` or `IPv6`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IPv4 or IPv6 address or prefix, normalised (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a string is not a target. The message always quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {input:?}: {reason}")]
pub struct ParseTargetError {
    /// The rejected input, cut to 80 bytes so that hostile input cannot
    /// become an oversized log line.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Why an address and prefix length are not a target banset will ban.
/// The message is the reason alone; callers name the input they were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidTarget {
    /// What is wrong with it.
    pub reason: &'static str,
}

const MAX_INPUT_LEN: usize = 64;

/// The widest IPv4 prefix a log line may ask for (`<SUBNET>`-like tags).
///
/// A log line is written by whoever can reach the service, so a prefix in it
/// is the attacker's choice. The general rule ([`crate::WIDEST_V4_PREFIX`],
/// /8 unless forced) protects an admin from a typo; a log line gets no
/// `--force` and must not cost a whole provider: a /16 is already 65,536
/// addresses, the most any one offender's line can take down.
pub const WIDEST_LOGGED_V4_PREFIX: u8 = 16;
/// The IPv6 counterpart of [`WIDEST_LOGGED_V4_PREFIX`]: a /32 is a whole
/// provider's allocation; a site is a /48, one customer a /56 or /64.
pub const WIDEST_LOGGED_V6_PREFIX: u8 = 32;

/// The NAT64 well-known prefix `64:ff9b::/96` (RFC 6052): the IPv6 face of
/// the IPv4 address in its last 32 bits.
const NAT64_PREFIX: u128 = 0x0064_ff9b_0000_0000_0000_0000_0000_0000;

impl Target {
    /// A single host. IPv4-mapped IPv6 addresses are folded to IPv4.
    /// Refused: addresses no packet can come from or that banset would
    /// never mean to ban (see [`Target::prefix`]).
    pub fn host(addr: IpAddr) -> Result<Target, InvalidTarget> {
        let addr = fold_mapped(addr);
        Target::prefix(addr, family_of(addr).max_prefix_len())
    }

    /// A prefix; host bits are cleared. This is the one constructor every
    /// other one ([`Target::host`], [`Target::parse`]) goes through, so no
    /// path (CLI, log line, fail2ban, sshguard, blocklistd, ledger) can hold
    /// a target that skipped these checks. Refused:
    /// - a prefix length too long for the family;
    /// - the unspecified address as a host (`0.0.0.0`, `::`): it is no
    ///   peer, and banning it drops DHCP discovery;
    /// - the IPv4 broadcast address as a host;
    /// - multicast (a host, or a prefix inside `224.0.0.0/4` or `ff00::/8`):
    ///   no connection comes from it;
    /// - the v4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`)
    ///   forms of any of these. Their loopback forms are on the allowlist
    ///   ([`crate::Allowlist::new`]), beside loopback itself.
    pub fn prefix(addr: IpAddr, prefix_len: u8) -> Result<Target, InvalidTarget> {
        let target = Target::listed(addr, prefix_len)?;
        target.check_bannable()?;
        Ok(target)
    }

    /// A member read back from a kernel set: only its shape (the prefix
    /// length) is checked. What a kernel holds must be listable and
    /// removable even when banset would never have put it there (a
    /// hand-added `0.0.0.0`, a ban from an older banset), so that `sync`
    /// can take it out. Never build a target from input with it; kernel
    /// listing decoders are its only callers.
    pub fn listed(addr: IpAddr, prefix_len: u8) -> Result<Target, InvalidTarget> {
        let invalid = |reason| InvalidTarget { reason };
        let (addr, prefix_len) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix_len >= 96 => (IpAddr::V4(v4), prefix_len - 96),
                Some(_) => return Err(invalid("an IPv4-mapped prefix must be /96 or longer")),
                None => (addr, prefix_len),
            },
            IpAddr::V4(_) => (addr, prefix_len),
        };
        if prefix_len > family_of(addr).max_prefix_len() {
            return Err(invalid("prefix length is too long for the address family"));
        }
        Ok(Target {
            addr: mask(addr, prefix_len),
            prefix_len,
        })
    }

    /// The text of an address or prefix as a kernel could hold it, checked
    /// for shape only ([`Target::listed`]): for removing what an unreadable
    /// ledger row once put into a kernel set. `None` when it is no address.
    pub(crate) fn parse_listed(input: &str) -> Option<Target> {
        if input.len() > MAX_INPUT_LEN {
            return None;
        }
        let (addr, len) = match input.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (input, None),
        };
        let addr = IpAddr::from_str(addr).ok()?;
        let len = match len {
            // Digits only: `u8::from_str` would take a `+`.
            Some(l) if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) => return None,
            Some(l) => l.parse().ok()?,
            None => family_of(addr).max_prefix_len(),
        };
        Target::listed(addr, len).ok()
    }

    fn check_bannable(&self) -> Result<(), InvalidTarget> {
        let invalid = |reason| Err(InvalidTarget { reason });
        let v4_face = match self.addr {
            IpAddr::V4(a) => Some((a, self.prefix_len)),
            IpAddr::V6(a) => {
                if a.is_multicast() && self.prefix_len >= 8 {
                    return invalid("a multicast address cannot be banned");
                }
                embedded_v4(a).and_then(|v4| Some((v4, self.prefix_len.checked_sub(96)?)))
            }
        };
        let host = self.is_host();
        if host && self.addr.is_unspecified() {
            return invalid("the unspecified address cannot be banned");
        }
        if let Some((v4, len)) = v4_face {
            let v4_host = len == 32;
            if v4_host && v4.is_unspecified() {
                return invalid("the unspecified address cannot be banned");
            }
            if v4_host && v4.is_broadcast() {
                return invalid("the broadcast address cannot be banned");
            }
            if v4.is_multicast() && len >= 4 {
                return invalid("a multicast address cannot be banned");
            }
        }
        Ok(())
    }

    /// [`Target::parse`], for text a log line captured: prefixes wider than
    /// [`WIDEST_LOGGED_V4_PREFIX`] / [`WIDEST_LOGGED_V6_PREFIX`] are refused
    /// too, because whoever wrote the line chose them.
    pub fn parse_logged(input: &str) -> Result<Target, ParseTargetError> {
        let target = Target::parse(input)?;
        let widest = match target.family() {
            Family::V4 => WIDEST_LOGGED_V4_PREFIX,
            Family::V6 => WIDEST_LOGGED_V6_PREFIX,
        };
        if target.prefix_len < widest {
            return Err(ParseTargetError {
                input: truncate_for_error(input),
                reason: "a prefix this wide is not taken from a log line",
            });
        }
        Ok(target)
    }

    /// Parses `1.2.3.4`, `10.0.0.0/8`, `2001:db8::1`, `2001:db8::/64`, and the
    /// bracketed form `[2001:db8::1]` that some log formats use. The result
    /// passes the checks of [`Target::prefix`].
    pub fn parse(input: &str) -> Result<Target, ParseTargetError> {
        let err = |reason| ParseTargetError {
            input: truncate_for_error(input),
            reason,
        };
        if input.is_empty() {
            return Err(err("empty"));
        }
        if input.len() > MAX_INPUT_LEN {
            return Err(err("too long to be an address"));
        }
        if input.contains('%') {
            return Err(err("zone ids (%iface) are not allowed in a ban"));
        }
        let (addr_part, len_part) = match input.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (input, None),
        };
        let addr_part = match addr_part.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .ok_or_else(|| err("unbalanced '['"))?,
            None => addr_part,
        };
        let addr = IpAddr::from_str(addr_part).map_err(|_| err("not an IPv4 or IPv6 address"))?;
        match len_part {
            None => Target::host(addr),
            Some(l) => {
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("prefix length must be a number"));
                }
                let len: u8 = l
                    .parse()
                    .map_err(|_| err("prefix length must be a number"))?;
                Target::prefix(addr, len)
            }
        }
        .map_err(|e| err(e.reason))
    }

    /// The first address of the target (host bits already cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length: 32 or 128 for a single host.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The address family.
    pub fn family(&self) -> Family {
        family_of(self.addr)
    }

    /// True for a single address (/32 or /128).
    pub fn is_host(&self) -> bool {
        self.prefix_len == self.family().max_prefix_len()
    }

    /// The last address covered by this target.
    pub fn last(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let host_bits = 32 - u32::from(self.prefix_len);
                let m = if host_bits == 32 {
                    u32::MAX
                } else {
                    (1u32 << host_bits) - 1
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) | m))
            }
            IpAddr::V6(a) => {
                let host_bits = 128 - u32::from(self.prefix_len);
                let m = if host_bits == 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) | m))
            }
        }
    }

    /// The first address after this target, or `None` when it reaches the top
    /// of the address space. Interval sets (nftables) mark a range's end with it.
    pub fn next_after(&self) -> Option<IpAddr> {
        match self.last() {
            IpAddr::V4(a) => u32::from(a)
                .checked_add(1)
                .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
            IpAddr::V6(a) => u128::from(a)
                .checked_add(1)
                .map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        }
    }

    /// True when every address of `other` is inside `self`.
    pub fn contains(&self, other: &Target) -> bool {
        self.family() == other.family()
            && self.prefix_len <= other.prefix_len
            && mask(other.addr, self.prefix_len) == self.addr
    }

    /// True when the two share at least one address.
    pub fn overlaps(&self, other: &Target) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The address bytes in network order (4 or 16 bytes), as kernels want them.
    pub fn addr_octets(&self) -> Vec<u8> {
        match self.addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }
}

impl FromStr for Target {
    type Err = ParseTargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::parse(s)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // IPv4 without the `fmt` machinery: the ledger binds a target's
        // text to every statement, and `Ipv4Addr`'s Display (four padded
        // integers) was a tenth of a fleet snapshot's instructions.
        match self.addr {
            IpAddr::V4(a) => f.write_str(format_ipv4(a, &mut [0u8; 15]))?,
            IpAddr::V6(a) => write!(f, "{a}")?,
        }
        if !self.is_host() {
            write!(f, "/{}", self.prefix_len)?;
        }
        Ok(())
    }
}

impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // `list --json` writes one target per member; for 100,000 IPv4 hosts
        // the formatting machinery was a tenth of the command's time.
        match self.addr {
            IpAddr::V4(a) if self.is_host() => {
                let mut buf = [0u8; 15];
                s.serialize_str(format_ipv4(a, &mut buf))
            }
            _ => s.collect_str(self),
        }
    }
}

/// Dotted-quad text of `addr` in `buf`, without the `fmt` machinery.
fn format_ipv4(addr: Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut len = 0;
    for (i, octet) in addr.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buf[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buf[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        buf[len] = b'0' + octet % 10;
        len += 1;
    }
    std::str::from_utf8(&buf[..len]).expect("ASCII digits and dots")
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Target::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

fn fold_mapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

/// The IPv4 address inside a v4-compatible (`::a.b.c.d`, deprecated but
/// still routed by some stacks) or NAT64 (`64:ff9b::a.b.c.d`) IPv6 address.
/// `::` and `::1` are IPv6's own unspecified and loopback, not embeddings.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(a);
    let high = bits >> 32;
    let is_compat = high == 0 && bits > 1;
    let is_nat64 = high << 32 == NAT64_PREFIX;
    (is_compat || is_nat64).then(|| Ipv4Addr::from(bits as u32))
}

fn mask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// Error messages quote the input, but an attacker-sized input must not turn
/// into an attacker-sized log line.
pub(crate) fn truncate_for_error(input: &str) -> String {
    const LIMIT: usize = 80;
    if input.len() <= LIMIT {
        return input.to_string();
    }
    let mut end = LIMIT;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &input[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(t("1.2.3.4").to_string(), "1.2.3.4");
        assert_eq!(t("1.2.3.4/32").to_string(), "1.2.3.4");
        assert_eq!(t("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(t("2001:db8::1/64").to_string(), "2001:db8::/64");
        assert_eq!(t("2001:DB8::1").to_string(), "2001:db8::1");
        assert_eq!(t("[2001:db8::1]").to_string(), "2001:db8::1");
        assert_eq!(t("::ffff:192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(t("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
        assert_eq!(t("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(t("::/0").to_string(), "::/0");
        assert_eq!(t("1.2.3.4").family(), Family::V4);
        assert!(t("2001:db8::1").is_host());
        assert!(!t("2001:db8::/64").is_host());
    }

    #[test]
    fn rejects_bad_input_naming_it() {
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "1.2.3.4/-1",
            "2001:db8::/129",
            "fe80::1%eth0",
            " 1.2.3.4",
            "1.2.3.4 ",
            "[1.2.3.4",
            "example.com",
            "0.0.0.0",
            "::",
            "1.2.3.4; rm -rf /",
            "::ffff:1.2.3.4/64",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.input, bad, "{bad}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let long = "1".repeat(500);
        let e = Target::parse(&long).unwrap_err();
        assert!(e.to_string().len() < 200);
    }

    #[test]
    fn log_line_from_unspecified_address_is_not_banned() {
        // Each of these reached the kernel and the ledger from one log line,
        // and every later read of the set failed on the row (issue 13.1).
        for bad in [
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "0.0.0.0/32",
            "::/128",
            "255.255.255.255",
            "::ffff:255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "224.0.0.0/4",
            "ff02::1",
            "ff00::/8",
            "::0.0.0.0/128",
            "::255.255.255.255",
            "::224.0.0.1",
            "64:ff9b::",
            "64:ff9b::0.0.0.0",
            "64:ff9b::255.255.255.255",
            "64:ff9b::224.0.0.5",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains("cannot be banned"), "{bad}: {e}");
            assert!(Target::parse_logged(bad).is_err(), "{bad}");
        }
        let addr = |s: &str| s.parse::<IpAddr>().unwrap();
        for bad in [
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "255.255.255.255",
            "ff02::1",
        ] {
            assert!(Target::host(addr(bad)).is_err(), "{bad}");
        }
        assert!(Target::prefix(addr("224.1.0.0"), 16).is_err());
        // Wider blocks that only include these are real address space.
        for good in [
            "0.0.0.0/8",
            "0.0.0.0/0",
            "::/0",
            "192.0.0.0/3",
            "255.255.255.0/24",
            "::1.2.3.4",
            "64:ff9b::1.2.3.4",
            "64:ff9b::/96",
        ] {
            assert!(Target::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn kernel_listing_still_reads_what_banset_refuses() {
        // sync must see a hand-added (or formerly allowed) 0.0.0.0 to remove it.
        let t = Target::listed("0.0.0.0".parse().unwrap(), 32).unwrap();
        assert_eq!(t.to_string(), "0.0.0.0");
        assert!(Target::listed("1.2.3.4".parse().unwrap(), 33).is_err());
    }

    #[test]
    fn log_line_prefix_wider_than_the_logged_limit_is_refused() {
        for wide in [
            "10.0.0.0/15",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "2001:db8::/31",
            "::/0",
        ] {
            let e = Target::parse_logged(wide).unwrap_err();
            assert!(e.to_string().contains("log line"), "{e}");
            assert!(Target::parse(wide).is_ok());
        }
        for ok in [
            "10.0.0.0/16",
            "192.0.2.0/24",
            "2001:db8::/32",
            "2001:db8::/64",
        ] {
            assert!(Target::parse_logged(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn fast_ipv4_text_matches_display() {
        for a in [
            "0.0.0.1",
            "1.2.3.4",
            "10.0.100.9",
            "255.255.255.255",
            "192.168.10.99",
        ] {
            let addr: Ipv4Addr = a.parse().unwrap();
            let mut buf = [0u8; 15];
            assert_eq!(format_ipv4(addr, &mut buf), addr.to_string());
        }
        assert_eq!(
            serde_json::to_string(&[t("1.2.3.4"), t("10.0.0.0/8"), t("2001:db8::1")]).unwrap(),
            r#"["1.2.3.4","10.0.0.0/8","2001:db8::1"]"#
        );
    }

    #[test]
    fn containment_and_ends() {
        assert!(t("10.0.0.0/8").contains(&t("10.9.9.9")));
        assert!(!t("10.0.0.0/8").contains(&t("11.0.0.0")));
        assert!(t("10.1.0.0/16").overlaps(&t("10.0.0.0/8")));
        assert!(!t("10.0.0.0/8").overlaps(&t("2001:db8::/32")));
        assert_eq!(
            t("10.0.0.0/8").next_after().unwrap().to_string(),
            "11.0.0.0"
        );
        assert_eq!(t("255.0.0.0/8").next_after(), None);
        assert_eq!(t("0.0.0.0/0").last().to_string(), "255.255.255.255");
        assert_eq!(
            t("2001:db8::/64").next_after().unwrap().to_string(),
            "2001:db8:0:1::"
        );
        assert_eq!(t("1.2.3.4").next_after().unwrap().to_string(), "1.2.3.5");
    }
}
