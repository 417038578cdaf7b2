//! What this host accepts from the fleet: one pure function, [`judge`],
//! for the daemon's puller, the snapshot catch-up and the tests alike.
//!
//! Local policy always wins: a remote ban of this host's own address, of
//! an allowlisted address (the same [`Allowlist`] every local ban passes),
//! wider than the configured prefix, from an origin or of a set not
//! accepted, or of a target a local unban holds, never reaches the kernel;
//! it is counted as suppressed. A ban longer than accepted is clamped to
//! the longest accepted, not refused: the other host saw an attack, and
//! this host's admin bounded only how long it costs here.

use crate::allowlist::{AllowReason, Allowlist, Refusal};
use crate::set_name::SetName;
use crate::target::{Family, Target};

/// `[fleet]`'s acceptance settings, as the policy needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetPolicy {
    /// This host's origin name: its own rows come back from the engine and
    /// are skipped (the ledger has them already).
    pub this_host: String,
    /// Origins accepted; `None`: every origin.
    pub origins: Option<Vec<String>>,
    /// Sets accepted; `None`: every set this host has.
    pub sets: Option<Vec<SetName>>,
    /// Widest IPv4 prefix accepted (default /24).
    pub widest_v4: u8,
    /// Widest IPv6 prefix accepted (default /48).
    pub widest_v6: u8,
    /// Longest ban accepted, in seconds; `None`: no bound (permanent bans
    /// too).
    pub longest: Option<u64>,
}

/// The default widest IPv4 prefix a host accepts from others.
pub const DEFAULT_WIDEST_V4: u8 = 24;
/// The default widest IPv6 prefix a host accepts from others.
pub const DEFAULT_WIDEST_V6: u8 = 48;

impl FleetPolicy {
    /// Accept everything the defaults accept, from every origin.
    pub fn new(this_host: impl Into<String>) -> FleetPolicy {
        FleetPolicy {
            this_host: this_host.into(),
            origins: None,
            sets: None,
            widest_v4: DEFAULT_WIDEST_V4,
            widest_v6: DEFAULT_WIDEST_V6,
            longest: None,
        }
    }
}

/// One active remote ban, as the puller read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteBan {
    /// The host that made it.
    pub origin: String,
    /// Its set.
    pub set: SetName,
    /// What it bans.
    pub target: Target,
    /// Seconds left, against the engine's clock; `None`: permanent.
    pub remaining: Option<u64>,
}

/// Why a remote ban never reached this host's kernel. `as_str` names the
/// counter `banset fleet status` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum Suppressed {
    /// From an origin `[fleet] accept_origins` does not name.
    #[error("origin not accepted")]
    Origin,
    /// Of a set `[fleet] accept_sets` does not name.
    #[error("set not accepted")]
    Set,
    /// Of a set this host does not have.
    #[error("no such set here")]
    UnknownSet,
    /// The local set does not take it (family, prefixes).
    #[error("the set does not take it")]
    Inadmissible,
    /// The local set of that name is allow-only: its members are let in.
    #[error("the set is allow-only here")]
    AllowOnly,
    /// Wider than `[fleet] widest_v4` / `widest_v6`.
    #[error("prefix wider than accepted")]
    TooWide,
    /// Of (or covering) one of this host's own addresses.
    #[error("this host's own address")]
    OwnAddress,
    /// Of (or covering) loopback or an `ignore` entry.
    #[error("allowlisted")]
    Allowlisted,
    /// A local unban holds the target until the fleet's ban ends.
    #[error("held by a local unban")]
    Held,
    /// Its set or target does not parse here (hostile, or a newer banset).
    #[error("unreadable")]
    Unreadable,
}

impl Suppressed {
    /// The counter's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Suppressed::Origin => "origin",
            Suppressed::Set => "set",
            Suppressed::UnknownSet => "unknown_set",
            Suppressed::Inadmissible => "inadmissible",
            Suppressed::AllowOnly => "allow_only",
            Suppressed::TooWide => "too_wide",
            Suppressed::OwnAddress => "own_address",
            Suppressed::Allowlisted => "allowlisted",
            Suppressed::Held => "held",
            Suppressed::Unreadable => "unreadable",
        }
    }
}

/// Whether this host takes `ban`, and for how long (seconds left, `None`
/// permanent, after clamping to [`FleetPolicy::longest`]). `held`: a local
/// unban holds the target ([`Suppressed::Held`]).
pub fn judge(
    policy: &FleetPolicy,
    allowlist: &Allowlist,
    ban: &RemoteBan,
    held: bool,
) -> Result<Option<u64>, Suppressed> {
    if let Some(origins) = &policy.origins {
        if !origins.contains(&ban.origin) {
            return Err(Suppressed::Origin);
        }
    }
    if let Some(sets) = &policy.sets {
        if !sets.contains(&ban.set) {
            return Err(Suppressed::Set);
        }
    }
    let widest = match ban.target.family() {
        Family::V4 => policy.widest_v4,
        Family::V6 => policy.widest_v6,
    };
    if ban.target.prefix_len() < widest {
        return Err(Suppressed::TooWide);
    }
    // Width is the fleet's own bound above, tighter than a local ban's,
    // so the allowlist is asked about overlaps only (`force`).
    match allowlist.check(&ban.target, true) {
        Ok(()) => {}
        Err(Refusal::Allowlisted {
            reason: AllowReason::HostAddress,
            ..
        }) => return Err(Suppressed::OwnAddress),
        Err(_) => return Err(Suppressed::Allowlisted),
    }
    if held {
        return Err(Suppressed::Held);
    }
    Ok(match (ban.remaining, policy.longest) {
        (Some(r), Some(l)) => Some(r.min(l)),
        (None, Some(l)) => Some(l),
        (r, None) => r,
    })
}

