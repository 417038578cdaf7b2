//! Failure windows: per address, the times of its recent failures, so a
//! jail can ask "`maxretry` failures within `findtime`?" in O(maxretry).

use rustc_hash::FxHashMap;

use banset_core::Target;

/// What [`FailureWindows::count`] did with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Older than `findtime` as of now: ignored.
    TooOld,
    /// Counted; `maxretry` not reached.
    Counted,
    /// This one reaches `maxretry`: the caller bans, and the address
    /// starts from zero.
    Reached,
}

/// The failure windows of one jail.
#[derive(Debug)]
pub struct FailureWindows {
    findtime: i64,
    maxretry: usize,
    /// Times of each address's failures within the window, oldest first;
    /// never more than `maxretry` (the newest ones: all a ban needs).
    entries: FxHashMap<Target, Vec<i64>>,
}

impl FailureWindows {
    /// Windows of `findtime` seconds that trigger at `maxretry` failures.
    pub fn new(findtime: u64, maxretry: u32) -> FailureWindows {
        FailureWindows {
            findtime: findtime.min(i64::MAX as u64) as i64,
            maxretry: maxretry.max(1) as usize,
            entries: FxHashMap::default(),
        }
    }

    /// Changes the limits (config reload), keeping the counts.
    pub fn set_limits(&mut self, findtime: u64, maxretry: u32) {
        self.findtime = findtime.min(i64::MAX as u64) as i64;
        self.maxretry = maxretry.max(1) as usize;
    }

    /// Counts a failure of `target` at `at`. Returns `true` when the
    /// address has `maxretry` failures within `findtime`: the caller bans,
    /// and [`FailureWindows::forget`]s the address once the ban is
    /// recorded. Until then every further failure says `true` again: a ban
    /// that failed (the ledger busy past its timeout) used to clear the
    /// window all the same, and the address started again from zero.
    pub fn fail(&mut self, target: Target, at: i64) -> bool {
        let horizon = at - self.findtime;
        let times = self.entries.entry(target).or_default();
        times.retain(|&t| t > horizon);
        // Lines usually come in order; one read after a restart may not.
        let pos = times.partition_point(|&t| t <= at);
        times.insert(pos, at);
        // Bounded whatever the log says: the newest `maxretry` decide.
        if times.len() > self.maxretry {
            let extra = times.len() - self.maxretry;
            times.drain(..extra);
        }
        times.len() >= self.maxretry
    }

    /// Counts a failure of `target` at `at`, read at `now`. A failure older
    /// than `findtime` as of now is not counted at all, as fail2ban ignores
    /// such lines: a backlog read after downtime, or a log replayed from a
    /// saved position, must not ban for what happened days ago (windows
    /// measured from the newest line would let three old lines ban).
    pub fn count(&mut self, target: Target, at: i64, now: i64) -> Counted {
        if at <= now.saturating_sub(self.findtime) {
            return Counted::TooOld;
        }
        if self.fail(target, at) {
            Counted::Reached
        } else {
            Counted::Counted
        }
    }

    /// Current failures of `target` within the window ending at `now`.
    pub fn failures(&self, target: &Target, now: i64) -> usize {
        let horizon = now - self.findtime;
        self.entries
            .get(target)
            .map_or(0, |v| v.iter().filter(|&&t| t > horizon).count())
    }

    /// Forgets `target` (it was banned by other means, or unbanned by hand).
    pub fn forget(&mut self, target: &Target) {
        self.entries.remove(target);
    }

    /// Forgets every address inside `prefix` (an admin unbanned it, so the
    /// next failure must not ban again at once); returns how many.
    pub fn forget_within(&mut self, prefix: &Target) -> usize {
        let before = self.entries.len();
        self.entries.retain(|t, _| !prefix.contains(t));
        before - self.entries.len()
    }

    /// Forgets every address; returns how many.
    pub fn forget_all(&mut self) -> usize {
        let n = self.entries.len();
        self.entries.clear();
        n
    }

    /// Drops addresses whose failures all left the window; call now and
    /// then to keep memory bounded by the attackers of the last `findtime`.
    pub fn prune(&mut self, now: i64) {
        let horizon = now - self.findtime;
        self.entries
            .retain(|_, v| v.last().is_some_and(|&t| t > horizon));
        if self.entries.capacity() > 4 * self.entries.len().max(1024) {
            self.entries.shrink_to_fit();
        }
    }

