//! The allowlist: addresses banset refuses to ban, checked in the core before
//! any backend call, so no backend can forget it.
//!
//! Banning loopback or one of the host's own addresses cuts the host off from
//! itself (or the admin from the host); banning `0.0.0.0/0` drops the world.
//! These are refused with an error that says which entry matched and why.

use std::fmt;

use crate::target::{Family, Target};

/// Why an address is on the allowlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowReason {
    /// `127.0.0.0/8` or `::1`: banning it cuts the host off from its own services.
    Loopback,
    /// One of this host's own addresses.
    HostAddress,
    /// An `ignore` prefix from the configuration, with where it came from.
    Configured(String),
}

impl fmt::Display for AllowReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowReason::Loopback => f.write_str("loopback is never banned"),
            AllowReason::HostAddress => f.write_str("it is an address of this host"),
            AllowReason::Configured(origin) => write!(f, "it is on the ignore list ({origin})"),
        }
    }
}

/// Prefixes shorter than these are "overly wide" and need `--force`: a /8 of
/// IPv4 or a /16 of IPv6 is already a provider-sized block.
pub const WIDEST_V4_PREFIX: u8 = 8;
/// The IPv6 counterpart of [`WIDEST_V4_PREFIX`].
pub const WIDEST_V6_PREFIX: u8 = 16;

/// Why [`Allowlist::check`] refused a target. Refusals are input errors
/// (exit code 2): nothing was changed, and the message says what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The target overlaps an allowlist entry, in either direction: it lies
    /// inside the entry, or it is a prefix that contains the entry.
    #[error("refusing to ban {target}: it overlaps {entry}, and {reason}")]
    Allowlisted {
        /// The target that was refused.
        target: Target,
        /// The allowlist entry it overlaps.
        entry: Target,
        /// Why that entry is protected.
        reason: AllowReason,
    },
    /// The prefix is shorter than [`WIDEST_V4_PREFIX`] or [`WIDEST_V6_PREFIX`]
    /// and `force` was not given.
    #[error(
        "refusing to ban {target}: it covers {}; pass --force if you mean it",
        coverage(target)
    )]
    TooWide {
        /// The refused prefix.
        target: Target,
    },
}

/// What a too-wide prefix covers, for [`Refusal::TooWide`]:
/// "every IPv4 address", "a /4 of IPv6 addresses".
fn coverage(target: &Target) -> String {
    match target.prefix_len() {
        0 => format!("every {} address", target.family()),
        len => format!("a /{len} of {} addresses", target.family()),
    }
}

/// Addresses banset refuses to ban, each with the reason it is protected.
///
/// It is checked by [`Engine`](crate::Engine) before any backend call, so no
/// backend can forget it. Build it once per process: [`Allowlist::new`]
/// (loopback), then [`with_host_addresses`](Allowlist::with_host_addresses)
/// and [`with_ignored`](Allowlist::with_ignored).
#[derive(Clone, Debug)]
pub struct Allowlist {
    entries: Vec<(Target, AllowReason)>,
}

impl Default for Allowlist {
    fn default() -> Self {
        Allowlist::new()
    }
}

impl Allowlist {
    /// Loopback only; add the host's addresses and the configured prefixes.
    pub fn new() -> Allowlist {
        // Loopback in its IPv6 disguises too: v4-compatible (`::127.0.0.1`)
        // and NAT64 (`64:ff9b::127.0.0.1`) forms reach the same host on
        // stacks that route them, and a log line can name them.
        let loopback = [
            "127.0.0.0/8",
            "::1",
            "::127.0.0.0/104",
            "64:ff9b::127.0.0.0/104",
        ]
        .into_iter()
        .map(|s| (Target::parse(s).expect("static"), AllowReason::Loopback))
        .collect();
        Allowlist { entries: loopback }
    }

    /// Adds this host's own addresses (gathered by the caller: the core makes
    /// no OS calls).
    pub fn with_host_addresses(mut self, addrs: impl IntoIterator<Item = Target>) -> Allowlist {
        self.entries
            .extend(addrs.into_iter().map(|t| (t, AllowReason::HostAddress)));
        self
    }

