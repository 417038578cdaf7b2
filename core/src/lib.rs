//! banset-core: the ban-set model shared by every backend, the CLI and the
//! watcher. It makes no OS calls (the ledger's SQLite file aside), so it is
//! tested entirely in-process.
//!
//! - [`Target`], [`SetName`], [`Timeout`], [`SetSpec`]: validated values; every
//!   parse error quotes the input.
//! - [`Backend`]: what a firewall must offer, batch-first.
//! - [`Ledger`]: the durable record of every ban (SQLite, safe for many
//!   concurrent processes). The ledger is the desired state, the kernel the
//!   actual state.
//! - [`reconcile`]: the pure planner that brings a kernel back to the ledger.
//! - [`Engine`]: the operations (`add`, `del`, `sync`, ...) that keep the two in
//!   agreement; the CLI and the library API are thin layers over it.
//! - [`Allowlist`], [`Clock`].
//! - [`errno`]: the errno numbers backends tell apart, per target OS.
//! - [`find_overlap`]: the one overlap check every backend makes.
//! - [`batch_check`]: the refusals a backend makes itself where its kernel
//!   would not (pf and ipfw tables).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod allowlist;
mod backend;
pub mod batch_check;
mod clock;
pub mod control;
mod dry_run;
mod engine;
pub mod errno;
pub mod feed;
pub mod fleet;
mod history;
mod ledger;
pub mod lockout;
mod overlap;
mod policy;
mod reconcile;
mod rule_sightings;
mod set_name;
mod spec;
mod spec_change;
mod target;
mod timeout;
mod tool;

pub use allowlist::{AllowReason, Allowlist, Refusal, WIDEST_V4_PREFIX, WIDEST_V6_PREFIX};
pub use backend::{
    Backend, BackendError, Capabilities, Changes, ErrorKind, KernelEntry, SetHealth,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use dry_run::DryRunBackend;
pub use engine::*;
pub use fleet::{FleetApplied, FleetPage, FleetRow};
pub use history::{EventKind, HistoryEvent, DEFAULT_MAX_EVENTS, DEFAULT_RETENTION};
pub use ledger::{
    merged_deadline, Ban, KernelSetsExist, Ledger, LedgerError, LedgerTx, NewBan, UnreadableRow,
};
pub use overlap::{find_overlap, find_prefix_overlap, AddrRange, Overlap};
pub use policy::{PolicyHookError, SetPolicy};
pub use reconcile::{
    kernel_timeout, reconcile, reconcile_listed_over, Plan, TIMEOUT_TOLERANCE_SECS,
};
pub use rule_sightings::RuleSightings;
pub use set_name::{ParseSetNameError, SetName, MAX_SET_NAME_LEN};
pub use spec::{
    BackendKind, BlockType, Families, Hook, Inadmissible, PortListError, PortListProblem,
    PortRange, Protocol, SetSpec, UnknownName, DEFAULT_MAX_ELEMENTS, DEFAULT_SET_TIMEOUT,
    MAX_HOOK_PORTS,
};
pub use spec_change::{Difference, Refused, SpecChange};
pub use target::{
    Family, InvalidTarget, ParseTargetError, Target, WIDEST_LOGGED_V4_PREFIX,
    WIDEST_LOGGED_V6_PREFIX,
};
pub use timeout::{format_duration, ParseTimeoutError, Timeout, MAX_TIMEOUT_SECS};
pub use tool::{shown_argv, tool_failure, ToolOutcome};
