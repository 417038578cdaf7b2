//! `banset blocklistd-helper`: blocklistd's control program.
//!
//! blocklistd (FreeBSD and NetBSD base) runs its control program (`-C`)
//! with `argv[0] = "control"` and these arguments, all numeric:
//!
//! - `add RULENAME PROTO ADDR MASK PORT [ID]`
//! - `rem RULENAME PROTO ADDR MASK PORT ID`
//! - `flush RULENAME`
//!
//! PROTO is `tcp`, `udp` or empty (any), PORT a number or empty (every
//! port). blocklistd reads only the first line of standard output: `OK`
//! (optionally followed by a rule id) is success, no output is failure; the
//! exit status is not looked at. So this prints `OK` exactly when the work
//! is done, and nothing otherwise, with the reason on stderr.
//!
//! blocklistd owns expiry (it runs `rem` when a ban is over), so bans carry
//! no kernel timeout. Each rule name, protocol and port get their own set,
//! `RULENAME-PROTO-PORT` (`blocklistd-tcp-22`), whose rule blocks only that
//! protocol and port, as the stock helpers' per-port tables do.

use std::io::Write;

use anyhow::Result;
use banset_core::{AddOptions, BanRequest, SetName, Target, Timeout};

use crate::args::{BlocklistdArgs, SetOptions};
use crate::context::Context;
use crate::errors::usage;
use crate::set_options::build_spec;

pub fn run(ctx: &mut Context, args: BlocklistdArgs) -> Result<Option<i32>> {
    let words: Vec<&str> = args.args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["flush", rule] => flush(ctx, rule)?,
        ["add", rule, proto, addr, mask, port] | ["add", rule, proto, addr, mask, port, _] => {
            let ban = Ban::parse(rule, proto, addr, mask, port)?;
            add(ctx, &ban)?;
        }
        ["rem", rule, proto, addr, mask, port] | ["rem", rule, proto, addr, mask, port, _] => {
            let ban = Ban::parse(rule, proto, addr, mask, port)?;
            rem(ctx, &ban)?;
        }
        _ => usage!(
            "blocklistd-helper: expected add|rem RULENAME PROTO ADDR MASK PORT [ID] or flush RULENAME, got {:?}",
            words.join(" ")
        ),
    }
    // Only now, with the work done: blocklistd takes any first line as success.
    let mut out = std::io::stdout().lock();
    writeln!(out, "OK")?;
    out.flush()?;
    Ok(None)
}

/// One `add` or `rem`, validated.
#[derive(Debug, PartialEq, Eq)]
struct Ban {
    set: SetName,
    protocol: Option<&'static str>,
    port: Option<u16>,
    target: Target,
}

impl Ban {
    fn parse(rule: &str, proto: &str, addr: &str, mask: &str, port: &str) -> Result<Ban> {
        let protocol = match proto {
            "" => None,
            "tcp" => Some("tcp"),
            "udp" => Some("udp"),
            other => usage!("blocklistd-helper: protocol {other:?} is not tcp, udp or empty"),
        };
        let port = match port {
            "" => None,
            p if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => usage!("blocklistd-helper: port {p:?} is not 1-65535"),
            },
            p => usage!("blocklistd-helper: port {p:?} is not a number"),
        };
        if let (Some(port), None) = (port, protocol) {
            usage!("blocklistd-helper: port {port} needs a protocol (tcp or udp)");
        }
        let ip: std::net::IpAddr = match addr.parse() {
            Ok(ip) => ip,
            Err(_) => usage!("blocklistd-helper: address {addr:?} is not numeric IPv4 or IPv6"),
        };
        if mask.is_empty() || mask.len() > 3 || !mask.bytes().all(|b| b.is_ascii_digit()) {
            usage!("blocklistd-helper: mask {mask:?} is not a prefix length");
        }
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d/128, from a dual-stack
        // socket) becomes a.b.c.d/32 here, like the stock helper does.
        let target = match Target::prefix(ip, mask.parse().unwrap_or(u8::MAX)) {
            Ok(t) => t,
            Err(why) => usage!("blocklistd-helper: {addr}/{mask}: {why}"),
        };
        let mut name = rule.to_string();
        for part in [protocol.map(str::to_string), port.map(|p| p.to_string())]
            .into_iter()
            .flatten()
        {
            name.push('-');
            name.push_str(&part);
        }
        let set = crate::args::set_name(&name)?;
        Ok(Ban {
            set,
            protocol,
            port,
            target,
        })
    }
}

