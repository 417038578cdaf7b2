use anyhow::Result;

use crate::args::SyncArgs;
use crate::context::Context;
use crate::output::print_json;

pub fn run(ctx: &mut Context, args: SyncArgs) -> Result<Option<i32>> {
    let name = args.set.as_deref().map(super::set_name).transpose()?;
    let reports = ctx.engine().sync(name.as_ref())?;
    if args.json {
        print_json(&reports)?;
        return Ok(None);
    }
    for r in &reports {
        let changed = r.repaired_objects || r.added + r.refreshed + r.removed + r.expired > 0;
        let line = format!(
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
        );
        if changed {
            ctx.notice(line);
        } else {
            ctx.info(format_args!("{}: kernel and ledger agree", r.set));
        }
    }
    Ok(None)
}
