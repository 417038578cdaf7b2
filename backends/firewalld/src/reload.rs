//! Noticing that firewalld dropped its runtime rules, so the caller can put
//! banset's back within a second.
//!
//! Two things wipe firewalld's runtime direct rules: a reload
//! (`firewall-cmd --reload`, `--complete-reload`, a package update), after
//! which firewalld emits `Reloaded` on its main interface once the permanent
//! rules are re-applied; and a restart or crash, which shows on the bus as
//! `NameOwnerChanged` for `org.fedoraproject.FirewallD1`. The watcher
//! subscribes to exactly those two signals (narrow match rules, so the ~290
//! `config.*Added` signals of every reload never reach it) and calls back on
//! its own thread.
//!
//! If the bus itself goes away (dbus-daemon restarted), the watcher
//! connects again every quarter second and, once subscribed again, reports
//! [`ReloadEvent::Reconnected`]: whatever happened meanwhile went unseen.

use std::thread::JoinHandle;
use std::time::Duration;

use banset_core::{BackendError, ErrorKind};
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type as MessageType;
use zbus::MatchRule;

use crate::msg;
use crate::sys::{self, Bus};

/// What the watcher saw. Every variant but [`ReloadEvent::Stopped`] means
/// runtime rules may be gone and should be re-applied
/// ([`ReloadEvent::needs_reapply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReloadEvent {
    /// firewalld finished a reload: its permanent configuration is back,
    /// runtime direct rules are gone.
    Reloaded,
    /// firewalld took its bus name: it (re)started. Method calls made now
    /// are answered once its start-up rules are in place.
    Started,
    /// firewalld left the bus (stopped or crashed); its rules went with it
    /// (`CleanupOnExit`). Nothing can be re-applied until
    /// [`ReloadEvent::Started`].
    Stopped,
    /// The watcher lost the bus and is subscribed again: a reload or
    /// restart may have gone unseen.
    Reconnected,
}

impl ReloadEvent {
    /// Whether the caller should put its runtime rules back now.
    pub fn needs_reapply(self) -> bool {
        !matches!(self, ReloadEvent::Stopped)
    }
}

/// How long the watcher waits between attempts to reach a bus that went
/// away. Short, because a restarted bus usually comes back with firewalld.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);

/// [`spawn_reload_watcher_on`] the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is
/// honoured).
pub fn spawn_reload_watcher(
    on_event: impl FnMut(ReloadEvent) + Send + 'static,
) -> Result<JoinHandle<()>, BackendError> {
    spawn_reload_watcher_on(Bus::System, on_event)
}

/// Watches `bus` for firewalld reloads and restarts and calls `on_event`
/// for each, on a thread of its own named `firewalld-reload-watcher`.
///
/// - Returns once the subscription is in place, so a caller that
///   (re-)applies its rules *after* this returns cannot miss a reload in
///   between. Fails with [`ErrorKind::Unavailable`] when the bus cannot be
///   reached then; firewalld need not be running (its start is reported).
/// - `on_event` runs on the watcher thread, one event at a time, as soon
///   as the signal arrives. While it runs, further signals queue; a slow
///   callback delays the next event, never loses it. Re-applying must be
///   idempotent anyway: one reload can be followed by another at once.
/// - If the bus goes away, the thread reconnects every 250 ms and then
///   reports [`ReloadEvent::Reconnected`].
/// - The thread runs for the life of the process; drop the handle to
///   detach it. A panic in `on_event` ends the thread (seen by `join`).
///
/// The daemon's keeper calls it like this:
///
/// ```no_run
/// use banset_firewalld::{spawn_reload_watcher, ReloadEvent};
/// let (tx, rx) = std::sync::mpsc::channel();
/// spawn_reload_watcher(move |event: ReloadEvent| {
///     if event.needs_reapply() {
///         let _ = tx.send(event); // the keeper runs `sync` of its firewalld sets
///     }
/// })?;
/// // ... restore every set once, then loop on rx ...
/// # Ok::<(), banset_core::BackendError>(())
/// ```
pub fn spawn_reload_watcher_on(
    bus: Bus,
    mut on_event: impl FnMut(ReloadEvent) + Send + 'static,
) -> Result<JoinHandle<()>, BackendError> {
    let first = subscribe(&bus)?;
    std::thread::Builder::new()
        .name("firewalld-reload-watcher".into())
        .spawn(move || {
            let mut messages = first;
            loop {
                for message in messages.by_ref() {
                    // An error is a broken stream (the bus went away) or a
                    // message zbus could not read; either way, reconnect.
                    let Ok(message) = message else { break };
                    if let Some(event) = classify(&message) {
                        on_event(event);
                    }
                }
                messages = loop {
                    std::thread::sleep(RECONNECT_EVERY);
                    if let Ok(m) = subscribe(&bus) {
                        break m;
                    }
                };
                on_event(ReloadEvent::Reconnected);
            }
        })
        .map_err(|e| {
            BackendError::new(
                ErrorKind::Other,
                "start the firewalld reload watcher",
                e.to_string(),
            )
        })
}

/// A fresh connection with both match rules in place. The iterator exists
/// before the rules are added, so no matching signal can slip between.
fn subscribe(bus: &Bus) -> Result<MessageIterator, BackendError> {
    let conn: Connection = sys::connect(bus, Duration::from_secs(10))?;
    let messages = MessageIterator::from(&conn);
    let what = || format!("subscribe to firewalld's signals on {}", bus.describe());
    let fail = |e: zbus::Error| BackendError::new(ErrorKind::Unavailable, what(), e.to_string());
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).map_err(fail)?;
    let reloaded = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(msg::SERVICE)
        .and_then(|b| b.interface(msg::MAIN_INTERFACE))
        .and_then(|b| b.member("Reloaded"))
        .map(|b| b.build())
        .map_err(fail)?;
    let owner = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender("org.freedesktop.DBus")
        .and_then(|b| b.interface("org.freedesktop.DBus"))
        .and_then(|b| b.member("NameOwnerChanged"))
        .and_then(|b| b.add_arg(msg::SERVICE))
        .map(|b| b.build())
        .map_err(fail)?;
    for rule in [reloaded, owner] {
        dbus.add_match_rule(rule)
            .map_err(|e| fail(zbus::Error::from(e)))?;
    }
    Ok(messages)
}

/// The event a message means, if any; replies and other traffic on the
/// connection are ignored.
fn classify(message: &zbus::Message) -> Option<ReloadEvent> {
    let header = message.header();
    if header.message_type() != MessageType::Signal {
        return None;
    }
    let interface = header.interface()?.as_str();
    let member = header.member()?.as_str();
    match (interface, member) {
        (msg::MAIN_INTERFACE, "Reloaded") => Some(ReloadEvent::Reloaded),
        ("org.freedesktop.DBus", "NameOwnerChanged") => {
            let (name, _old, new): (String, String, String) = message.body().deserialize().ok()?;
            (name == msg::SERVICE).then_some(if new.is_empty() {
                ReloadEvent::Stopped
            } else {
                ReloadEvent::Started
            })
        }
        _ => None,
    }
}
