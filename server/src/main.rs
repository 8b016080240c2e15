//! `paas-server`: the platform, and its admin tasks as one-off subcommands
//! (`paas_server::command` has them all).

fn main() {
    paas_server::command::main()
}
