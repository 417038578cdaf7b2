//! The backend conformance suite: what every [`Backend`] must do, written
//! once and run against each backend the machine has (memory everywhere,
//! nftables and ipset in a network namespace, firewalld, pf and ipfw in the
//! VMs). It goes through the trait and the core types only, so a new backend
//! joins by adding a test file, never by editing a check.
//!
//! Each check is a pub fn taking the backend and the name of a set it may
//! create, use and leave behind; [`Check::run`] gives it a set that does not
//! exist yet and destroys it afterwards, even when the check fails. Checks
//! look at capabilities only where a kernel may legitimately differ
//! (timeouts, caps, prefixes, atomic batches) and say "skipped" on stderr
//! when they do not apply.
//!
//! A backend's test file is one macro call that makes one `#[test]` per check:
//!
//! ```ignore
//! // tests/conformance_memory.rs
//! banset_tests::conformance_tests!(|check| {
//!     check.run(&banset_memory::MemoryBackend::default(), "bt-")
//! });
//!
//! // tests/conformance_nftables.rs: each check in its own network namespace
//! use banset_tests::netns;
//! banset_tests::conformance_tests!(|check| {
//!     if netns::skip_unless_root(check.name) {
//!         return;
//!     }
//!     netns::in_new_netns(|| check.run(&banset_nftables::NftablesBackend::new(), "bt-"))
//! });
//! ```
//!
//! [`run_all`] runs every check in one go, for places without a test harness
//! (VM scenario scripts).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use banset_core::{
    Backend, BackendError, BlockType, Changes, ErrorKind, Families, Hook, KernelEntry, PortRange,
    Protocol, SetHealth, SetName, SetPolicy, SetSpec, Target,
};

/// One expectation, by name.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's function name, which is also its `#[test]` name.
    pub name: &'static str,
    run: fn(&dyn Backend, &SetName),
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check").field("name", &self.name).finish()
    }
}

/// Every check, in the order [`run_all`] runs them.
pub const CHECKS: &[Check] = crate::__conformance_list!(@array);

/// The check named `name`. Panics if there is none: that is a typo in a
/// test file, not a backend failure.
pub fn check(name: &str) -> &'static Check {
    CHECKS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no conformance check named {name:?}"))
}

impl Check {
    /// Runs the check against `backend` on a set named `set_prefix` plus the
    /// check's number (`bt-07`), destroying that set before (a leftover of
    /// an aborted run) and after (even when the check fails), so a kernel is
    /// left as it was found. Panics with the check's assertion message.
    pub fn run(&self, backend: &dyn Backend, set_prefix: &str) {
        let name = self.set_name(set_prefix);
        let spec = plain_spec(backend, &name);
        backend.destroy(&spec).unwrap_or_else(|e| {
            panic!(
                "[{}] {}: destroying a leftover set {name} before the check: {e}",
                backend.kind(),
                self.name
            )
        });
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (self.run)(backend, &name)));
        let cleanup = backend.destroy(&spec);
        if let Err(payload) = outcome {
            panic::resume_unwind(payload);
        }
        if let Err(e) = cleanup {
            panic!(
                "[{}] {}: destroying set {name} after the check: {e}",
                backend.kind(),
                self.name
            );
        }
    }

    /// The set [`Check::run`] uses: `set_prefix` and the check's position in
    /// [`CHECKS`], short enough for every backend's name limit.
    pub fn set_name(&self, set_prefix: &str) -> SetName {
        let index = CHECKS
            .iter()
            .position(|c| c.name == self.name)
            .expect("a Check always comes from CHECKS");
        let name = format!("{set_prefix}{index:02}");
        SetName::new(&name).unwrap_or_else(|e| {
            panic!("set prefix {set_prefix:?} does not make a valid set name: {e}")
        })
    }
}

/// Runs every check against one backend, each on its own set, and panics
/// after the last one with the list of those that failed, so one run shows
/// everything a new backend gets wrong.
pub fn run_all(backend: &dyn Backend, set_prefix: &str) {
    let mut failed = Vec::new();
    for check in CHECKS {
        if let Err(payload) =
            panic::catch_unwind(AssertUnwindSafe(|| check.run(backend, set_prefix)))
        {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failed.push(format!("  {}: {message}", check.name));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} conformance checks failed for backend {}:\n{}",
        failed.len(),
        CHECKS.len(),
        backend.kind(),
        failed.join("\n")
    );
}

/// Makes one `#[test]` per conformance check, named after the check. The
/// argument is a closure (or fn) taking `&Check` that builds the backend and
/// calls [`Check::run`]; see the module docs.
#[macro_export]
macro_rules! conformance_tests {
    ($run:expr) => {
        $crate::__conformance_list! { @tests ($run) }
    };
}

