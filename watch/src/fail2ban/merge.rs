//! fail2ban's enabled jails joined to banset's own: which wins, what
//! becomes of fail2ban's recidive jail, and which sets the jails need.

use banset_core::SetName;

use super::jail::{Fail2banConfig, SetWish};
use super::notice_lines;
use crate::config::{Recidive, Settings};

/// What [`merge`] leaves to the caller.
#[derive(Debug, Default)]
pub struct Merged {
    /// What banset does differently from fail2ban's configuration, one line
    /// each.
    pub notices: Vec<String>,
    /// The sets fail2ban's jails ban into, each with how fail2ban's action
    /// would make it, in jail order: the caller creates those its own
    /// configuration does not define.
    pub sets: Vec<(SetName, SetWish)>,
}

/// Adds fail2ban's enabled jails to `settings`. A jail banset's own
/// configuration (named `origin` in messages) defines too is banset's.
pub fn merge(settings: &mut Settings, f2b: Fail2banConfig, origin: &str) -> Merged {
    let mut out = Merged {
        notices: notice_lines(&f2b.notices),
        sets: Vec::new(),
    };
    for jail in f2b.jails {
        let name = jail.settings.name.clone();
        if settings.jails.iter().any(|j| j.name == name) {
            out.notices.push(format!(
                "{}: jail {name}: {origin} defines it too; banset.toml's wins",
                jail.origin,
            ));
            continue;
        }
        out.sets.push((jail.settings.set.clone(), jail.set.clone()));
        // fail2ban's recidive jail reads fail2ban's own log of bans, which
        // nobody writes once banset replaces fail2ban: it would silently
        // never ban again. banset's recidive counts banset's own bans, in
        // every jail, the same way.
        if jail.settings.filter.name.split('[').next() == Some("recidive") {
            let why = format!(
                "{}: jail {name}: reads fail2ban's own log, which banset does not write;",
                jail.origin
            );
            match &settings.recidive {
                Some(_) => out.notices.push(format!(
                    "{why} {origin}'s [recidive] counts banset's bans instead"
                )),
                None => {
                    let j = &jail.settings;
                    out.notices.push(format!(
                        "{why} banset counts its own bans instead: {} {} in {}s ban for {} in set {}",
                        j.maxretry,
                        if j.maxretry == 1 { "ban" } else { "bans" },
                        j.findtime,
                        j.bantime,
                        j.set
                    ));
                    settings.recidive = Some(Recidive {
                        bans: j.maxretry,
                        findtime: j.findtime,
                        bantime: j.bantime,
                        set: j.set.clone(),
                    });
                }
            }
            continue;
        }
        settings.jails.push(jail.settings);
    }
    out
}
