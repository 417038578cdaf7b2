use anyhow::Result;
use banset_core::Timeout;

use crate::args::CreateArgs;
use crate::context::Context;
use crate::output::describe_spec;
use crate::set_options::build_spec;

pub fn run(ctx: &mut Context, args: CreateArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    let spec = build_spec(
        name,
        &args.options,
        timeout,
        &ctx.config,
        true,
        ctx.global.dry_run,
    )?;
    let existing = ctx.fw.ledger.read()?.set_spec(&spec.name)?;
    // An existing set is refused or kept by create itself; only a new one
    // turns a policy on.
    if existing.is_none() {
        crate::lockout::guard(ctx, None, &spec, &[], args.force)?;
    }
    let created = ctx.engine().create(&spec)?;
    if created {
        let did = ctx.did("created", "would create");
        ctx.info(format_args!("{did} {}", describe_spec(&spec)));
    } else {
        ctx.info(format_args!("set {} already exists as asked", spec.name));
    }
    Ok(None)
}