/// The list of checks, written once: it makes both [`CHECKS`] and the tests
/// of [`conformance_tests!`], so neither can miss a check.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_list {
    (@emit [@array] $($check:ident),*) => {
        &[$($crate::conformance::Check::__new(stringify!($check), $crate::conformance::$check)),*]
    };
    (@emit [@tests ($run:expr)] $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                let run: &dyn Fn(&$crate::conformance::Check) = &$run;
                run($crate::conformance::check(stringify!($check)));
            }
        )*
    };
    ($($mode:tt)*) => {
        $crate::__conformance_list! { @emit [$($mode)*]
            missing_set_is_not_found,
            ensure_set_is_idempotent,
            add_lists_with_its_timeout,
            add_refreshes_the_timeout,
            permanent_lists_without_timeout,
            ipv4_and_ipv6_hosts,
            prefixes_cover_their_addresses,
            overlapping_prefix_is_refused,
            overlap_within_a_batch_is_refused,
            contains_is_false_for_non_members,
            del_of_absent_is_ok,
            del_removes,
            apply_removes_then_adds,
            flush_empties_but_keeps_the_set,
            destroy_is_idempotent,
            batch_of_ten_thousand,
            family_outside_spec_is_refused,
            prefix_outside_spec_is_refused,
            failed_batch_changes_nothing,
            timeout_above_cap_is_refused,
            full_set_refuses_new_members,
            change_set_keeps_every_member,
            allow_only_rule_has_its_own_shape
        }
    };
}

impl Check {
    #[doc(hidden)]
    pub const fn __new(name: &'static str, run: fn(&dyn Backend, &SetName)) -> Check {
        Check { name, run }
    }
}

// ---------------------------------------------------------------------------
// The checks. Addresses come from the documentation and benchmarking ranges
// (RFC 5737, RFC 2544, RFC 3849), so a kernel test can never ban a real peer.

/// Before `ensure_set`, a set is `Missing` and reading or flushing it is
/// `NotFound`: the CLI turns that into "no such set", and `sync` into a
/// rebuild.
pub fn missing_set_is_not_found(b: &dyn Backend, name: &SetName) {
    let spec = plain_spec(b, name);
    assert_eq!(
        ok(b, b.health(&spec), "health of a set never created"),
        SetHealth::Missing,
        "[{}] health of a set never created",
        b.kind()
    );
    expect_kind(
        b,
        b.list(&spec),
        ErrorKind::NotFound,
        "list of a set never created",
    );
    expect_kind(
        b,
        b.contains(&spec, &host("192.0.2.1")),
        ErrorKind::NotFound,
        "contains on a set never created",
    );
    expect_kind(
        b,
        b.flush(&spec),
        ErrorKind::NotFound,
        "flush of a set never created",
    );
}

/// `ensure_set` is run before every command, so the second call must be a
/// no-op that keeps the members.
pub fn ensure_set_is_idempotent(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(&spec, &[entry("192.0.2.1", Some(600))]),
        "add 192.0.2.1",
    );
    ok(b, b.ensure_set(&spec), "ensure_set on an existing set");
    assert_eq!(
        ok(b, b.health(&spec), "health"),
        SetHealth::Present,
        "[{}] health after ensure_set twice",
        b.kind()
    );
    assert_members(b, &spec, &["192.0.2.1"], "after a second ensure_set");
}

/// The listed timeout is what `banset list` shows and what `sync` compares
/// with the ledger, so it must be the time left, not the time given.
pub fn add_lists_with_its_timeout(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(&spec, &[entry("192.0.2.1", Some(600))]),
        "add 192.0.2.1 for 600s",
    );
    let listed = members(b, &spec);
    assert_members(b, &spec, &["192.0.2.1"], "after one add");
    assert_timeout_near(
        b,
        listed[&host("192.0.2.1")],
        600,
        "192.0.2.1 added for 600s",
    );
}

/// fail2ban bans an address again when it comes back; the new ban's timeout
/// replaces the old one whether it is longer or shorter, and re-adding is
/// never an error.
pub fn add_refreshes_the_timeout(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    for secs in [600, 3600, 60] {
        ok(
            b,
            b.add(&spec, &[entry("2001:db8::1", Some(secs))]),
            format!("add 2001:db8::1 for {secs}s"),
        );
        assert_members(b, &spec, &["2001:db8::1"], "after a refresh");
        let listed = members(b, &spec);
        assert_timeout_near(
            b,
            listed[&host("2001:db8::1")],
            secs,
            &format!("2001:db8::1 refreshed to {secs}s"),
        );
    }
}

/// A permanent ban (fail2ban's `bantime = -1`) must not come back with a
/// timeout, or `sync` would see a difference forever.
pub fn permanent_lists_without_timeout(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(&spec, &[entry("192.0.2.7", None)]),
        "add 192.0.2.7 permanently",
    );
    assert_eq!(
        members(b, &spec).get(&host("192.0.2.7")),
        Some(&None),
        "[{}] a permanent ban must list with timeout None",
        b.kind()
    );
}

