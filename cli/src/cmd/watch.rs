//! `banset watch`: the daemon (see `crate::daemon`), and `--check`.

use anyhow::Result;

use crate::args::GlobalArgs;
use crate::config::Config;
use crate::context::Context;
use crate::daemon::{load_settings, set_specs, Daemon};
use crate::errors::EXIT_OK;

pub fn run(ctx: &mut Context) -> Result<Option<i32>> {
    let settings = load_settings(&ctx.config)?;
    Daemon::new(ctx, settings)?.run()?;
    Ok(None)
}

/// Validates the configuration as the daemon would load it, and says what
/// it would watch.
pub fn check(global: &GlobalArgs) -> Result<i32> {
    let config = Config::load(global.config.as_deref())?;
    let settings = load_settings(&config)?;
    let specs = set_specs(&config, &settings)?;
    if !global.quiet {
        println!("{}: ok", config.origin_name());
        for jail in &settings.jails {
            let sources: Vec<String> = jail.sources.iter().map(|s| s.to_string()).collect();
            println!(
                "jail {}: filter {}, {} failures in {}s ban for {} in set {}; reads {}",
                jail.name,
                jail.filter.name,
                jail.maxretry,
                jail.findtime,
                jail.bantime,
                jail.set,
                sources.join(", ")
            );
        }
        if let Some(r) = &settings.recidive {
            println!(
                "recidive: {} bans in {}s ban for {} in set {}",
                r.bans, r.findtime, r.bantime, r.set
            );
        }
        for spec in specs.values() {
            println!("set {}", crate::output::describe_spec(spec));
        }
    }
    Ok(EXIT_OK)
}
