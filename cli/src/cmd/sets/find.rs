//! `banset find TARGET`: which sets (and through them which jails) ban the
//! target now, by itself or inside a banned prefix, and since when.

use std::io::Write;

use anyhow::Result;
use banset_core::{format_duration, Clock, Target};
use serde::Serialize;

use crate::args::FindArgs;
use crate::context::Context;
use crate::errors::{EXIT_NEGATIVE, EXIT_OK};
use crate::output::{print_json, stdout};

/// One ban that covers the target.
#[derive(Debug, Serialize)]
struct Found {
    set: String,
    /// The ban as recorded: the target itself or a prefix holding it.
    banned: String,
    /// The jail the ban came from, read from its reason (`jail NAME`, or
    /// `fail2ban:NAME` from fail2ban's action).
    jail: Option<String>,
    since: i64,
    /// Unix time it ends; `None` never.
    until: Option<i64>,
    reason: Option<String>,
}

#[derive(Serialize)]
struct FindReport<'a> {
    target: String,
    found: &'a [Found],
}

pub fn run(ctx: &mut Context, args: FindArgs) -> Result<Option<i32>> {
    let target = Target::parse(&args.target)?;
    let now = ctx.fw.clock.now();
    let mut found = Vec::new();
    {
        let tx = ctx.fw.ledger.read()?;
        for set in tx.set_names()? {
            for ban in tx.bans(&set)? {
                if ban.is_active(now)
                    && (ban.target.contains(&target) || target.contains(&ban.target))
                {
                    found.push(Found {
                        set: set.to_string(),
                        banned: ban.target.to_string(),
                        jail: ban.reason.as_deref().and_then(jail_of),
                        since: ban.start,
                        until: ban.deadline,
                        reason: ban.reason.clone(),
                    });
                }
            }
        }
    }
    let code = if found.is_empty() {
        EXIT_NEGATIVE
    } else {
        EXIT_OK
    };
    if args.json {
        print_json(&FindReport {
            target: target.to_string(),
            found: &found,
        })?;
        return Ok(Some(code));
    }
    let mut out = stdout();
    if found.is_empty() {
        writeln!(out, "{target} is banned in no set")?;
    }
    for f in &found {
        let inside = if f.banned == target.to_string() {
            String::new()
        } else {
            format!(" (as {})", f.banned)
        };
        let jail = f
            .jail
            .as_deref()
            .map(|j| format!(", jail {j}"))
            .unwrap_or_default();
        let until = match f.until {
            Some(u) => format!("{} left", format_duration((u - now).max(0) as u64)),
            None => "permanent".to_string(),
        };
        writeln!(
            out,
            "{}{inside}{jail}: since {}, {until}",
            f.set,
            super::history::utc_time(f.since)
        )?;
    }
    Ok(Some(code))
}

/// The jail a ban's reason names: `jail NAME` (banset's watcher) or
/// `fail2ban:NAME` (fail2ban's action).
fn jail_of(reason: &str) -> Option<String> {
    let name = reason
        .strip_prefix("jail ")
        .or_else(|| reason.strip_prefix("fail2ban:"))?;
    let name = name.split_whitespace().next()?;
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::jail_of;

    #[test]
    fn a_ban_reason_names_its_jail() {
        assert_eq!(jail_of("jail sshd").as_deref(), Some("sshd"));
        assert_eq!(jail_of("fail2ban:postfix").as_deref(), Some("postfix"));
        assert_eq!(jail_of("manual: spam"), None);
    }
}
