use anyhow::Result;

use crate::args::SetArg;
use crate::context::Context;

pub fn run(ctx: &mut Context, args: SetArg) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let n = ctx.engine().flush(&name)?;
    let did = ctx.did("flushed", "would flush it");
    ctx.info(format_args!(
        "{name}: {did}, {} removed",
        crate::output::counted(n, "ban", "bans")
    ));
    Ok(None)
}
