//! `banset`: the command-line tool. Glue only: it parses arguments, builds
//! validated values, and calls banset-core's [`Engine`](banset_core::Engine).

mod args;
mod cmd;
mod config;
mod context;
mod errors;
mod host_addrs;
mod output;
mod set_options;
mod targets_input;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
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
