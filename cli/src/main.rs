//! `paas`: the command-line client. Verbs are spelled as Heroku and Dokku
//! spell them; every listing takes `--json`; errors go to stderr with a
//! non-zero exit. This crate never depends on the server's crates, only on
//! `paas-wire`.

mod client;
mod commands;
mod output;
mod run;

use clap::Parser;

fn main() {
    let cli = commands::Cli::parse();
    if let Err(e) = commands::run(cli) {
        output::error(&format!("{e:#}"));
        std::process::exit(1);
    }
}
