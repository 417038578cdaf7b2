//! What every subcommand runs with: the configuration and the firewall
//! (ledger, backends opened on first use, allowlist) of banset-firewall.

use anyhow::Result;
use banset_core::{Allowlist, Engine};
use banset_firewall::{Firewall, NewLedger, StateDir};

use crate::args::GlobalArgs;
use crate::config::Config;

pub struct Context {
    pub global: GlobalArgs,
    pub config: Config,
    /// The ledger, backends, clock and allowlist the engine runs on.
    pub fw: Firewall,
}

impl Context {
    /// `bans` says whether the command bans anything: only then is the
    /// allowlist consulted, and only then are this host's addresses read
    /// (two netlink dumps, not worth making for `list` or `test`).
    pub fn new(global: GlobalArgs, bans: bool) -> Result<Context> {
        Context::open(global, bans, NewLedger::OnlyWithoutKernelSets)
    }

    /// [`Context::new`] for `banset adopt`, the one command that may start
    /// a new ledger beside the kernel's banset sets: it fills it from them.
    pub fn for_adopt(global: GlobalArgs) -> Result<Context> {
        Context::open(global, true, NewLedger::Always)
    }

    fn open(global: GlobalArgs, bans: bool, new_ledger: NewLedger) -> Result<Context> {
        let config = Config::load(global.config.as_deref())?;
        let origin = config
            .origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into());
        let host = if bans {
            banset_firewall::host_addresses()
        } else {
            Vec::new()
        };
        let allowlist = Allowlist::new()
            .with_host_addresses(host)
            .with_ignored(config.ignore.iter().copied(), &origin);
        let fw = Firewall::options()
            .dry_run(global.dry_run)
            .new_ledger(new_ledger)
            .allowlist(allowlist)
            .open(&state_dir(&global, &config))
            .map_err(open_error)?;
        Ok(Context { global, config, fw })
    }

    pub fn engine(&mut self) -> Engine<'_> {
        self.fw.engine()
    }

    /// Prints a notice on stderr unless `--quiet`.
    pub fn notice(&self, msg: impl std::fmt::Display) {
        if !self.global.quiet {
            eprintln!("banset: {msg}");
        }
    }

    /// `done` after a real run, `would` after a dry run: a dry run's
    /// report says what would have happened, never that it did.
    pub fn did<'a>(&self, done: &'a str, would: &'a str) -> &'a str {
        if self.global.dry_run {
            would
        } else {
            done
        }
    }

    /// Prints on stderr with `--verbose` (or always, for a dry run, whose
    /// whole point is to say what would happen).
    pub fn info(&self, msg: impl std::fmt::Display) {
        if self.global.verbose || (self.global.dry_run && !self.global.quiet) {
            eprintln!(
                "banset: {}{msg}",
                if self.global.dry_run { "dry run: " } else { "" }
            );
        }
    }
}

/// The state directory: `--state-dir`, else the config's, else the
/// default.
pub fn state_dir(global: &GlobalArgs, config: &Config) -> StateDir {
    global
        .state_dir
        .clone()
        .or_else(|| config.defaults.state_dir.clone())
        .map_or_else(StateDir::default, StateDir::new)
}

/// The library's error with what the command line can do about it.
fn open_error(e: banset_firewall::Error) -> anyhow::Error {
    match e {
        banset_firewall::Error::StateDir { path, source } => {
            anyhow::Error::new(source).context(format!(
                "state directory {}: cannot create it (run as root, or pass --state-dir)",
                path.display()
            ))
        }
        banset_firewall::Error::Ledger(e) => e.into(),
    }
}
