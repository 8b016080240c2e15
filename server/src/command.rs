//! `paas-server`'s command line: the platform, and its admin tasks as
//! one-off subcommands. `main.rs` only calls [`main`]: the async code it
//! runs is compiled here, once, instead of again in the binary crate (an
//! awaited async fn is compiled in the crate that polls it, and so was the
//! whole server a second time: BENCHMARKS.md, "Fresh machine").

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use crate::settings::Settings;
use crate::store::Store;

#[derive(Parser)]
#[command(name = "paas-server", version, about = "The paas platform server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform (the default). Every setting is an environment
    /// variable, or the flag beside it.
    Serve(Box<Settings>),
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Create an API token of the first platform admin and print it.
    #[command(name = "token:create")]
    TokenCreate { name: String },
    /// Create a user; the password is read from the terminal without echo,
    /// or from standard input's first line (never from the command line).
    /// The first user made with --admin is the first platform admin.
    #[command(name = "user:create")]
    UserCreate {
        email: String,
        /// A platform admin: sees and may do everything, and manages users.
        #[arg(long)]
        admin: bool,
    },
    /// Set a user's password (read as user:create reads it).
    #[command(name = "user:password")]
    UserPassword { email: String },
    /// Build the buildpack stack images and the add-on images (PostgreSQL,
    /// Redis) from Debian packages (idempotent).
    #[command(name = "stack:build")]
    StackBuild,
    /// Build only the add-on images (PostgreSQL, Redis) from Debian
    /// packages, on the stack's base image (idempotent).
    #[command(name = "addons:build")]
    AddonsBuild,
    /// Remove the images of releases older than each app's newest
    /// PAAS_KEEP_RELEASES (and not running); print what went.
    Gc {
        /// Print what would go, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep this many releases' images per app instead of PAAS_KEEP_RELEASES.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        keep: Option<u32>,
        /// Stopped task containers made longer ago than this are swept, in seconds (default: two hours).
        #[arg(long, value_name = "SECONDS", default_value = "7200")]
        leftovers_after: u64,
    },
    /// Write a backup of the platform to FILE (.tar.gz): the store, the
    /// sealed secrets (PAAS_SECRET_KEY is needed to restore them), the ACME
    /// account and every app's repo.
    Backup {
        file: std::path::PathBuf,
    },
    /// Restore a backup into an empty PAAS_DATA_DIR (and an empty database);
    /// the next start rebuilds each app's release whose image is gone.
    Restore {
        file: std::path::PathBuf,
    },
    /// Print the settings as the README's table (Markdown), then exit.
    #[command(name = "settings:markdown", hide = true)]
    SettingsMarkdown,
    /// The git pre-receive hook (run by git, not by hand).
    #[command(name = "hook:pre-receive", hide = true)]
    HookPreReceive,
}

fn init_logging(log: &crate::settings::Logs) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = crate::settings::log_color();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stdout);
    if log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Parses the command line and runs what it names; exits the process on
/// bad settings (2) or a failed command (1).
pub fn main() {
    // As `Settings::from_env` reads them: an empty variable is unset.
    let matches = crate::settings::empty_variables_unset(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(Command::HookPreReceive) = cli.command {
        std::process::exit(crate::hook::run());
    }
    let command = cli.command;
    let settings = match &command {
        Some(Command::Serve(settings)) => settings.as_ref().clone().resolved(),
        _ => Settings::from_env(),
    };
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("paas-server: {e:#}");
            std::process::exit(2);
        }
    };
    init_logging(&settings.logs);
    let rt = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    if let Err(e) = rt.block_on(run(command, settings)) {
        eprintln!("paas-server: {e:#}");
        std::process::exit(1);
    }
}

