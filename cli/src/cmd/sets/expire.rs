use anyhow::Result;
use serde::Serialize;

use crate::args::JsonArg;
use crate::context::Context;
use crate::output::print_json;

#[derive(Serialize)]
struct Expired {
    set: String,
    removed: Vec<String>,
}

pub fn run(ctx: &mut Context, args: JsonArg) -> Result<Option<i32>> {
    let expired = ctx.engine().expire()?;
    if args.json {
        let rows: Vec<Expired> = expired
            .iter()
            .map(|(set, targets)| Expired {
                set: set.to_string(),
                removed: targets.iter().map(|t| t.to_string()).collect(),
            })
            .collect();
        print_json(&rows)?;
        return Ok(None);
    }
    for (set, targets) in &expired {
        let did = ctx.did("removed", "would be removed");
        ctx.info(format_args!("{set}: {} expired bans {did}", targets.len()));
    }
    Ok(None)
}
