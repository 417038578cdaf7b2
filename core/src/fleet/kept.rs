//! What a `replace` keeps of the fleet's bans, and which origin a fleet
//! ban is recorded as: decisions over the ledger's remote rows that the
//! engine's replace and its fleet apply share (a leaf: it uses no engine).

use std::collections::{BTreeMap, BTreeSet};

use super::policy::effective;
use super::remote::FLEET_REASON_PREFIX;
use crate::allowlist::Allowlist;
use crate::ledger::{LedgerError, LedgerTx, NewBan};
use crate::policy::SetPolicy;
use crate::spec::SetSpec;
use crate::target::Target;

/// The origin of the longest of a target's active rows (the one its
/// fleet ban is recorded as).
pub(crate) fn longest_origin(rows: &[(String, Option<i64>)], now: i64) -> &str {
    rows.iter()
        .filter(|r| r.1.is_none_or(|d| d > now))
        .max_by_key(|r| r.1.map_or(i64::MAX, |d| d))
        .map_or("", |r| r.0.as_str())
}

/// The remote bans a `replace` of `spec`'s set keeps. A replace makes the
/// set hold exactly the local members given (a feed's list), but the bans
/// other hosts sent are not the feed's to drop: their pages are applied
/// already, so they would only come back when their rows changed again.
/// Each target with active rows gets its longest: a fleet ban ("fleet
/// ORIGIN") where no local member has the target, else a `None` reason,
/// which merges into the local member (the longest wins, it stays local,
/// as when a remote ban meets a local one in `Engine::apply_fleet`). The
/// allowlist and the spec are asked again: either may have changed since
/// the rows came.
pub(crate) fn kept_over_replace(
    tx: &LedgerTx<'_>,
    spec: &SetSpec,
    allowlist: &Allowlist,
    local: &[NewBan],
    now: i64,
) -> Result<Vec<NewBan>, LedgerError> {
    if spec.policy == SetPolicy::AllowOnly {
        return Ok(Vec::new());
    }
    let mut by_target: BTreeMap<Target, Vec<(String, Option<i64>)>> = BTreeMap::new();
    for (target, origin, deadline) in tx.fleet_active_rows(&spec.name, now)? {
        by_target
            .entry(target)
            .or_default()
            .push((origin, deadline));
    }
    let locals: BTreeSet<Target> = local.iter().map(|b| b.target).collect();
    let mut kept = Vec::new();
    for (target, rows) in by_target {
        if spec.admits(&target).is_err() || allowlist.check(&target, true).is_err() {
            continue;
        }
        let Some(deadline) = effective(rows.iter().map(|r| r.1), now) else {
            continue;
        };
        let reason = (!locals.contains(&target))
            .then(|| format!("{FLEET_REASON_PREFIX}{}", longest_origin(&rows, now)));
        kept.push(NewBan {
            target,
            start: now,
            deadline,
            reason,
        });
    }
    Ok(kept)
}