    /// Adds configured `ignore` prefixes; `origin` says where they came from.
    pub fn with_ignored(
        mut self,
        prefixes: impl IntoIterator<Item = Target>,
        origin: &str,
    ) -> Allowlist {
        self.entries.extend(
            prefixes
                .into_iter()
                .map(|t| (t, AllowReason::Configured(origin.to_string()))),
        );
        self
    }

    /// Refuses a target that overlaps an allowlist entry (either way round:
    /// banning 192.168.0.0/16 would also ban this host's 192.168.1.10), or
    /// that is overly wide without `force`.
    pub fn check(&self, target: &Target, force: bool) -> Result<(), Refusal> {
        // Width first: for 0.0.0.0/0 "it covers every address" is the
        // useful message, not "it overlaps loopback".
        let widest = match target.family() {
            Family::V4 => WIDEST_V4_PREFIX,
            Family::V6 => WIDEST_V6_PREFIX,
        };
        if !force && target.prefix_len() < widest {
            return Err(Refusal::TooWide { target: *target });
        }
        if let Some((entry, reason)) = self.entries.iter().find(|(e, _)| e.overlaps(target)) {
            return Err(Refusal::Allowlisted {
                target: *target,
                entry: *entry,
                reason: reason.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn refuses_loopback_host_and_ignored() {
        let allow = Allowlist::new()
            .with_host_addresses([t("192.168.1.10"), t("2001:db8::10")])
            .with_ignored([t("10.0.0.0/8")], "/etc/banset/banset.toml");
        for (bad, words) in [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("192.168.1.10", "address of this host"),
            ("192.168.0.0/16", "address of this host"),
            ("2001:db8::/64", "address of this host"),
            ("10.1.2.3", "banset.toml"),
        ] {
            let e = allow.check(&t(bad), false).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains(words), "{e}");
        }
        assert!(allow.check(&t("192.168.1.11"), false).is_ok());
        assert!(allow.check(&t("198.51.100.0/24"), false).is_ok());
    }

    #[test]
    fn refuses_wide_prefixes_unless_forced() {
        let allow = Allowlist { entries: vec![] };
        for wide in ["0.0.0.0/0", "::/0", "12.0.0.0/7", "2000::/3"] {
            let e = allow.check(&t(wide), false).unwrap_err().to_string();
            assert!(e.contains(wide) && e.contains("--force"), "{e}");
            assert!(allow.check(&t(wide), true).is_ok());
        }
        assert!(allow.check(&t("11.0.0.0/8"), false).is_ok());
        assert!(allow.check(&t("2001:db8::/32"), false).is_ok());
        // the world is never banned while loopback is on the list
        assert!(Allowlist::new().check(&t("0.0.0.0/0"), true).is_err());
    }

    #[test]
    fn too_wide_message_says_addresses_once() {
        let allow = Allowlist { entries: vec![] };
        let msg = |s| allow.check(&t(s), false).unwrap_err().to_string();
        assert_eq!(
            msg("0.0.0.0/0"),
            "refusing to ban 0.0.0.0/0: it covers every IPv4 address; pass --force if you mean it"
        );
        assert_eq!(
            msg("::/0"),
            "refusing to ban ::/0: it covers every IPv6 address; pass --force if you mean it"
        );
        assert_eq!(
            msg("12.0.0.0/7"),
            "refusing to ban 12.0.0.0/7: it covers a /7 of IPv4 addresses; pass --force if you mean it"
        );
    }

    #[test]
    fn v4_compatible_and_nat64_loopback_are_loopback() {
        for bad in ["::127.0.0.1", "64:ff9b::127.0.0.1", "64:ff9b::7f00:0/120"] {
            let e = Allowlist::new()
                .check(&t(bad), false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("loopback"), "{e}");
        }
        assert!(Allowlist::new()
            .check(&t("64:ff9b::1.2.3.4"), false)
            .is_ok());
        assert!(Allowlist::new().check(&t("0.0.0.0/0"), true).is_err());
    }
}
