//! The control socket (docs/control-protocol.md): where it lives, the
//! client the CLI uses, the daemon's server, `banset control --stdio`, and
//! the one dispatcher all of them execute requests with. The protocol's
//! parser and encoder are banset-core's (`banset_core::control`).
//!
//! One path per job: `status JAIL`, `unban` and `ban JAIL` build a
//! request and either send it to the daemon or hand it to
//! [`dispatch::dispatch`] in this process (see [`run`]); the daemon hands
//! what it receives to the same function.

pub mod client;
pub mod dispatch;
pub mod host;
pub mod jail_status;
pub mod local;
pub mod paths;
pub mod server;

use anyhow::Result;
use banset_core::control::{Reply, Request};

use crate::args::GlobalArgs;
pub use paths::{runtime_dir, socket_path};

/// Who answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// The running daemon, over its socket.
    Daemon,
    /// This process, from the ledger and the kernel.
    Local,
}

/// Executes `request` through the daemon when one answers on the socket,
/// else in this process against the ledger and the kernel: the same
/// dispatcher either way. A dry run never goes to the daemon (which would
/// carry it out).
pub fn run(global: GlobalArgs, request: &Request) -> Result<(Reply, AnsweredBy)> {
    if !global.dry_run {
        if let Some(mut conn) = client::Connection::open(&runtime_dir(&global))? {
            return Ok((conn.request(request)?, AnsweredBy::Daemon));
        }
    }
    let bans = matches!(request.op, banset_core::control::Op::Ban(_));
    let mut host = local::LocalHost::new(global, bans)?;
    let line = dispatch::dispatch(&mut host, request);
    for line in host.ctx.fw.backends.dry_run_plan() {
        host.ctx.info(line);
    }
    let reply = banset_core::control::parse_reply(line.trim_end().as_bytes())?;
    Ok((reply, AnsweredBy::Local))
}
