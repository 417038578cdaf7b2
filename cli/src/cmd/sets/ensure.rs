//! `banset ensure SET [options]`: the set exists and the kernel holds every
//! ban the ledger has, whatever happened since (a reboot, a firewall reload,
//! a fail2ban restart). It is what fail2ban's `actionstart` and
//! `actionrepair` run, so it must succeed on a set that exists already:
//! unlike `create`, a set made earlier with other options is kept, with
//! its bans: a new rule (the jail's ports, protocol or block type) is
//! changed in place, and any other difference is reported on stderr, where
//! fail2ban's log shows it.
//!
//! With `--fail2ban-db DB --jail NAME` it also bans what fail2ban's
//! database holds as active for that jail (see
//! [`crate::cmd::integrations::fail2ban_db`]): the bans fail2ban restores
//! at start without running the action.

use anyhow::Result;
use banset_core::{AddOptions, BanRequest, SetName, SetSpec, SpecChange, Target, Timeout};

use crate::args::EnsureArgs;
use crate::cmd::integrations::fail2ban_db;
use crate::context::Context;
use crate::output::describe_spec;
use crate::set_options::build_spec;

pub fn run(ctx: &mut Context, args: EnsureArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    ensure(ctx, &name, &args)?;
    if let (Some(db), Some(jail)) = (&args.fail2ban_db, &args.jail) {
        import_fail2ban(ctx, &name, db, jail)?;
    }
    Ok(None)
}

fn ensure(ctx: &mut Context, name: &SetName, args: &EnsureArgs) -> Result<()> {
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    let existing = ctx.fw.ledger.read()?.set_spec(name)?;
    let mut wanted = build_spec(
        name.clone(),
        &args.options,
        timeout,
        &ctx.config,
        existing.is_none(),
        ctx.global.dry_run,
    )?;
    // Nobody chose a backend: an existing set keeps the one it was made
    // with (perhaps detected then), and that is no difference.
    if let Some(existing) = &existing {
        if args.options.backend.is_none() && ctx.config.defaults.backend.is_none() {
            wanted.backend = existing.backend;
        }
    }
    match existing {
        None => {
            crate::lockout::guard(ctx, None, &wanted, &[], false)?;
            ctx.engine().create(&wanted)?;
            let did = ctx.did("created", "would create");
            ctx.info(format_args!("{did} {}", describe_spec(&wanted)));
            return Ok(());
        }
        Some(existing) => {
            let change = blocking_change(&existing, &wanted);
            if change.refused.is_empty() && change.hook_changes() {
                // The jail's ports, protocol or block type changed (a
                // fail2ban reload or restart runs actionstart): the rule
                // changes in place and the bans stay.
                let target = SetSpec {
                    hook: wanted.hook.clone(),
                    ..existing.clone()
                };
                crate::lockout::guard(ctx, Some(&existing), &target, &[], false)?;
                let change = ctx.engine().change_set(&target)?;
                let did = ctx.did("changed", "would change");
                ctx.notice(format_args!(
                    "set {name}: {did} the rule in place ({}), keeping its bans",
                    change.describe_in_place()
                ));
            } else if !change.is_empty() {
                ctx.notice(format_args!(
                    "set {name} exists with other options ({}); keeping it and its bans \
                     (banset destroy {name} and start again to change them)",
                    change.describe()
                ));
            }
        }
    }
    for r in ctx.engine().sync(Some(name))? {
        let changed = r.repaired_objects || r.added + r.refreshed + r.removed > 0;
        if changed {
            let (dry, did, recreated) = if ctx.global.dry_run {
                ("dry run: ", "would have ", "re-created set and rule, ")
            } else {
                ("", "", "re-created set and rule; ")
            };
            ctx.notice(format_args!(
                "{dry}{}: {did}{}re-added {}, refreshed {}, removed {} unknown to the ledger",
                r.set,
                if r.repaired_objects { recreated } else { "" },
                crate::output::counted(r.added, "ban", "bans"),
                r.refreshed,
                r.removed
            ));
        } else {
            ctx.info(format_args!("{}: in place, kernel and ledger agree", r.set));
        }
    }
    Ok(())
}

/// Bans, in one batch, the jail's active bans from fail2ban's database,
/// each ending where fail2ban says it ends (a longer ban banset already
/// holds is kept). A missing database is nothing to import: fail2ban runs
/// without one when `dbfile = :memory:` or before its first ban. Rows banset
/// cannot take (not an address, an address it never bans) are reported and
/// left out rather than failing fail2ban's start.
fn import_fail2ban(
    ctx: &mut Context,
    name: &SetName,
    db: &std::path::Path,
    jail: &str,
) -> Result<()> {
    if !db.exists() {
        ctx.info(format_args!(
            "{}: no fail2ban database, nothing to import",
            db.display()
        ));
        return Ok(());
    }
    let now = banset_core::Clock::now(&ctx.fw.clock);
    let rows = fail2ban_db::active_bans(db, jail, now)?;
    let Some(spec) = ctx.fw.ledger.read()?.set_spec(name)? else {
        return Ok(());
    };
    let mut requests = Vec::with_capacity(rows.len());
    for row in rows {
        let target = match Target::parse(&row.ip) {
            Ok(t) => t,
            Err(e) => {
                ctx.notice(format_args!("fail2ban jail {jail}: {e}; not imported"));
                continue;
            }
        };
        let timeout = match row.ban_time {
            t if t <= -1 => Timeout::Never,
            t => match u64::try_from(t).ok().and_then(Timeout::from_secs) {
                Some(t) => t,
                None => continue,
            },
        };
        if let Err(why) = spec.admits(&target) {
            ctx.notice(format_args!("fail2ban jail {jail}: {why}; not imported"));
            continue;
        }
        if let Err(refusal) = ctx.fw.allowlist.check(&target, false) {
            ctx.notice(format_args!(
                "fail2ban jail {jail}: {refusal}; not imported"
            ));
            continue;
        }
        requests.push(BanRequest {
            target,
            timeout: Some(timeout),
            since: Some(row.time_of_ban),
            comment: Some(format!("fail2ban:{jail}")),
        });
    }
    if requests.is_empty() {
        return Ok(());
    }
    let report = ctx.engine().add(name, &requests, &AddOptions::default())?;
    ctx.info(format_args!(
        "{name}: {} active bans of fail2ban jail {jail} in place",
        report.applied
    ));
    Ok(())
}

/// What differs between the stored set and the one fail2ban asks for, as
/// [`SpecChange::between`] says for every other caller. The default timeout
/// and the size are left out: every ban from fail2ban carries its own
/// timeout, and neither changes what is blocked.
fn blocking_change(existing: &SetSpec, wanted: &SetSpec) -> SpecChange {
    let mut change = SpecChange::between(existing, wanted);
    change.refused.retain(|r| r.difference.option != "timeout");
    change.in_place.retain(|d| d.option != "maxelem");
    change
}
