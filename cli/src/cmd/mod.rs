//! One module per subcommand, grouped by kind: the set verbs (`sets/`),
//! other programs' protocols (`integrations/`), install and generate
//! (`setup/`), and the watcher's (`watch`, `regex_test`). Each returns the
//! process exit code.

mod control;
pub mod fleet;
mod integrations;
mod regex_test;
pub(crate) mod sets;
mod setup;
mod watch;

use integrations::{blocklistd, sshg_fw};
use sets::{
    add, adopt, ban, change, check, create, del, destroy, expire, flush, list, replace, status,
    status_jail, sync, test, unban,
};
pub(crate) use sets::{ensure, find, history};
use setup::{generate, install};

use anyhow::Result;

use crate::args::{Cli, Command};
use crate::context::Context;
use crate::errors::EXIT_OK;

pub fn run(cli: Cli) -> Result<i32> {
    // regex-test reads a file and nothing else; install, uninstall and
    // generate write files: none of them opens the ledger or a kernel.
    let cli = match cli.command {
        Command::RegexTest(a) => return regex_test::run(a),
        Command::Install(a) => return install::install(&cli.global, a).map(finish),
        Command::Uninstall(a) => return install::uninstall(&cli.global, a).map(finish),
        Command::Generate(a) => return generate::run(a).map(finish),
        // Through the daemon when it runs; they open the ledger themselves
        // only when it does not (crate::control::run).
        Command::Control(a) => return control::run(cli.global, a),
        // The fleet's set-up talks to PostgreSQL only; `fleet sync` and
        // `status` open the ledger themselves.
        Command::Fleet(a) => return fleet::run(cli.global, a).map(finish),
        Command::Unban(a) => return unban::run(cli.global, a),
        Command::Ban(a) => return ban::run(cli.global, a),
        Command::Status(a) if a.jail.is_some() => return status_jail::run(cli.global, a),
        command => Cli {
            global: cli.global,
            command,
        },
    };
    if let Command::Watch(a) = &cli.command {
        if a.check {
            return watch::check(&cli.global, a.fail2ban.as_deref());
        }
    }
    let bans = matches!(
        cli.command,
        Command::Add(_)
            | Command::Replace(_)
            | Command::Watch(_)
            | Command::SshgFw(_)
            | Command::BlocklistdHelper(_)
    );
    if let Command::Adopt(a) = cli.command {
        let mut ctx = Context::for_adopt(cli.global)?;
        return adopt::run(&mut ctx, a).map(finish);
    }
    let mut ctx = Context::new(cli.global, bans)?;
    let outcome = match cli.command {
        Command::Create(a) => create::run(&mut ctx, a),
        Command::Add(a) => add::run(&mut ctx, a),
        Command::Change(a) => change::run(&mut ctx, a),
        Command::Del(a) => del::run(&mut ctx, a),
        Command::Test(a) => test::run(&mut ctx, a),
        Command::List(a) => list::run(&mut ctx, a),
        Command::Flush(a) => flush::run(&mut ctx, a),
        Command::Destroy(a) => destroy::run(&mut ctx, a),
        Command::Sync(a) => sync::run(&mut ctx, a),
        Command::Expire(a) => expire::run(&mut ctx, a),
        Command::Status(a) => status::run(&mut ctx, a),
        Command::Replace(a) => replace::run(&mut ctx, a),
        Command::Watch(a) => watch::run(&mut ctx, a),
        Command::Ensure(a) => ensure::run(&mut ctx, a),
        Command::Check(a) => check::run(&mut ctx, a),
        Command::SshgFw(a) => sshg_fw::run(&mut ctx, a),
        Command::BlocklistdHelper(a) => blocklistd::run(&mut ctx, a),
        Command::History(a) => history::run(&mut ctx, a),
        Command::Find(a) => find::run(&mut ctx, a),
        Command::RegexTest(_)
        | Command::Adopt(_)
        | Command::Install(_)
        | Command::Uninstall(_)
        | Command::Generate(_)
        | Command::Control(_)
        | Command::Fleet(_)
        | Command::Unban(_)
        | Command::Ban(_) => unreachable!("handled above"),
    };
    // What the command would have changed in the kernels, said even when
    // it failed halfway: that is what it would have done up to there.
    for line in ctx.fw.backends.dry_run_plan() {
        ctx.info(line);
    }
    outcome.map(finish)
}

fn finish(code: Option<i32>) -> i32 {
    code.unwrap_or(EXIT_OK)
}
