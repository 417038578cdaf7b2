//! The lockout guard's OS half: who is talking to this host now (the ssh
//! session's environment, the established TCP connections in
//! `/proc/net/tcp{,6}`) and the set's members from the ledger. The decisions
//! are `banset_core::lockout::check` and `check_removal`; `create`,
//! `set-options`, `add` (creating a set), `ensure`, the daemon's start and
//! reload and `watch --check` come through [`guard`] / [`guard_with`],
//! `del` and `flush` through [`guard_removal`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Result;
use banset_core::lockout::{self, Peer, Seen};
use banset_core::{Clock, Ledger, SetSpec, Target};

use crate::context::Context;

/// `/proc/net/tcp`'s state column for ESTABLISHED (`TCP_ESTABLISHED`).
const TCP_ESTABLISHED: &str = "01";

/// More lines than this in one file are not read: a host with that many
/// sockets has the admin's among the first as likely as among the rest,
/// and the guard must not stall a reload.
const MAX_LINES: usize = 1 << 20;

/// Refuses (with [`lockout::Lockout`], exit 2) going from `old` (the set
/// as the ledger has it; `None` when new) to `new` when that would cut off
/// this ssh session or an established connection, or leave an allow-only
/// set empty on its ports. `force` skips it. Cheap for ban sets: nothing is
/// read unless `new` is allow-only with a rule. `coming`: members the same
/// command adds (`add` creating the set).
pub fn guard(
    ctx: &mut Context,
    old: Option<&SetSpec>,
    new: &SetSpec,
    coming: &[Target],
    force: bool,
) -> Result<()> {
    if force {
        return Ok(());
    }
    let now = Clock::now(&ctx.fw.clock);
    guard_with(Some(&mut ctx.fw.ledger), now, old, new, coming)
}

/// [`guard`] without `--force`, over a ledger (`watch --check` has no
/// firewall open, and perhaps no ledger yet: then every set is new), at
/// `now`.
pub fn guard_with(
    ledger: Option<&mut Ledger>,
    now: i64,
    old: Option<&SetSpec>,
    new: &SetSpec,
    coming: &[Target],
) -> Result<()> {
    if new.policy.is_ban() || new.hook.is_none() {
        return Ok(());
    }
    let peers = peers();
    let mut members: Vec<Target> = match (old, ledger) {
        (Some(old), Some(ledger)) => active_members(ledger, now, old)?,
        _ => Vec::new(),
    };
    members.extend_from_slice(coming);
    let own = banset_firewall::host_addresses();
    lockout::check(old, new, &members, &own, &peers)?;
    Ok(())
}

/// Refuses taking `removing` (`None`: every member, `flush`) out of
/// allow-only set `spec` when that would cut off this ssh session or an
/// established connection that is a member now, or empty the set while its
/// rule stands. `force` skips it; ban sets are never guarded.
pub fn guard_removal(
    ctx: &mut Context,
    spec: &SetSpec,
    removing: Option<&[Target]>,
    force: bool,
) -> Result<()> {
    if force || spec.policy.is_ban() || spec.hook.is_none() {
        return Ok(());
    }
    let members = active_members(&mut ctx.fw.ledger, Clock::now(&ctx.fw.clock), spec)?;
    let remaining: Vec<Target> = match removing {
        None => Vec::new(),
        Some(gone) => members
            .iter()
            .filter(|m| !gone.contains(m))
            .copied()
            .collect(),
    };
    let own = banset_firewall::host_addresses();
    lockout::check_removal(spec, &members, &remaining, &own, &peers())?;
    Ok(())
}

/// The members of `spec`'s set whose bans are not over at `now`.
fn active_members(ledger: &mut Ledger, now: i64, spec: &SetSpec) -> Result<Vec<Target>> {
    Ok(ledger
        .read()?
        .bans(&spec.name)?
        .into_iter()
        .filter(|b| b.deadline.is_none_or(|d| d > now))
        .map(|b| b.target)
        .collect())
}

/// Who talks to this host now: the ssh session running this command and
/// every established TCP connection.
fn peers() -> Vec<Peer> {
    let mut peers: Vec<Peer> = lockout::ssh_session_peer(
        std::env::var("SSH_CONNECTION").ok().as_deref(),
        std::env::var("SSH_CLIENT").ok().as_deref(),
    )
    .into_iter()
    .collect();
    peers.extend(established_peers());
    peers
}

/// The remote ends of every established TCP connection to this host, from
/// this thread's network namespace (`/proc/thread-self/net/tcp{,6}`: a
/// thread may have joined another namespace than the process's; before
/// Linux 3.17, `/proc/net`). A file that cannot be read (no IPv6, no
/// /proc) adds nothing.
fn established_peers() -> Vec<Peer> {
    let mut out = Vec::new();
    for file in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))
            .or_else(|_| std::fs::read_to_string(format!("/proc/net/{file}")));
        if let Ok(text) = text {
            out.extend(parse_proc_net_tcp(&text));
        }
    }
    out
}

/// The established connections of one `/proc/net/tcp{,6}` listing: lines
/// `sl local_address rem_address st ...`, addresses as `HEX:PORT`, where
/// the address is the kernel's bytes printed as native-endian 32-bit words.
/// Lines that do not parse are skipped.
fn parse_proc_net_tcp(text: &str) -> Vec<Peer> {
    text.lines()
        .skip(1)
        .take(MAX_LINES)
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace().skip(1);
            let (local, remote, state) = (f.next()?, f.next()?, f.next()?);
            if state != TCP_ESTABLISHED {
                return None;
            }
            let (_, local_port) = split_endpoint(local)?;
            let (addr, _) = split_endpoint(remote)?;
            Some(Peer {
                addr,
                local_port,
                seen: Seen::Established,
            })
        })
        .collect()
}

fn split_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let addr = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as a little-endian Linux prints them (words byte-swapped).
    #[cfg(target_endian = "little")]
    #[test]
    fn reads_established_connections_of_both_families() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100000A:0016 0264A8C0:C350 01 00000000:00000000 02:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n\
   2: 0100000A:0050 0364A8C0:C351 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0\n\
   garbage\n";
        let peers = parse_proc_net_tcp(v4);
        assert_eq!(
            peers,
            [Peer {
                addr: "192.168.100.2".parse().unwrap(),
                local_port: 22,
                seen: Seen::Established
            }]
        );
        let v6 = "  sl  local_address                         remote_address                        st\n\
   0: 00000000000000000000000001000000:0016 B80D0120000000000000000007000000:D431 01 0\n\
   1: 0000000000000000FFFF00000100000A:024B 0000000000000000FFFF00000764A8C0:D432 01 0\n";
        let peers = parse_proc_net_tcp(v6);
        let got: Vec<(IpAddr, u16)> = peers.iter().map(|p| (p.addr, p.local_port)).collect();
        assert_eq!(
            got,
            [
                ("2001:db8::7".parse().unwrap(), 22),
                ("::ffff:192.168.100.7".parse().unwrap(), 587)
            ]
        );
    }
}
