//! Requests executed without a daemon: the CLI's fallback, and
//! `banset control --stdio` (one long-lived process reading requests on
//! standard input, answering on standard output, for fail2ban's Python
//! action when no daemon runs).

use std::io::{BufRead, Read, Write};

use anyhow::Result;
use banset_core::control::{error_line, parse_request, Which, MAX_LINE};
use banset_core::{Allowlist, SetName, SetSpec, Target};
use banset_watch::config::Settings;

use super::dispatch::dispatch;
use super::host::{Host, JailView};
use crate::args::GlobalArgs;
use crate::config::Config;
use crate::context::Context;
use banset_firewall::host_addresses;

/// A process alone: the ledger and the kernel, banset.toml's jails (read
/// when first needed), no failure windows.
pub struct LocalHost {
    pub ctx: Context,
    settings: Option<Settings>,
    ignored: Vec<Target>,
}

impl LocalHost {
    pub fn new(global: GlobalArgs, bans: bool) -> Result<LocalHost> {
        Ok(LocalHost {
            ctx: Context::new(global, bans)?,
            settings: None,
            ignored: Vec::new(),
        })
    }

    fn settings(&mut self) -> Result<&Settings> {
        if self.settings.is_none() {
            let (settings, _notices) =
                crate::daemon::settings::load_settings(&mut self.ctx.config, None)?;
            self.settings = Some(settings);
        }
        Ok(self.settings.as_ref().expect("loaded above"))
    }
}

impl Host for LocalHost {
    fn ctx(&mut self) -> &mut Context {
        &mut self.ctx
    }

    fn is_daemon(&self) -> bool {
        false
    }

    fn jails(&mut self) -> Result<Vec<JailView>> {
        Ok(self
            .settings()?
            .jails
            .iter()
            .map(|j| JailView {
                name: j.name.clone(),
                set: j.set.clone(),
                bantime: j.bantime,
                sources: j.sources.clone(),
                live: None,
            })
            .collect())
    }

    fn new_set_spec(&mut self, set: &SetName) -> Option<SetSpec> {
        let settings = self.settings().ok()?.clone();
        crate::daemon::set_plan::set_specs(&self.ctx.config, &settings)
            .ok()?
            .remove(set)
    }

    fn forget(&mut self, _which: &Which, _set: Option<&SetName>) -> u64 {
        0
    }

    fn ignored(&mut self) -> &mut Vec<Target> {
        &mut self.ignored
    }

    fn ignore_changed(&mut self) {
        let origin = self.ctx.config.origin_name();
        self.ctx.fw.allowlist = Allowlist::new()
            .with_host_addresses(host_addresses())
            .with_ignored(self.ctx.config.ignore.iter().copied(), &origin)
            .with_ignored(self.ignored.iter().copied(), "ignore-add");
    }

    fn reload(&mut self) -> Result<()> {
        self.ctx.config = Config::load(self.ctx.global.config.as_deref())?;
        self.settings = None;
        self.ignore_changed();
        Ok(())
    }
}

/// `banset control --stdio`: requests on standard input until it closes,
/// each reply flushed at once (the other end waits for it).
pub fn serve_stdio(global: GlobalArgs) -> Result<()> {
    let mut host = LocalHost::new(global, true)?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        // One byte past the limit tells a long line from a full one.
        let n = (&mut input)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let complete = line.ends_with(b"\n");
        let text = line.trim_ascii_end();
        if text.is_empty() && complete {
            continue;
        }
        let reply = match parse_request(text) {
            Ok(request) => dispatch(&mut host, &request),
            Err(e) => {
                out.write_all(error_line(e.id.as_ref(), &e.message).as_bytes())?;
                out.flush()?;
                if e.fatal || !complete {
                    return Ok(());
                }
                continue;
            }
        };
        out.write_all(reply.as_bytes())?;
        out.flush()?;
    }
}
