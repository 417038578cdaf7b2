//! fail2ban's enabled jails joined to banset's own: which wins, what
//! becomes of fail2ban's recidive jail, and which sets the jails need.

use banset_core::SetName;

use super::error::notice_lines;
use super::jail::{Fail2banConfig, SetWish};
use crate::settings::{Recidive, Settings};

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
                        on_ban: Vec::new(),
                        on_unban: Vec::new(),
                        mail: j.mail.clone(),
                    });
                }
            }
            continue;
        }
        settings.jails.push(jail.settings);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{JailSettings, WatchSection};
    use crate::fail2ban::Fail2banJail;
    use banset_core::{BackendKind, Timeout};

    fn jail(name: &str, filter: &str, set: &str) -> Fail2banJail {
        let mut def = crate::builtin_filter("sshd").unwrap();
        def.name = filter.into();
        Fail2banJail {
            settings: JailSettings {
                name: name.into(),
                filter: def,
                sources: Vec::new(),
                logpath: Vec::new(),
                maxretry: 5,
                findtime: 86_400,
                bantime: Timeout::from_secs(604_800).unwrap(),
                set: SetName::new(set).unwrap(),
                ignore: Vec::new(),
                escalation: None,
                on_ban: Vec::new(),
                on_unban: Vec::new(),
                mail: Vec::new(),
                fail2ban_dir: None,
            },
            set: SetWish {
                backend: Some(BackendKind::Nftables),
                ports: Some("ssh".into()),
                ..Default::default()
            },
            origin: format!("/etc/fail2ban/jail.local:{}", name.len()),
        }
    }

    fn banset_toml(jails: &str) -> Settings {
        let text = format!("{jails}\n");
        let jails = toml::from_str(&text).unwrap();
        WatchSection {
            jails,
            ..Default::default()
        }
        .validate(&text, "banset.toml")
        .unwrap()
    }

    #[test]
    fn banset_toml_wins_and_fail2bans_recidive_becomes_bansets() {
        let mut settings =
            banset_toml("[sshd]\nfilter = \"sshd\"\nlogpath = [\"/var/log/auth.log\"]");
        let f2b = Fail2banConfig {
            jails: vec![
                jail("sshd", "sshd", "f2b-sshd"),
                jail("postfix", "postfix[mode=aggressive]", "f2b-postfix"),
                jail("recidive", "recidive", "f2b-recidive"),
            ],
            notices: Vec::new(),
        };
        let merged = merge(&mut settings, f2b, "banset.toml");
        let names: Vec<&str> = settings.jails.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["sshd", "postfix"]);
        assert_eq!(
            settings.jails[0].set.as_str(),
            "sshd",
            "banset.toml's sshd is kept"
        );
        assert_eq!(
            settings.recidive,
            Some(Recidive {
                bans: 5,
                findtime: 86_400,
                bantime: Timeout::from_secs(604_800).unwrap(),
                set: SetName::new("f2b-recidive").unwrap(),
                on_ban: Vec::new(),
                on_unban: Vec::new(),
                mail: Vec::new(),
            })
        );
        let sets: Vec<&str> = merged.sets.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(sets, ["f2b-postfix", "f2b-recidive"]);
        assert_eq!(merged.sets[0].1.ports.as_deref(), Some("ssh"));
        assert_eq!(merged.notices.len(), 2, "{:?}", merged.notices);
        assert!(
            merged.notices[0].contains("jail sshd: banset.toml defines it too"),
            "{:?}",
            merged.notices
        );
        assert!(
            merged.notices[1].contains("banset counts its own bans instead: 5 bans in 86400s"),
            "{:?}",
            merged.notices
        );
    }
}
