use std::io::Write;

use anyhow::Result;
use banset_core::format_duration;
use serde::Serialize;

use crate::args::StatusArgs;
use crate::context::Context;
use crate::daemon::status::{read_status, WatchStatus};
use crate::output::{counted, describe_spec, print_json, stdout};

#[derive(Serialize)]
struct Status<'a> {
    ledger: &'a str,
    sets: &'a [banset_core::SetStatus],
    /// The running `banset watch` on this state directory, if any.
    watcher: Option<&'a WatchStatus>,
}

pub fn run(ctx: &mut Context, args: StatusArgs) -> Result<Option<i32>> {
    let sets = ctx.engine().status()?;
    let watcher = read_status(ctx);
    if args.json {
        print_json(&Status {
            ledger: ctx.fw.ledger.path(),
            sets: &sets,
            watcher: watcher.as_ref(),
        })?;
        return Ok(None);
    }
    let now = banset_core::Clock::now(&ctx.fw.clock);
    let mut out = stdout();
    writeln!(out, "ledger: {}", ctx.fw.ledger.path())?;
    if sets.is_empty() {
        writeln!(out, "no sets yet (banset add SET ADDRESS creates one)")?;
    }
    for s in &sets {
        writeln!(out, "{}", describe_spec(&s.spec))?;
        let kernel = match (&s.health, s.kernel_members, &s.kernel_error) {
            (_, _, Some(err)) => format!("kernel unreadable: {err}"),
            (Some(h), Some(n), _) => {
                format!("kernel: {h}, {}", counted(n, "member", "members"))
            }
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
    match &watcher {
        None => writeln!(out, "watcher: not running (banset watch)")?,
        Some(w) => {
            writeln!(
                out,
                "watcher: pid {}, up {}, config {}; {} unbans, {} repairs{}",
                w.pid,
                format_duration((now - w.started).max(0) as u64),
                w.config,
                w.unbans,
                w.repairs,
                w.last_heal_ms
                    .map(|ms| format!(" (last heal {ms:.1} ms)"))
                    .unwrap_or_default()
            )?;
            for j in &w.jails {
                writeln!(
                    out,
                    "  jail {}: filter {}, set {}; {} failing ({} in the last {}), {} since start{}",
                    j.name,
                    j.filter,
                    j.set,
                    counted(j.tracked, "address", "addresses"),
                    counted(j.failures, "failure", "failures"),
                    format_duration(j.findtime),
                    counted(j.bans, "ban", "bans"),
                    if j.too_old > 0 {
                        format!(
                            "; {} older than {} when read, not counted",
                            counted(j.too_old, "line", "lines"),
                            format_duration(j.findtime)
                        )
                    } else {
                        String::new()
                    }
                )?;
            }
            for s in &w.sources {
                writeln!(
                    out,
                    "  source {}: {}, {}, {} ignored{}",
                    s.source,
                    counted(s.lines, "line", "lines"),
                    counted(s.hits, "failure", "failures"),
                    s.ignored,
                    if s.waiting {
                        "; waiting for the file, which does not exist now"
                    } else {
                        ""
                    }
                )?;
            }
        }
    }
    out.flush()?;
    Ok(None)
}
