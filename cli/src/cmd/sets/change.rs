//! `banset set-options SET [options]`: a set's rule and maxelem change in
//! place, every ban kept (`Engine::change_set`). Options not given keep
//! their value; options that cannot change in place are refused with why.

use anyhow::Result;

use crate::args::ChangeArgs;
use crate::context::Context;
use crate::errors::usage;
use crate::output::describe_spec;
use crate::set_options::changed_spec;

pub fn run(ctx: &mut Context, args: ChangeArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    if args.options.is_empty() {
        usage!(
            "set-options {name}: give the options to change (--ports, --protocol, --blocktype, --no-hook, --maxelem)"
        );
    }
    let Some(existing) = ctx.fw.ledger.read()?.set_spec(&name)? else {
        usage!("no set named {name} (banset create makes one)");
    };
    let wanted = changed_spec(&existing, &args.options, None, ctx.global.dry_run)?;
    crate::lockout::guard(ctx, Some(&existing), &wanted, &[], args.force)?;
    let change = ctx.engine().change_set(&wanted)?;
    if change.is_empty() {
        ctx.info(format_args!("set {name} already has these options"));
    } else {
        let did = ctx.did("changed", "would change");
        // Said without -v: an admin changing a live set wants to see it.
        ctx.notice(format_args!(
            "{did} set {name} in place ({}), keeping its bans: {}",
            change.describe_in_place(),
            describe_spec(&wanted)
        ));
    }
    Ok(None)
}
