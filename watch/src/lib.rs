//! banset-watch: the log watcher's pure layers.
//!
//! Pipeline: a source yields entries; one [`pipeline::LinePipeline`] per
//! source splits off the date ([`logtime`]) and runs every filter reading
//! that source in one [`Matcher`] scan, the same code for the daemon,
//! `regex-test` and `watch --check`;
//! each failure goes to its jail's [`FailureWindows`] (one older than
//! `findtime` as of now is not counted); a jail that reaches `maxretry`
//! decides a ban, whose length [`config::Escalation`] stretches for repeat
//! offenders. Nothing here touches the OS but the local zone's rules (for
//! dates without an offset); the file and journal followers live in
//! [`follow`], and the daemon that wires them to the kernel is in the
//! `banset` binary.

#![warn(missing_docs)]

mod builtin;
pub mod config;
pub mod fail2ban;
mod filter;
pub mod follow;
pub mod logpath;
pub mod logtime;
pub mod mail;
mod matcher;
mod multiline;
pub mod pipeline;
mod tags;
mod window;

pub use builtin::{builtin_filter, BUILTIN_FILTERS};
pub use filter::{DateRule, FilterDef, FilterError, Pattern, MAX_LINE_LEN};
pub use matcher::{Hit, Matcher, Scan};
pub use tags::{
    expand_counting, expand_fail2ban, expand_failregex, expand_ignoreregex, parse_host, TagError,
    HOST_GROUP,
};
pub use window::{Counted, FailureWindows};
