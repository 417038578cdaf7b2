//! `reconcile`: the pure planner that brings a kernel set back to the ledger.
//!
//! It is a function of (ledger rows, kernel listing, now, capabilities) and
//! nothing else, so every case (a reboot, a `flush ruleset`, a kernel whose
//! timeout cap is shorter than the ban, a kernel without timeouts) is a unit
//! test. `sync`, `expire` and the daemon's keeper all run its plan.

use std::collections::HashMap;
use std::time::Duration;

use crate::backend::{Capabilities, Changes, KernelEntry};
use crate::ledger::Ban;
use crate::target::Target;

/// Kernel and ledger are whole seconds apart at worst, plus the time between
/// reading the two; a smaller difference is not worth a refresh.
pub const TIMEOUT_TOLERANCE_SECS: u64 = 5;

/// What to change so the kernel matches the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Active bans the kernel lacks.
    pub add: Vec<KernelEntry>,
    /// Active bans the kernel holds with the wrong time left.
    pub refresh: Vec<KernelEntry>,
    /// Kernel members with no active ban behind them.
    pub remove: Vec<Target>,
    /// Ledger rows whose ban is over; the caller deletes them.
    pub expired: Vec<Target>,
}

impl Plan {
    /// The kernel side of the plan, as one batch.
    pub fn changes(&self) -> Changes {
        Changes {
            flush_first: false,
            remove: self.remove.clone(),
            add: self.add.iter().chain(&self.refresh).copied().collect(),
        }
    }

    /// Whether there is nothing to do, on either side.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.refresh.is_empty()
            && self.remove.is_empty()
            && self.expired.is_empty()
    }
}

/// The timeout to give a kernel for a ban with `remaining` seconds left
/// (`None` = permanent): capped where the kernel caps timeouts, and `None`
/// (hold without end) where the kernel has no timeouts and the ledger
/// drives expiry.
pub fn kernel_timeout(remaining: Option<u64>, caps: &Capabilities) -> Option<Duration> {
    if !caps.timeouts {
        return None;
    }
    let wanted = Duration::from_secs(remaining?);
    Some(match caps.max_timeout {
        Some(cap) if wanted > cap => cap,
        _ => wanted,
    })
}

/// Plans the changes that make `kernel` hold exactly the active bans of
/// `ledger`, each with the time it has left. `kernel` is `None` when the set
/// is missing from the kernel altogether (everything is re-added).
pub fn reconcile(
    ledger: &[Ban],
    kernel: Option<&[KernelEntry]>,
    now: i64,
    caps: &Capabilities,
) -> Plan {
    reconcile_listed_over(ledger, kernel, now, 0, caps)
}

/// [`reconcile`] for a kernel listing that started at `now` and took
/// `listing_secs`: members read late show up to that much less time left
/// (listing a million-member nftables set takes half a minute), which is not
/// a reason to refresh them.
pub fn reconcile_listed_over(
    ledger: &[Ban],
    kernel: Option<&[KernelEntry]>,
    now: i64,
    listing_secs: u64,
    caps: &Capabilities,
) -> Plan {
    let mut in_kernel: HashMap<Target, Option<Duration>> = kernel
        .unwrap_or_default()
        .iter()
        .map(|e| (e.target, e.timeout))
        .collect();
    let mut plan = Plan::default();
    for ban in ledger {
        let held = in_kernel.remove(&ban.target);
        if !ban.is_active(now) {
            plan.expired.push(ban.target);
            if held.is_some() {
                plan.remove.push(ban.target);
            }
            continue;
        }
        let want = kernel_timeout(ban.remaining(now), caps);
        let entry = KernelEntry {
            target: ban.target,
            timeout: want,
        };
        match held {
            None => plan.add.push(entry),
            Some(have) if needs_refresh(have, want, listing_secs, caps) => plan.refresh.push(entry),
            Some(_) => {}
        }
    }
    // Whatever is left in the kernel has no active ban behind it: banset owns
    // its kernel objects, and the ledger is the desired state.
    let mut extra: Vec<Target> = in_kernel.into_keys().collect();
    extra.sort();
    plan.remove.extend(extra);
    plan
}