/// A password from the terminal (without echo) or from standard input's
/// first line; never from the command line.
fn read_password(prompt: &str) -> Result<String> {
    use std::io::{BufRead, IsTerminal};
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Raises this process's open-file limit (the soft one, up to the hard
/// one) to what the listeners' connection caps need: a routed connection
/// holds two descriptors (client and dyno), an API one at least one, plus
/// the database, logs, git and engine. Debian's default soft limit, 1024,
/// would otherwise run out at about a thousand idle connections, long
/// before `PAAS_ROUTER_MAX_CONNECTIONS`, and take `git push` down with it.
fn raise_open_file_limit(settings: &Settings) {
    let needed = (2 * settings.listeners.router_max_connections + settings.listeners.api_max_connections + 1024) as u64;
    match rlimit::increase_nofile_limit(needed) {
        Ok(limit) if limit < needed => tracing::warn!(
            limit,
            needed,
            "the open-file limit is below what the connection caps need: raise it (ulimit -n, systemd's LimitNOFILE) or lower PAAS_ROUTER_MAX_CONNECTIONS"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

async fn run(command: Option<Command>, settings: Settings) -> Result<()> {
    let Some(command) = command else {
        raise_open_file_limit(&settings);
        return crate::server::serve(settings).await;
    };
    match command {
        Command::Serve(_) => {
            raise_open_file_limit(&settings);
            crate::server::serve(settings).await
        }
        Command::Migrate => {
            std::fs::create_dir_all(&settings.server.data_dir)?;
            Store::open(&settings.server.database_url()).await?;
            eprintln!("database is up to date");
            Ok(())
        }
        Command::TokenCreate { name } => {
            std::fs::create_dir_all(&settings.server.data_dir)?;
            let store = Store::open(&settings.server.database_url()).await?;
            println!("{}", store.create_token(&name).await?);
            Ok(())
        }
        Command::UserCreate { email, admin } => {
            std::fs::create_dir_all(&settings.server.data_dir)?;
            let store = Store::open(&settings.server.database_url()).await?;
            let email = crate::http::access::parse_email(&email).map_err(|e| anyhow::anyhow!(e.message))?;
            let hash = crate::http::access::hash_password(&read_password(&format!("Password for {email}: "))?).map_err(|e| anyhow::anyhow!(e.message))?;
            match store.create_user(&email, Some(&hash), admin).await {
                Ok(_) => {}
                Err(crate::store::StoreError::Conflict) => {
                    anyhow::bail!("there is a user {email} already: set their password with `paas-server user:password {email}`")
                }
                Err(e) => return Err(e.into()),
            }
            // Tokens made before there were users are the first admin's.
            if admin {
                store.first_admin(&email).await?;
            }
            eprintln!("created {email}{}", if admin { ", a platform admin" } else { "" });
            Ok(())
        }
        Command::Gc { dry_run, keep, leftovers_after } => {
            let store = Store::open(&settings.server.database_url()).await?;
            let instance = store.instance_id().await?;
            let runtime = crate::runtime::DockerRuntime::connect(&instance, settings.server.docker_host.as_deref(), settings.router.dyno_address).await?;
            let keep = keep.map_or(settings.builds.keep_releases, |k| k as usize);
            let swept = crate::gc::collect(&store, &runtime, keep, dry_run, std::time::Duration::from_secs(leftovers_after)).await?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for r in &swept.images {
                println!("{verb} {} ({})", r.image, r.releases.join(", "));
            }
            for volume in &swept.caches {
                println!("{verb} build cache {volume} (its app is gone)");
            }
            for (id, name) in &swept.leftovers.containers {
                println!("{verb} stopped task container {name} ({})", &id[..id.len().min(12)]);
            }
            for image in &swept.leftovers.images {
                println!("{verb} dangling dependency image {image}");
            }
            println!(
                "{verb} {} image(s) and {} build cache(s), keeping each app's newest {keep} releases' images and the running ones",
                swept.images.len(),
                swept.caches.len()
            );
            Ok(())
        }
        Command::UserPassword { email } => {
            let store = Store::open(&settings.server.database_url()).await?;
            let email = crate::http::access::parse_email(&email).map_err(|e| anyhow::anyhow!(e.message))?;
            let user = store.user_by_email(&email).await?.ok_or_else(|| anyhow::anyhow!("there is no user {email}: create one with `paas-server user:create {email}`"))?;
            let hash = crate::http::access::hash_password(&read_password(&format!("New password for {email}: "))?).map_err(|e| anyhow::anyhow!(e.message))?;
            store.set_password(&user.id, &hash).await?;
            eprintln!("password of {email} set");
            Ok(())
        }
        command @ (Command::StackBuild | Command::AddonsBuild) => {
            let stack_too = matches!(command, Command::StackBuild);
            // Stack images belong to no installation in particular.
            let runtime = crate::runtime::DockerRuntime::connect("stack-build", settings.server.docker_host.as_deref(), crate::runtime::DynoAddress::Published).await?;
            let stack = settings.stack.clone();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
            let printer = tokio::spawn(async move {
                while let Some(line) = rx.recv().await {
                    println!("{line}");
                }
            });

            let result = async {
                if stack_too {
                    crate::stack::build(&stack, &tx).await?;
                }
                crate::addons::catalog::build(&runtime, &stack, &tx).await
            }
            .await;
            drop(tx);
            let _ = printer.await;
            result?;
            if stack_too {
                println!("-----> Stack ready: build {}, run {}", stack.build, stack.run);
            }
            println!("-----> Add-on images ready");
            Ok(())
        }
        Command::Backup { file } => {
            let made = crate::backup::backup(&settings, &file).await?;
            eprintln!(
                "wrote {} ({} bytes): {} apps. Its secrets are sealed: keep PAAS_SECRET_KEY (or {}) apart from it; restoring needs it.",
                file.display(),
                made.bytes,
                made.apps.len(),
                settings.server.data_dir.join(crate::crypto::KEY_FILE).display()
            );
            Ok(())
        }
        Command::Restore { file } => {
            let done = crate::backup::restore(&settings, &file).await?;
            eprintln!(
                "restored {} apps ({}) into {}. Start the server: it rebuilds each app whose image this engine lacks from its repo, then starts the dynos.",
                done.apps.len(),
                done.apps.join(", "),
                settings.server.data_dir.display()
            );
            Ok(())
        }
        Command::SettingsMarkdown => {
            print!("{}", crate::settings::markdown_table());
            Ok(())
        }
        Command::HookPreReceive => unreachable!("handled before logging starts"),
    }
}
