//! banset-ipset: banset's ban sets as ipset hash sets, driven over raw
//! netlink, with an iptables/ip6tables rule that makes them block.
//!
//! ```text
//! ipset: f2b   hash:net family inet  timeout 86400 maxelem 1048576   (hash:ip without --prefixes)
//!        f2b6  hash:net family inet6 timeout 86400 maxelem 1048576
//! iptables  -I INPUT 1 -m set --match-set f2b  src -m comment --comment "banset f2b"  -j DROP
//! ip6tables -I INPUT 1 -m set --match-set f2b6 src -m comment --comment "banset f2b6" -j DROP
//! ```
//!
//! # Why our own netlink code
//!
//! - **No libipset, no `ipset` binary.** The `ipset` crate wraps libipset
//!   (bindgen, libclang and a C compiler at build time), panics listing any
//!   set with a default timeout, which is every banset set, and decides
//!   results by matching English error strings. The protocol banset needs is
//!   eight commands; see `notes/ipset-netlink.md`.
//! - **Batches**: up to ~2,000 entries per message, each with its own line
//!   number so a kernel refusal names the entry; a whole blocklist is a few
//!   hundred round trips, not one fork per ban.
//! - **Linear listing** of the kernel's dump parts.
//!
//! # What the kernel does and does not do
//!
//! - Timeouts are capped at 2,147,483 s (24.8 days). The kernel silently
//!   shortens longer ones; this backend refuses them (`Invalid`) and reports
//!   the cap in [`banset_core::Capabilities::max_timeout`], so the core gives
//!   the kernel the cap and refreshes longer bans from its ledger. A
//!   permanent ban is timeout 0.
//! - Adds refresh present entries and deletes ignore absent ones (ipset's
//!   `-exist`: no `NLM_F_EXCL`).
//! - A message is **not** a transaction: the kernel applies entries one by
//!   one and stops at the first failure. So every refusal that can be
//!   foreseen (family, prefix, overlapping prefixes, timeout cap, missing
//!   set, no room under `maxelem`) is checked before anything is sent, and
//!   `flush_first` with additions (`banset replace`) fills a temporary set and
//!   `SWAP`s it in, atomically for the rules matching against it.
//! - `hash:net` accepts overlapping prefixes; banset refuses them, as it
//!   does on nftables, so "banned until when?" has one answer.
//! - A set referenced by a rule cannot be destroyed; `destroy` removes
//!   banset's rule first and names a foreign rule if one remains.
//!
//! # Layers
//!
//! - [`msg`]: pure encoding/decoding, no syscalls, golden-tested;
//! - `sys`: the `AF_NETLINK` socket (Linux only);
//! - `layout`: kernel set names and parameters;
//! - `hook`: the iptables/ip6tables rule: argv (pure), running and checking it;
//! - [`IpsetBackend`]: the [`banset_core::Backend`] implementation.
//!
//! # Run-time requirements
//!
//! Linux with `ip_set`, `ip_set_hash_ip`, `ip_set_hash_net` (loaded on
//! demand) and, for sets with a hook, the `iptables`/`ip6tables` commands
//! with the `set` match (`xt_set`). CAP_NET_ADMIN.

#![warn(missing_docs)]

mod backend;
mod hook;
mod layout;
pub mod msg;
mod sys;

pub use backend::{listed_target, IpsetBackend, ListedEntryError};

/// The kernel ipset that holds `family` for `spec`: `NAME` for IPv4,
/// `NAME6` for IPv6. Public for backends that keep their members in this
/// backend's sets and hook them up differently (firewalld's direct rules).
pub fn kernel_set_name(spec: &banset_core::SetSpec, family: banset_core::Family) -> String {
    layout::kernel_set(spec, family).name
}

pub use hook::TooManyPorts;

/// The iptables match and target that make kernel set `set` block as `hook`
/// says (`-p tcp -m set --match-set f2b src -m multiport --dports 25,465
/// -m comment --comment "banset f2b" -j DROP`), without chain or action.
/// The comment marks the rule as banset's. `Err` explains a hook iptables
/// cannot express (more than 15 ports).
pub fn hook_rule(set: &str, hook: &banset_core::Hook) -> Result<Vec<String>, TooManyPorts> {
    hook::rule_spec(set, hook, banset_core::SetPolicy::Ban)
}

/// [`hook_rule`] for a set of either policy: an allow-only set's rule is
/// `! -i lo ... -m set ! --match-set SET src ... --comment "banset SET
/// allow-only"` (blocks every source not in the set, never on loopback).
pub fn hook_rule_for(
    set: &str,
    hook: &banset_core::Hook,
    policy: banset_core::SetPolicy,
) -> Result<Vec<String>, TooManyPorts> {
    hook::rule_spec(set, hook, policy)
}
