//! `status`: what `fail2ban-client status JAIL` shows, for banset's jails
//! (banset.toml's, and fail2ban's read by `watch --fail2ban`) and for sets
//! fed by fail2ban's banset action (found by their bans' reason
//! `fail2ban:JAIL`, or by the action's set name `f2b-JAIL`). The ban list
//! is the ledger's; the failure tallies only a running daemon has.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use banset_core::{Clock, SetName, Target};
use banset_watch::config::SourceKey;
use serde_json::{json, Value};

use super::host::{Host, JailView};

/// The reason banset's daemon records with a jail's bans.
pub fn jail_reason(jail: &str) -> String {
    format!("jail {jail}")
}

/// Every jail (`jail` = `None`) or one.
pub fn status(host: &mut dyn Host, jail: Option<&str>) -> Result<Value> {
    let daemon = host.is_daemon();
    let views = host.jails()?;
    let action = action_jails(host)?;
    let ctx = host.ctx();
    let now = ctx.fw.clock.now();
    let tx = ctx.fw.ledger.read()?;
    // Active bans by set, read once.
    let bans_of = |set: &SetName| -> Result<Vec<banset_core::Ban>> {
        Ok(tx
            .bans(set)?
            .into_iter()
            .filter(|b| b.is_active(now))
            .collect())
    };
    let mut jails = Vec::new();
    for v in views.iter().filter(|v| jail.is_none_or(|j| j == v.name)) {
        let reason = jail_reason(&v.name);
        let banned: Vec<Target> = bans_of(&v.set)?
            .into_iter()
            .filter(|b| b.reason.as_deref() == Some(reason.as_str()))
            .map(|b| b.target)
            .collect();
        jails.push(jail_json(v, "banset", vec![v.set.clone()], banned));
    }
    for (name, sets) in &action {
        if jail.is_some_and(|j| j != name) || views.iter().any(|v| &v.name == name) {
            continue;
        }
        let reason = format!("fail2ban:{name}");
        let mut banned = Vec::new();
        for set in sets {
            banned.extend(
                bans_of(set)?
                    .into_iter()
                    .filter(|b| {
                        b.reason.as_deref() == Some(reason.as_str()) || is_action_set(set, name)
                    })
                    .map(|b| b.target),
            );
        }
        let view = JailView {
            name: name.clone(),
            set: sets[0].clone(),
            bantime: banset_core::Timeout::Never,
            sources: Vec::new(),
            live: None,
        };
        jails.push(jail_json(&view, "fail2ban-action", sets.clone(), banned));
    }
    match jail {
        None => Ok(json!({"daemon": daemon, "jails": jails})),
        Some(name) => match jails.pop() {
            Some(one) => Ok(json!({"daemon": daemon, "jail": one})),
            None => {
                let mut known: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
                known.extend(action.keys().map(String::as_str));
                Err(anyhow!(
                    "no jail {name:?} (jails: {}){}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                    if daemon {
                        ""
                    } else {
                        "; without the daemon only banset.toml's jails and sets fed by fail2ban's action are known"
                    }
                ))
            }
        },
    }
}

/// The set fail2ban's banset action names after a jail.
fn is_action_set(set: &SetName, jail: &str) -> bool {
    set.as_str().strip_prefix("f2b-") == Some(jail)
}

/// Jails fed by fail2ban's action, with their sets: from the reasons of
/// the ledger's bans, and from the action's set names.
fn action_jails(host: &mut dyn Host) -> Result<BTreeMap<String, Vec<SetName>>> {
    let ctx = host.ctx();
    let tx = ctx.fw.ledger.read()?;
    let mut found: BTreeMap<String, Vec<SetName>> = BTreeMap::new();
    for set in tx.set_names()? {
        let mut add = |jail: &str| {
            let sets = found.entry(jail.to_string()).or_default();
            if !sets.contains(&set) {
                sets.push(set.clone());
            }
        };
        if let Some(jail) = set.as_str().strip_prefix("f2b-") {
            add(jail);
        }
        for ban in tx.bans(&set)? {
            if let Some(jail) = ban
                .reason
                .as_deref()
                .and_then(|r| r.strip_prefix("fail2ban:"))
            {
                add(jail);
            }
        }
    }
    Ok(found)
}

fn jail_json(v: &JailView, kind: &str, sets: Vec<SetName>, mut banned: Vec<Target>) -> Value {
    banned.sort_by_key(|t| (t.addr(), t.prefix_len()));
    banned.dedup();
    let files: Vec<String> = v
        .sources
        .iter()
        .filter_map(|s| match s {
            SourceKey::File(p) => Some(p.display().to_string()),
            SourceKey::Journal(_) => None,
        })
        .collect();
    let journal: Vec<String> = v
        .sources
        .iter()
        .filter_map(|s| match s {
            SourceKey::Journal(m) => Some(m.join(" ")),
            SourceKey::File(_) => None,
        })
        .collect();
    json!({
        "name": v.name,
        "kind": kind,
        "set": v.set,
        "sets": sets,
        "currently_failed": v.live.map(|l| l.currently_failed),
        "total_failed": v.live.map(|l| l.total_failed),
        "files": files,
        "journal_matches": journal,
        "currently_banned": banned.len(),
        "total_banned": v.live.map(|l| l.total_banned),
        "banned": banned,
    })
}