/// One logical set holds both families by default; a batch mixing them
/// goes in as one call.
pub fn ipv4_and_ipv6_hosts(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(
            &spec,
            &[
                entry("192.0.2.10", Some(600)),
                entry("2001:db8::10", Some(600)),
            ],
        ),
        "add an IPv4 and an IPv6 host in one batch",
    );
    assert_members(
        b,
        &spec,
        &["192.0.2.10", "2001:db8::10"],
        "after a mixed batch",
    );
    for t in ["192.0.2.10", "2001:db8::10"] {
        assert_contains(b, &spec, t, true, "a banned host");
    }
}

/// Banning a whole network must block every address in it, which is what
/// `contains` (and `banset test`) answers.
pub fn prefixes_cover_their_addresses(b: &dyn Backend, name: &SetName) {
    if skipped(
        b,
        "prefixes_cover_their_addresses",
        !b.capabilities().prefixes,
        "no prefixes",
    ) {
        return;
    }
    let spec = ready(b, name);
    ok(
        b,
        b.add(
            &spec,
            &[
                entry("198.51.100.0/24", Some(600)),
                entry("2001:db8:1::/64", Some(600)),
            ],
        ),
        "add 198.51.100.0/24 and 2001:db8:1::/64",
    );
    assert_members(
        b,
        &spec,
        &["198.51.100.0/24", "2001:db8:1::/64"],
        "after adding prefixes",
    );
    for inside in [
        "198.51.100.0",
        "198.51.100.77",
        "198.51.100.255",
        "2001:db8:1::abcd",
        "198.51.100.0/28",
    ] {
        assert_contains(b, &spec, inside, true, "inside a banned prefix");
    }
    for outside in ["198.51.101.0", "198.51.99.255", "2001:db8:2::1"] {
        assert_contains(b, &spec, outside, false, "outside every banned prefix");
    }
}

/// Overlapping members make "is this address banned, until when?" ambiguous,
/// and nftables interval sets refuse them; every backend refuses them the
/// same way, leaving the set as it was.
pub fn overlapping_prefix_is_refused(b: &dyn Backend, name: &SetName) {
    if skipped(
        b,
        "overlapping_prefix_is_refused",
        !b.capabilities().prefixes,
        "no prefixes",
    ) {
        return;
    }
    let spec = ready(b, name);
    ok(
        b,
        b.add(&spec, &[entry("198.51.100.0/24", Some(600))]),
        "add 198.51.100.0/24",
    );
    let before = members(b, &spec);
    for overlapping in ["198.51.100.128/25", "198.51.0.0/16"] {
        expect_kind(
            b,
            b.add(&spec, &[entry(overlapping, Some(600))]),
            ErrorKind::Invalid,
            &format!("add {overlapping} while 198.51.100.0/24 is a member"),
        );
        assert_unchanged(b, &spec, &before, &format!("after refusing {overlapping}"));
    }
    // A host inside a banned prefix is not an overlap: it is redundant but
    // harmless, may outlive the prefix ban, and refusing it would fail a
    // legitimate ban from fail2ban or the watcher.
    ok(
        b,
        b.add(&spec, &[entry("198.51.100.9", Some(600))]),
        "add host 198.51.100.9 inside the banned 198.51.100.0/24",
    );
    assert_contains(
        b,
        &spec,
        "198.51.100.9",
        true,
        "host inside a banned prefix",
    );
}

/// The same refusal when both overlapping prefixes arrive in one batch.
pub fn overlap_within_a_batch_is_refused(b: &dyn Backend, name: &SetName) {
    if skipped(
        b,
        "overlap_within_a_batch_is_refused",
        !b.capabilities().prefixes,
        "no prefixes",
    ) {
        return;
    }
    let spec = ready(b, name);
    expect_kind(
        b,
        b.add(
            &spec,
            &[
                entry("2001:db8:5::/48", Some(600)),
                entry("2001:db8:5:1::/64", Some(600)),
            ],
        ),
        ErrorKind::Invalid,
        "add 2001:db8:5::/48 and 2001:db8:5:1::/64 in one batch",
    );
    assert_members(b, &spec, &[], "after refusing an overlapping batch");
}

/// `banset test` exits 1 for these; a false positive would be a ban the
/// admin cannot see.
pub fn contains_is_false_for_non_members(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(
            &spec,
            &[
                entry("192.0.2.20", Some(600)),
                entry("2001:db8::20", Some(600)),
            ],
        ),
        "add 192.0.2.20 and 2001:db8::20",
    );
    for other in ["192.0.2.21", "192.0.2.19", "2001:db8::21", "203.0.113.20"] {
        assert_contains(b, &spec, other, false, "never added");
    }
    if b.capabilities().prefixes {
        // A network around a banned host is not itself blocked.
        assert_contains(
            b,
            &spec,
            "192.0.2.0/24",
            false,
            "a prefix around a banned host",
        );
    }
}

