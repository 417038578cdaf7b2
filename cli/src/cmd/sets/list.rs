use std::io::Write;

use anyhow::Result;
use banset_core::{Listed, SetListing, Target, Timeout, UnreadableRow};
use serde::Serialize;

use crate::args::ListArgs;
use crate::context::Context;
use crate::output::{describe_spec, print_json, remaining, stdout, unreadable_rows_lines};

/// `list --json`: one object per set. Field names are part of banset's
/// interface for scripts; add, never rename.
#[derive(Serialize)]
struct JsonSet<'a> {
    set: &'a str,
    backend: &'a str,
    families: &'a str,
    /// `ban` or `allow-only`.
    policy: &'a str,
    timeout: Timeout,
    in_kernel: bool,
    members: JsonMembers<'a>,
    /// Ledger rows that do not parse, skipped (absent when there are none).
    #[serde(skip_serializing_if = "<[UnreadableRow]>::is_empty")]
    unreadable_rows: &'a [UnreadableRow],
}

/// The members, serialised one by one as they are written out, so a large
/// set is not copied into a second list first.
struct JsonMembers<'a>(&'a [Listed]);

impl serde::Serialize for JsonMembers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| JsonMember {
            target: m.target,
            expires_in: m.kernel_remaining,
            in_ledger: m.ban.is_some(),
            start: m.ban.as_ref().map(|b| b.start),
            deadline: m.ban.as_ref().and_then(|b| b.deadline),
            ban_count: m.ban.as_ref().map(|b| b.ban_count),
            reason: m.ban.as_ref().and_then(|b| b.reason.as_deref()),
        }))
    }
}

#[derive(Serialize)]
struct JsonMember<'a> {
    target: Target,
    /// Seconds the kernel still holds it; null when permanent.
    expires_in: Option<u64>,
    in_ledger: bool,
    start: Option<i64>,
    deadline: Option<i64>,
    ban_count: Option<u32>,
    reason: Option<&'a str>,
}

pub fn run(ctx: &mut Context, args: ListArgs) -> Result<Option<i32>> {
    let name = args.set.as_deref().map(crate::args::set_name).transpose()?;
    let listings = ctx.engine().list(name.as_ref())?;
    // On stderr, before the listing: the rows are skipped, not lost.
    for listing in &listings {
        for line in unreadable_rows_lines(&listing.spec.name, &listing.unreadable_rows) {
            ctx.notice(line);
        }
    }
    if args.json {
        // in the kernel's order: sorting is for people, and costs
        let sets: Vec<JsonSet> = listings.iter().map(json_set).collect();
        print_json(&sets)?;
        return Ok(None);
    }
    let mut listings = listings;
    let mut out = stdout();
    for listing in &mut listings {
        listing.members.sort_unstable_by_key(|m| m.target);
        writeln!(out, "{}", describe_spec(&listing.spec))?;
        if !listing.in_kernel {
            writeln!(out, "  (missing from the kernel: run banset sync)")?;
        }
        for m in &listing.members {
            let mut line = format!(
                "  {:<24} {}",
                m.target.to_string(),
                remaining(m.kernel_remaining)
            );
            match &m.ban {
                Some(ban) => {
                    if ban.ban_count > 1 {
                        line.push_str(&format!("  banned {}x", ban.ban_count));
                    }
                    if let Some(reason) = &ban.reason {
                        line.push_str(&format!("  {reason:?}"));
                    }
                }
                None => line.push_str("  (not in the ledger: banset sync removes it)"),
            }
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(None)
}

fn json_set(listing: &SetListing) -> JsonSet<'_> {
    JsonSet {
        set: listing.spec.name.as_str(),
        backend: listing.spec.backend.name(),
        families: listing.spec.families.name(),
        policy: listing.spec.policy.name(),
        timeout: listing.spec.timeout,
        in_kernel: listing.in_kernel,
        members: JsonMembers(&listing.members),
        unreadable_rows: &listing.unreadable_rows,
    }
}
