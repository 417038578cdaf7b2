//! `banset check SET`: exit 0 when the set's kernel objects and rule are all
//! in place, 1 when anything is missing. fail2ban runs it as `actioncheck`
//! after a failed ban, and `actionrepair` (`banset ensure`) when it fails,
//! so a set unknown to the ledger is a 1 as well: ensure creates it.

use anyhow::Result;
use banset_core::{BackendProvider, ErrorKind, SetHealth};

use crate::args::SetArg;
use crate::context::Context;
use crate::errors::{EXIT_NEGATIVE, EXIT_OK};

pub fn run(ctx: &mut Context, args: SetArg) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let Some(spec) = ctx.fw.ledger.read()?.set_spec(&name)? else {
        ctx.notice(format_args!(
            "set {name} does not exist (banset ensure {name} creates it)"
        ));
        return Ok(Some(EXIT_NEGATIVE));
    };
    let backend = ctx.fw.backends.backend(spec.backend)?;
    let health = match backend.health(&spec) {
        Ok(h) => h,
        Err(e) if e.kind() == ErrorKind::NotFound => SetHealth::Missing,
        Err(e) => return Err(e.within(format!("check {name}")).into()),
    };
    let problem = match health {
        SetHealth::Present => {
            ctx.info(format_args!("{name}: set and rule are in place"));
            return Ok(Some(EXIT_OK));
        }
        SetHealth::Incomplete => "part of its kernel objects or its rule is missing",
        SetHealth::Missing => "it is missing from the kernel",
    };
    ctx.notice(format_args!(
        "set {name}: {problem} (banset sync {name} restores it with every ban)"
    ));
    Ok(Some(EXIT_NEGATIVE))
}
