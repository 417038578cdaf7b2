//! The jail policy: why an address is banned, for how long, and where.
//!
//! Pure: failures come in as (jail, target, time), the ban history comes
//! from a [`BanHistory`] the caller fills (the daemon reads the ledger's
//! ban events), and `now` from the caller's clock; out come
//! [`BanDecision`]s. Nothing here bans: the daemon hands each decision to
//! the engine and reports what became of it with [`Jails::outcome`], which
//! may decide a recidive ban in turn.
//!
//! The rules, in order, for one failure in one jail:
//! 1. an address on the jail's allowlist (the host's own addresses, the
//!    global `ignore`, the jail's `ignore`) is never counted;
//! 2. a failure older than `findtime` as of now is not counted, only
//!    tallied as too old (a backlog after downtime must not ban);
//! 3. `maxretry` failures within `findtime` ban, for `bantime`, stretched
//!    by the jail's escalation for each earlier ban of the address in this
//!    jail within `remember` (never beyond the cap, never shorter);
//! 4. after a jail's ban, `bans` bans of the address in any jail but
//!    recidive within recidive's `findtime` (this one included) ban it in
//!    the recidive set as well.

use banset_core::{format_duration, Allowlist, SetName, Target, Timeout};

use crate::mail::MatchedLines;
use crate::settings::{JailSettings, Recidive};
use crate::window::{Counted, FailureWindows};

/// The jail name recidive's bans are recorded under in the history.
pub const RECIDIVE: &str = "recidive";

/// Earlier bans, as the decisions need them.
pub trait BanHistory {
    /// Bans of `target` at `since` or later, in any jail, as
    /// `(jail, time)`. A history that cannot be read answers none: the ban
    /// is then made as for a first offence, which is better than none.
    fn bans_since(&mut self, target: &Target, since: i64) -> Vec<(String, i64)>;
}

/// Why a [`BanDecision`] bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// The jail counted `failures` (its `maxretry`) within `findtime`
    /// seconds.
    Failures {
        /// The jail's `maxretry`.
        failures: u32,
        /// The jail's `findtime`, seconds.
        findtime: u64,
        /// Escalation made the ban longer than the jail's `bantime`.
        escalated: bool,
    },
    /// The address was banned `bans` times (in jails other than recidive)
    /// within `findtime` seconds.
    Recidive {
        /// Bans counted, this jail's last one included.
        bans: usize,
        /// Recidive's `findtime`, seconds.
        findtime: u64,
    },
}

/// One ban to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanDecision {
    /// The jail deciding it, by name: the history records the ban under
    /// it ([`RECIDIVE`] for recidive).
    pub jail: String,
    /// The deciding jail's index in [`Jails`]; `None` for recidive.
    pub jail_index: Option<usize>,
    /// The set the ban goes to.
    pub set: SetName,
    /// Who.
    pub target: Target,
    /// For how long.
    pub timeout: Timeout,
    /// Why.
    pub reason: BanReason,
    /// This ban's number for the address in this jail within escalation's
    /// `remember` (1: a first offence, or a jail without escalation); for
    /// recidive, the bans it counted.
    pub ban_count: usize,
}

impl BanDecision {
    /// The failures (or, for recidive, bans) behind the ban.
    pub fn count(&self) -> u32 {
        match self.reason {
            BanReason::Failures { failures, .. } => failures,
            BanReason::Recidive { bans, .. } => u32::try_from(bans).unwrap_or(u32::MAX),
        }
    }

    /// What the log line adds to "after N failures": why the ban is longer
    /// than the jail's, or what recidive counted. Empty when nothing.
    pub fn note(&self) -> String {
        match self.reason {
            BanReason::Failures {
                escalated: true, ..
            } => format!(" (ban #{} of this address in this jail)", self.ban_count),
            BanReason::Failures { .. } => String::new(),
            BanReason::Recidive { findtime, .. } => {
                format!(" (bans within {})", format_duration(findtime))
            }
        }
    }
}

