//! `banset`: the command-line tool. Glue only: it parses arguments, builds
//! validated values, and calls banset-core's [`Engine`](banset_core::Engine).

#![deny(unsafe_code)]

mod args;
mod assets;
mod cmd;
mod config;
mod context;
mod control;
mod daemon;
mod errors;
mod lockout;
mod output;
mod path_trust;
mod set_options;
// The one module with `unsafe`: every OS call std lacks, each with its
// SAFETY comment.
#[allow(unsafe_code)]
mod sys;
mod targets_input;

use clap::error::ErrorKind;
use clap::Parser;

fn main() {
    let cli = match args::Cli::try_parse_from(command_line()) {
        Ok(cli) => cli,
        Err(err) => usage_error(err),
    };
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(err) if errors::is_broken_pipe(&err) => errors::EXIT_OK,
        Err(err) => {
            eprintln!("banset: {}", errors::one_line(&err));
            if let Some(hint) = errors::hint(&err) {
                eprintln!("hint: {hint}");
            }
            errors::exit_code(&err)
        }
    };
    std::process::exit(code);
}

/// The arguments, with blocklistd's calling convention recognised:
/// blocklistd runs its control program (`-C /usr/local/bin/banset`) with
/// `argv[0] = "control"` and no way to add arguments, so that name means
/// `banset blocklistd-helper`.
fn command_line() -> Vec<std::ffi::OsString> {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.first().is_some_and(|a| a == "control") {
        argv.insert(1, "blocklistd-helper".into());
    }
    argv
}

/// clap's errors in banset's format: one line naming the input, a hint, and
/// exit 2. Help and version go out as clap writes them.
fn usage_error(err: clap::Error) -> ! {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let text = err.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    // "the following required arguments were not provided:" lists them on
    // the next lines
    if first.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| l.starts_with('<') || l.starts_with("--"))
            .collect();
        first = format!("{} {}", first, listed.join(" "));
    }
    eprintln!("banset: {first}");
    match text.lines().find_map(|l| l.trim().strip_prefix("tip: ")) {
        Some(tip) => eprintln!("hint: {tip}"),
        None => eprintln!("hint: banset --help, or banset help COMMAND"),
    }
    std::process::exit(errors::EXIT_USAGE);
}
