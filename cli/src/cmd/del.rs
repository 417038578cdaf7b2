use anyhow::Result;

use crate::args::DelArgs;
use crate::context::Context;
use crate::targets_input::read_targets;

pub fn run(ctx: &mut Context, args: DelArgs) -> Result<Option<i32>> {
    let name = super::set_name(&args.set)?;
    let targets = read_targets(&args.input)?;
    if args.if_exists && ctx.ledger.read()?.set_spec(&name)?.is_none() {
        // fail2ban's unban after the set was destroyed: nothing is banned
        ctx.info(format_args!("{name}: no such set, nothing to unban"));
        return Ok(None);
    }
    let known = ctx.engine().del(&name, &targets)?;
    ctx.info(format_args!(
        "{name}: {} unbanned ({known} were in the ledger)",
        targets.len()
    ));
    Ok(None)
}