/// What the engine made of a [`BanDecision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanOutcome {
    /// Banned, and recorded in the history.
    Banned,
    /// Refused for good (the engine's allowlist): the address starts from
    /// zero, as after a ban.
    Refused,
    /// Not made (kernel or ledger failed, the ledger busy past its
    /// timeout): the jail keeps the address's failures, so its next
    /// failure decides the ban again instead of starting from zero.
    Failed,
}

/// A jail's tallies since it was (re)built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JailStats {
    /// Bans the jail made (the engine accepted them).
    pub bans: u64,
    /// Failures counted.
    pub failures: u64,
    /// Failures older than `findtime` when read: not counted.
    pub too_old: u64,
}

/// One jail's policy: its settings, failure windows and allowlist.
#[derive(Debug)]
pub struct JailPolicy {
    settings: JailSettings,
    windows: FailureWindows,
    /// The global allowlist plus the jail's own `ignore`.
    allowlist: Allowlist,
    stats: JailStats,
    /// The lines of the last failures, when a mail lists them.
    lines: Option<MatchedLines>,
}

impl JailPolicy {
    /// The jail's settings.
    pub fn settings(&self) -> &JailSettings {
        &self.settings
    }

    /// Its tallies.
    pub fn stats(&self) -> JailStats {
        self.stats
    }

    /// Addresses with failures in the window (as of the last prune).
    pub fn tracked(&self) -> usize {
        self.windows.tracked()
    }

    /// Failures within the window ending at `now`, all addresses.
    pub fn failures_in_window(&self, now: i64) -> usize {
        self.windows.total_failures(now)
    }
}

/// Every jail's policy, and recidive's.
#[derive(Debug, Default)]
pub struct Jails {
    jails: Vec<JailPolicy>,
    recidive: Option<Recidive>,
}

impl Jails {
    /// The policies of `settings`' jails, each allowing what `global`
    /// allows plus its own `ignore`. Jails of `old` with the same name keep
    /// their failure windows (a reload must not forgive the failures
    /// counted so far), under the new limits; tallies start from zero.
    pub fn new(
        settings: &[JailSettings],
        recidive: Option<Recidive>,
        global: &Allowlist,
        old: Jails,
    ) -> Jails {
        let mut old = old.jails;
        let jails = settings
            .iter()
            .map(|s| {
                let windows = match old.iter().position(|j| j.settings.name == s.name) {
                    Some(i) => {
                        let mut j = old.swap_remove(i);
                        j.windows.set_limits(s.findtime, s.maxretry);
                        j.windows
                    }
                    None => FailureWindows::new(s.findtime, s.maxretry),
                };
                JailPolicy {
                    allowlist: global
                        .clone()
                        .with_ignored(s.ignore.iter().copied(), &format!("jail {}", s.name)),
                    settings: s.clone(),
                    windows,
                    stats: JailStats::default(),
                    lines: matched_lines(s),
                }
            })
            .collect();
        Jails { jails, recidive }
    }

