//! `banset status JAIL [--json]`: the jail as `fail2ban-client status
//! JAIL` shows it, from the daemon when it runs, else from the ledger
//! (which has the bans but not the failure tallies).

use std::io::Write;

use anyhow::Result;
use banset_core::control::{Op, Request};
use serde_json::Value;

use crate::args::{GlobalArgs, StatusArgs};
use crate::output::{print_json, stdout};

pub fn run(global: GlobalArgs, args: StatusArgs) -> Result<i32> {
    let jail = args.jail.clone().unwrap_or_default();
    let request = Request::new(Op::Status {
        jail: Some(jail.clone()),
    });
    let (reply, _) = crate::control::run(global, &request)?;
    let f = super::control::fields(reply)?;
    let j = &f["jail"];
    if args.json {
        print_json(&serde_json::json!({"daemon": f["daemon"], "jail": j}))?;
        return Ok(crate::errors::EXIT_OK);
    }
    let daemon = f["daemon"].as_bool().unwrap_or(false);
    let tally = |v: &Value| match v.as_u64() {
        Some(n) => n.to_string(),
        None => "unknown (no daemon runs)".to_string(),
    };
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let mut out = stdout();
    writeln!(out, "Status for the jail: {jail}")?;
    writeln!(out, "|- Filter")?;
    writeln!(
        out,
        "|  |- Currently failed:\t{}",
        tally(&j["currently_failed"])
    )?;
    writeln!(out, "|  |- Total failed:\t{}", tally(&j["total_failed"]))?;
    writeln!(out, "|  |- File list:\t{}", list(&j["files"]))?;
    writeln!(
        out,
        "|  `- Journal matches:\t{}",
        list(&j["journal_matches"])
    )?;
    writeln!(out, "`- Actions")?;
    writeln!(
        out,
        "   |- Currently banned:\t{}",
        tally(&j["currently_banned"])
    )?;
    writeln!(out, "   |- Total banned:\t{}", tally(&j["total_banned"]))?;
    writeln!(out, "   `- Banned IP list:\t{}", list(&j["banned"]))?;
    if !daemon {
        writeln!(
            out,
            "(from the ledger: banset watch is not running; {} fed by {})",
            list(&j["sets"]),
            if j["kind"] == "fail2ban-action" {
                "fail2ban's banset action"
            } else {
                "this jail"
            }
        )?;
    }
    out.flush()?;
    Ok(crate::errors::EXIT_OK)
}
