//! Executes control requests: the one place that decides what `ban`,
//! `unban`, `status`... do, for the daemon's socket, `control --stdio` and
//! the CLI's fallback alike. What differs between a daemon and a lone
//! process (jails' failure windows, live tallies, reload) is asked of the
//! [`Host`].
//!
//! Every request is checked whole before it acts; each set's change is
//! then one engine call, which leaves kernel and ledger as they were when
//! it fails.

use anyhow::{anyhow, Result};
use banset_core::control::{
    error_line, ok_line, Ban, BanInto, Ensure, Op, Request, Unban, Which, OPS, VERSION,
};
use banset_core::{AddOptions, AddRecord, BanRequest, Clock, FleetPublish, Target};
use serde_json::{json, Map, Value};

use super::host::{Host, JailView};
use crate::context::Context;

/// Executes one request; returns the reply line (newline included).
pub fn dispatch(host: &mut dyn Host, request: &Request) -> String {
    let id = request.id.as_ref();
    match execute(host, &request.op) {
        Ok(fields) => ok_line(id, fields),
        Err(e) => error_line(id, &crate::errors::one_line(&e)),
    }
}

fn execute(host: &mut dyn Host, op: &Op) -> Result<Map<String, Value>> {
    let fields = match op {
        Op::Hello => json!({
            "server": "banset",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": VERSION,
            "ops": OPS,
            "daemon": host.is_daemon(),
        }),
        Op::Ban(b) => ban(host, b)?,
        Op::Unban(u) => unban(host, u)?,
        Op::Flush { set } => {
            let n = host.ctx().engine().flush(set)?;
            host.forget(&Which::All, Some(set));
            json!({"set": set, "unbanned": n})
        }
        Op::Status { jail } => super::jail_status::status(host, jail.as_deref())?,
        Op::IgnoreAdd { prefix } | Op::IgnoreDel { prefix } => {
            let list = host.ignored();
            if matches!(op, Op::IgnoreAdd { .. }) {
                if !list.contains(prefix) {
                    list.push(*prefix);
                }
            } else if let Some(i) = list.iter().position(|p| p == prefix) {
                list.remove(i);
            } else {
                return Err(anyhow!(
                    "ignore-del: {prefix} is not in the run-time ignore list (banset.toml's ignore is changed there)"
                ));
            }
            let now: Vec<String> = list.iter().map(Target::to_string).collect();
            host.ignore_changed();
            json!({"prefix": prefix, "ignored": now})
        }
        Op::Reload => {
            host.reload()?;
            json!({"reloading": true})
        }
        Op::Sync { set } => {
            let outcomes = host.ctx().engine().sync_each(set.as_ref())?;
            let sets: Vec<Value> = outcomes
                .iter()
                .map(|(set, r)| match r {
                    Ok(r) => json!({"set": set, "added": r.added, "refreshed": r.refreshed,
                        "removed": r.removed, "expired": r.expired}),
                    Err(e) => json!({"set": set, "error": e.to_string().replace('\n', " ")}),
                })
                .collect();
            json!({ "sets": sets })
        }
        Op::Ensure(e) => ensure(host.ctx(), e)?,
    };
    match fields {
        Value::Object(m) => Ok(m),
        _ => unreachable!("every reply above is an object"),
    }
}

