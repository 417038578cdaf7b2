//! A set's policy: what its members mean to the blocking rule.
//!
//! Named `Ban` and `AllowOnly` rather than `Deny`/`Allow`: banset's sets
//! are ban sets (the ledger, `add`, `history` all speak of bans), and
//! "allow-only" says both halves of the other policy at once: members are
//! allowed, and only they. A plain "allow" would read as "members are
//! exempt from something else", which is the allowlist (`ignore`), a
//! different thing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a set's members mean to its blocking rule ([`crate::spec::Hook`]).
///
/// Backends learn it from [`crate::spec::SetSpec::policy`] and build the hook
/// rule accordingly in `ensure_set` and `change_set`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetPolicy {
    /// Members are blocked on the hook's ports: the default, what every
    /// set was before policies existed.
    #[default]
    Ban,
    /// Only members (plus loopback and the host's own addresses, always)
    /// reach the hook's ports; every other source is blocked as the hook's
    /// block type says. Ban sets still apply to members.
    AllowOnly,
}

impl SetPolicy {
    /// Every policy, in the order messages list them.
    pub const ALL: [SetPolicy; 2] = [SetPolicy::Ban, SetPolicy::AllowOnly];

    /// The name used on the command line, in banset.toml, the ledger and
    /// `--json`: `ban` or `allow-only`. `FromStr` accepts exactly these.
    pub fn name(self) -> &'static str {
        match self {
            SetPolicy::Ban => "ban",
            SetPolicy::AllowOnly => "allow-only",
        }
    }

    /// Whether this is the default policy (left out of stored specs, so
    /// specs stored before policies existed still compare equal).
    pub fn is_ban(&self) -> bool {
        *self == SetPolicy::Ban
    }

    /// A new set's default member timeout when nobody chose one: a ban
    /// set's is `ban_default` (bans end), an allow-only set's is never:
    /// its members are the admin's own list, and one that expired by
    /// itself would lock its user out the next day.
    pub fn default_timeout(self, ban_default: crate::timeout::Timeout) -> crate::timeout::Timeout {
        match self {
            SetPolicy::Ban => ban_default,
            SetPolicy::AllowOnly => crate::timeout::Timeout::Never,
        }
    }

    /// Whether the set's hook blocks a source, given whether the source is
    /// a member. Loopback and the host's own addresses are never blocked by
    /// an allow-only set; the caller knows which those are.
    pub fn blocks(self, member: bool) -> bool {
        match self {
            SetPolicy::Ban => member,
            SetPolicy::AllowOnly => !member,
        }
    }
}

/// Why a hook cannot go with a policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyHookError {
    /// An allow-only rule on every port: the rule sees every packet coming
    /// in, the replies to this host's own connections out (DNS, updates,
    /// mail) too, and those come from non-members.
    #[error(
        "an allow-only set needs --ports (ports = [...] in banset.toml): on every port it would also drop the replies to this host's own connections out"
    )]
    EveryPort,
}

impl fmt::Display for SetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SetPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SetPolicy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown set policy {s:?} (use ban or allow-only)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for p in SetPolicy::ALL {
            assert_eq!(p.name().parse::<SetPolicy>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
        }
        let e = "allow".parse::<SetPolicy>().unwrap_err();
        assert!(e.contains("\"allow\"") && e.contains("allow-only"), "{e}");
    }

    #[test]
    fn allow_only_members_never_expire_by_default() {
        let day = crate::timeout::Timeout::Secs(86_400);
        assert_eq!(SetPolicy::Ban.default_timeout(day), day);
        assert_eq!(
            SetPolicy::AllowOnly.default_timeout(day),
            crate::timeout::Timeout::Never
        );
    }

    #[test]
    fn allow_only_blocks_non_members() {
        assert!(SetPolicy::Ban.blocks(true) && !SetPolicy::Ban.blocks(false));
        assert!(!SetPolicy::AllowOnly.blocks(true) && SetPolicy::AllowOnly.blocks(false));
    }
}
