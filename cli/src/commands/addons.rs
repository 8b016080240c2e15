//! Add-ons: `addons`, `addons:create`, `addons:info`, `addons:attach`,
//! `addons:detach`, `addons:upgrade`, `addons:destroy`; and backups as
//! Heroku spells them, `pg:backups[:capture|:download|:restore|:schedule|
//! :unschedule]`, and the same under `redis:backups`. A backup verb without
//! an add-on acts on the app's PostgreSQL (or Redis) add-on: the one
//! attached as `DATABASE` (`REDIS`), else the only one.

use super::{Ctx, WaitArgs};
use crate::client::app_path;
use crate::exit::{self, bail_usage};
use crate::output;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use paas_wire::{Addon, AddonChange, AddonCreate, AttachmentCreate, Backup, BackupSchedule, Restore};
use std::io::Write;

#[derive(Subcommand)]
pub enum Cmd {
    /// List the app's add-ons: state, version, attachments, last good backup.
    Addons,
    /// Create an add-on and attach it: postgresql[:17], redis[:8] (or heroku-postgresql, heroku-redis).
    #[command(name = "addons:create")]
    AddonsCreate {
        service: String,
        /// The attachment's name: the app gets NAME_URL (default DATABASE, REDIS).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// The add-on's own name (default: made up, like postgresql-amber-4821).
        #[arg(long, value_name = "ADDON")]
        name: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Show an add-on: state, version, attachments, backups and schedule.
    #[command(name = "addons:info")]
    AddonsInfo { addon: String },
    /// Attach an existing add-on to the app (-a): a release with NAME_URL.
    #[command(name = "addons:attach")]
    AddonsAttach {
        addon: String,
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Detach an add-on from the app (-a): a release without its NAME_URL.
    #[command(name = "addons:detach")]
    AddonsDetach {
        addon: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Recreate an add-on's service from the platform's current image of its major, on the same data.
    #[command(name = "addons:upgrade")]
    AddonsUpgrade {
        addon: String,
        /// A major to move to (refused with the steps that move the data).
        #[arg(long, value_name = "MAJOR")]
        version: Option<String>,
    },
    /// Destroy an add-on with its data and backups.
    #[command(name = "addons:destroy")]
    AddonsDestroy {
        addon: String,
        /// The name of the app that owns it.
        #[arg(long, value_name = "APP")]
        confirm: Option<String>,
        /// Destroy it even while other apps have it attached (they are detached).
        #[arg(long)]
        force: bool,
    },
    /// Open psql on the app's PostgreSQL add-on (a terminal, or pipes: `echo 'select 1' | paas pg:psql`).
    #[command(name = "pg:psql")]
    PgPsql(Console),
    /// Open redis-cli on the app's Redis add-on (a terminal, or pipes).
    #[command(name = "redis:cli")]
    RedisCli(Console),
    /// List backups of the app's PostgreSQL add-on.
    #[command(name = "pg:backups")]
    PgBackups(Target),
    /// Take a backup now (verified before it counts).
    #[command(name = "pg:backups:capture")]
    PgBackupsCapture(Target),
    /// Write a backup to stdout: `paas pg:backups:download b003 > FILE`.
    #[command(name = "pg:backups:download")]
    PgBackupsDownload(Download),
    /// Restore from a backup (b003) or a pg_dump -Fc file, after a safety backup.
    #[command(name = "pg:backups:restore")]
    PgBackupsRestore(RestoreArgs),
    /// Take a backup every day at HH:MM (UTC), keeping the newest N.
    #[command(name = "pg:backups:schedule")]
    PgBackupsSchedule(Schedule),
    /// Stop the daily backup.
    #[command(name = "pg:backups:unschedule")]
    PgBackupsUnschedule(Target),
    /// List backups of the app's Redis add-on.
    #[command(name = "redis:backups")]
    RedisBackups(Target),
    /// Take an RDB snapshot now (verified before it counts).
    #[command(name = "redis:backups:capture")]
    RedisBackupsCapture(Target),
    /// Write an RDB backup to stdout: `paas redis:backups:download b003 > FILE`.
    #[command(name = "redis:backups:download")]
    RedisBackupsDownload(Download),
    /// Restore from a backup (b003) or an RDB file, after a safety backup.
    #[command(name = "redis:backups:restore")]
    RedisBackupsRestore(RestoreArgs),
    /// Take an RDB snapshot every day at HH:MM (UTC), keeping the newest N.
    #[command(name = "redis:backups:schedule")]
    RedisBackupsSchedule(Schedule),
    /// Stop the daily snapshot.
    #[command(name = "redis:backups:unschedule")]
    RedisBackupsUnschedule(Target),
}

#[derive(Args)]
pub struct Target {
    /// The add-on (default: the app's one of this service).
    addon: Option<String>,
}

#[derive(Args)]
pub struct Console {
    addon: Option<String>,
    /// No terminal even when stdin and stdout are one.
    #[arg(long)]
    no_tty: bool,
}

#[derive(Args)]
pub struct Download {
    /// The backup: b003.
    backup: String,
    addon: Option<String>,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A backup (b003) or a file to upload.
    source: String,
    addon: Option<String>,
    /// The name of the app that owns the add-on.
    #[arg(long, value_name = "APP")]
    confirm: Option<String>,
}

#[derive(Args)]
pub struct Schedule {
    addon: Option<String>,
    /// The time of day, UTC: 02:30.
    #[arg(long, value_name = "HH:MM")]
    at: String,
    /// How many scheduled backups to keep.
    #[arg(long, value_name = "N", default_value_t = 7)]
    retain: i64,
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let app = ctx.app()?;
    let json = ctx.json;
    match cmd {
        Cmd::Addons => {
            let addons: Vec<Addon> = ctx.client()?.get(&app_path(&app, &["addons"]))?;
            if json {
                output::json(&addons);
                return Ok(0);
            }
            output::heading(&format!("{app} Add-ons"));
            let rows: Vec<Vec<String>> = addons
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        format!("{} {}", a.service, a.version),
                        a.state.clone(),
                        a.attachments.iter().map(|t| format!("{}::{}", t.app, t.name)).collect::<Vec<_>>().join(", "),
                        backup_summary(a),
                    ]
                })
                .collect();
            output::table(&["Add-on", "Service", "State", "Attached as", "Last backup"], &rows);
            for a in addons.iter().filter(|a| a.state == "failed") {
                output::warn(&format!("{}: {}", a.name, a.reason.as_deref().unwrap_or("failed")));
            }
        }
        Cmd::AddonsCreate { service, as_name, name, wait } => {
            let body = AddonCreate { service: service.clone(), as_name, name };
            let change: AddonChange = {
                let _spinner = (!json).then(|| output::Spinner::start(&format!("Creating {service} on {app}")));
                ctx.client()?.post(&app_path(&app, &["addons"]), &wait.query(), &body)?
            };
            return report_change(json, &format!("Creating {} on {app}", change.addon.name), &change);
        }
        Cmd::AddonsInfo { addon } => {
            let a: Addon = ctx.client()?.get(&app_path(&app, &["addons", &addon]))?;
            if json {
                output::json(&a);
            } else {
                info(&a);
            }
        }
        Cmd::AddonsAttach { addon, as_name, wait } => {
            let body = AttachmentCreate { addon: addon.clone(), as_name };
            let change: AddonChange = ctx.client()?.post(&app_path(&app, &["addon-attachments"]), &wait.query(), &body)?;
            return report_change(json, &format!("Attaching {addon} to {app}"), &change);
        }
        Cmd::AddonsDetach { addon, wait } => {
            let change: AddonChange = ctx.client()?.delete_with(&app_path(&app, &["addon-attachments", &addon]), &wait.query())?;
            return report_change(json, &format!("Detaching {addon} from {app}"), &change);
        }
        Cmd::AddonsUpgrade { addon, version } => {
            let body = serde_json::json!({ "version": version });
            let change: AddonChange = {
                let _spinner = (!json).then(|| output::Spinner::start(&format!("Upgrading {addon}")));
                ctx.client()?.post(&app_path(&app, &["addons", &addon, "upgrade"]), &[], &body)?
            };
            return report_change(json, &format!("Upgrading {addon}"), &change);
        }
        Cmd::AddonsDestroy { addon, confirm, force } => {
            let Some(confirm) = confirm else {
                bail_usage!("destroying {addon} deletes its data and backups for good: run again with --confirm APP (the app that owns it)");
            };
            let mut query = vec![("confirm", confirm)];
            if force {
                query.push(("force", "true".to_owned()));
            }
            let change: AddonChange = ctx.client()?.delete_with(&app_path(&app, &["addons", &addon]), &query)?;
            if json {
                output::json(&change);
            } else {
                println!("Destroying {addon}... done");
                for m in &change.messages {
                    println!("  {m}");
                }
            }
        }
        Cmd::PgPsql(c) => return console(ctx, &app, "postgresql", c),
        Cmd::RedisCli(c) => return console(ctx, &app, "redis", c),
        Cmd::PgBackups(t) => return backups(ctx, &app, "postgresql", t.addon),
        Cmd::RedisBackups(t) => return backups(ctx, &app, "redis", t.addon),
        Cmd::PgBackupsCapture(t) => return capture(ctx, &app, "postgresql", t.addon),
        Cmd::RedisBackupsCapture(t) => return capture(ctx, &app, "redis", t.addon),
        Cmd::PgBackupsDownload(d) => return download(ctx, &app, "postgresql", d),
        Cmd::RedisBackupsDownload(d) => return download(ctx, &app, "redis", d),
        Cmd::PgBackupsRestore(r) => return restore(ctx, &app, "postgresql", r),
        Cmd::RedisBackupsRestore(r) => return restore(ctx, &app, "redis", r),
        Cmd::PgBackupsSchedule(s) => return schedule(ctx, &app, "postgresql", s.addon, Some(BackupSchedule { at: s.at, retain: s.retain })),
        Cmd::RedisBackupsSchedule(s) => return schedule(ctx, &app, "redis", s.addon, Some(BackupSchedule { at: s.at, retain: s.retain })),
        Cmd::PgBackupsUnschedule(t) => return schedule(ctx, &app, "postgresql", t.addon, None),
        Cmd::RedisBackupsUnschedule(t) => return schedule(ctx, &app, "redis", t.addon, None),
    }
    Ok(0)
}