fn needs_refresh(
    have: Option<Duration>,
    want: Option<Duration>,
    listing_secs: u64,
    caps: &Capabilities,
) -> bool {
    if !caps.timeouts {
        return false;
    }
    match (have, want) {
        (None, None) => false,
        // permanent in the kernel but should end, or the other way round
        (None, Some(_)) | (Some(_), None) => true,
        (Some(have), Some(want)) => {
            let capped = caps.max_timeout.is_some_and(|cap| want >= cap);
            if capped {
                // The ban outlives the kernel's cap. Re-arm once half the cap
                // has run down: often enough that a daily `sync` never lets
                // the kernel drop a ban early, rarely enough not to churn.
                have < want / 2
            } else {
                let (have, want) = (have.as_secs(), want.as_secs());
                have + TIMEOUT_TOLERANCE_SECS + listing_secs < want
                    || have > want + TIMEOUT_TOLERANCE_SECS
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn ban(target: &str, deadline: Option<i64>) -> Ban {
        Ban {
            target: t(target),
            start: NOW - 10,
            deadline,
            reason: None,
            ban_count: 1,
        }
    }

    fn k(target: &str, secs: Option<u64>) -> KernelEntry {
        KernelEntry {
            target: t(target),
            timeout: secs.map(Duration::from_secs),
        }
    }

    fn caps() -> Capabilities {
        Capabilities {
            timeouts: true,
            max_timeout: None,
            prefixes: true,
            mixed_families: false,
            atomic_batches: true,
            kills_states: false,
        }
    }

    #[test]
    fn missing_set_re_adds_every_active_ban_with_its_remaining_time() {
        let ledger = [
            ban("1.2.3.4", Some(NOW + 100)),
            ban("2001:db8::/64", None),
            ban("5.6.7.8", Some(NOW)),
        ];
        let plan = reconcile(&ledger, None, NOW, &caps());
        assert_eq!(
            plan.add,
            [k("1.2.3.4", Some(100)), k("2001:db8::/64", None)]
        );
        assert_eq!(plan.expired, [t("5.6.7.8")]);
        assert!(plan.remove.is_empty() && plan.refresh.is_empty());
    }

    #[test]
    fn agreeing_kernel_needs_nothing() {
        let ledger = [ban("1.2.3.4", Some(NOW + 100)), ban("10.0.0.0/8", None)];
        let kernel = [k("1.2.3.4", Some(98)), k("10.0.0.0/8", None)];
        assert!(reconcile(&ledger, Some(&kernel), NOW, &caps()).is_empty());
    }

    #[test]
    fn wrong_timeouts_are_refreshed_and_strangers_removed() {
        let ledger = [
            ban("1.1.1.1", Some(NOW + 1000)),
            ban("2.2.2.2", None),
            ban("3.3.3.3", Some(NOW + 50)),
            ban("4.4.4.4", Some(NOW - 1)),
        ];
        let kernel = [
            k("1.1.1.1", Some(10)),
            k("2.2.2.2", Some(500)),
            k("3.3.3.3", None),
            k("4.4.4.4", Some(3)),
            k("9.9.9.9", Some(3)),
        ];
        let plan = reconcile(&ledger, Some(&kernel), NOW, &caps());
        assert_eq!(
            plan.refresh,
            [
                k("1.1.1.1", Some(1000)),
                k("2.2.2.2", None),
                k("3.3.3.3", Some(50))
            ]
        );
        assert_eq!(plan.remove, [t("4.4.4.4"), t("9.9.9.9")]);
        assert_eq!(plan.expired, [t("4.4.4.4")]);
        assert_eq!(plan.changes().add.len(), 3);
    }

    #[test]
    fn a_slow_listing_is_not_a_reason_to_refresh() {
        let ledger = [ban("1.2.3.4", Some(NOW + 1000))];
        // read 30 s into a 40 s listing: 970 s left, as it should be
        let kernel = [k("1.2.3.4", Some(970))];
        assert!(reconcile_listed_over(&ledger, Some(&kernel), NOW, 40, &caps()).is_empty());
        assert_eq!(
            reconcile(&ledger, Some(&kernel), NOW, &caps())
                .refresh
                .len(),
            1,
            "without the listing time it would look 30 s short"
        );
        // too long is still too long
        let kernel = [k("1.2.3.4", Some(1100))];
        assert_eq!(
            reconcile_listed_over(&ledger, Some(&kernel), NOW, 40, &caps())
                .refresh
                .len(),
            1
        );
    }

    #[test]
    fn bans_beyond_a_kernel_cap_get_the_cap_and_are_re_armed() {
        let cap = 2_147_483u64;
        let caps = Capabilities {
            max_timeout: Some(Duration::from_secs(cap)),
            ..caps()
        };
        let year = 365 * 86_400;
        let ledger = [ban("1.2.3.4", Some(NOW + year))];
        let plan = reconcile(&ledger, None, NOW, &caps);
        assert_eq!(plan.add, [k("1.2.3.4", Some(cap))]);
        // fresh kernel entry: nothing to do
        let kernel = [k("1.2.3.4", Some(cap - 60))];
        assert!(reconcile(&ledger, Some(&kernel), NOW, &caps).is_empty());
        // most of the cap has run down: re-armed to the cap again
        let kernel = [k("1.2.3.4", Some(cap / 3))];
        let plan = reconcile(&ledger, Some(&kernel), NOW, &caps);
        assert_eq!(plan.refresh, [k("1.2.3.4", Some(cap))]);
        // the last stretch fits under the cap: exact time again
        let ledger = [ban("1.2.3.4", Some(NOW + 1000))];
        let kernel = [k("1.2.3.4", Some(cap / 3))];
        let plan = reconcile(&ledger, Some(&kernel), NOW, &caps);
        assert_eq!(plan.refresh, [k("1.2.3.4", Some(1000))]);
    }

    #[test]
    fn kernels_without_timeouts_hold_everything_and_the_ledger_expires() {
        let caps = Capabilities {
            timeouts: false,
            ..caps()
        };
        let ledger = [
            ban("1.2.3.4", Some(NOW + 100)),
            ban("5.6.7.8", Some(NOW - 1)),
        ];
        let kernel = [k("1.2.3.4", None), k("5.6.7.8", None)];
        let plan = reconcile(&ledger, Some(&kernel), NOW, &caps);
        assert!(plan.add.is_empty() && plan.refresh.is_empty());
        assert_eq!(plan.remove, [t("5.6.7.8")]);
        assert_eq!(plan.expired, [t("5.6.7.8")]);
        let plan = reconcile(&ledger[..1], None, NOW, &caps);
        assert_eq!(plan.add, [k("1.2.3.4", None)]);
    }
}
