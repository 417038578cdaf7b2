//! `banset ensure SET [options]`: the set exists and the kernel holds every
//! ban the ledger has, whatever happened since (a reboot, a firewall reload,
//! a fail2ban restart). It is what fail2ban's `actionstart` and
//! `actionrepair` run, so it must succeed on a set that exists already:
//! unlike `create`, a set made earlier with other options is kept as it is
//! (its bans with it) and the difference is reported on stderr, where
//! fail2ban's log shows it.

use anyhow::Result;
use banset_core::{SetSpec, Timeout};

use crate::args::CreateArgs;
use crate::context::Context;
use crate::output::describe_spec;
use crate::set_options::build_spec;

pub fn run(ctx: &mut Context, args: CreateArgs) -> Result<Option<i32>> {
    let name = super::set_name(&args.set)?;
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    let wanted = build_spec(name.clone(), &args.options, timeout, &ctx.config)?;
    let existing = ctx.ledger.read()?.set_spec(&name)?;
    match existing {
        None => {
            ctx.engine().create(&wanted)?;
            ctx.info(format_args!("created {}", describe_spec(&wanted)));
            return Ok(None);
        }
        Some(existing) => {
            if let Some(diff) = blocking_difference(&existing, &wanted) {
                ctx.notice(format_args!(
                    "set {name} exists with other options ({diff}); keeping it and its bans \
                     (banset destroy {name} and start again to change them)"
                ));
            }
        }
    }
    for r in ctx.engine().sync(Some(&name))? {
        let changed = r.repaired_objects || r.added + r.refreshed + r.removed > 0;
        if changed {
            ctx.notice(format_args!(
                "{}: {}re-added {} bans, refreshed {}, removed {} unknown to the ledger",
                r.set,
                if r.repaired_objects {
                    "re-created set and rule; "
                } else {
                    ""
                },
                r.added,
                r.refreshed,
                r.removed
            ));
        } else {
            ctx.info(format_args!("{}: in place, kernel and ledger agree", r.set));
        }
    }
    Ok(None)
}

/// What differs in how the set blocks traffic. The default timeout and the
/// size are left out: every ban from fail2ban carries its own timeout, and
/// neither changes what is blocked.
fn blocking_difference(existing: &SetSpec, wanted: &SetSpec) -> Option<String> {
    let mut diffs = Vec::new();
    if existing.backend != wanted.backend {
        diffs.push(format!(
            "backend {} vs {}",
            existing.backend, wanted.backend
        ));
    }
    if existing.families != wanted.families {
        diffs.push(format!(
            "family {} vs {}",
            existing.families.name(),
            wanted.families.name()
        ));
    }
    if existing.prefixes != wanted.prefixes {
        diffs.push(format!(
            "prefixes {} vs {}",
            existing.prefixes, wanted.prefixes
        ));
    }
    if existing.hook != wanted.hook {
        diffs.push(format!(
            "rule \"{}\" vs \"{}\"",
            rule_of(existing),
            rule_of(wanted)
        ));
    }
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

/// The rule part of [`describe_spec`] (`drop tcp ports 25,465`).
fn rule_of(spec: &SetSpec) -> String {
    let text = describe_spec(spec);
    text.rsplit(", ").next().unwrap_or_default().to_string()
}