/// A deadline in this host's clock for a ban with `remaining` seconds
/// left by the engine's clock: host clocks may be wrong, so only the time
/// left crosses between hosts.
pub fn local_deadline(remaining: Option<u64>, local_now: i64) -> Option<i64> {
    remaining.map(|r| local_now.saturating_add(i64::try_from(r).unwrap_or(i64::MAX)))
}

/// The effective ban of a target over its rows from every origin: the
/// longest active one. `None`: no active row; `Some(None)`: permanent.
pub fn effective(
    deadlines: impl IntoIterator<Item = Option<i64>>,
    now: i64,
) -> Option<Option<i64>> {
    let mut best: Option<Option<i64>> = None;
    for d in deadlines {
        if d.is_some_and(|d| d <= now) {
            continue;
        }
        best = match (best, d) {
            (None, d) => Some(d),
            (Some(None), _) | (_, None) => Some(None),
            (Some(Some(a)), Some(b)) => Some(Some(a.max(b))),
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn ban(origin: &str, set: &str, target: &str, remaining: Option<u64>) -> RemoteBan {
        RemoteBan {
            origin: origin.into(),
            set: SetName::new(set).unwrap(),
            target: t(target),
            remaining,
        }
    }

    fn allow() -> Allowlist {
        Allowlist::new()
            .with_host_addresses([t("192.0.2.10")])
            .with_ignored([t("10.0.0.0/8"), t("198.51.100.7")], "banset.toml")
    }

    #[test]
    fn accepts_a_plain_remote_ban() {
        let p = FleetPolicy::new("a");
        assert_eq!(
            judge(
                &p,
                &allow(),
                &ban("b", "ssh", "203.0.113.5", Some(600)),
                false
            ),
            Ok(Some(600))
        );
    }

    #[test]
    fn own_address_allowlisted_and_too_wide_never_pass() {
        let p = FleetPolicy::new("a");
        let a = allow();
        let j = |target| judge(&p, &a, &ban("b", "ssh", target, Some(60)), false);
        assert_eq!(j("192.0.2.10"), Err(Suppressed::OwnAddress));
        // A remote prefix around this host's address is its address too.
        assert_eq!(j("192.0.2.0/24"), Err(Suppressed::OwnAddress));
        // An allowlisted address inside a remote prefix.
        assert_eq!(j("198.51.100.0/24"), Err(Suppressed::Allowlisted));
        assert_eq!(j("10.1.2.3"), Err(Suppressed::Allowlisted));
        assert_eq!(j("127.0.0.1"), Err(Suppressed::Allowlisted));
        assert_eq!(j("198.51.0.0/16"), Err(Suppressed::TooWide));
        assert_eq!(j("2001:db8::/32"), Err(Suppressed::TooWide));
        assert_eq!(j("2001:db8:1::/48"), Ok(Some(60)));
    }

    #[test]
    fn origins_sets_and_holds_filter() {
        let mut p = FleetPolicy::new("a");
        p.origins = Some(vec!["b".into()]);
        p.sets = Some(vec![SetName::new("ssh").unwrap()]);
        let a = allow();
        assert_eq!(
            judge(&p, &a, &ban("c", "ssh", "203.0.113.5", None), false),
            Err(Suppressed::Origin)
        );
        assert_eq!(
            judge(&p, &a, &ban("b", "web", "203.0.113.5", None), false),
            Err(Suppressed::Set)
        );
        assert_eq!(
            judge(&p, &a, &ban("b", "ssh", "203.0.113.5", None), true),
            Err(Suppressed::Held)
        );
    }

    #[test]
    fn longer_than_accepted_is_clamped_permanent_too() {
        let mut p = FleetPolicy::new("a");
        p.longest = Some(3600);
        let a = allow();
        assert_eq!(
            judge(&p, &a, &ban("b", "ssh", "203.0.113.5", Some(86_400)), false),
            Ok(Some(3600))
        );
        assert_eq!(
            judge(&p, &a, &ban("b", "ssh", "203.0.113.5", None), false),
            Ok(Some(3600))
        );
        assert_eq!(
            judge(&p, &a, &ban("b", "ssh", "203.0.113.5", Some(60)), false),
            Ok(Some(60))
        );
    }

    #[test]
    fn effective_is_the_longest_active_row() {
        assert_eq!(effective([], 100), None);
        assert_eq!(effective([Some(50)], 100), None);
        assert_eq!(
            effective([Some(150), Some(50), Some(200)], 100),
            Some(Some(200))
        );
        assert_eq!(effective([Some(150), None], 100), Some(None));
    }

    #[test]
    fn local_deadline_counts_remaining_from_this_hosts_clock() {
        assert_eq!(local_deadline(Some(60), 1000), Some(1060));
        assert_eq!(local_deadline(None, 1000), None);
        assert_eq!(local_deadline(Some(u64::MAX), 1), Some(i64::MAX));
    }
}
