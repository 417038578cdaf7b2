//! `banset adopt [SET...]`: record the kernel's members in the ledger, the
//! way back after `ledger.db` was lost, emptied or truncated (every other
//! command refuses to start an empty ledger beside kernel sets: see
//! `context::open_ledger`).

use anyhow::Result;
use banset_core::{SetName, Timeout};

use crate::args::AdoptArgs;
use crate::context::Context;
use crate::set_options::build_spec;

pub fn run(ctx: &mut Context, args: AdoptArgs) -> Result<Option<i32>> {
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    let in_kernel = ctx.fw.backends.kernel_sets();
    let names: Vec<SetName> = if args.sets.is_empty() {
        let mut all: Vec<SetName> = in_kernel.iter().flat_map(|(_, n)| n.clone()).collect();
        all.sort();
        all.dedup();
        if all.is_empty() {
            ctx.notice("the kernel holds no banset sets: nothing to adopt");
        }
        all
    } else {
        args.sets
            .iter()
            .map(|s| crate::args::set_name(s))
            .collect::<Result<_>>()?
    };
    for name in names {
        let known = ctx.fw.ledger.read()?.set_spec(&name)?;
        let spec = match known {
            Some(spec) => spec,
            None => {
                let mut spec = build_spec(
                    name.clone(),
                    &args.options,
                    timeout,
                    &ctx.config,
                    true,
                    ctx.global.dry_run,
                )?;
                // Nobody chose a backend: the one the set was found in.
                if args.options.backend.is_none() && ctx.config.defaults.backend.is_none() {
                    if let Some((kind, _)) = in_kernel.iter().find(|(_, n)| n.contains(&name)) {
                        spec.backend = *kind;
                    }
                }
                spec
            }
        };
        let (recorded, left_out) = ctx.engine().adopt(&spec)?;
        ctx.notice(format_args!(
            "{name}: recorded {recorded} kernel member{} in the ledger",
            if recorded == 1 { "" } else { "s" }
        ));
        if !left_out.is_empty() {
            let shown: Vec<String> = left_out.iter().take(5).map(|t| t.to_string()).collect();
            ctx.notice(format_args!(
                "{name}: left out {} member{} the allowlist or the set's options refuse ({}{}); \
                 the next sync removes them",
                left_out.len(),
                if left_out.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if left_out.len() > 5 { ", ..." } else { "" }
            ));
        }
    }
    Ok(None)
}