    /// Addresses with at least one failure in their window (as of the last
    /// prune).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// Failures counted within the window ending at `now`, all addresses.
    pub fn total_failures(&self, now: i64) -> usize {
        let horizon = now - self.findtime;
        self.entries
            .values()
            .map(|v| v.iter().filter(|&&t| t > horizon).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn forget_within_a_prefix_forgets_only_what_it_covers() {
        let mut w = FailureWindows::new(600, 3);
        for a in ["192.0.2.1", "192.0.2.200", "198.51.100.1"] {
            w.fail(t(a), 100);
        }
        assert_eq!(w.forget_within(&t("192.0.2.0/24")), 2);
        assert_eq!(w.tracked(), 1);
        assert_eq!(w.failures(&t("198.51.100.1"), 100), 1);
        assert_eq!(w.forget_all(), 1);
        assert_eq!(w.tracked(), 0);
    }

    #[test]
    fn bans_at_maxretry_within_findtime_and_starts_over() {
        let mut w = FailureWindows::new(600, 3);
        assert!(!w.fail(t("1.2.3.4"), 0));
        assert!(!w.fail(t("1.2.3.4"), 100));
        assert!(!w.fail(t("5.6.7.8"), 150));
        assert!(w.fail(t("1.2.3.4"), 599));
        w.forget(&t("1.2.3.4")); // the ban was recorded
        assert_eq!(w.failures(&t("1.2.3.4"), 599), 0);
        assert!(!w.fail(t("1.2.3.4"), 600));
        assert_eq!(w.failures(&t("5.6.7.8"), 600), 1);
    }

    #[test]
    fn failures_older_than_findtime_as_of_now_are_not_counted() {
        // Three lines dated ten days ago, read now, with findtime 10 min:
        // fail2ban ignores them; banset counts none and bans no one.
        let now = 1_000_000_000;
        let old = now - 10 * 86_400;
        let mut w = FailureWindows::new(600, 3);
        for i in 0..3 {
            assert_eq!(w.count(t("1.2.3.4"), old + i, now), Counted::TooOld);
        }
        assert_eq!(w.tracked(), 0);
        // Within findtime of now they count, and the third bans.
        assert_eq!(w.count(t("1.2.3.4"), now - 599, now), Counted::Counted);
        assert_eq!(w.count(t("1.2.3.4"), now - 300, now), Counted::Counted);
        assert_eq!(w.count(t("1.2.3.4"), now, now), Counted::Reached);
        assert_eq!(w.count(t("1.2.3.4"), now - 600, now), Counted::TooOld);
    }

    #[test]
    fn the_failure_window_is_kept_until_the_ban_is_recorded() {
        let mut w = FailureWindows::new(600, 3);
        for at in [0, 1] {
            assert!(!w.fail(t("1.2.3.4"), at));
        }
        assert!(w.fail(t("1.2.3.4"), 2));
        // The ban failed: not forgotten, so the next failure bans again.
        assert!(w.fail(t("1.2.3.4"), 3));
        // A flood of failures keeps only what a ban needs.
        for at in 4..10_000 {
            assert!(w.fail(t("1.2.3.4"), at / 100));
        }
        assert_eq!(w.failures(&t("1.2.3.4"), 100), 3);
        w.forget(&t("1.2.3.4"));
        assert!(!w.fail(t("1.2.3.4"), 101));
    }

    #[test]
    fn the_window_slides() {
        let mut w = FailureWindows::new(600, 3);
        assert!(!w.fail(t("1.2.3.4"), 0));
        assert!(!w.fail(t("1.2.3.4"), 300));
        // The failure at 0 left the window at 600.
        assert!(!w.fail(t("1.2.3.4"), 600));
        assert!(w.fail(t("1.2.3.4"), 899));
    }

    #[test]
    fn maxretry_one_bans_at_once_and_out_of_order_lines_count() {
        let mut w = FailureWindows::new(60, 1);
        assert!(w.fail(t("2001:db8::1"), 5));
        let mut w = FailureWindows::new(60, 2);
        assert!(!w.fail(t("1.1.1.1"), 50));
        assert!(w.fail(t("1.1.1.1"), 20));
    }

    #[test]
    fn prune_forgets_the_quiet_and_reload_keeps_counts() {
        let mut w = FailureWindows::new(100, 5);
        for i in 0..1000 {
            let a = Target::host(std::net::Ipv4Addr::from(0x0a00_0000u32 + i).into()).unwrap();
            w.fail(a, i64::from(i) / 10);
        }
        assert_eq!(w.tracked(), 1000);
        w.prune(150);
        assert_eq!(w.tracked(), 490);
        w.set_limits(1000, 5);
        assert_eq!(w.total_failures(150), 490);
    }
}