/// fail2ban's unban and cron scripts delete what may already have expired.
pub fn del_of_absent_is_ok(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(&spec, &[entry("192.0.2.30", Some(600))]),
        "add 192.0.2.30",
    );
    ok(
        b,
        b.del(&spec, &[host("192.0.2.31"), host("2001:db8::31")]),
        "del of targets never added",
    );
    assert_members(b, &spec, &["192.0.2.30"], "after deleting absent targets");
}

pub fn del_removes(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(
            &spec,
            &[
                entry("192.0.2.40", Some(600)),
                entry("192.0.2.41", None),
                entry("2001:db8::40", Some(600)),
            ],
        ),
        "add three hosts",
    );
    ok(
        b,
        b.del(&spec, &[host("192.0.2.41"), host("2001:db8::40")]),
        "del 192.0.2.41 and 2001:db8::40",
    );
    assert_members(b, &spec, &["192.0.2.40"], "after del");
    assert_contains(b, &spec, "192.0.2.41", false, "deleted");
    assert_contains(b, &spec, "2001:db8::40", false, "deleted");
}

/// `sync` and `replace` are one `apply`: removals before additions, and
/// `flush_first` before both.
pub fn apply_removes_then_adds(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(
            &spec,
            &[
                entry("192.0.2.50", Some(600)),
                entry("192.0.2.51", Some(600)),
            ],
        ),
        "add 192.0.2.50 and 192.0.2.51",
    );
    let swap = Changes {
        flush_first: false,
        remove: vec![host("192.0.2.50")],
        add: vec![entry("192.0.2.52", Some(600)), entry("2001:db8::52", None)],
    };
    ok(b, b.apply(&spec, &swap), "apply: remove one, add two");
    assert_members(
        b,
        &spec,
        &["192.0.2.51", "192.0.2.52", "2001:db8::52"],
        "after apply",
    );
    let replace = Changes {
        flush_first: true,
        remove: vec![],
        add: vec![entry("192.0.2.53", Some(600))],
    };
    ok(b, b.apply(&spec, &replace), "apply with flush_first");
    assert_members(b, &spec, &["192.0.2.53"], "after apply with flush_first");
}

/// `banset flush` empties a set but keeps it blocking: the next ban must
/// work without a `create`.
pub fn flush_empties_but_keeps_the_set(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(
            &spec,
            &[entry("192.0.2.60", Some(600)), entry("2001:db8::60", None)],
        ),
        "add two hosts",
    );
    ok(b, b.flush(&spec), "flush");
    assert_members(b, &spec, &[], "after flush");
    assert_eq!(
        ok(b, b.health(&spec), "health after flush"),
        SetHealth::Present,
        "[{}] flush must keep the set and its rule",
        b.kind()
    );
    ok(
        b,
        b.add(&spec, &[entry("192.0.2.61", Some(600))]),
        "add after flush",
    );
    assert_members(b, &spec, &["192.0.2.61"], "after add following flush");
}

/// `banset destroy` is safe to repeat, and afterwards the set is gone for
/// every reader.
pub fn destroy_is_idempotent(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    ok(
        b,
        b.add(&spec, &[entry("192.0.2.70", Some(600))]),
        "add 192.0.2.70",
    );
    ok(b, b.destroy(&spec), "destroy");
    ok(b, b.destroy(&spec), "destroy of a destroyed set");
    expect_kind(b, b.list(&spec), ErrorKind::NotFound, "list after destroy");
    expect_kind(
        b,
        b.contains(&spec, &host("192.0.2.70")),
        ErrorKind::NotFound,
        "contains after destroy",
    );
    assert_eq!(
        ok(b, b.health(&spec), "health after destroy"),
        SetHealth::Missing,
        "[{}] health after destroy",
        b.kind()
    );
}

/// `banset add --file` sends a whole blocklist as one batch; that is the
/// point of a batch-first trait. Half v4, half v6, all listed back.
pub fn batch_of_ten_thousand(b: &dyn Backend, name: &SetName) {
    let spec = ready(b, name);
    let v4_base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    let v6_base = u128::from("2001:db8:10::".parse::<Ipv6Addr>().expect("literal"));
    let batch: Vec<KernelEntry> = (0..5_000u32)
        .flat_map(|i| {
            [
                IpAddr::V4(Ipv4Addr::from(v4_base + i)),
                IpAddr::V6(Ipv6Addr::from(v6_base + u128::from(i))),
            ]
        })
        .map(|addr| KernelEntry {
            target: Target::host(addr).expect("the suite's addresses are bannable"),
            timeout: Some(Duration::from_secs(3600)),
        })
        .collect();
    ok(b, b.add(&spec, &batch), "add 10,000 hosts in one batch");
    let listed = members(b, &spec);
    assert_eq!(
        listed.len(),
        batch.len(),
        "[{}] members after a 10,000-host batch",
        b.kind()
    );
    if let Some(missing) = batch.iter().find(|e| !listed.contains_key(&e.target)) {
        panic!(
            "[{}] {} of the 10,000-host batch is not listed",
            b.kind(),
            missing.target
        );
    }
    for e in [&batch[0], &batch[4_999], &batch[9_999]] {
        assert_contains(
            b,
            &spec,
            &e.target.to_string(),
            true,
            "from the 10,000-host batch",
        );
    }
}

