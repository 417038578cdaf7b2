use anyhow::Result;

use crate::args::FlushArgs;
use crate::context::Context;

pub fn run(ctx: &mut Context, args: FlushArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let spec = ctx.fw.ledger.read()?.set_spec(&name)?;
    if let Some(spec) = spec {
        crate::lockout::guard_removal(ctx, &spec, None, args.force)?;
    }
    let n = ctx.engine().flush(&name)?;
    let did = ctx.did("flushed", "would flush it");
    ctx.info(format_args!(
        "{name}: {did}, {} removed",
        crate::output::counted(n, "ban", "bans")
    ));
    Ok(None)
}
