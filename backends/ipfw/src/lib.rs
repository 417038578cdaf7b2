//! banset-ipfw: banset's ban sets as FreeBSD ipfw tables, with one deny
//! rule per set before the first rule that accepts traffic or keeps state.
//!
//! ```text
//! ipfw table f2b create type addr limit 1048576   (IPv4 and IPv6 together)
//! ipfw add 50 deny ip from table(f2b) to any // banset f2b
//! ```
//!
//! # How the kernel is driven
//!
//! - **FreeBSD 11–14: natively**, with `IP_FW3` socket options on a raw
//!   socket: `XCREATE`, `XADD` (with `IPFW_TF_UPDATE`, so a re-ban is not an
//!   error, and `IPFW_CTF_ATOMIC`), `XDEL`, `XINFO` + `XLIST`, `XFLUSH`,
//!   `XDESTROY`, `XSWAP`. One system call per 4,096 entries, each entry's
//!   result read back.
//! - **`banset replace`** fills a temporary table (`_banset_swap.NAME`)
//!   and swaps it with the live one in one step (`XSWAP`, or `ipfw table
//!   NAME swap TEMP`), so the rule never sees the table empty or half
//!   filled; a temporary table left by a crash is removed by the next
//!   replace.
//! - **FreeBSD 15 and later: the `ipfw` command**, by argv. 15 changed the
//!   index fields inside these structs (same sizes, other offsets) and that
//!   layout has not been checked on a 15 system yet; `kern.osreldate`
//!   decides at run time.
//! - **The rule** always goes in with `ipfw add` (loading rules natively is
//!   a large API for one rule), tagged `// banset NAME` so banset finds and
//!   removes only its own.
//!
//! # What the kernel does and does not do
//!
//! - **No timeouts**: banset's ledger expires bans (`banset expire` from
//!   cron, or the daemon's keeper); `banset sync` restores a wiped table.
//! - **Longest match, no overlap check**: banset refuses overlapping
//!   prefixes itself, before sending, as on every backend.
//! - **A limit per table**, set from the set's `max_elements`.
//! - **Loading ipfw locks you out** of a remote machine unless
//!   `net.inet.ip.fw.default_to_accept=1` is set (kenv or loader.conf)
//!   first: ipfw's default rule is deny.
//!
//! # Layers
//!
//! - [`msg`]: the `IP_FW3` messages over byte buffers, golden-tested on
//!   every OS against the bytes `ipfw(8)` sends;
//! - `tables`: the table operations, natively or by command;
//! - `sys`: the raw socket and `kern.osreldate` (FreeBSD only);
//! - `rule`: the deny rule and `ipfw list` parsing;
//! - [`IpfwBackend`]: the [`banset_core::Backend`] implementation.
//!
//! Nothing in `sys` has run on a FreeBSD kernel from this repository's CI;
//! the VM suite (`vm-tests/run` in the `freebsd` Vagrant machine) does.
//! Here the backend runs against models of the kernel and of `ipfw`.

#![warn(missing_docs)]

mod backend;
pub mod msg;
mod rule;
mod sys;
mod tables;

pub use backend::IpfwBackend;