    /// The jails, in configuration order (a failure's jail index is a
    /// position in it).
    pub fn iter(&self) -> std::slice::Iter<'_, JailPolicy> {
        self.jails.iter()
    }

    /// How many jails.
    pub fn len(&self) -> usize {
        self.jails.len()
    }

    /// No jails at all.
    pub fn is_empty(&self) -> bool {
        self.jails.is_empty()
    }

    /// One failure of `target` at `at` in jail `jail` (an index into
    /// [`Jails::iter`]), read at `now` from `line`: a ban to make, or none
    /// yet. A counted failure's line is kept for the jail's mails.
    pub fn failure(
        &mut self,
        jail: usize,
        target: Target,
        at: i64,
        now: i64,
        line: &[u8],
        history: &mut dyn BanHistory,
    ) -> Option<BanDecision> {
        let j = self.jails.get_mut(jail)?;
        if j.allowlist.check(&target, false).is_err() {
            return None;
        }
        let counted = j.windows.count(target, at, now);
        if let (Some(lines), false) = (&mut j.lines, counted == Counted::TooOld) {
            lines.push(target, at, line);
        }
        match counted {
            Counted::TooOld => {
                j.stats.too_old += 1;
                return None;
            }
            Counted::Counted => {
                j.stats.failures += 1;
                return None;
            }
            Counted::Reached => j.stats.failures += 1,
        }
        let s = &j.settings;
        let earlier = match s.escalation {
            Some(e) => history
                .bans_since(&target, now - e.remember as i64)
                .iter()
                .filter(|(name, _)| *name == s.name)
                .count(),
            None => 0,
        };
        let timeout = s
            .escalation
            .map_or(s.bantime, |e| e.bantime(s.bantime, earlier));
        Some(BanDecision {
            jail: s.name.clone(),
            jail_index: Some(jail),
            set: s.set.clone(),
            target,
            timeout,
            reason: BanReason::Failures {
                failures: s.maxretry,
                findtime: s.findtime,
                escalated: earlier > 0 && timeout != s.bantime,
            },
            ban_count: earlier + 1,
        })
    }

    /// What the engine made of `decision` (for [`BanOutcome::Banned`],
    /// `history` holds the ban by now): the jail forgets or keeps the
    /// address's failures and tallies the ban, and recidive's ban comes back
    /// when this jail's ban completes a repeat offender's count.
    pub fn outcome(
        &mut self,
        decision: &BanDecision,
        outcome: BanOutcome,
        now: i64,
        history: &mut dyn BanHistory,
    ) -> Option<BanDecision> {
        let jail = self.jails.get_mut(decision.jail_index?)?;
        match outcome {
            BanOutcome::Failed => return None,
            BanOutcome::Refused => {
                jail.windows.forget(&decision.target);
                return None;
            }
            BanOutcome::Banned => {
                jail.windows.forget(&decision.target);
                jail.stats.bans += 1;
            }
        }
        let r = self.recidive.as_ref()?;
        // A jail named as recidive's set is recidive itself (fail2ban's
        // recidive jail read from its configuration): its bans never count
        // towards themselves.
        if r.set.as_str() == decision.jail {
            return None;
        }
        let bans = history
            .bans_since(&decision.target, now - r.findtime as i64)
            .iter()
            .filter(|(name, _)| name != RECIDIVE)
            .count();
        if !r.triggered(bans) {
            return None;
        }
        Some(BanDecision {
            jail: RECIDIVE.to_string(),
            jail_index: None,
            set: r.set.clone(),
            target: decision.target,
            timeout: r.bantime,
            reason: BanReason::Recidive {
                bans,
                findtime: r.findtime,
            },
            ban_count: bans,
        })
    }

    /// Hands over (and forgets) the kept lines of `target` in jail `jail`,
    /// for the mails of its ban.
    pub fn take_lines(&mut self, jail: usize, target: &Target) -> Vec<String> {
        match self.jails.get_mut(jail).and_then(|j| j.lines.as_mut()) {
            Some(lines) => lines.take(target),
            None => Vec::new(),
        }
    }

    /// Forgets the failures of every address inside `prefix` (`None`:
    /// every address) in the jails banning into `set` (`None`: all jails),
    /// with their kept lines; returns how many addresses were forgotten.
    pub fn forget(&mut self, prefix: Option<&Target>, set: Option<&SetName>) -> usize {
        let mut n = 0;
        for jail in &mut self.jails {
            if set.is_some_and(|s| *s != jail.settings.set) {
                continue;
            }
            n += match prefix {
                Some(p) => jail.windows.forget_within(p),
                None => jail.windows.forget_all(),
            };
            // Kept lines are by address: a host's go; a prefix's age out.
            if let (Some(lines), Some(p)) = (&mut jail.lines, prefix) {
                if p.is_host() {
                    lines.take(p);
                }
            }
        }
        n
    }

    /// Drops addresses whose failures all left their windows.
    pub fn prune(&mut self, now: i64) {
        for jail in &mut self.jails {
            jail.windows.prune(now);
            if let Some(lines) = &mut jail.lines {
                lines.prune(now - jail.settings.findtime as i64);
            }
        }
    }

    /// How far back, in seconds, the decisions read the history: older ban
    /// events may be pruned.
    pub fn history_needed(&self) -> u64 {
        self.jails
            .iter()
            .filter_map(|j| j.settings.escalation.map(|e| e.remember))
            .chain(self.recidive.as_ref().map(|r| r.findtime))
            .max()
            .unwrap_or(0)
    }
}

