//! `banset unban TARGET... [--set S]` and `banset unban --all [--set S]`:
//! through the daemon when it runs (which also forgets the addresses'
//! failures), else against the ledger and the kernel; one dispatcher
//! decides either way (`crate::control::dispatch`).

use anyhow::Result;
use banset_core::control::{Op, Request, Unban, Which};
use banset_core::Target;

use crate::args::{GlobalArgs, UnbanArgs};
use crate::control::AnsweredBy;
use crate::output::{counted, print_json};

pub fn run(global: GlobalArgs, args: UnbanArgs) -> Result<i32> {
    let which = if args.all {
        Which::All
    } else {
        Which::Targets(
            args.targets
                .iter()
                .map(|t| Target::parse(t))
                .collect::<Result<_, _>>()?,
        )
    };
    let set = args.set.as_deref().map(crate::args::set_name).transpose()?;
    let quiet = global.quiet;
    // --fleet: withdrawn everywhere first (a refusal leaves everything as
    // it was), then the local unban, then its holds released: the whole
    // fleet lifted the ban, so nothing is left to hold off.
    let fleet = match (&which, args.fleet) {
        (Which::Targets(targets), true) => {
            let ctx = crate::context::Context::new(clone_global(&global), false)?;
            let lifted = crate::cmd::fleet::sync::unban_everywhere(&ctx, set.as_ref(), targets)?;
            Some((targets.clone(), lifted))
        }
        _ => None,
    };
    let global_after = fleet.as_ref().map(|_| clone_global(&global));
    let request = Request::new(Op::Unban(Unban {
        which,
        set: set.clone(),
    }));
    let (reply, by) = crate::control::run(global, &request)?;
    let f = crate::cmd::control::fields(reply)?;
    if let (Some((targets, lifted)), Some(global)) = (&fleet, global_after) {
        let mut ctx = crate::context::Context::new(global, false)?;
        let sets: Vec<banset_core::SetName> = match &set {
            Some(s) => vec![s.clone()],
            None => ctx.fw.ledger.read()?.set_names()?,
        };
        for s in &sets {
            ctx.engine().release_fleet_holds(s, targets)?;
        }
        if !quiet && !args.json {
            println!(
                "withdrawn on every fleet host: {}",
                counted(*lifted, "published ban", "published bans")
            );
        }
    }
    if args.json {
        print_json(&f)?;
        return Ok(crate::errors::EXIT_OK);
    }
    if quiet {
        return Ok(crate::errors::EXIT_OK);
    }
    let n = f["unbanned"].as_u64().unwrap_or(0);
    let sets: Vec<String> = f["sets"]
        .as_object()
        .map(|m| m.iter().map(|(s, n)| format!("{s} ({n})")).collect())
        .unwrap_or_default();
    let mut line = format!("unbanned {}", counted(n, "ban", "bans"));
    if !sets.is_empty() {
        line += &format!(" in {}", sets.join(", "));
    }
    match by {
        AnsweredBy::Daemon => {
            let forgot = f["forgotten"].as_u64().unwrap_or(0);
            line += &format!(
                "; the daemon forgot the failures of {}",
                counted(forgot, "address", "addresses")
            );
        }
        AnsweredBy::Local => line += "; no daemon runs, so no failure window to clear",
    }
    println!("{line}");
    for c in f["still_covered"].as_array().into_iter().flatten() {
        println!(
            "still banned by prefix {} in set {} (banset unban {} to lift it)",
            c["prefix"].as_str().unwrap_or_default(),
            c["set"].as_str().unwrap_or_default(),
            c["prefix"].as_str().unwrap_or_default()
        );
    }
    Ok(crate::errors::EXIT_OK)
}

/// `GlobalArgs` for a second context in the same command.
fn clone_global(g: &GlobalArgs) -> GlobalArgs {
    GlobalArgs {
        state_dir: g.state_dir.clone(),
        config: g.config.clone(),
        dry_run: g.dry_run,
        quiet: g.quiet,
        verbose: g.verbose,
        runtime_dir: g.runtime_dir.clone(),
    }
}
