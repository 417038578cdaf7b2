//! `banset test SET TARGET`: whether the target is a member, and for an
//! allow-only set what that means to its traffic.

use anyhow::Result;
use banset_core::{BlockType, SetPolicy, Target};

use crate::args::TestArgs;
use crate::context::Context;
use crate::errors::{usage, EXIT_NEGATIVE, EXIT_OK};

/// Exit 0 when the target is a member, whatever the policy (scripts ask
/// "is it in the set?"); the text says what that means.
pub fn run(ctx: &mut Context, args: TestArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let target = Target::parse(&args.target)?;
    let Some(spec) = ctx.fw.ledger.read()?.set_spec(&name)? else {
        usage!("no set named {name} (banset create makes one)");
    };
    let member = ctx.engine().test(&name, &target)?;
    let is = if member { "is" } else { "is NOT" };
    match spec.policy {
        SetPolicy::Ban => ctx.info(format_args!("{target} {is} in {name}")),
        SetPolicy::AllowOnly => {
            let verdict = match &spec.hook {
                None => "no rule: the set blocks nothing by itself".to_string(),
                Some(h) if SetPolicy::AllowOnly.blocks(member) => format!(
                    "would be {}",
                    match h.block {
                        BlockType::Drop => "dropped",
                        BlockType::Reject => "rejected",
                    }
                ),
                Some(_) => "would be allowed".to_string(),
            };
            // Said without -v: "allowed or not" is the question an admin asks.
            ctx.notice(format_args!(
                "{target} {is} in allow-only set {name}: {verdict}"
            ));
        }
    }
    Ok(Some(if member { EXIT_OK } else { EXIT_NEGATIVE }))
}
