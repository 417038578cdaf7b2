//! The daemon as the control dispatcher's host: its jails with their live
//! tallies and failure windows, run-time ignores, and reload. Requests
//! arrive from the socket's threads as [`Event::Control`](super::Event)
//! and run here, in the loop, one at a time between failures.

use anyhow::Result;
use banset_core::control::{Op, Which};
use banset_core::{SetName, SetSpec, Target};

use super::logging::log;
use super::state::Daemon;
use crate::context::Context;
use crate::control::dispatch::dispatch;
use crate::control::host::{Host, JailView, Live};
use crate::control::server::Call;

impl Daemon<'_> {
    /// Executes one request and sends its reply to the connection.
    pub(super) fn control(&mut self, call: Call) {
        let reply = dispatch(self, &call.request);
        // Changes are logged; reads are not (status is polled).
        if !matches!(call.request.op, Op::Hello | Op::Status { .. }) {
            log!(
                "control: {} {}",
                call.request.op.name(),
                shortened(reply.trim_end(), 300)
            );
        }
        // The connection may be gone; nothing to do then.
        let _ = call.reply.send(reply);
    }
}

impl Host for Daemon<'_> {
    fn ctx(&mut self) -> &mut Context {
        self.ctx
    }

    fn is_daemon(&self) -> bool {
        true
    }

    fn jails(&mut self) -> Result<Vec<JailView>> {
        Ok(self
            .jails
            .iter()
            .map(|j| {
                let s = j.settings();
                JailView {
                    name: s.name.clone(),
                    set: s.set.clone(),
                    bantime: s.bantime,
                    sources: s.sources.clone(),
                    live: Some(Live {
                        currently_failed: j.tracked() as u64,
                        total_failed: j.stats().failures,
                        total_banned: j.stats().bans,
                    }),
                }
            })
            .collect())
    }

    fn new_set_spec(&mut self, set: &SetName) -> Option<SetSpec> {
        self.specs.get(set).cloned()
    }

    fn forget(&mut self, which: &Which, set: Option<&SetName>) -> u64 {
        match which {
            Which::All => self.jails.forget(None, set) as u64,
            Which::Targets(targets) => targets
                .iter()
                .map(|t| self.jails.forget(Some(t), set) as u64)
                .sum(),
        }
    }

    fn ignored(&mut self) -> &mut Vec<Target> {
        &mut self.runtime_ignore
    }

    fn ignore_changed(&mut self) {
        self.rebuild_allowlists();
    }

    fn reload(&mut self) -> Result<()> {
        self.start_reload();
        Ok(())
    }
}

/// At most `max` bytes of `text` (a reply listing thousands of targets is
/// one log line, not a page).
fn shortened(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}
