use anyhow::Result;

use crate::args::SyncArgs;
use crate::context::Context;
use crate::output::{print_json, unreadable_rows_lines};

/// Syncs every set even when one fails, reporting each: one broken set
/// (its kernel refuses, its backend is missing here) must not leave the
/// others unrestored. Exits with the worst failure's code.
pub fn run(ctx: &mut Context, args: SyncArgs) -> Result<Option<i32>> {
    let name = args.set.as_deref().map(crate::args::set_name).transpose()?;
    let outcomes = ctx.engine().sync_each(name.as_ref())?;
    let worst = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(crate::errors::engine_exit_code))
        .max();
    if args.json {
        // Failed sets as {"set", "error"} beside the reports, so a script
        // sees every set.
        let items: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(set, r)| match r {
                Ok(report) => serde_json::to_value(report).expect("a report serialises"),
                Err(e) => serde_json::json!({
                    "set": set.as_str(),
                    "error": e.to_string().replace('\n', " "),
                }),
            })
            .collect();
        print_json(&items)?;
        return Ok(worst);
    }
    for (set, outcome) in &outcomes {
        let r = match outcome {
            Ok(r) => r,
            Err(e) => {
                // Always shown, even with --quiet: the exit code alone does
                // not say which set failed.
                eprintln!("banset: sync {set}: {}", e.to_string().replace('\n', " "));
                if let Some(hint) = crate::errors::engine_hint(e) {
                    eprintln!("hint: {hint}");
                }
                continue;
            }
        };
        for line in unreadable_rows_lines(set, &r.unreadable_rows) {
            ctx.notice(line);
        }
        let changed = r.repaired_objects || r.added + r.refreshed + r.removed + r.expired > 0;
        let line = if ctx.global.dry_run {
            format!(
                "dry run: {}: would {}re-add {}, refresh {}, remove {}, forget {} expired",
                r.set,
                if r.repaired_objects {
                    "re-create set and rule, "
                } else {
                    ""
                },
                r.added,
                r.refreshed,
                r.removed,
                r.expired
            )
        } else {
            format!(
                "{}: {}re-added {}, refreshed {}, removed {}, forgot {} expired",
                r.set,
                if r.repaired_objects {
                    "re-created set and rule; "
                } else {
                    ""
                },
                r.added,
                r.refreshed,
                r.removed,
                r.expired
            )
        };
        if changed {
            ctx.notice(line);
        } else {
            ctx.info(format_args!("{}: kernel and ledger agree", r.set));
        }
    }
    Ok(worst)
}