/// A set created for one family must refuse the other rather than drop it
/// silently, and refuse it before anything else in the batch lands.
pub fn family_outside_spec_is_refused(b: &dyn Backend, name: &SetName) {
    for (families, good, bad) in [
        (Families::Inet, "192.0.2.80", "2001:db8::80"),
        (Families::Inet6, "2001:db8::81", "192.0.2.81"),
    ] {
        let mut spec = plain_spec(b, name);
        spec.families = families;
        ok(
            b,
            b.ensure_set(&spec),
            format!("ensure_set ({} only)", families.name()),
        );
        expect_kind(
            b,
            b.add(&spec, &[entry(good, Some(600)), entry(bad, Some(600))]),
            ErrorKind::Invalid,
            &format!(
                "add {good} and {bad} to a set of family {}",
                families.name()
            ),
        );
        assert_members(b, &spec, &[], &format!("after refusing {bad}"));
        ok(b, b.destroy(&spec), "destroy between families");
    }
}

/// A set created without `--prefixes` refuses a prefix the same way.
pub fn prefix_outside_spec_is_refused(b: &dyn Backend, name: &SetName) {
    let mut spec = plain_spec(b, name);
    spec.prefixes = false;
    ok(b, b.ensure_set(&spec), "ensure_set without prefixes");
    expect_kind(
        b,
        b.add(
            &spec,
            &[
                entry("192.0.2.90", Some(600)),
                entry("203.0.113.0/24", Some(600)),
            ],
        ),
        ErrorKind::Invalid,
        "add a prefix to a set created without prefixes",
    );
    assert_members(b, &spec, &[], "after refusing a prefix");
}

/// A refused batch leaves no trace: no new member, no refreshed timeout, no
/// removal, no flush. Otherwise the ledger (which records nothing for a
/// failed command) and the kernel would disagree. The bad entry is an
/// overlap, which the kernel itself refuses (nftables), not only a check in
/// front of it.
pub fn failed_batch_changes_nothing(b: &dyn Backend, name: &SetName) {
    let caps = b.capabilities();
    if skipped(
        b,
        "failed_batch_changes_nothing",
        !caps.atomic_batches,
        "no atomic batches",
    ) || skipped(
        b,
        "failed_batch_changes_nothing",
        !caps.prefixes,
        "no prefixes",
    ) {
        return;
    }
    let spec = ready(b, name);
    ok(
        b,
        b.add(
            &spec,
            &[
                entry("198.51.100.0/24", Some(600)),
                entry("2001:db8::95", None),
            ],
        ),
        "add 198.51.100.0/24 and 2001:db8::95",
    );
    let before = members(b, &spec);
    let add = [
        entry("192.0.2.95", Some(600)),
        entry("198.51.100.0/24", Some(60)),
        entry("198.51.100.128/25", Some(600)),
        entry("2001:db8::96", None),
    ];
    expect_kind(
        b,
        b.add(&spec, &add),
        ErrorKind::Invalid,
        "a batch adding 198.51.100.128/25, inside the member 198.51.100.0/24",
    );
    assert_unchanged(b, &spec, &before, "after a refused add");
    let overlapping_pair = || {
        vec![
            entry("192.0.2.97", Some(600)),
            entry("2001:db8:7::/48", Some(600)),
            entry("2001:db8:7:1::/64", Some(600)),
        ]
    };
    let remove_then_bad = Changes {
        flush_first: false,
        remove: vec![host("198.51.100.0/24"), host("2001:db8::95")],
        add: overlapping_pair(),
    };
    expect_kind(
        b,
        b.apply(&spec, &remove_then_bad),
        ErrorKind::Invalid,
        "apply removing two members and adding an overlapping pair",
    );
    assert_unchanged(b, &spec, &before, "after a refused apply with removals");
    let flush_then_bad = Changes {
        flush_first: true,
        remove: vec![],
        add: overlapping_pair(),
    };
    expect_kind(
        b,
        b.apply(&spec, &flush_then_bad),
        ErrorKind::Invalid,
        "apply with flush_first and an overlapping pair",
    );
    assert_unchanged(b, &spec, &before, "after a refused apply with flush_first");
}

