//! `banset watch`: the daemon (see `crate::daemon`), and `--check`.

use anyhow::Result;

use std::path::Path;

use crate::args::{GlobalArgs, WatchArgs};
use crate::config::Config;
use crate::context::Context;
use crate::daemon::{check_inputs, load_settings, set_plan, set_specs, Daemon, SetPlan};
use crate::errors::EXIT_OK;
use crate::output::counted;

pub fn run(ctx: &mut Context, args: WatchArgs) -> Result<Option<i32>> {
    crate::daemon::logging::init(args.log_format);
    let (settings, notices) = load_settings(&mut ctx.config, args.fail2ban.as_deref())?;
    refuse_unsafe_permissions(ctx, &settings, args.fail2ban.as_deref())?;
    let _lock = lock_state_dir(ctx)?;
    // After the state directory's lock: a second daemon stops there, and
    // never touches the first one's socket.
    let socket = crate::control::server::Socket::bind(&crate::control::runtime_dir(&ctx.global))?;
    crate::daemon::logging::log!("control socket {}", socket.path().display());
    for n in &notices {
        crate::daemon::logging::log!("fail2ban: {n}");
    }
    Daemon::new(ctx, settings, args.fail2ban)?
        .with_control(socket)
        .run()?;
    Ok(None)
}

/// Validates the configuration as the daemon would load it, and says what
/// it would watch.
pub fn check(global: &GlobalArgs, fail2ban: Option<&Path>) -> Result<i32> {
    let mut config = Config::load(global.config.as_deref())?;
    let (settings, notices) = load_settings(&mut config, fail2ban)?;
    if let Err(e) = check_inputs(&config, &settings, fail2ban, None) {
        crate::errors::usage!("{e}; banset watch would refuse to start");
    }
    let specs = set_specs(&config, &settings)?;
    if !global.quiet {
        println!("{}: ok", config.origin_name());
        for jail in &settings.jails {
            let sources: Vec<String> = jail.sources.iter().map(|s| s.to_string()).collect();
            println!(
                "jail {}: filter {}, {} in {}s ban for {} in set {}; reads {}",
                jail.name,
                jail.filter.name,
                counted(jail.maxretry, "failure", "failures"),
                jail.findtime,
                jail.bantime,
                jail.set,
                sources.join(", ")
            );
            print_notifications(&jail.on_ban, &jail.on_unban, &jail.mail);
        }
        if let Some(r) = &settings.recidive {
            println!(
                "recidive: {} in {}s ban for {} in set {}",
                counted(r.bans, "ban", "bans"),
                r.findtime,
                r.bantime,
                r.set
            );
            print_notifications(&r.on_ban, &r.on_unban, &r.mail);
        }
        let mut ledger = existing_ledger(global, &config);
        for spec in specs.values() {
            println!("set {}", crate::output::describe_spec(spec));
            let configured = config.sets.contains_key(spec.name.as_str());
            let plan = ledger.as_mut().map(|l| set_plan(l, spec, configured));
            // The daemon's guard, as it would run it on this config.
            let old = match (&plan, ledger.as_mut()) {
                (Some(SetPlan::Change(_)), Some(l)) => l
                    .read()
                    .ok()
                    .and_then(|tx| tx.set_spec(&spec.name).ok().flatten()),
                _ => None,
            };
            if matches!(plan, None | Some(SetPlan::Create | SetPlan::Change(_))) {
                let now = banset_core::Clock::now(&banset_core::SystemClock);
                if let Err(e) =
                    crate::lockout::guard_with(ledger.as_mut(), now, old.as_ref(), spec, &[])
                {
                    println!("  not applied: {e:#}");
                }
            }
            match plan {
                Some(SetPlan::Change(change)) => println!(
                    "  will change in place, keeping every ban: {}",
                    change.describe_in_place()
                ),
                Some(SetPlan::KeepLedgers(kept, change)) => println!(
                    "  not applied: the ledger has set {} as {}; banset watch keeps that ({})",
                    spec.name,
                    crate::output::describe_spec(&kept)
                        .split_once(": ")
                        .map_or(String::new(), |(_, d)| d.to_string()),
                    if configured && !change.refused.is_empty() {
                        change.describe_refused()
                    } else {
                        "a set a jail only names keeps what it has; give it a [sets.NAME] to change it".into()
                    }
                ),
                _ => {}
            }
        }
        for n in &notices {
            println!("fail2ban: {n}");
        }
    }
    Ok(EXIT_OK)
}

/// What a jail runs after a ban and after one ends, one line each.
fn print_notifications(
    on_ban: &[String],
    on_unban: &[String],
    mail: &[banset_watch::mail::MailAction],
) {
    for (key, argv) in [("on_ban", on_ban), ("on_unban", on_unban)] {
        if let Some(program) = argv.first() {
            println!("  {key}: {program}");
        }
    }
    for m in mail {
        println!(
            "  mail: {} to {} through {}",
            m.action,
            m.dest,
            m.command.first().map_or("", String::as_str)
        );
    }
}

/// The ledger `banset watch` would use, if there is one: `--check` reads
/// it (never creates it) to say which of the config's sets the daemon
/// would keep as they are.
fn existing_ledger(global: &GlobalArgs, config: &Config) -> Option<banset_core::Ledger> {
    let path = crate::context::state_dir(global, config).ledger_path();
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    banset_core::Ledger::open(&path).ok()
}

/// The daemon runs as root and bans whatever its config and ledger say: a
/// config, a program or a state directory someone else can write would let
/// them decide who is banned (or run a command as root). Refuse to start.
fn refuse_unsafe_permissions(
    ctx: &Context,
    settings: &banset_watch::config::Settings,
    fail2ban: Option<&Path>,
) -> Result<()> {
    let ledger = Path::new(ctx.fw.ledger.path());
    if let Err(e) = check_inputs(&ctx.config, settings, fail2ban, Some(ledger)) {
        crate::errors::usage!("{e}; refusing to start");
    }
    Ok(())
}

/// One daemon per state directory: two would count every failure twice and
/// fight over the same sets. The lock is held until the process ends.
fn lock_state_dir(ctx: &Context) -> Result<std::fs::File> {
    let dir = Path::new(ctx.fw.ledger.path())
        .parent()
        .unwrap_or_else(|| Path::new("."));
    let path = dir.join("watch.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !crate::sys::try_lock_exclusive(&file) {
        crate::errors::usage!(
            "another banset watch is running on {} (lock {})",
            dir.display(),
            path.display()
        );
    }
    Ok(file)
}
