//! Noticing that someone deleted nf_tables objects (`nft flush ruleset`,
//! a firewall reload, `nft delete set`), so the caller can put banset's
//! back within a second: the nftables counterpart of firewalld's reload
//! watcher, with the same shape.
//!
//! The watcher joins the kernel's `NFNLGRP_NFTABLES` multicast group and
//! reports a deletion of a table, chain, rule or set; additions and
//! element changes (banset's own bans among them) are passed over. It does
//! not say which object went: the caller checks its sets itself.

use std::thread::JoinHandle;

use banset_core::BackendError;
use banset_netlink::monitor::{Monitor, Notice, NFNLGRP_NFTABLES};

use crate::backend::sys_error;
use crate::msg::{msg_type, nft_type};

/// What the watcher saw. Every variant but [`DeletionEvent::Failed`] means
/// banset's objects may be gone and should be checked
/// ([`DeletionEvent::needs_check`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum DeletionEvent {
    /// A table, chain, rule or set was deleted.
    Deleted,
    /// The kernel dropped notifications because the watcher was slow:
    /// anything may have been deleted.
    Overrun,
    /// The socket failed; the watcher thread ends after this event, and
    /// only a periodic check will notice deletions from now on.
    Failed(BackendError),
}

impl DeletionEvent {
    /// Whether the caller should check its sets now.
    pub fn needs_check(&self) -> bool {
        !matches!(self, DeletionEvent::Failed(_))
    }
}

/// The message types that delete objects a banset set is made of.
const DELETIONS: [u8; 4] = [
    msg_type::DELTABLE,
    msg_type::DELCHAIN,
    msg_type::DELRULE,
    msg_type::DELSET,
];

/// Whether a notification of this `nlmsg_type` deletes an nf_tables table,
/// chain, rule or set.
pub fn is_deletion(nlmsg_type: u16) -> bool {
    DELETIONS.iter().any(|&m| nft_type(m) == nlmsg_type)
}

/// Watches the calling thread's network namespace for deleted nf_tables
/// objects and calls `on_event` for each batch of notifications that
/// holds one, on a thread of its own named `nftables monitor`.
///
/// - Returns once subscribed, so a caller that (re-)applies its sets
///   *after* this returns cannot miss a deletion in between. Fails when
///   the socket cannot be opened (no netlink, not Linux).
/// - `on_event` runs on the watcher thread, one event at a time; while it
///   runs, notifications queue in the socket (an overrun is reported).
/// - A socket failure is reported as [`DeletionEvent::Failed`] and ends
///   the thread. Otherwise the thread runs for the life of the process;
///   drop the handle to detach it. `on_event` returning `false` ends it
///   too (its receiver went away).
///
/// The daemon's keeper calls it like this:
///
/// ```no_run
/// use banset_nftables::{spawn_deletion_watcher, DeletionEvent};
/// let (tx, rx) = std::sync::mpsc::channel();
/// spawn_deletion_watcher(move |event: DeletionEvent| {
///     !event.needs_check() || tx.send(()).is_ok() // the keeper checks its sets
/// })?;
/// // ... restore every set once, then loop on rx ...
/// # Ok::<(), banset_core::BackendError>(())
/// ```
pub fn spawn_deletion_watcher(
    mut on_event: impl FnMut(DeletionEvent) -> bool + Send + 'static,
) -> Result<JoinHandle<()>, BackendError> {
    let mut monitor = Monitor::open(banset_netlink::NETLINK_NETFILTER, &[NFNLGRP_NFTABLES])
        .map_err(|e| sys_error(e, "subscribe to nf_tables changes"))?;
    std::thread::Builder::new()
        .name("nftables monitor".into())
        .spawn(move || loop {
            let event = match monitor.wait(-1) {
                Ok(Notice::Messages(types)) if types.iter().any(|&t| is_deletion(t)) => {
                    DeletionEvent::Deleted
                }
                Ok(Notice::Messages(_) | Notice::Timeout) => continue,
                Ok(Notice::Overrun) => DeletionEvent::Overrun,
                Err(e) => {
                    on_event(DeletionEvent::Failed(sys_error(e, "nf_tables monitor")));
                    return;
                }
            };
            if !on_event(event) {
                return;
            }
        })
        .map_err(|e| {
            BackendError::new(
                banset_core::ErrorKind::Other,
                "start the nftables monitor",
                e.to_string(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four numbers the daemon's keeper used to spell out itself.
    #[test]
    fn deletions_are_tables_chains_rules_and_sets() {
        let nft = |m: u16| (10 << 8) | m;
        for m in [2, 5, 8, 11] {
            assert!(is_deletion(nft(m)), "{m}");
        }
        // New objects, element changes (banset's own bans) and other
        // subsystems are not deletions.
        for t in [nft(0), nft(9), nft(12), nft(14), nft(30), (11 << 8) | 2, 2] {
            assert!(!is_deletion(t), "{t:#x}");
        }
    }
}