/// ipset refuses timeouts above 2,147,483 s; a backend reporting a cap must
/// refuse longer ones as `Invalid` (the core refreshes long bans instead)
/// and accept the cap itself.
pub fn timeout_above_cap_is_refused(b: &dyn Backend, name: &SetName) {
    let caps = b.capabilities();
    let cap = match caps.max_timeout {
        Some(cap) if caps.timeouts => cap,
        _ => {
            skipped(b, "timeout_above_cap_is_refused", true, "no timeout cap");
            return;
        }
    };
    let spec = ready(b, name);
    let at_cap = KernelEntry {
        target: host("192.0.2.100"),
        timeout: Some(cap),
    };
    ok(
        b,
        b.add(&spec, &[at_cap]),
        format!("add for exactly the cap, {}s", cap.as_secs()),
    );
    let before = members(b, &spec);
    let above = KernelEntry {
        target: host("192.0.2.101"),
        timeout: Some(cap + Duration::from_secs(1)),
    };
    expect_kind(
        b,
        b.add(&spec, &[above]),
        ErrorKind::Invalid,
        "add for one second above the cap",
    );
    assert_unchanged(b, &spec, &before, "after refusing a timeout above the cap");
}

/// A full set (ipset's `maxelem`, an nftables set `size`) refuses new
/// members with `SetFull` naming the set, so the admin knows which limit to
/// raise, and nothing of the batch lands.
pub fn full_set_refuses_new_members(b: &dyn Backend, name: &SetName) {
    let mut spec = plain_spec(b, name);
    spec.families = Families::Inet;
    spec.max_elements = Some(4);
    ok(b, b.ensure_set(&spec), "ensure_set with max_elements 4");
    let four: Vec<KernelEntry> = (1..=4)
        .map(|i| entry(&format!("192.0.2.{i}"), Some(600)))
        .collect();
    ok(b, b.add(&spec, &four), "add 4 hosts to a set of 4");
    let before = members(b, &spec);
    let e = expect_kind(
        b,
        b.add(&spec, &[entry("192.0.2.5", Some(600))]),
        ErrorKind::SetFull,
        "add a fifth host to a set of 4",
    );
    assert!(
        e.to_string().contains(name.as_str()),
        "[{}] a SetFull error must name the set {name}: {e}",
        b.kind()
    );
    assert_unchanged(b, &spec, &before, "after refusing a fifth host");
}

/// Changing the rule (ports, protocol, block type, hook off and on) and
/// the member bound keeps every member and its remaining timeout, and
/// leaves the set whole under the new spec. A kernel that cannot change
/// the member bound answers `Unsupported` with why.
pub fn change_set_keeps_every_member(b: &dyn Backend, name: &SetName) {
    let mut old = plain_spec(b, name);
    old.hook = Some(Hook {
        ports: PortRange::parse_list("25").expect("a port"),
        protocol: Some(Protocol::Tcp),
        ..Hook::default()
    });
    ok(b, b.ensure_set(&old), "ensure_set with ports 25");
    let mut batch = vec![
        entry("192.0.2.1", Some(600)),
        entry("2001:db8::1", Some(900)),
        entry("192.0.2.2", None),
    ];
    if b.capabilities().prefixes {
        batch.push(entry("198.51.100.0/24", Some(700)));
    }
    ok(b, b.add(&old, &batch), "add members");
    let before = members(b, &old);
    let mut new = old.clone();
    new.hook = Some(Hook {
        ports: PortRange::parse_list("22,2222").expect("ports"),
        protocol: Some(Protocol::Tcp),
        block: BlockType::Reject,
        permanent: false,
    });
    ok(
        b,
        b.change_set(&old, &new),
        "change ports 25 -> 22,2222 and reject",
    );
    assert_eq!(
        ok(b, b.health(&new), "health after the change"),
        SetHealth::Present,
        "[{}] the set is whole under its new spec",
        b.kind()
    );
    assert_unchanged(b, &new, &before, "after changing the rule");
    // A new maxelem: the kernel may not allow it, and then says why.
    let mut resized = new.clone();
    resized.max_elements = Some(5000);
    match b.change_set(&new, &resized) {
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            eprintln!("[{}] change_set_keeps_every_member: maxelem: {e}", b.kind());
            assert!(!e.detail().is_empty(), "[{}] say why", b.kind());
        }
        other => {
            ok(b, other, "change maxelem to 5000");
            new = resized;
            assert_unchanged(b, &new, &before, "after changing maxelem");
        }
    }
    assert_contains(b, &new, "192.0.2.1", true, "after the change");
    let mut unhooked = new.clone();
    unhooked.hook = None;
    ok(b, b.change_set(&new, &unhooked), "change to no hook");
    assert_unchanged(b, &unhooked, &before, "after taking the rule away");
    ok(b, b.change_set(&unhooked, &old), "change back to ports 25");
    assert_eq!(
        ok(b, b.health(&old), "health after changing back"),
        SetHealth::Present,
        "[{}] the set is whole under its first spec again",
        b.kind()
    );
    assert_unchanged(b, &old, &before, "after changing back");
    // With the spec it has now: a kernel that finds its rule by the rule's
    // text (iptables) would not find it from the suite's plain spec.
    ok(b, b.destroy(&old), "destroy after the change");
}

