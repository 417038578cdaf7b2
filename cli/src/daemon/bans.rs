//! The engine calls for the jail policy's decisions
//! (`banset_watch::policy`): each ban with its history row and source
//! position in one ledger transaction, its log line and `on_ban`; and the
//! log lines and `on_unban` of bans that ended. Nothing here decides who
//! is banned or for how long.

use std::time::Instant;

use banset_core::{
    format_duration, AddOptions, AddRecord, BanRequest, Clock, FleetPublish, Ledger, SetName,
    Target,
};
use banset_watch::config::SourceKey;
use banset_watch::policy::{BanDecision, BanHistory, BanOutcome, RECIDIVE};

use super::logging::{self, log};
use super::source_threads::position_key;
use super::state::Daemon;
use crate::output::counted;

/// The ledger's ban events, as the jail policy reads them.
struct LedgerHistory<'l>(&'l mut Ledger);

impl BanHistory for LedgerHistory<'_> {
    fn bans_since(&mut self, target: &Target, since: i64) -> Vec<(String, i64)> {
        self.0
            .read()
            .and_then(|tx| tx.ban_events_since(target, since))
            .unwrap_or_default()
    }
}

impl Daemon<'_> {
    /// One failure: the jail policy counts it, and decides the ban (and
    /// recidive's after it) that the engine then makes.
    ///
    /// A crash must not count a line twice: a ban is recorded together with
    /// its history row and its source's position after the line that made
    /// it, in the ban's own ledger transaction, so a restart resumes after
    /// that line (escalation and recidive would otherwise count one offence
    /// as two). Failures that did not ban yet live only in memory, lost
    /// with the process anyway: the lines after the last ban are read again
    /// after a crash and rebuild them, which is the replay we accept
    /// (decided: keeping every line's position durable would cost a commit
    /// per line).
    pub(super) fn failure(
        &mut self,
        jail_index: usize,
        target: Target,
        at: i64,
        resume: Option<(SourceKey, String)>,
        line: &[u8],
    ) {
        let now = self.ctx.fw.clock.now();
        let mut history = LedgerHistory(&mut self.ctx.fw.ledger);
        let Some(decision) = self
            .jails
            .failure(jail_index, target, at, now, line, &mut history)
        else {
            return;
        };
        let outcome = self.ban(&decision, resume);
        if outcome == BanOutcome::Banned {
            let lines = self.jails.take_lines(jail_index, &target);
            if let Some(jail) = self.jails.iter().nth(jail_index) {
                let s = jail.settings();
                for mail in &s.mail {
                    self.notifier
                        .mail(mail, target, &s.name, s.maxretry, &lines);
                }
                self.notifier.notify(
                    "on_ban",
                    &s.on_ban,
                    [
                        target.to_string(),
                        s.name.clone(),
                        s.set.to_string(),
                        decision
                            .timeout
                            .secs()
                            .map_or("-1".to_string(), |s| s.to_string()),
                        s.maxretry.to_string(),
                    ],
                );
            }
        }
        let mut history = LedgerHistory(&mut self.ctx.fw.ledger);
        if let Some(recidive) = self.jails.outcome(&decision, outcome, now, &mut history) {
            if self.ban(&recidive, None) == BanOutcome::Banned {
                self.recidive_banned(&recidive);
            }
        }
    }

    /// After recidive's ban: its mails and `on_ban`, as a jail's.
    fn recidive_banned(&mut self, decision: &BanDecision) {
        let Some(r) = &self.settings.recidive else {
            return;
        };
        let count = decision.count();
        for m in &r.mail {
            self.notifier
                .mail(m, decision.target, &decision.jail, count, &[]);
        }
        self.notifier.notify(
            "on_ban",
            &r.on_ban,
            [
                decision.target.to_string(),
                decision.jail.clone(),
                decision.set.to_string(),
                decision
                    .timeout
                    .secs()
                    .map_or("-1".to_string(), |s| s.to_string()),
                count.to_string(),
            ],
        );
    }

    /// Bans through the engine, with the ban's history row (and `resume`,
    /// the source's position after the line that made it) in the ban's own
    /// transaction; logs it.
    pub(super) fn ban(
        &mut self,
        decision: &BanDecision,
        resume: Option<(SourceKey, String)>,
    ) -> BanOutcome {
        let BanDecision {
            jail,
            set,
            target,
            timeout: bantime,
            ..
        } = decision;
        let (target, bantime) = (*target, *bantime);
        if self.allow_only.contains(set) {
            log!("not banning {target} (jail {jail}): set {set} is an allow-only set");
            return BanOutcome::Refused;
        }
        let request = BanRequest {
            target,
            timeout: Some(bantime),
            since: None,
            comment: Some(format!("jail {jail}")),
        };
        let opts = AddOptions {
            force: false,
            create_with: self.specs.get(set).cloned(),
            ..AddOptions::default()
        };
        let record = AddRecord {
            ban_events: vec![(target, jail.clone())],
            meta: resume
                .iter()
                .map(|(source, value)| (position_key(source), value.clone()))
                .collect(),
            // Queued in the ban's own transaction; the fleet thread sends it.
            fleet: self
                .fleet
                .as_ref()
                .filter(|f| f.publishes(set, jail))
                .map(|_| FleetPublish {
                    jail: Some(jail.clone()),
                }),
        };
        let publish = record.fleet.is_some();
        let started = Instant::now();
        match self
            .ctx
            .engine()
            .add_recorded(set, &[request], &opts, &record)
        {
            Ok(report) => {
                if report.created_set {
                    self.watch_firewalld();
                }
                if let (true, Some(fleet)) = (publish, &self.fleet) {
                    fleet.publish();
                }
                if let Some((source, value)) = resume {
                    // Later positions of this source come after it in the
                    // channel; none can take it back.
                    self.positions.insert(source, value);
                }
                let ms = started.elapsed().as_secs_f64() * 1e3;
                let failures = decision.count();
                logging::event(
                    "ban",
                    &[
                        ("address", target.to_string()),
                        ("jail", jail.clone()),
                        ("set", set.to_string()),
                        (
                            "timeout",
                            bantime.secs().map_or("-1".into(), |s| s.to_string()),
                        ),
                        ("failures", failures.to_string()),
                        ("ms", format!("{ms:.2}")),
                    ],
                    &format!(
                        "ban {target} jail={jail} set={set} for {} after {}{} ({ms:.1} ms)",
                        bantime.secs().map_or("ever".to_string(), format_duration),
                        counted(failures, "failure", "failures"),
                        decision.note(),
                    ),
                );
                BanOutcome::Banned
            }
            Err(banset_core::Error::Refused(r)) => {
                log!("not banning {target} (jail {jail}): {r}");
                BanOutcome::Refused
            }
            Err(e) => {
                *self.errors.entry("ban").or_default() += 1;
                logging::event(
                    "error",
                    &[
                        ("address", target.to_string()),
                        ("jail", jail.clone()),
                        ("set", set.to_string()),
                    ],
                    &format!("ban {target} jail={jail} set={set} failed: {e}"),
                );
                BanOutcome::Failed
            }
        }
    }

    /// Bans of `set` that ended (the keeper expired them): logged, and
    /// `on_unban` run for each jail banning into the set.
    pub(super) fn unbanned(&mut self, set: SetName, targets: Vec<Target>) {
        self.unbans += targets.len() as u64;
        let recidive = self
            .settings
            .recidive
            .as_ref()
            .filter(|r| r.set == set && !r.on_unban.is_empty())
            .map(|r| (RECIDIVE.to_string(), r.on_unban.clone()));
        let jails: Vec<(String, Vec<String>)> = self
            .jails
            .iter()
            .map(|j| j.settings())
            .filter(|s| s.set == set && !s.on_unban.is_empty())
            .map(|s| (s.name.clone(), s.on_unban.clone()))
            .chain(recidive)
            .collect();
        // A mass expiry is one line, not thousands.
        let each = targets.len() <= 20;
        if !each {
            logging::event(
                "unban",
                &[
                    ("set", set.to_string()),
                    ("bans", targets.len().to_string()),
                ],
                &format!(
                    "unban {} from set {set} (bans over)",
                    counted(targets.len(), "address", "addresses")
                ),
            );
        }
        for t in targets {
            if each {
                logging::event(
                    "unban",
                    &[("address", t.to_string()), ("set", set.to_string())],
                    &format!("unban {t} set={set} (ban over)"),
                );
            }
            for (jail, argv) in &jails {
                self.notifier.notify(
                    "on_unban",
                    argv,
                    [
                        t.to_string(),
                        jail.clone(),
                        set.to_string(),
                        "0".into(),
                        "0".into(),
                    ],
                );
            }
        }
    }
}
