//! Role names and the schema version: what every other module names, in a
//! leaf module of its own.

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: i32 = 1;
/// Host roles are `banset.NAME`: the dot keeps them apart from every role
/// PostgreSQL or an admin would create (`postgres`, `banset_admin`, ...).
pub const HOST_PREFIX: &str = "banset.";
/// The fleet admin's login role.
pub const ADMIN_ROLE: &str = "banset_admin";

/// The host name of a role (`banset.mail1` → `mail1`); other roles as they are.
pub fn host_name(role: &str) -> &str {
    role.strip_prefix(HOST_PREFIX).unwrap_or(role)
}

/// The role of host `name`.
pub fn host_role(name: &str) -> String {
    format!("{HOST_PREFIX}{name}")
}
