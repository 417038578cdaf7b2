//! The set verbs: one module per subcommand that changes or reads a set
//! through the engine.

pub mod add;
pub mod adopt;
pub mod ban;
pub mod change;
pub mod check;
pub mod create;
pub mod del;
pub mod destroy;
pub mod ensure;
pub mod expire;
pub mod find;
pub mod flush;
pub mod history;
pub mod list;
pub mod replace;
pub mod status;
pub mod status_jail;
pub mod sync;
pub mod test;
pub mod unban;
