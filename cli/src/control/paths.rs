//! Where the control socket lives: a leaf, so that the daemon, the server
//! and the client can all name the path without importing one another.

use std::path::{Path, PathBuf};

use crate::args::GlobalArgs;

/// Where the daemon's socket lives unless `--runtime-dir` says otherwise.
#[cfg(target_os = "freebsd")]
pub const DEFAULT_RUNTIME_DIR: &str = "/var/run/banset";
#[cfg(not(target_os = "freebsd"))]
pub const DEFAULT_RUNTIME_DIR: &str = "/run/banset";

/// The socket's name in the runtime directory.
pub const SOCKET_NAME: &str = "control.sock";

/// The runtime directory of this invocation.
pub fn runtime_dir(global: &GlobalArgs) -> PathBuf {
    global
        .runtime_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIME_DIR))
}

/// The socket path in `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_NAME)
}