/// The matched-lines store of a jail whose mails list them. Bounded (the
/// lines are an attacker's text): at most 50 lines of each of 1,024
/// addresses, 1 KiB each, 50 MiB at worst; a mail lists an address's
/// latest lines, which are the ones that made its ban.
fn matched_lines(jail: &JailSettings) -> Option<MatchedLines> {
    let want = jail.mail.iter().map(|m| m.lines).max().unwrap_or(0);
    (want > 0).then(|| MatchedLines::new(want.min(50), 1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin_filter;
    use crate::config::Escalation;
    use banset_core::{Clock, ManualClock};

    const T0: i64 = 1_700_000_000;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn jail(name: &str, maxretry: u32, findtime: u64, bantime: u64) -> JailSettings {
        JailSettings {
            name: name.into(),
            filter: builtin_filter("sshd").unwrap(),
            sources: Vec::new(),
            logpath: Vec::new(),
            fail2ban_dir: None,
            maxretry,
            findtime,
            bantime: Timeout::from_secs(bantime).unwrap(),
            set: SetName::new(name).unwrap(),
            ignore: Vec::new(),
            escalation: None,
            on_ban: Vec::new(),
            on_unban: Vec::new(),
            mail: Vec::new(),
        }
    }

    /// The ledger's ban events, in memory: what the daemon records with
    /// each ban the engine made.
    #[derive(Default)]
    struct History(Vec<(Target, String, i64)>);

    impl BanHistory for History {
        fn bans_since(&mut self, target: &Target, since: i64) -> Vec<(String, i64)> {
            self.0
                .iter()
                .filter(|(t, _, at)| t == target && *at >= since)
                .map(|(_, j, at)| (j.clone(), *at))
                .collect()
        }
    }

    /// Counts a failure now; on a decision, "bans" it as the daemon does
    /// (recording it, then asking about recidive), and returns every
    /// decision made.
    fn fail(
        jails: &mut Jails,
        history: &mut History,
        clock: &ManualClock,
        jail: usize,
        target: &str,
        ago: i64,
    ) -> Vec<BanDecision> {
        let now = clock.now();
        let mut out = Vec::new();
        if let Some(d) = jails.failure(jail, t(target), now - ago, now, b"", history) {
            history.0.push((d.target, d.jail.clone(), now));
            if let Some(r) = jails.outcome(&d, BanOutcome::Banned, now, history) {
                history.0.push((r.target, r.jail.clone(), now));
                out.push(d);
                out.push(r);
            } else {
                out.push(d);
            }
        }
        out
    }

    fn jails(settings: &[JailSettings], recidive: Option<Recidive>) -> Jails {
        Jails::new(settings, recidive, &Allowlist::new(), Jails::default())
    }

    #[test]
    fn maxretry_failures_within_findtime_ban_for_bantime() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let mut j = jails(&[jail("sshd", 3, 600, 3600)], None);
        assert!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).is_empty());
        clock.advance(100);
        assert!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).is_empty());
        assert!(fail(&mut j, &mut h, &clock, 0, "198.51.100.1", 0).is_empty());
        clock.advance(100);
        let d = fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
        assert_eq!(
            d,
            [BanDecision {
                jail: "sshd".into(),
                jail_index: Some(0),
                set: SetName::new("sshd").unwrap(),
                target: t("192.0.2.1"),
                timeout: Timeout::from_secs(3600).unwrap(),
                reason: BanReason::Failures {
                    failures: 3,
                    findtime: 600,
                    escalated: false
                },
                ban_count: 1,
            }]
        );
        assert_eq!(d[0].note(), "");
        assert_eq!(d[0].count(), 3);
        let stats = j.iter().next().unwrap().stats();
        assert_eq!((stats.bans, stats.failures, stats.too_old), (1, 4, 0));
        // The banned address starts again from zero; the other one not.
        assert_eq!(j.iter().next().unwrap().failures_in_window(clock.now()), 1);
    }

    #[test]
    fn a_failed_ban_keeps_the_failures_and_a_refused_one_forgets_them() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let mut j = jails(&[jail("sshd", 3, 600, 3600)], None);
        let a = t("192.0.2.1");
        let now = clock.now();
        assert!(j.failure(0, a, now, now, b"", &mut h).is_none());
        assert!(j.failure(0, a, now, now, b"", &mut h).is_none());
        let d = j.failure(0, a, now, now, b"", &mut h).unwrap();
        // The ledger was busy: the next failure decides the ban again.
        assert_eq!(j.outcome(&d, BanOutcome::Failed, now, &mut h), None);
        let d = j.failure(0, a, now, now, b"", &mut h).unwrap();
        assert_eq!(j.iter().next().unwrap().stats().bans, 0);
        // Refused for good: counting starts from zero.
        assert_eq!(j.outcome(&d, BanOutcome::Refused, now, &mut h), None);
        assert!(j.failure(0, a, now, now, b"", &mut h).is_none());
        assert_eq!(j.iter().next().unwrap().stats().bans, 0);
    }

    #[test]
    fn failures_that_leave_the_window_do_not_ban() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let mut j = jails(&[jail("sshd", 3, 600, 3600)], None);
        fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
        clock.advance(300);
        fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
        // The first failure left the window at 600 s.
        clock.advance(300);
        assert!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).is_empty());
        clock.advance(299);
        assert_eq!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).len(), 1);
        j.prune(clock.now() + 600);
        assert_eq!(j.iter().next().unwrap().tracked(), 0);
    }

    #[test]
    fn lines_older_than_findtime_as_of_now_are_tallied_not_counted() {
        // Three lines dated ten days ago, read now (a backlog after
        // downtime): no ban, each one tallied as too old.
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let mut j = jails(&[jail("sshd", 3, 600, 3600)], None);
        for _ in 0..3 {
            assert!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 10 * 86_400).is_empty());
        }
        let stats = j.iter().next().unwrap().stats();
        assert_eq!((stats.failures, stats.too_old), (0, 3));
        // Within findtime of now they count, however old the line.
        fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 599);
        fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 300);
        assert_eq!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).len(), 1);
    }

    #[test]
    fn escalation_stretches_repeat_bans_up_to_its_cap() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let mut s = jail("sshd", 1, 600, 600);
        s.escalation = Some(Escalation {
            factor: 2.0,
            max: 3000,
            remember: 86_400,
        });
        let mut j = jails(&[s], None);
        let mut got = Vec::new();
        for _ in 0..5 {
            let d = fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
            got.push((d[0].timeout.secs(), d[0].ban_count, d[0].note()));
            clock.advance(3600);
        }
        assert_eq!(
            got,
            [
                (Some(600), 1, String::new()),
                (
                    Some(1200),
                    2,
                    " (ban #2 of this address in this jail)".into()
                ),
                (
                    Some(2400),
                    3,
                    " (ban #3 of this address in this jail)".into()
                ),
                (
                    Some(3000),
                    4,
                    " (ban #4 of this address in this jail)".into()
                ),
                (
                    Some(3000),
                    5,
                    " (ban #5 of this address in this jail)".into()
                ),
            ]
        );
        // Bans older than `remember` are forgotten: a first offence again.
        clock.advance(86_400);
        let d = fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
        assert_eq!((d[0].timeout.secs(), d[0].ban_count), (Some(600), 1));
        // Bans in other jails do not escalate this one.
        h.0.clear();
        h.0.push((t("192.0.2.2"), "other".into(), clock.now()));
        let d = fail(&mut j, &mut h, &clock, 0, "192.0.2.2", 0);
        assert_eq!((d[0].timeout.secs(), d[0].ban_count), (Some(600), 1));
        assert_eq!(j.history_needed(), 86_400);
    }

    #[test]
    fn recidive_counts_bans_across_jails_but_not_its_own() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let recidive = Recidive {
            bans: 3,
            findtime: 86_400,
            bantime: Timeout::Never,
            set: SetName::new("recidive").unwrap(),
            on_ban: Vec::new(),
            on_unban: Vec::new(),
            mail: Vec::new(),
        };
        let mut j = jails(
            &[jail("sshd", 1, 600, 600), jail("postfix", 1, 600, 600)],
            Some(recidive),
        );
        assert_eq!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).len(), 1);
        clock.advance(3600);
        assert_eq!(fail(&mut j, &mut h, &clock, 1, "192.0.2.1", 0).len(), 1);
        clock.advance(3600);
        let d = fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(
            d[1],
            BanDecision {
                jail: RECIDIVE.into(),
                jail_index: None,
                set: SetName::new("recidive").unwrap(),
                target: t("192.0.2.1"),
                timeout: Timeout::Never,
                reason: BanReason::Recidive {
                    bans: 3,
                    findtime: 86_400
                },
                ban_count: 3,
            }
        );
        assert_eq!(d[1].note(), " (bans within 1d)");
        // Recidive's own ban is not one of the bans it counts: the next
        // jail ban makes 4, not 5.
        clock.advance(60);
        let d = fail(&mut j, &mut h, &clock, 1, "192.0.2.1", 0);
        assert_eq!(d[1].count(), 4);
        // Bans older than recidive's findtime do not count.
        clock.advance(2 * 86_400);
        assert_eq!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).len(), 1);
        // Recidive's bans are not tallied as a jail's.
        assert_eq!(j.iter().map(|p| p.stats().bans).sum::<u64>(), 5);
        assert_eq!(j.history_needed(), 86_400);
    }

    #[test]
    fn a_jail_named_as_recidives_set_does_not_trigger_recidive() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let recidive = Recidive {
            bans: 1,
            findtime: 86_400,
            bantime: Timeout::Never,
            set: SetName::new("f2b-recidive").unwrap(),
            on_ban: Vec::new(),
            on_unban: Vec::new(),
            mail: Vec::new(),
        };
        let mut j = jails(&[jail("f2b-recidive", 1, 600, 600)], Some(recidive));
        assert_eq!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).len(), 1);
    }

    #[test]
    fn allowlisted_addresses_are_never_counted() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let mut s = jail("sshd", 1, 600, 600);
        s.ignore = vec![t("198.51.100.0/24")];
        let global = Allowlist::new().with_host_addresses([t("192.0.2.10")]);
        let mut j = Jails::new(&[s], None, &global, Jails::default());
        assert!(fail(&mut j, &mut h, &clock, 0, "192.0.2.10", 0).is_empty());
        assert!(fail(&mut j, &mut h, &clock, 0, "198.51.100.7", 0).is_empty());
        assert!(fail(&mut j, &mut h, &clock, 0, "127.0.0.1", 0).is_empty());
        assert_eq!(j.iter().next().unwrap().stats(), JailStats::default());
        assert_eq!(fail(&mut j, &mut h, &clock, 0, "203.0.113.1", 0).len(), 1);
    }

    #[test]
    fn a_rebuild_keeps_the_failures_of_jails_of_the_same_name() {
        let clock = ManualClock::new(T0);
        let mut h = History::default();
        let mut j = jails(&[jail("sshd", 3, 600, 600)], None);
        fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
        fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0);
        let mut j = Jails::new(
            &[jail("postfix", 3, 600, 600), jail("sshd", 3, 600, 600)],
            None,
            &Allowlist::new(),
            j,
        );
        assert!(fail(&mut j, &mut h, &clock, 0, "192.0.2.1", 0).is_empty());
        assert_eq!(fail(&mut j, &mut h, &clock, 1, "192.0.2.1", 0).len(), 1);
        assert_eq!(j.len(), 2);
    }
}
