//! banset-nftables
