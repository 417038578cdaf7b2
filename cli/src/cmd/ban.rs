//! `banset ban JAIL TARGET...`: a ban as the jail makes it (its set, its
//! bantime, recorded as the jail's), through the daemon when it runs.

use anyhow::Result;
use banset_core::control::{Ban, BanInto, Op, Request};
use banset_core::{Target, Timeout};

use crate::args::{BanArgs, GlobalArgs};
use crate::output::{counted, print_json};

pub fn run(global: GlobalArgs, args: BanArgs) -> Result<i32> {
    let targets = args
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    let quiet = global.quiet;
    let request = Request::new(Op::Ban(Ban {
        into: BanInto::Jail(args.jail.clone()),
        targets,
        timeout,
        since: None,
        reason: None,
    }));
    let (reply, _) = crate::control::run(global, &request)?;
    let f = super::control::fields(reply)?;
    if args.json {
        print_json(&f)?;
    } else if !quiet {
        println!(
            "jail {}: banned {} in set {}",
            args.jail,
            counted(f["banned"].as_u64().unwrap_or(0), "target", "targets"),
            f["set"].as_str().unwrap_or_default()
        );
        for r in f["refused"].as_array().into_iter().flatten() {
            println!("not banned: {}", r["reason"].as_str().unwrap_or_default());
        }
    }
    Ok(crate::errors::EXIT_OK)
}
