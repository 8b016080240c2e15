//! `paas`: the command-line client. Verbs are spelled as Heroku and Dokku
//! spell them, one module per resource under `commands/`; every verb that
//! prints takes `--json`; errors go to stderr with an exit code that says
//! what kind of failure it was (`exit.rs`). This crate never depends on the
//! server's crates, only on `paas-wire`.

mod attach;
mod client;
mod commands;
mod exit;
mod netrc;
mod output;

use clap::Parser;

fn main() {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            output::error(&format!("{e:#}"));
            std::process::exit(exit::code_of(&e));
        }
    }
}
