//! `banset fleet sync --once`, and the fleet steps `add --fleet` and
//! `unban --fleet` take: glue over `banset_fleet::sync`, the same code the
//! daemon's fleet thread runs.

use anyhow::{Context as _, Result};
use banset_core::fleet::FleetConfig;
use banset_core::{SetName, Target};
use banset_fleet::sync::{publish_pending, sync_round, Link};
use banset_fleet::{Admin, ConnectOptions, Endpoint, FleetClient};
use serde_json::json;

use super::files::{FleetDir, HostFile};
use crate::context::Context;
use crate::errors::usage;

/// This host's fleet membership: its credentials and `[fleet]` (the
/// defaults when the section is absent). `None` when it has not joined.
pub fn membership(ctx: &Context) -> Result<Option<(HostFile, FleetConfig)>> {
    let dir = FleetDir::new(crate::context::state_dir(&ctx.global, &ctx.config).path());
    Ok(dir
        .read_host()?
        .map(|host| (host, ctx.config.fleet.clone().unwrap_or_default())))
}

/// `banset fleet sync --once`: publish the outbox, pull every change.
/// With `snapshot`, the cursor is forgotten first: remote rows suppressed
/// under an older `[fleet]` are judged again (a delta only brings rows
/// that changed).
pub fn once(ctx: &mut Context, snapshot: bool, json_out: bool) -> Result<()> {
    let Some((host, fleet)) = membership(ctx)? else {
        usage!("this host is in no fleet: run the `banset fleet join` line `add-host` printed");
    };
    if snapshot {
        let tx = ctx.fw.ledger.begin()?;
        tx.fleet_forget_cursor()?;
        tx.commit()?;
    }
    let mut link = Link::new(host.options());
    let (sent, pulled) = sync_round(&mut link, &mut ctx.engine(), &|name| fleet.policy(name))?;
    if json_out {
        crate::output::print_json(&json!({
            "host": link.host(),
            "published": sent,
            "pulled": pulled,
        }))?;
    } else if !ctx.global.quiet {
        let suppressed: u64 = pulled.applied.suppressed.values().sum();
        println!(
            "published {sent}; pulled {} rows in {} pages{}: {} banned, {} removed, {suppressed} suppressed; cursor {}.{}",
            pulled.rows,
            pulled.pages,
            if pulled.snapshot { " (snapshot)" } else { "" },
            pulled.applied.banned,
            pulled.applied.removed,
            pulled.cursor.txid,
            pulled.cursor.seq,
        );
    }
    Ok(())
}

/// After `add --fleet`, with no daemon to do it: push the outbox now.
/// Returns what to tell the admin; never an error (the ban is queued).
pub fn push_after_add(ctx: &mut Context) -> String {
    let Ok(Some((host, _))) = membership(ctx) else {
        return "queued for the fleet; this host has not joined one (banset fleet join)".into();
    };
    // banset_fleet bounds the connect (CONNECT_TIMEOUT) and the socket
    // (IO_TIMEOUT); the publish is one statement per 500 rows.
    let pushed = FleetClient::connect(&host.options())
        .map_err(banset_fleet::sync::SyncError::from)
        .and_then(|mut c| publish_pending(&mut c, &mut ctx.fw.ledger));
    match pushed {
        Ok(n) => format!("published to the fleet ({n} queued changes sent)"),
        Err(e) => {
            format!("queued for the fleet (the daemon or `banset fleet sync --once` sends it): {e}")
        }
    }
}

/// `banset unban TARGET --fleet`: the fleet admin withdraws the bans
/// everywhere (every origin's row), before the local unban. Needs this
/// host's admin credentials.
pub fn unban_everywhere(ctx: &Context, set: Option<&SetName>, targets: &[Target]) -> Result<u64> {
    let dir = FleetDir::new(crate::context::state_dir(&ctx.global, &ctx.config).path());
    if !dir.has_admin() {
        usage!(
            "--fleet needs the fleet admin's credentials ({}), which only the host that ran \
             `banset fleet init` or `hub-init` has; run the unban there",
            dir.admin_path().display()
        );
    }
    let admin = dir.read_admin()?;
    // The withdrawal is written as the fleet admin role (banset_admin), not
    // the owner: that role is what tells each origin "lifted everywhere,
    // do not publish it again", and all it may do is lift. Its password is
    // reset on each use; nothing else keeps it.
    let creds = Admin::connect(&admin.options())
        .and_then(|mut owner| owner.add_admin())
        .context("making the fleet admin login")?;
    let dsn = Endpoint::new(&admin.public_host, admin.public_port, &admin.dbname)?
        .dsn(&creds.role, &creds.password);
    let options = ConnectOptions {
        dsn,
        ca_file: admin.join_ca.clone(),
    };
    let mut client = FleetClient::connect(&options).context("connecting as the fleet admin")?;
    let mut lifted = 0;
    for t in targets {
        lifted += client.unban_everywhere(set.map(SetName::as_str), &t.to_string())?;
    }
    Ok(lifted)
}