fn add(ctx: &mut Context, ban: &Ban) -> Result<()> {
    let options = SetOptions {
        ports: ban.port.map(|p| p.to_string()),
        protocol: Some(ban.protocol.unwrap_or("all").to_string()),
        ..SetOptions::default()
    };
    // The backend is detected (firewalld running?) only for a new set.
    let is_new = ctx.fw.ledger.read()?.set_spec(&ban.set)?.is_none();
    let spec = build_spec(
        ban.set.clone(),
        &options,
        Some(Timeout::Never),
        &ctx.config,
        is_new,
        ctx.global.dry_run,
    )?;
    let request = BanRequest {
        target: ban.target,
        timeout: Some(Timeout::Never),
        since: None,
        comment: Some("blocklistd".into()),
    };
    let opts = AddOptions {
        force: false,
        create_with: Some(spec),
        ..AddOptions::default()
    };
    ctx.engine().add(&ban.set, &[request], &opts)?;
    Ok(())
}

/// An unban that finds nothing to remove (no such set, or not banned) is
/// done: blocklistd retries a failed `rem` forever otherwise.
fn rem(ctx: &mut Context, ban: &Ban) -> Result<()> {
    if ctx.fw.ledger.read()?.set_spec(&ban.set)?.is_none() {
        return Ok(());
    }
    ctx.engine().del(&ban.set, &[ban.target])?;
    Ok(())
}

/// Empties every set of the rule: `RULENAME` and the `RULENAME-...` sets
/// this helper made for protocols and ports.
fn flush(ctx: &mut Context, rule: &str) -> Result<()> {
    let rule = crate::args::set_name(rule)?;
    let prefix = format!("{rule}-");
    let sets: Vec<SetName> = ctx
        .fw
        .ledger
        .read()?
        .set_specs()?
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.as_str() == rule.as_str() || n.as_str().starts_with(&prefix))
        .collect();
    for set in sets {
        ctx.engine().flush(&set)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_blocklistd_passes_them() {
        let b = Ban::parse("blocklistd", "tcp", "192.0.2.9", "32", "22").unwrap();
        assert_eq!(b.set.as_str(), "blocklistd-tcp-22");
        assert_eq!(b.target, Target::parse("192.0.2.9").unwrap());
        let b = Ban::parse("blocklistd", "", "2001:db8::7", "64", "").unwrap();
        assert_eq!(b.set.as_str(), "blocklistd");
        assert_eq!(b.target, Target::parse("2001:db8::/64").unwrap());
        let b = Ban::parse("blocklistd", "udp", "::ffff:192.0.2.9", "128", "53").unwrap();
        assert_eq!(b.target, Target::parse("192.0.2.9").unwrap());
        assert_eq!(b.set.as_str(), "blocklistd-udp-53");
    }

    #[test]
    fn hostile_arguments_are_refused_naming_them() {
        for (proto, addr, mask, port) in [
            ("icmp", "192.0.2.9", "32", "22"),
            ("tcp", "host.example", "32", "22"),
            ("tcp", "192.0.2.9", "33", "22"),
            ("tcp", "192.0.2.9", "", "22"),
            ("tcp", "192.0.2.9", "32", "0"),
            ("tcp", "192.0.2.9", "32", "65536"),
            ("tcp", "192.0.2.9", "32", "22;reboot"),
            ("", "192.0.2.9", "32", "22"),
            ("tcp", "0.0.0.0", "32", "22"),
        ] {
            let e = Ban::parse("blocklistd", proto, addr, mask, port)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("blocklistd-helper:"), "{e}");
        }
        assert!(Ban::parse("bad name;", "tcp", "192.0.2.9", "32", "22").is_err());
    }

    #[test]
    fn a_port_without_a_protocol_is_named_as_a_number() {
        let e = Ban::parse("blocklistd", "", "192.0.2.9", "32", "22")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "blocklistd-helper: port 22 needs a protocol (tcp or udp)"
        );
    }

    #[test]
    fn unbannable_addresses_are_refused_naming_them() {
        for (addr, mask) in [("0.0.0.0", "32"), ("::", "128"), ("224.0.0.1", "32")] {
            let e = Ban::parse("blocklistd", "tcp", addr, mask, "22")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("blocklistd-helper: {addr}/{mask}: "))
                    && e.contains("cannot be banned"),
                "{e}"
            );
        }
    }
}