/// The add-on named, or the app's one of `service`: the one attached as its
/// default name (DATABASE, REDIS), else the only one.
fn resolve(ctx: &mut Ctx, app: &str, service: &str, named: Option<String>) -> Result<String> {
    if let Some(n) = named {
        return Ok(n);
    }
    let addons: Vec<Addon> = ctx.client()?.get(&app_path(app, &["addons"]))?;
    let default = if service == "postgresql" { "DATABASE" } else { "REDIS" };
    let of: Vec<&Addon> = addons.iter().filter(|a| a.service == service).collect();
    if let Some(a) = of.iter().find(|a| a.attachments.iter().any(|t| t.app == app && t.name == default)) {
        return Ok(a.name.clone());
    }
    match of.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(exit::refused(format!("{app} has no {service} add-on: create one with `paas addons:create {service} -a {app}`"))),
        many => Err(exit::usage(format!(
            "{app} has {} {service} add-ons ({}): name the one you mean",
            many.len(),
            many.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn console(ctx: &mut Ctx, app: &str, service: &str, c: Console) -> Result<i32> {
    let verb = if service == "postgresql" { "pg:psql" } else { "redis:cli" };
    ctx.no_json(verb, "it attaches to a console")?;
    let addon = resolve(ctx, app, service, c.addon)?;
    let client = if service == "postgresql" { "psql" } else { "redis-cli" };
    let req = paas_wire::RunCreate {
        command: client.to_owned(),
        env: Default::default(),
        size: None,
        tty: crate::attach::wants_tty(c.no_tty),
        cols: None,
        rows: None,
    };
    crate::attach::attached_at(app, &["apps", app, "addons", &addon, "console"], req)
}

fn backups(ctx: &mut Ctx, app: &str, service: &str, addon: Option<String>) -> Result<i32> {
    let addon = resolve(ctx, app, service, addon)?;
    let list: Vec<Backup> = ctx.client()?.get(&app_path(app, &["addons", &addon, "backups"]))?;
    if ctx.json {
        output::json(&list);
        return Ok(0);
    }
    output::heading(&format!("{addon} Backups"));
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                b.kind.clone(),
                b.state.clone(),
                b.size.map(human_size).unwrap_or_default(),
                b.started_at.clone(),
                b.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["Id", "Kind", "State", "Size", "Started", "Reason"], &rows);
    Ok(0)
}

fn capture(ctx: &mut Ctx, app: &str, service: &str, addon: Option<String>) -> Result<i32> {
    let addon = resolve(ctx, app, service, addon)?;
    let json = ctx.json;
    let b: Backup = {
        let _spinner = (!json).then(|| output::Spinner::start(&format!("Backing up {addon}")));
        ctx.client()?.post(&app_path(app, &["addons", &addon, "backups"]), &[], &serde_json::json!({}))?
    };
    if json {
        output::json(&b);
    } else {
        println!("Backing up {addon}... done, {} ({}, verified)", b.id, b.size.map(human_size).unwrap_or_default());
        println!("Download it with `paas {}:backups:download {} {addon} -a {app} > FILE`", prefix(service), b.id);
    }
    Ok(0)
}

fn download(ctx: &mut Ctx, app: &str, service: &str, d: Download) -> Result<i32> {
    use sha2::Digest;
    use std::io::IsTerminal;
    ctx.no_json(&format!("{}:backups:download", prefix(service)), "it writes the backup's bytes")?;
    if std::io::stdout().is_terminal() {
        bail_usage!("the backup is binary: send it to a file, `paas {}:backups:download {} > FILE`", prefix(service), d.backup);
    }
    let addon = resolve(ctx, app, service, d.addon)?;
    let mut resp = ctx.client()?.download(&app_path(app, &["addons", &addon, "backups", &d.backup]))?;
    let expected = resp.headers().get("x-paas-sha256").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut sha = sha2::Sha256::new();
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = std::io::Read::read(&mut resp, &mut buf).context("the download broke off")?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        out.write_all(&buf[..n]).context("cannot write the backup to stdout")?;
        total += n as u64;
    }
    out.flush()?;
    let got = hex::encode(sha.finalize());
    if expected.as_deref().is_some_and(|e| e != got) {
        output::error(&format!("the download's SHA-256 is {got}, not the backup's {}: it is damaged, download it again", expected.unwrap_or_default()));
        return Ok(exit::FAILED);
    }
    eprintln!("Downloaded {} of {addon} ({}, SHA-256 {got})", d.backup, human_size(total as i64));
    Ok(0)
}

fn restore(ctx: &mut Ctx, app: &str, service: &str, r: RestoreArgs) -> Result<i32> {
    let Some(confirm) = r.confirm else {
        bail_usage!("restoring replaces the add-on's data: run again with --confirm APP (the app that owns it)");
    };
    let addon = resolve(ctx, app, service, r.addon)?;
    let json = ctx.json;
    let query = [("confirm", confirm)];
    let path = std::path::Path::new(&r.source);
    let is_backup_id = r.source.trim_start_matches(['b', 'B']).bytes().all(|b| b.is_ascii_digit()) && !r.source.is_empty();
    let result: Restore = {
        let _spinner = (!json).then(|| output::Spinner::start(&format!("Restoring {addon} from {}", r.source)));
        if path.is_file() || !is_backup_id {
            let file = std::fs::File::open(path).map_err(|e| exit::usage(format!("cannot read {}: {e} (give a backup id like b003, or a file)", r.source)))?;
            ctx.client()?.upload(&app_path(app, &["addons", &addon, "restores"]), &query, file)?
        } else {
            ctx.client()?.post(&app_path(app, &["addons", &addon, "backups", &r.source, "restore"]), &query, &serde_json::json!({}))?
        }
    };
    if json {
        output::json(&result);
    } else {
        println!("Restoring {addon} from {}... done", r.source);
        println!("The data before it is in safety backup {}", result.safety_backup.id);
    }
    Ok(0)
}

fn schedule(ctx: &mut Ctx, app: &str, service: &str, addon: Option<String>, s: Option<BackupSchedule>) -> Result<i32> {
    let addon = resolve(ctx, app, service, addon)?;
    let path = app_path(app, &["addons", &addon, "backup-schedule"]);
    let a: Addon = match &s {
        Some(s) => ctx.client()?.put(&path, s)?,
        None => ctx.client()?.delete(&path)?,
    };
    if ctx.json {
        output::json(&a);
    } else {
        match a.backup_schedule {
            Some(s) => println!("{addon} is backed up every day at {} UTC; the newest {} scheduled backups are kept", s.at, s.retain),
            None => println!("{addon} has no daily backup now"),
        }
    }
    Ok(0)
}

fn report_change(json: bool, doing: &str, change: &AddonChange) -> Result<i32> {
    if json {
        output::json(change);
        return Ok(if change.addon.state == "failed" { exit::FAILED } else { 0 });
    }
    if change.addon.state == "failed" {
        println!("{doing}... failed");
        output::warn(change.addon.reason.as_deref().unwrap_or("the service did not come up"));
        return Ok(exit::FAILED);
    }
    let version = change.release.as_ref().map(|r| format!(", v{}", r.version)).unwrap_or_default();
    println!("{doing}... done{version}");
    for m in &change.messages {
        println!("  {m}");
    }
    for t in &change.addon.attachments {
        println!("  attached to {} as {}", t.app, t.config_var);
    }
    if let Some(deploy) = &change.deploy {
        if deploy.state == paas_wire::DeployState::Failed {
            for line in deploy.message.lines() {
                output::warn(line);
            }
            return Ok(exit::FAILED);
        }
    }
    Ok(0)
}

fn info(a: &Addon) {
    output::heading(&a.name);
    let mut rows = vec![
        ("Service".to_owned(), format!("{} {}", a.service, a.version)),
        ("State".to_owned(), a.state.clone()),
        ("Owner".to_owned(), a.app.clone()),
        ("Created".to_owned(), a.created_at.clone()),
        (
            "Attachments".to_owned(),
            a.attachments.iter().map(|t| format!("{} as {}", t.app, t.config_var)).collect::<Vec<_>>().join(", "),
        ),
        ("Last backup".to_owned(), backup_summary(a)),
        (
            "Schedule".to_owned(),
            a.backup_schedule.as_ref().map_or("none".to_owned(), |s| format!("daily at {} UTC, keeping {}", s.at, s.retain)),
        ),
    ];
    if let Some(r) = &a.reason {
        rows.push(("Reason".to_owned(), r.clone()));
    }
    output::pairs(&rows);
}

/// `b004, 2 h ago` for the last good backup, and a failure newer than it.
fn backup_summary(a: &Addon) -> String {
    let mut s = match &a.last_good_backup {
        Some(b) => match &b.reason {
            Some(note) => format!("{}, {} ({note})", b.id, ago(b.finished_at.as_deref().unwrap_or(&b.started_at))),
            None => format!("{}, {}", b.id, ago(b.finished_at.as_deref().unwrap_or(&b.started_at))),
        },
        None => "none".to_owned(),
    };
    if let Some(f) = &a.last_failed_backup {
        s.push_str(&format!(" ({} FAILED {}: {})", f.id, ago(&f.started_at), f.reason.as_deref().unwrap_or("")));
    }
    s
}

fn ago(at: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) else { return at.to_owned() };
    let secs = (chrono::Utc::now() - t.to_utc()).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

fn human_size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b => format!("{:.2} GiB", b as f64 / (1 << 30) as f64),
    }
}

fn prefix(service: &str) -> &'static str {
    if service == "postgresql" {
        "pg"
    } else {
        "redis"
    }
}
