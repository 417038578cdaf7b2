//! Commands that write files and open neither ledger nor kernel: install,
//! uninstall and generate.

pub mod generate;
pub mod install;
