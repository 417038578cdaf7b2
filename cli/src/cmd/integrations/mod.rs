//! Other programs' protocols: sshguard's firewall backend, blocklistd's
//! control program, and fail2ban's database (read by `ensure`).

pub mod blocklistd;
pub mod fail2ban_db;
pub mod sshg_fw;
