//! The lockout guard: whether making a set allow-only on some ports (a new
//! set, more ports, a config reload) would cut off the admin doing it.
//!
//! A pure decision: the caller reads the ssh session's environment and the
//! established TCP connections ([`Peer`]), the set's members and the host's
//! own addresses, and this module says whether to go on. The CLI's create
//! and set-options and the daemon's reload all ask it, so they refuse the
//! same things with the same words.

use std::fmt;
use std::net::IpAddr;

use crate::policy::SetPolicy;
use crate::spec::{Protocol, SetSpec};
use crate::target::Target;

/// Where a peer was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The ssh session running the command: the variable it came from
    /// (`SSH_CONNECTION` or `SSH_CLIENT`).
    SshSession(&'static str),
    /// An established TCP connection to this host (`/proc/net/tcp{,6}`).
    Established,
}

/// A remote address talking TCP to one of this host's ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The remote (source) address.
    pub addr: IpAddr,
    /// This host's port it is connected to.
    pub local_port: u16,
    /// Where it was seen.
    pub seen: Seen,
}

/// Why enabling an allow-only policy is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lockout {
    /// A peer on a newly restricted port is not a member.
    Outsider {
        /// The set.
        set: String,
        /// The peer that would be cut off.
        peer: Peer,
    },
    /// The set has no member: every source would be blocked.
    Empty {
        /// The set.
        set: String,
    },
    /// The last members would go (`del`, `flush`) while the rule stands.
    Emptied {
        /// The set.
        set: String,
    },
}

impl fmt::Display for Lockout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lockout::Outsider { set, peer } => {
                let who = match peer.seen {
                    Seen::SshSession(var) => format!("this ssh session (from {var})"),
                    Seen::Established => "an established connection".to_string(),
                };
                write!(
                    f,
                    "allow-only set {set} would lock out {}: {who} to port {} comes from it and it is not a member; add it first (banset add {set} {}), or pass --force",
                    peer.addr, peer.local_port, peer.addr
                )
            }
            Lockout::Emptied { set } => write!(
                f,
                "taking the last members out of allow-only set {set} would block every source on its ports; destroy the set to lift its rule, or pass --force"
            ),
            Lockout::Empty { set } => write!(
                f,
                "allow-only set {set} is empty: it would block every source on its ports; fill it first (create it with --no-hook, add or replace its members, then set-options {set} --ports ...), or pass --force"
            ),
        }
    }
}

impl std::error::Error for Lockout {}

/// Whether `spec`'s rule lets only members reach TCP port `port`.
fn restricts(spec: &SetSpec, port: u16) -> bool {
    spec.policy == SetPolicy::AllowOnly
        && spec.hook.as_ref().is_some_and(|h| {
            h.protocol.is_none_or(|p| p == Protocol::Tcp)
                && (h.ports.is_empty() || h.ports.iter().any(|r| r.first <= port && port <= r.last))
        })
}

/// Whether `new` restricts anything `old` (the set as it is, `None` when it
/// is new) did not: only then is there something to guard.
fn enables(old: Option<&SetSpec>, new: &SetSpec) -> bool {
    let hook = |s: &SetSpec| match s.policy {
        SetPolicy::AllowOnly => s.hook.clone(),
        SetPolicy::Ban => None,
    };
    let Some(new) = hook(new) else {
        return false;
    };
    let Some(old) = old.and_then(hook) else {
        return true;
    };
    let protocols_kept = old.protocol.is_none() || old.protocol == new.protocol;
    let ports_kept = old.ports.is_empty()
        || (!new.ports.is_empty()
            && new.ports.iter().all(|n| {
                (n.first..=n.last).all(|p| old.ports.iter().any(|o| o.first <= p && p <= o.last))
            }));
    !(protocols_kept && ports_kept)
}

