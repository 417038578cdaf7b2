//! The D-Bus side: connecting to the system bus, calling firewalld, and
//! turning what goes wrong into [`BackendError`]s that say whether firewalld
//! is down, refusing, or unreachable.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use banset_core::{BackendError, ErrorKind};
use zbus::blocking::Connection;

use crate::msg::{self, Exception};

/// Which bus firewalld is on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Bus {
    /// The system bus: `DBUS_SYSTEM_BUS_ADDRESS` when set, otherwise
    /// `/run/dbus/system_bus_socket`, as every D-Bus client does.
    #[default]
    System,
    /// An explicit D-Bus address (`unix:path=/tmp/x/bus`), e.g. a test's
    /// private bus. Nothing in the process environment is read.
    Address(String),
}

impl Bus {
    /// The address for messages.
    pub fn describe(&self) -> String {
        match self {
            Bus::System => match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
                Ok(a) if !a.is_empty() => format!("the system bus ({a})"),
                _ => "the system bus (/run/dbus/system_bus_socket)".to_string(),
            },
            Bus::Address(a) => format!("the bus at {a}"),
        }
    }
}

/// How long one call may take. firewalld answers a direct-rule call in
/// milliseconds and a reload in well under a second; a firewalld stuck in a
/// long transaction should fail a command, not hang it for the 25 s D-Bus
/// default.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection. Every failure here means firewalld cannot be
/// reached, so it is [`ErrorKind::Unavailable`].
pub fn connect(bus: &Bus, timeout: Duration) -> Result<Connection, BackendError> {
    let builder = match bus {
        Bus::System => zbus::blocking::connection::Builder::system(),
        Bus::Address(a) => zbus::blocking::connection::Builder::address(a.as_str()),
    };
    builder
        .map(|b| b.method_timeout(timeout))
        .and_then(|b| b.build())
        .map_err(|e| {
            BackendError::new(
                ErrorKind::Unavailable,
                format!("connect to {}", bus.describe()),
                format!(
                    "{}; firewalld is reached over D-Bus, is dbus running?",
                    one_line(&e.to_string())
                ),
            )
        })
}

/// What a failed call was.
#[derive(Debug)]
pub enum CallError {
    /// firewalld answered with its `Exception` (the caller decides whether
    /// `ALREADY_ENABLED`/`NOT_ENABLED` mean success).
    Refused(Exception),
    /// firewalld did not answer: not running, bus gone, not allowed to ask.
    Bus(BackendError),
}

impl CallError {
    /// The error for a caller that takes no refusal as success. `what`
    /// names the operation and the set; `rule`, shown with a refusal, is
    /// what firewalld was asked to do (its iptables error quotes it only
    /// in part).
    pub fn into_backend(self, what: &str, rule: &str) -> BackendError {
        match self {
            CallError::Refused(e) => BackendError::new(
                e.kind(),
                what,
                format!(
                    "firewalld refused it with {}: {} (rule: {rule})",
                    e.code, e.detail
                ),
            ),
            CallError::Bus(e) => e.within(what),
        }
    }
}

/// One connection to firewalld, opened on first use and re-opened once
/// when the bus went away (a long-lived process, such as the daemon's
/// keeper, outlives a dbus-daemon restart).
#[derive(Debug)]
pub struct Client {
    bus: Bus,
    conn: Mutex<Option<Connection>>,
}

impl Client {
    pub fn new(bus: Bus) -> Client {
        Client {
            bus,
            conn: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A connection has no state a panicking caller could corrupt.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls `method` of `interface` on firewalld's `path` and decodes the
    /// reply body as `R` (`()` for none).
    pub fn call<B, R>(
        &self,
        path: &str,
        interface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, CallError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: serde::de::DeserializeOwned + zbus::zvariant::Type,
    {
        let mut retried = false;
        loop {
            let conn = {
                let mut slot = self.lock();
                match slot.as_ref() {
                    Some(c) => c.clone(),
                    None => {
                        let c = connect(&self.bus, CALL_TIMEOUT).map_err(CallError::Bus)?;
                        *slot = Some(c.clone());
                        c
                    }
                }
            };
            let reply = conn.call_method(Some(msg::SERVICE), path, Some(interface), method, body);
            match reply {
                Ok(m) => {
                    return m.body().deserialize::<R>().map_err(|e| {
                        CallError::Bus(BackendError::new(
                            ErrorKind::Other,
                            format!("firewalld {method}"),
                            format!("unexpected reply: {e}"),
                        ))
                    })
                }
                Err(e) if !retried && connection_lost(&e) => {
                    *self.lock() = None;
                    retried = true;
                }
                Err(e) => return Err(call_error(&self.bus, method, e)),
            }
        }
    }
}

/// The socket broke: worth one new connection.
fn connection_lost(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::InputOutput(_))
}

fn call_error(bus: &Bus, method: &str, e: zbus::Error) -> CallError {
    let (kind, detail) = match &e {
        zbus::Error::MethodError(name, message, _) => {
            let message = message.as_deref().unwrap_or("");
            match name.as_str() {
                msg::EXCEPTION => return CallError::Refused(Exception::parse(message)),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner" => (
                    ErrorKind::Unavailable,
                    format!(
                        "firewalld is not running (nothing owns {} on {}); start it \
                         (systemctl start firewalld) or use another backend",
                        msg::SERVICE,
                        bus.describe()
                    ),
                ),
                "org.freedesktop.DBus.Error.AccessDenied"
                | "org.freedesktop.PolicyKit1.Error.NotAuthorized" => (
                    ErrorKind::Permission,
                    format!(
                        "the bus or polkit refused it ({name}: {})",
                        one_line(message)
                    ),
                ),
                "org.freedesktop.DBus.Error.NoReply"
                | "org.freedesktop.DBus.Error.Timeout"
                | "org.freedesktop.DBus.Error.Disconnected" => (
                    ErrorKind::Unavailable,
                    format!("firewalld did not answer ({name}: {})", one_line(message)),
                ),
                _ => (ErrorKind::Other, format!("{name}: {}", one_line(message))),
            }
        }
        zbus::Error::InputOutput(_) => (
            ErrorKind::Unavailable,
            format!("lost {}: {}", bus.describe(), one_line(&e.to_string())),
        ),
        other => (ErrorKind::Other, one_line(&other.to_string())),
    };
    CallError::Bus(BackendError::new(
        kind,
        format!("firewalld {method}"),
        detail,
    ))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether firewalld is running on `bus`: someone owns its name. Quick when
/// there is no bus at all (no socket, no connection attempt); otherwise one
/// connection and one call, about a millisecond, bounded by a short
/// timeout so a stuck bus cannot hold up the caller.
pub fn is_running(bus: &Bus) -> bool {
    if *bus == Bus::System
        && std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_none()
        && !std::path::Path::new("/run/dbus/system_bus_socket").exists()
    {
        return false;
    }
    let Ok(conn) = connect(bus, Duration::from_secs(2)) else {
        return false;
    };
    let Ok(dbus) = zbus::blocking::fdo::DBusProxy::new(&conn) else {
        return false;
    };
    let Ok(name) = zbus::names::BusName::try_from(msg::SERVICE) else {
        return false;
    };
    dbus.name_has_owner(name).unwrap_or(false)
}
