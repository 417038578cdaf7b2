//! Reading the watcher's configuration: banset.toml's jails joined to
//! fail2ban's (the merging itself is `banset_watch::fail2ban::merge`), and
//! the trust check of every input the daemon reads or runs. Start-up,
//! reload and `watch --check` run this same code.

use anyhow::Result;
use banset_watch::config::Settings;
use banset_watch::pipeline::source_pipelines;

use crate::config::Config;

/// Reads and validates the watcher's configuration (`--check` stops here):
/// banset.toml's jails, and the enabled jails of fail2ban's configuration
/// (`fail2ban`, else `[fail2ban] dir`), whose sets join `config.sets`
/// unless the file defines them. Returns the settings and what fail2ban's
/// configuration asks for that banset does differently, one line each.
/// The settings hold what the checks compiled (`Settings::compiled`), so
/// the sources built next from them do not compile it again.
pub fn load_settings(
    config: &mut Config,
    fail2ban: Option<&std::path::Path>,
) -> Result<(Settings, Vec<String>)> {
    let (loaded, kept) = banset_watch::keeping(|| read_settings(config, fail2ban));
    let (mut settings, notices) = loaded?;
    settings.compiled = kept;
    Ok((settings, notices))
}

/// [`load_settings`] but for what its checks compiled.
fn read_settings(
    config: &mut Config,
    fail2ban: Option<&std::path::Path>,
) -> Result<(Settings, Vec<String>)> {
    let mut settings = config
        .watch_section()
        .validate(&config.text, &config.origin_name())
        .map_err(|e| anyhow::Error::new(crate::errors::Usage(e.to_string())))?;
    let dir = fail2ban
        .map(std::path::Path::to_path_buf)
        .or_else(|| config.fail2ban.as_ref().map(|f| f.dir.clone()));
    let mut notices = std::mem::take(&mut settings.notices);
    if let Some(dir) = dir {
        let f2b = banset_watch::fail2ban::load(&dir)
            .map_err(|e| crate::errors::Usage(format!("fail2ban {}: {e}", dir.display())))?;
        let merged = banset_watch::fail2ban::merge(&mut settings, f2b, &config.origin_name());
        notices.extend(merged.notices);
        for (set, wish) in merged.sets {
            config
                .sets
                .entry(set.to_string())
                .or_insert_with(|| crate::config::SetConfig {
                    backend: wish.backend.map(|b| b.to_string()),
                    ports: wish.ports.map(crate::config::Ports::Text),
                    protocol: wish.protocol,
                    blocktype: wish.blocktype,
                    ..Default::default()
                });
        }
    }
    settings
        .merge_additions(&config.origin_name())
        .map_err(|e| anyhow::Error::new(crate::errors::Usage(e.to_string())))?;
    // Globs and missing files, as fail2ban: a jail whose logpath matches
    // no file is refused (start, reload and `--check` alike).
    let found = banset_watch::logpath::resolve(&mut settings.jails)
        .map_err(|e| crate::errors::Usage(format!("{}: {e}", config.origin_name())))?;
    notices.extend(found);
    // Build every source's pipeline now, so a problem is a config error,
    // not a failure at run time (`--check` stops here too).
    for (key, built) in source_pipelines(&settings.jails) {
        built.map_err(|e| {
            crate::errors::Usage(format!("{}: source {key}: {e}", config.origin_name()))
        })?;
    }
    Ok((settings, notices))
}

/// Refuses inputs someone other than root (or banset's user) could have
/// written (the rule is `path_trust`'s): the config file, fail2ban's
/// configuration tree when jails come from it, every `on_ban`/`on_unban`
/// program and the configured `journalctl` (all run as root), and, when
/// given, the state directory and the ledger's files. Start-up, reload and
/// `watch --check` all run this one check.
pub fn check_inputs(
    config: &Config,
    settings: &Settings,
    fail2ban: Option<&std::path::Path>,
    ledger: Option<&std::path::Path>,
) -> std::result::Result<(), String> {
    use crate::path_trust::{check, check_tree, Expect};
    if let Some(origin) = &config.origin {
        check(origin, Expect::File).map_err(|e| format!("config {e}"))?;
    }
    let dir = fail2ban.or_else(|| config.fail2ban.as_ref().map(|f| f.dir.as_path()));
    if let Some(dir) = dir {
        // The whole tree, not only the files read today: fail2ban reads by
        // name (`jail.d/*.local`, `filter.d/NAME.local`), so any file in it
        // may be read after the next edit. Bounded: a config tree is small.
        check_tree(dir, 20_000).map_err(|e| format!("fail2ban {e}"))?;
    }
    for jail in &settings.jails {
        // A banset.toml jail's fail2ban filter file: its tree, as above.
        if let Some(dir) = &jail.fail2ban_dir {
            check_tree(dir, 20_000).map_err(|e| format!("jail {}: filter {e}", jail.name))?;
        }
    }
    let recidive = settings
        .recidive
        .as_ref()
        .map(|r| ("recidive", &r.on_ban, &r.on_unban, &r.mail));
    let jails = settings
        .jails
        .iter()
        .map(|j| (j.name.as_str(), &j.on_ban, &j.on_unban, &j.mail));
    for (name, on_ban, on_unban, mail) in jails.chain(recidive) {
        let mails = mail.iter().map(|m| (m.action.as_str(), &m.command));
        for (key, argv) in [("on_ban", on_ban), ("on_unban", on_unban)]
            .into_iter()
            .chain(mails)
        {
            if let Some(program) = argv.first() {
                check(std::path::Path::new(program), Expect::Program)
                    .map_err(|e| format!("jail {name}: {key} {e}"))?;
            }
        }
    }
    let journalctl = &settings.watch.journalctl;
    if journalctl.is_absolute() {
        check(journalctl, Expect::Program).map_err(|e| format!("journalctl {e}"))?;
    }
    if let Some(ledger) = ledger {
        let state = match ledger.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        check(state, Expect::Directory).map_err(|e| format!("state directory {e}"))?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = ledger.as_os_str().to_os_string();
            name.push(suffix);
            let file = std::path::PathBuf::from(name);
            if std::fs::symlink_metadata(&file).is_ok() {
                check(&file, Expect::File).map_err(|e| format!("ledger {e}"))?;
            }
        }
    }
    Ok(())
}
