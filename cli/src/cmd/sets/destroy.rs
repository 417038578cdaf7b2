use anyhow::Result;

use crate::args::SetArg;
use crate::context::Context;

pub fn run(ctx: &mut Context, args: SetArg) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    ctx.engine().destroy(&name)?;
    let did = ctx.did("destroyed", "would destroy it");
    ctx.info(format_args!("{name}: {did}"));
    Ok(None)
}
