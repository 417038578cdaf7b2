use anyhow::Result;
use banset_core::Target;

use crate::args::TestArgs;
use crate::context::Context;
use crate::errors::{EXIT_NEGATIVE, EXIT_OK};

pub fn run(ctx: &mut Context, args: TestArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let target = Target::parse(&args.target)?;
    let banned = ctx.engine().test(&name, &target)?;
    ctx.info(format_args!(
        "{target} is {}in {name}",
        if banned { "" } else { "NOT " }
    ));
    Ok(Some(if banned { EXIT_OK } else { EXIT_NEGATIVE }))
}
