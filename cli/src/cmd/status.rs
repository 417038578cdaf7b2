use std::io::Write;

use anyhow::Result;
use banset_core::format_duration;
use serde::Serialize;

use crate::args::JsonArg;
use crate::context::Context;
use crate::output::{describe_spec, print_json, stdout};

#[derive(Serialize)]
struct Status<'a> {
    ledger: &'a str,
    sets: &'a [banset_core::SetStatus],
}

pub fn run(ctx: &mut Context, args: JsonArg) -> Result<Option<i32>> {
    let sets = ctx.engine().status()?;
    if args.json {
        print_json(&Status {
            ledger: ctx.ledger.path(),
            sets: &sets,
        })?;
        return Ok(None);
    }
    let now = banset_core::Clock::now(&ctx.clock);
    let mut out = stdout();
    writeln!(out, "ledger: {}", ctx.ledger.path())?;
    if sets.is_empty() {
        writeln!(out, "no sets yet (banset add SET ADDRESS creates one)")?;
    }
    for s in &sets {
        writeln!(out, "{}", describe_spec(&s.spec))?;
        let kernel = match (&s.health, s.kernel_members, &s.kernel_error) {
            (_, _, Some(err)) => format!("kernel unreadable: {err}"),
            (Some(h), Some(n), _) => format!("kernel: {h}, {n} members"),
            (Some(h), None, _) => format!("kernel: {h}"),
            _ => "kernel: unknown".into(),
        };
        let last_sync = match s.last_sync {
            Some(t) => format!(
                "last sync {} ago (unix time {t})",
                format_duration((now - t).max(0) as u64)
            ),
            None => "never synced".into(),
        };
        writeln!(
            out,
            "  bans: {} active ({} permanent); {kernel}; {last_sync}",
            s.active_bans, s.permanent_bans
        )?;
    }
    out.flush()?;
    Ok(None)
}