/// Whether going from `old` to `new` would cut off a peer or leave an
/// allow-only set with no member on its ports. `members`: the set's
/// current members (hosts and prefixes); `own`: this host's addresses,
/// which the rule never blocks (their traffic comes in on loopback).
/// A peer is checked only on a port `new` restricts and `old` did not.
pub fn check(
    old: Option<&SetSpec>,
    new: &SetSpec,
    members: &[Target],
    own: &[Target],
    peers: &[Peer],
) -> Result<(), Lockout> {
    if !enables(old, new) {
        return Ok(());
    }
    let set = new.name.to_string();
    for peer in peers {
        // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
        let addr = peer.addr.to_canonical();
        if addr.is_loopback()
            || !restricts(new, peer.local_port)
            || old.is_some_and(|o| restricts(o, peer.local_port))
        {
            continue;
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        // Only the shape is checked: a peer is an observation, not a ban.
        let Ok(host) = Target::listed(addr, max) else {
            continue;
        };
        if own.iter().chain(members).any(|t| t.contains(&host)) {
            continue;
        }
        return Err(Lockout::Outsider {
            set,
            peer: Peer { addr, ..*peer },
        });
    }
    if members.is_empty() {
        return Err(Lockout::Empty { set });
    }
    Ok(())
}

/// Whether taking members out of allow-only set `spec` (`del`, `flush`),
/// leaving `remaining`, would cut off a peer that is a member now
/// (`members`) on one of the set's ports, or leave the set empty while its
/// rule stands. Ban sets and sets without a rule are never guarded.
pub fn check_removal(
    spec: &SetSpec,
    members: &[Target],
    remaining: &[Target],
    own: &[Target],
    peers: &[Peer],
) -> Result<(), Lockout> {
    if spec.policy != SetPolicy::AllowOnly || spec.hook.is_none() {
        return Ok(());
    }
    let set = spec.name.to_string();
    for peer in peers {
        let addr = peer.addr.to_canonical();
        if addr.is_loopback() || !restricts(spec, peer.local_port) {
            continue;
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let Ok(host) = Target::listed(addr, max) else {
            continue;
        };
        let covered = |list: &[Target]| list.iter().any(|t| t.contains(&host));
        if covered(own) || !covered(members) || covered(remaining) {
            continue;
        }
        return Err(Lockout::Outsider {
            set,
            peer: Peer { addr, ..*peer },
        });
    }
    if remaining.is_empty() && !members.is_empty() {
        return Err(Lockout::Emptied { set });
    }
    Ok(())
}

/// The peer of the ssh session running this command, from its
/// environment: `SSH_CONNECTION` (`client port server port`), else
/// `SSH_CLIENT` (`client port server-port`). `None` outside ssh, or when
/// the value does not parse (it is ours to read, not to trust).
pub fn ssh_session_peer(ssh_connection: Option<&str>, ssh_client: Option<&str>) -> Option<Peer> {
    if let Some(v) = ssh_connection {
        let f: Vec<&str> = v.split_ascii_whitespace().collect();
        if let [client, _, _, port] = f[..] {
            return Some(Peer {
                addr: client.parse().ok()?,
                local_port: port.parse().ok()?,
                seen: Seen::SshSession("SSH_CONNECTION"),
            });
        }
    }
    let f: Vec<&str> = ssh_client?.split_ascii_whitespace().collect();
    match f[..] {
        [client, _, port] => Some(Peer {
            addr: client.parse().ok()?,
            local_port: port.parse().ok()?,
            seen: Seen::SshSession("SSH_CLIENT"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BackendKind, Hook, PortRange};
    use crate::SetName;

    fn allow_only(ports: &str) -> SetSpec {
        let mut s = SetSpec::new(SetName::new("home").unwrap(), BackendKind::Memory);
        s.policy = SetPolicy::AllowOnly;
        s.hook = Some(Hook {
            ports: PortRange::parse_list(ports).unwrap(),
            protocol: Some(Protocol::Tcp),
            ..Hook::default()
        });
        s
    }

    fn t(s: &str) -> Target {
        s.parse().unwrap()
    }

    fn peer(addr: &str, port: u16) -> Peer {
        Peer {
            addr: addr.parse().unwrap(),
            local_port: port,
            seen: Seen::Established,
        }
    }

    #[test]
    fn an_outsider_on_a_new_allow_only_port_is_named() {
        let new = allow_only("22,587");
        let e = check(
            None,
            &new,
            &[t("192.0.2.0/24")],
            &[],
            &[peer("198.51.100.7", 22)],
        )
        .unwrap_err();
        assert!(matches!(e, Lockout::Outsider { .. }));
        let text = e.to_string();
        assert!(
            text.contains("198.51.100.7") && text.contains("port 22"),
            "{text}"
        );
        assert!(text.contains("--force"), "{text}");
        // A member (through its prefix), another port, loopback, this host: fine.
        for p in [
            peer("192.0.2.9", 22),
            peer("198.51.100.7", 80),
            peer("127.0.0.1", 22),
            peer("::1", 22),
            peer("203.0.113.1", 22),
        ] {
            check(None, &new, &[t("192.0.2.0/24")], &[t("203.0.113.1")], &[p])
                .unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
    }

    #[test]
    fn a_v4_mapped_peer_of_a_dual_stack_listener_is_its_v4_address() {
        let new = allow_only("22");
        check(
            None,
            &new,
            &[t("192.0.2.9")],
            &[],
            &[peer("::ffff:192.0.2.9", 22)],
        )
        .unwrap();
        let e = check(
            None,
            &new,
            &[t("192.0.2.9")],
            &[],
            &[peer("::ffff:192.0.2.10", 22)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("lock out 192.0.2.10:"), "{e}");
    }

    #[test]
    fn an_empty_set_is_refused_and_ban_sets_are_never_guarded() {
        let e = check(None, &allow_only("22"), &[], &[], &[]).unwrap_err();
        assert_eq!(e, Lockout::Empty { set: "home".into() });
        assert!(e.to_string().contains("empty"));
        let mut ban = allow_only("22");
        ban.policy = SetPolicy::Ban;
        check(None, &ban, &[], &[], &[peer("198.51.100.7", 22)]).unwrap();
        let mut no_hook = allow_only("22");
        no_hook.hook = None;
        check(None, &no_hook, &[], &[], &[peer("198.51.100.7", 22)]).unwrap();
    }

    #[test]
    fn only_newly_restricted_ports_are_checked() {
        let old = allow_only("22");
        // Same ports: nothing new, even empty, even with an outsider on 22
        // (it is already cut off; refusing would only block maintenance).
        check(Some(&old), &old, &[], &[], &[peer("198.51.100.7", 22)]).unwrap();
        // Adding 587: an outsider on 22 does not matter, one on 587 does.
        let wider = allow_only("22,587");
        check(
            Some(&old),
            &wider,
            &[t("192.0.2.9")],
            &[],
            &[peer("198.51.100.7", 22)],
        )
        .unwrap();
        let e = check(
            Some(&old),
            &wider,
            &[t("192.0.2.9")],
            &[],
            &[peer("198.51.100.7", 587)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("port 587"), "{e}");
        // Every port, from some: newly restricted.
        let mut every = allow_only("22");
        every.hook.as_mut().unwrap().ports.clear();
        assert!(check(Some(&old), &every, &[], &[], &[]).is_err());
        // Fewer ports: nothing new.
        check(Some(&wider), &old, &[], &[], &[]).unwrap();
        // A rule added to a --no-hook allow-only set: enabling.
        let mut unhooked = old.clone();
        unhooked.hook = None;
        assert!(check(Some(&unhooked), &old, &[], &[], &[]).is_err());
    }

    #[test]
    fn removing_a_peers_membership_or_the_last_member_is_refused() {
        let home = allow_only("22");
        let members = [t("192.0.2.0/24"), t("198.51.100.7")];
        let session = [Peer {
            seen: Seen::SshSession("SSH_CONNECTION"),
            ..peer("198.51.100.7", 22)
        }];
        let e = check_removal(&home, &members, &members[..1], &[], &session).unwrap_err();
        assert!(e.to_string().contains("lock out 198.51.100.7"), "{e}");
        // Still covered by what stays, another port, not a member anyway: fine.
        check_removal(&home, &members, &[t("198.51.100.0/24")], &[], &session).unwrap();
        check_removal(
            &home,
            &members,
            &members[..1],
            &[],
            &[peer("198.51.100.7", 80)],
        )
        .unwrap();
        check_removal(
            &home,
            &members,
            &members[1..],
            &[],
            &[peer("203.0.113.1", 22)],
        )
        .unwrap();
        // The last member going: empty.
        assert_eq!(
            check_removal(&home, &members, &[], &[], &[]),
            Err(Lockout::Emptied { set: "home".into() })
        );
        // A ban set is never guarded.
        let mut ban = home.clone();
        ban.policy = SetPolicy::Ban;
        check_removal(&ban, &members, &[], &[], &session).unwrap();
    }

    #[test]
    fn ssh_session_variables() {
        let p = ssh_session_peer(Some("198.51.100.7 50022 192.0.2.1 22"), None).unwrap();
        assert_eq!(
            p,
            Peer {
                seen: Seen::SshSession("SSH_CONNECTION"),
                ..peer("198.51.100.7", 22)
            }
        );
        let p = ssh_session_peer(None, Some("2001:db8::7 50022 2222")).unwrap();
        assert_eq!(
            (p.addr, p.local_port),
            ("2001:db8::7".parse().unwrap(), 2222)
        );
        assert_eq!(p.seen, Seen::SshSession("SSH_CLIENT"));
        assert_eq!(ssh_session_peer(Some("garbage"), None), None);
        assert_eq!(ssh_session_peer(None, Some("1.2.3.4 x 99999")), None);
        assert_eq!(ssh_session_peer(None, None), None);
    }
}