/// An allow-only set's rule is not a ban set's: `health` tells the shapes
/// apart (a set whose rule has the other policy's shape is Incomplete, so
/// `sync` and the keeper rebuild it), `ensure_set` replaces the wrong one,
/// members stay members, and `destroy` leaves nothing behind.
pub fn allow_only_rule_has_its_own_shape(b: &dyn Backend, name: &SetName) {
    if skipped(
        b,
        "allow_only_rule_has_its_own_shape",
        !b.supports_policy(SetPolicy::AllowOnly),
        "the backend builds only ban sets (the engine refuses allow-only ones)",
    ) {
        return;
    }
    let mut ban = plain_spec(b, name);
    ban.hook = Some(Hook {
        ports: PortRange::parse_list("22").expect("a port"),
        protocol: Some(Protocol::Tcp),
        ..Hook::default()
    });
    let allow = SetSpec {
        policy: SetPolicy::AllowOnly,
        ..ban.clone()
    };
    ok(b, b.ensure_set(&allow), "ensure_set allow-only");
    let health = |spec: &SetSpec, what: &str| ok(b, b.health(spec), what);
    assert_eq!(
        health(&allow, "health allow-only"),
        SetHealth::Present,
        "[{}] an allow-only set is whole",
        b.kind()
    );
    ok(b, b.ensure_set(&allow), "ensure_set allow-only again");
    assert_eq!(
        health(&ban, "health as a ban set"),
        SetHealth::Incomplete,
        "[{}] an allow-only rule is not a ban rule",
        b.kind()
    );
    ok(
        b,
        b.add(
            &allow,
            &[entry("192.0.2.1", None), entry("2001:db8::1", None)],
        ),
        "add members",
    );
    assert_contains(
        b,
        &allow,
        "192.0.2.1",
        true,
        "a member of an allow-only set",
    );
    assert_contains(b, &allow, "192.0.2.2", false, "a non-member");
    // Its ports change in place, keeping the shape and the members.
    let mut wider = allow.clone();
    wider.hook = Some(Hook {
        ports: PortRange::parse_list("22,587").expect("ports"),
        protocol: Some(Protocol::Tcp),
        ..Hook::default()
    });
    ok(
        b,
        b.change_set(&allow, &wider),
        "change allow-only ports 22 -> 22,587",
    );
    assert_eq!(
        health(&wider, "health after the change"),
        SetHealth::Present,
        "[{}] still an allow-only set after changing its ports",
        b.kind()
    );
    assert_contains(b, &wider, "192.0.2.1", true, "after changing the ports");
    ok(b, b.change_set(&wider, &allow), "change back to port 22");
    // The other way round: a ban rule where an allow-only one belongs is
    // replaced, members kept.
    ok(b, b.destroy(&allow), "destroy allow-only");
    assert_eq!(
        health(&allow, "health after destroy"),
        SetHealth::Missing,
        "[{}] destroy takes the allow-only rule too",
        b.kind()
    );
    ok(b, b.ensure_set(&ban), "ensure_set ban");
    ok(
        b,
        b.add(&ban, &[entry("192.0.2.1", None)]),
        "add to ban set",
    );
    assert_eq!(
        health(&allow, "health of a ban-shaped allow-only set"),
        SetHealth::Incomplete,
        "[{}] a ban rule is not an allow-only rule",
        b.kind()
    );
    ok(b, b.ensure_set(&allow), "ensure_set repairs the shape");
    assert_eq!(
        health(&allow, "health after the repair"),
        SetHealth::Present,
        "[{}] ensure_set replaced the ban rule",
        b.kind()
    );
    assert_eq!(
        health(&ban, "ban health after the repair"),
        SetHealth::Incomplete,
        "[{}] and no ban rule is left",
        b.kind()
    );
    assert_contains(b, &allow, "192.0.2.1", true, "after the repair");
    ok(b, b.destroy(&allow), "destroy");
    assert_eq!(
        health(&ban, "after the last destroy"),
        SetHealth::Missing,
        "[{}] nothing left",
        b.kind()
    );
}

// ---------------------------------------------------------------------------
// Helpers. Every failure message starts with the backend's name, so a
// failure in `run_all` over several backends says which one.

fn plain_spec(b: &dyn Backend, name: &SetName) -> SetSpec {
    let mut spec = SetSpec::new(name.clone(), b.kind());
    spec.prefixes = b.capabilities().prefixes;
    spec
}

fn ready(b: &dyn Backend, name: &SetName) -> SetSpec {
    let spec = plain_spec(b, name);
    ok(b, b.ensure_set(&spec), "ensure_set");
    spec
}

