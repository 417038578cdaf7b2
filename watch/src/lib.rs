//! banset-watch: the log watcher's pure layers.
//!
//! Pipeline: a source yields entries; one [`pipeline::LinePipeline`] per
//! source splits off the date ([`logtime`]) and runs every filter reading
//! that source in one [`Matcher`] scan, the same code for the daemon,
//! `regex-test` and `watch --check`; each failure goes to the jail
//! [`policy`], which counts it in its jail's [`FailureWindows`] (one older
//! than `findtime` as of now is not counted) and decides the ban at
//! `maxretry`, its length ([`config::Escalation`] for repeat offenders) and
//! recidive's after it: "why was this address banned" is answered there
//! alone. Nothing here touches the OS but the local zone's rules (for
//! dates without an offset); the file and journal followers live in
//! [`follow`], and the daemon that wires them to the kernel is in the
//! `banset` binary.
//!
//! # Layers
//!
//! Each module uses only modules on the lines above its own (tests may use
//! any); `tests/layers.rs` checks it on every `cargo test`:
//!
//! 1. `tags` (fail2ban's `<HOST>` and friends), `pyregex` (Python regex
//!    syntax to Rust's), [`logtime`], `window`, [`mail`] (fail2ban's mail
//!    actions), `prefsplit` (a prefregex's head), [`hostile`] (crafted
//!    lines for the bounded-work test and `bench/filter-worst`),
//!    `journal_boot` (the boot a journal follower names),
//!    [`journal_match`] (what journalctl's match words mean): depend on
//!    nothing here.
//! 2. `filter`: definitions ([`FilterDef`], [`Pattern`], [`DateRule`]) and
//!    the regex limits every layer builds with; `shared` (one compiled
//!    copy of a filter or a date pattern for every source that uses it),
//!    [`journal_share`] (one journal reader for every journal source:
//!    which sources an entry goes to, where it resumes), `lazywalk` (the
//!    lazy DFA's common step for the walks of layer 3).
//! 3. `state`: what a compiled filter keeps between lines (a multi-line
//!    filter's latest lines and skeletons, open connections); data only.
//!    `cases` (stock failregexes with conditionals as plain cases),
//!    `scanset` (the matcher's combined scan) and `lazyfind` (where an
//!    anchored pattern's match ends).
//! 4. `compiled`: compiled filters, each carrying its state.
//! 5. `datefind` (fail2ban's date templates, `datepattern`) and
//!    `multiline` (the multi-line and connection steps over that state).
//! 6. `matcher`: one scan of every filter of a source.
//! 7. `builtin` (banset's own filters), [`follow`] (file and journal
//!    followers), `settings` (the validated settings' types, public as
//!    [`config`]'s).
//! 8. [`policy`] (the jail policy), [`pipeline`] (a source's entries to
//!    failures), [`logpath`] (globs and missing files) and [`poller`]
//!    (threads following many files each).
//! 9. [`fail2ban`]: fail2ban's configuration read onto all of the above
//!    (its `date` module re-exports `datefind`, which the matcher needs and
//!    so cannot live on top).
//! 10. [`config`]: banset.toml's jails, validated (a filter must compile;
//!     a native jail may name a fail2ban filter file, so it sits on top of
//!     [`fail2ban`]).

#![warn(missing_docs)]

mod builtin;
mod cases;
mod compiled;
pub mod config;
mod datefind;
pub mod fail2ban;
mod filter;
pub mod follow;
pub mod hostile;
mod journal_boot;
pub mod journal_match;
pub mod journal_share;
mod lazyfind;
mod lazywalk;
pub mod logpath;
pub mod logtime;
pub mod mail;
mod matcher;
mod multiline;
pub mod pipeline;
pub mod policy;
pub mod poller;
mod prefsplit;
mod pyregex;
mod scanset;
mod settings;
mod shared;
mod state;
mod tags;
mod window;

pub use builtin::{builtin_filter, BUILTIN_FILTERS};
pub use filter::{DateRule, FilterDef, FilterError, Pattern, MAX_LINE_LEN};
pub use matcher::{Hit, Matcher, Scan};
pub use shared::{keeping, Kept};
pub use tags::{
    expand_counting, expand_fail2ban, expand_failregex, expand_ignoreregex, parse_host, TagError,
    HOST_GROUP,
};
pub use window::{Counted, FailureWindows};