fn ban(host: &mut dyn Host, b: &Ban) -> Result<Value> {
    let (set, timeout, reason, jail) = match &b.into {
        BanInto::Set(s) => (s.clone(), b.timeout, b.reason.clone(), None),
        BanInto::Jail(name) => {
            let jail = find_jail(host, name)?;
            // A jail's bans carry its reason, which `status JAIL` counts.
            (
                jail.set,
                b.timeout.or(Some(jail.bantime)),
                Some(format!("jail {name}")),
                Some(name.clone()),
            )
        }
    };
    let create_with = match jail {
        Some(_) => host.new_set_spec(&set),
        None => None,
    };
    let ctx = host.ctx();
    let spec = match ctx.fw.ledger.read()?.set_spec(&set)? {
        Some(spec) => spec,
        None => create_with
            .clone()
            .ok_or_else(|| anyhow!("no set {set} (banset ensure {set} creates it)"))?,
    };
    // A jail's ban into an allow-only set would let the attacker in (the
    // daemon refuses its own the same way).
    if let (Some(jail), false) = (&jail, spec.policy.is_ban()) {
        return Err(crate::errors::Usage(format!(
            "jail {jail} bans into set {set}, an allow-only set (its members are the only sources let in); give the jail a ban set"
        ))
        .into());
    }
    let mut refused = Vec::new();
    let mut requests = Vec::new();
    for item in &b.targets {
        let target = item.target;
        let why = match spec.admits(&target) {
            Err(why) => Some(why.to_string()),
            Ok(()) => ctx
                .fw
                .allowlist
                .check(&target, false)
                .err()
                .map(|r| r.to_string()),
        };
        match why {
            Some(reason) => refused.push(json!({"target": target, "reason": reason})),
            None => requests.push(BanRequest {
                target,
                timeout: item.timeout.or(timeout),
                since: item.since.or(b.since),
                comment: reason.clone(),
            }),
        }
    }
    if requests.is_empty() {
        let first = refused[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return Err(anyhow!("ban: nothing to ban in {set}: {first}"));
    }
    let record = AddRecord {
        ban_events: match &jail {
            Some(j) => requests.iter().map(|r| (r.target, j.clone())).collect(),
            None => Vec::new(),
        },
        meta: Vec::new(),
        // A jail's ban by hand is published as the jail's would be
        // ([fleet] publish_jails); the daemon's fleet thread sends it at
        // its next round.
        fleet: match (&jail, &ctx.config.fleet) {
            (Some(j), Some(f)) if f.publishes(&set, Some(j)) => Some(FleetPublish {
                jail: Some(j.clone()),
            }),
            _ => None,
        },
    };
    let opts = AddOptions {
        force: false,
        create_with,
        ..AddOptions::default()
    };
    let report = ctx.engine().add_recorded(&set, &requests, &opts, &record)?;
    Ok(json!({"set": set, "banned": report.applied, "refused": refused}))
}

fn find_jail(host: &mut dyn Host, name: &str) -> Result<JailView> {
    let jails = host.jails()?;
    let names: Vec<&str> = jails.iter().map(|j| j.name.as_str()).collect();
    let known = if names.is_empty() {
        "none configured".to_string()
    } else {
        names.join(", ")
    };
    jails
        .iter()
        .find(|j| j.name == name)
        .cloned()
        .ok_or_else(|| anyhow!("no jail {name:?} (jails: {known})"))
}

fn unban(host: &mut dyn Host, u: &Unban) -> Result<Value> {
    let sets = {
        let ctx = host.ctx();
        let tx = ctx.fw.ledger.read()?;
        match &u.set {
            Some(s) if tx.set_spec(s)?.is_none() => return Err(anyhow!("no set {s}")),
            Some(s) => vec![s.clone()],
            None => tx.set_names()?,
        }
    };
    let mut per_set = Map::new();
    let mut total = 0usize;
    let mut covered = Vec::new();
    for set in &sets {
        let ctx = host.ctx();
        let n = match &u.which {
            Which::All => ctx.engine().flush(set)?,
            Which::Targets(targets) => {
                let bans = ctx.fw.ledger.read()?.bans(set)?;
                // The ledger's bans each target covers (itself, or what
                // a prefix holds); a member the ledger lacks is `sync`'s.
                let mut remove: Vec<Target> = Vec::new();
                for ban in &bans {
                    if targets.iter().any(|t| t.contains(&ban.target)) {
                        remove.push(ban.target);
                    } else if targets.iter().any(|t| ban.target.contains(t)) {
                        covered.push(json!({"set": set, "prefix": ban.target}));
                    }
                }
                if remove.is_empty() {
                    continue;
                }
                ctx.engine().del(set, &remove)?
            }
        };
        if n > 0 {
            per_set.insert(set.to_string(), n.into());
        }
        total += n;
    }
    let forgotten = host.forget(&u.which, u.set.as_ref());
    Ok(json!({
        "unbanned": total,
        "sets": per_set,
        "forgotten": forgotten,
        "still_covered": covered,
    }))
}

/// `ensure`, as `banset ensure` runs it (fail2ban's actionstart).
fn ensure(ctx: &mut Context, e: &Ensure) -> Result<Value> {
    let set = e
        .set
        .clone()
        .ok_or_else(|| anyhow!("ensure: missing \"set\""))?;
    let existed = ctx.fw.ledger.read()?.set_spec(&set)?.is_some();
    let args = crate::args::EnsureArgs {
        set: set.to_string(),
        timeout: e.timeout.map(|t| t.to_string()),
        options: crate::args::SetOptions {
            backend: e.backend.clone(),
            family: e.family.clone(),
            maxelem: e.maxelem,
            ports: e.ports.clone(),
            protocol: e.protocol.clone(),
            blocktype: e.blocktype.clone(),
            prefixes: e.prefixes == Some(true),
            no_prefixes: e.prefixes == Some(false),
            no_hook: e.hook == Some(false),
            permanent: false,
            policy: None,
            allow_only: false,
        },
        fail2ban_db: None,
        jail: None,
    };
    crate::cmd::sets::ensure::run(ctx, args)?;
    let now = ctx.fw.clock.now();
    let active = ctx.fw.ledger.read()?.counts(&set, now)?.0;
    Ok(json!({"set": set, "created": !existed, "bans": active}))
}