/// A target from test text (`"192.0.2.1"`, `"2001:db8::/64"`); panics on
/// a typo. Public, with [`entry`], for the backends' own kernel tests.
pub fn host(s: &str) -> Target {
    Target::parse(s).expect("the suite's addresses are valid")
}

/// A member to add: target text and seconds (`None`: permanent).
pub fn entry(s: &str, secs: Option<u64>) -> KernelEntry {
    KernelEntry {
        target: host(s),
        timeout: secs.map(Duration::from_secs),
    }
}

fn skipped(b: &dyn Backend, check: &str, skip: bool, why: &str) -> bool {
    if skip {
        eprintln!("[{}] {check}: skipped: the backend has {why}", b.kind());
    }
    skip
}

#[track_caller]
fn ok<T>(b: &dyn Backend, result: Result<T, BackendError>, what: impl fmt::Display) -> T {
    result.unwrap_or_else(|e| {
        panic!(
            "[{}] {what}: unexpected error ({:?}): {e}",
            b.kind(),
            e.kind()
        )
    })
}

#[track_caller]
fn expect_kind<T: fmt::Debug>(
    b: &dyn Backend,
    result: Result<T, BackendError>,
    kind: ErrorKind,
    what: &str,
) -> BackendError {
    match result {
        Ok(v) => panic!(
            "[{}] {what}: expected error kind {kind:?}, got Ok({v:?})",
            b.kind()
        ),
        Err(e) if e.kind() == kind => e,
        Err(e) => panic!(
            "[{}] {what}: expected error kind {kind:?}, got {:?}: {e}",
            b.kind(),
            e.kind()
        ),
    }
}

#[track_caller]
fn members(b: &dyn Backend, spec: &SetSpec) -> BTreeMap<Target, Option<Duration>> {
    let listed = ok(b, b.list(spec), format!("list {}", spec.name));
    let count = listed.len();
    let by_target: BTreeMap<_, _> = listed.into_iter().map(|e| (e.target, e.timeout)).collect();
    assert_eq!(
        by_target.len(),
        count,
        "[{}] list of {} repeats a member",
        b.kind(),
        spec.name
    );
    by_target
}

#[track_caller]
fn assert_members(b: &dyn Backend, spec: &SetSpec, expected: &[&str], when: &str) {
    let listed: Vec<Target> = members(b, spec).into_keys().collect();
    let mut expected: Vec<Target> = expected.iter().map(|s| host(s)).collect();
    expected.sort();
    assert_eq!(
        listed,
        expected,
        "[{}] members of {} {when}",
        b.kind(),
        spec.name
    );
}

/// Same members with the same timeouts, give or take the seconds that
/// passed while the refused call ran.
#[track_caller]
fn assert_unchanged(
    b: &dyn Backend,
    spec: &SetSpec,
    before: &BTreeMap<Target, Option<Duration>>,
    when: &str,
) {
    let now = members(b, spec);
    let targets = |m: &BTreeMap<Target, Option<Duration>>| m.keys().copied().collect::<Vec<_>>();
    assert_eq!(
        targets(&now),
        targets(before),
        "[{}] members of {} {when}",
        b.kind(),
        spec.name
    );
    for (target, timeout) in &now {
        match (before[target], *timeout) {
            (None, None) => {}
            (Some(was), Some(is)) if is <= was && was - is <= TIMEOUT_SLACK => {}
            (was, is) => panic!(
                "[{}] timeout of {target} in {} changed {when}: was {was:?}, now {is:?}",
                b.kind(),
                spec.name
            ),
        }
    }
}

/// How far a listed timeout may fall short of the one given: the seconds a
/// slow VM takes between the add and the list, plus kernels that count in
/// whole seconds. It never lists longer than given (but for rounding up to a
/// whole second).
const TIMEOUT_SLACK: Duration = Duration::from_secs(5);

#[track_caller]
fn assert_timeout_near(b: &dyn Backend, listed: Option<Duration>, given_secs: u64, what: &str) {
    if !b.capabilities().timeouts {
        assert_eq!(
            listed,
            None,
            "[{}] {what}: a kernel without timeouts lists none",
            b.kind()
        );
        return;
    }
    let given = Duration::from_secs(given_secs);
    let listed =
        listed.unwrap_or_else(|| panic!("[{}] {what}: listed without a timeout", b.kind()));
    assert!(
        listed <= given + Duration::from_secs(1) && listed + TIMEOUT_SLACK >= given,
        "[{}] {what}: listed timeout {listed:?}, expected between {:?} and {given:?}",
        b.kind(),
        given.saturating_sub(TIMEOUT_SLACK)
    );
}

#[track_caller]
fn assert_contains(b: &dyn Backend, spec: &SetSpec, target: &str, expected: bool, what: &str) {
    let got = ok(
        b,
        b.contains(spec, &host(target)),
        format!("contains {target}"),
    );
    assert_eq!(
        got,
        expected,
        "[{}] contains({target}) for {what}",
        b.kind()
    );
}
