use anyhow::Result;
use banset_core::Target;

use crate::args::DelArgs;
use crate::context::Context;
use crate::targets_input::read_targets;

pub fn run(ctx: &mut Context, args: DelArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    if args.if_exists && ctx.fw.ledger.read()?.set_spec(&name)?.is_none() {
        // fail2ban's unban after the set was destroyed: nothing is banned
        read_targets(&args.input)?;
        ctx.info(format_args!("{name}: no such set, nothing to unban"));
        return Ok(None);
    }
    // A named target that does not parse may be an unreadable ledger row
    // (`0.0.0.0`, written by a banset that accepted it): del removes such a
    // row by its exact text. Any other bad target is refused as before.
    if args.input.file.is_none() {
        let unreadable: Vec<&str> = args
            .input
            .targets
            .iter()
            .map(String::as_str)
            .filter(|t| Target::parse(t).is_err())
            .collect();
        if !unreadable.is_empty() {
            let rows: Vec<String> = ctx
                .fw
                .ledger
                .read()?
                .bans_and_unreadable(&name)?
                .1
                .into_iter()
                .map(|r| r.text)
                .collect();
            if unreadable.iter().all(|t| rows.iter().any(|r| r == t)) {
                let parsed: Vec<Target> = args
                    .input
                    .targets
                    .iter()
                    .filter_map(|t| Target::parse(t).ok())
                    .collect();
                let known = ctx
                    .engine()
                    .del_with_unreadable(&name, &parsed, &unreadable)?;
                let did = ctx.did("unbanned", "would be unbanned");
                ctx.info(format_args!(
                    "{name}: {} {did} ({known} were in the ledger, {} of them unreadable rows)",
                    parsed.len() + unreadable.len(),
                    unreadable.len()
                ));
                return Ok(None);
            }
        }
    }
    let targets = read_targets(&args.input)?;
    let spec = ctx.fw.ledger.read()?.set_spec(&name)?;
    if let Some(spec) = spec {
        crate::lockout::guard_removal(ctx, &spec, Some(&targets), args.force)?;
    }
    let known = ctx.engine().del(&name, &targets)?;
    let did = ctx.did("unbanned", "would be unbanned");
    ctx.info(format_args!(
        "{name}: {} {did} ({known} were in the ledger)",
        targets.len()
    ));
    Ok(None)
}
