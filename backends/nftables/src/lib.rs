//! banset-nftables (work in progress)
pub mod msg;
