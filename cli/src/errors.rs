//! Exit codes and the one-line error format (`banset: context: cause`).

use std::fmt;

use banset_core::{ErrorKind, LedgerError, ParseSetNameError, ParseTargetError, ParseTimeoutError};

/// Input the user can fix: exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `bail!`, but the error is the user's to fix (exit 2).
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::errors::Usage(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// An input file named on the command line or in the config could not be
/// opened or read. A path that does not exist (or runs through a file) is
/// the user's to fix: exit 2, like any other wrong argument. Permission and
/// I/O failures on a file that is there are exit 3, as DESIGN has them.
/// Every command opening a named input file maps its error here, so the
/// same mistake gives the same code whatever the verb.
pub fn input_file_error(what: &str, path: &std::path::Path, e: std::io::Error) -> anyhow::Error {
    let text = format!("{what} {}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
            anyhow::Error::new(Usage(text))
        }
        _ => anyhow::anyhow!(text),
    }
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_NEGATIVE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_KERNEL: i32 = 3;

/// Maps an error to DESIGN's exit codes: 2 for what the user can fix,
/// 3 for kernel, permission and storage failures.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<banset_core::Error>() {
            return engine_exit_code(e);
        }
        if cause.is::<Usage>()
            || cause.is::<ParseTargetError>()
            || cause.is::<ParseSetNameError>()
            || cause.is::<ParseTimeoutError>()
            || cause.is::<banset_core::lockout::Lockout>()
        {
            return EXIT_USAGE;
        }
        if cause.is::<LedgerError>() {
            return EXIT_KERNEL;
        }
        if let Some(e) = cause.downcast_ref::<banset_fleet::FleetError>() {
            return fleet_exit_code(e);
        }
    }
    EXIT_KERNEL
}

/// The exit code of an engine error: 2 for input the user can fix, 3 for
/// kernel, permission and storage failures (DESIGN §4).
pub fn engine_exit_code(err: &banset_core::Error) -> i32 {
    use banset_core::Error;
    match err {
        Error::Input(_) | Error::Refused(_) | Error::UnknownSet(_) => EXIT_USAGE,
        Error::Backend(_) | Error::Ledger(_) => EXIT_KERNEL,
    }
}

/// The exit code of a fleet error: 2 for a value or set-up the user can
/// fix, 3 for the engine (unreachable, refusing, failing).
fn fleet_exit_code(err: &banset_fleet::FleetError) -> i32 {
    use banset_fleet::FleetError;
    match err {
        FleetError::Dsn(_)
        | FleetError::Tls { .. }
        | FleetError::Invalid { .. }
        | FleetError::NoSchema
        | FleetError::SchemaTooNew { .. } => EXIT_USAGE,
        _ => EXIT_KERNEL,
    }
}

/// A hint the user can act on, if the error has one.
pub fn hint(err: &anyhow::Error) -> Option<&'static str> {
    err.chain()
        .find_map(|c| c.downcast_ref::<banset_core::Error>())
        .and_then(engine_hint)
}

/// What the user can do about an engine error, when there is something.
pub fn engine_hint(err: &banset_core::Error) -> Option<&'static str> {
    use banset_core::Error;
    match err {
        Error::Backend(e) if e.kind() == ErrorKind::Permission => {
            Some("run as root (or with CAP_NET_ADMIN)")
        }
        Error::Ledger(LedgerError::Sqlite { source, .. })
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
                || source.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) =>
        {
            Some("check the permissions of the state directory, or pass --state-dir")
        }
        _ => None,
    }
}

/// Whether the error is a closed pipe (`banset list | head`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// One line: `context: cause: cause`, newlines folded.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        // thiserror's transparent wrappers repeat their source's text
        if parts.last().is_some_and(|p| p.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}
