//! Wire types shared by `paas-server` and the `paas` CLI.
//!
//! This crate owns the JSON shapes of the HTTP API and the allow-list rules for
//! every name that crosses the API boundary. It must stay small and free of
//! heavy dependencies so that the CLI never compiles the server's stack.

mod errors;
mod names;

pub use errors::ErrorId;
pub use names::{AppName, ConfigKey, DynoSize, Hostname, NameError, ProcessType};

/// A URL with the credentials in it (`https://user:secret@host/...`) and
/// the values of query parameters that look like secrets (`?api_key=`,
/// `token=`, `password=`, ...) replaced by `***`, for anything that prints
/// or lists it.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((t, f)) => (t, Some(f)),
        None => (tail, None),
    };
    let tail = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) if !value.is_empty() && looks_secret(name) => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => before_fragment.to_owned(),
    };
    match fragment {
        Some(f) => format!("{scheme}://{authority}{tail}#{f}"),
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// A query parameter name that usually carries a secret.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "token", "secret", "pass", "auth", "sig", "cred", "session"].iter().any(|w| name.contains(w))
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn credentials_and_secret_parameters_are_hidden() {
        assert_eq!(redact_url("https://user:s3cret@logs.example.com/x"), "https://***@logs.example.com/x");
        assert_eq!(redact_url("https://user:s3cret@logs.example.com"), "https://***@logs.example.com");
        assert_eq!(redact_url("https://u:p@h?token=t"), "https://***@h?token=***");
        assert_eq!(
            redact_url("https://logs.example.com/in?api_key=abc&app=shop&Password=pw&access_token=z#frag"),
            "https://logs.example.com/in?api_key=***&app=shop&Password=***&access_token=***#frag"
        );
        assert_eq!(redact_url("syslog://logs.example.com:514"), "syslog://logs.example.com:514");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn versions_clash_on_a_breaking_difference() {
        use super::versions_clash;
        assert!(!versions_clash("0.1.0", "0.1.7"));
        assert!(versions_clash("0.1.0", "0.2.0"));
        assert!(!versions_clash("1.2.0", "1.9.3"));
        assert!(versions_clash("1.2.0", "2.0.0"));
        assert!(!versions_clash("0.3.1-rc.1", "0.3.0"));
    }

    #[test]
    fn metrics_windows_reach_back_a_day_at_most() {
        use super::parse_window;
        assert_eq!(parse_window("1h"), Ok(3600));
        assert_eq!(parse_window("30m"), Ok(1800));
        assert_eq!(parse_window("90"), Ok(90));
        assert_eq!(parse_window("1d"), Ok(86_400));
        assert!(parse_window("2d").unwrap_err().contains("from 1s to 24h"));
        assert!(parse_window("1w").unwrap_err().contains("like 30m"));
        assert!(parse_window("").is_err() && parse_window("0m").is_err());
    }
}

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Body of `POST /apps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppCreate {
    pub name: String,
}

/// `GET /version`: the server's version and its store schema's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerVersion {
    /// The `paas-server` crate version.
    pub version: String,
    /// The newest store migration this server knows.
    pub schema: i64,
}

/// Whether a CLI of version `cli` and a server of version `server` may
/// disagree on the API: a different major version, or, before 1.0, a
/// different minor one (semver's rule for breaking changes).
pub fn versions_clash(cli: &str, server: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split(['.', '-', '+']).take(2).map(|p| p.parse().unwrap_or(0)).collect() };
    let (c, s) = (parts(cli), parts(server));
    match (c.first(), s.first()) {
        (Some(0), Some(0)) => c.get(1) != s.get(1),
        (a, b) => a != b,
    }
}

/// `PATCH /apps/{app}`: the app's new name (`apps:rename`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppUpdate {
    pub name: String,
}

/// One app, as `GET /apps` and `GET /apps/{app}` return it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// Where the router serves the app, e.g. `http://myapp.localhost:8080/`.
    pub web_url: String,
    /// The git remote to push to, e.g. `http://127.0.0.1:5000/myapp.git`.
    pub git_url: String,
    /// Version of the current release, if any.
    pub current_release: Option<i64>,
    /// What destroying the app took with it besides (its add-ons); only in
    /// the answer to a destroy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destroyed: Vec<String>,
    /// The disk it uses; only in `GET /apps/{app}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<AppDisk>,
}

/// The disk an app uses, in bytes (`paas apps:info`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppDisk {
    /// Its releases' images still on the engine, and how many there are
    /// (layers shared with other images are counted whole).
    pub images: i64,
    pub image_count: usize,
    /// Its build cache volume, when the server can read it.
    #[serde(default)]
    pub build_cache: Option<i64>,
    /// Its git repo.
    pub repo: i64,
    /// Its log journal.
    pub logs: i64,
}

/// One release, as `GET /apps/{app}/releases` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub version: i64,
    pub description: String,
    pub build_id: Option<String>,
    pub image: Option<String>,
    pub process_types: BTreeMap<String, String>,
    pub created_at: String,
    pub current: bool,
    /// The path web dynos must answer with 2xx/3xx before they get traffic.
    #[serde(default)]
    pub health_path: Option<String>,
    /// `pending` (its dynos not judged yet), `succeeded` or `failed`.
    #[serde(default)]
    pub status: String,
    /// Why it failed: each dyno's exit and last output.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_detail: String,
    /// Who made it: a user's email, or a deploy token's description.
    #[serde(default)]
    pub actor: Option<String>,
    /// Its image was removed to free disk (`PAAS_KEEP_RELEASES`): it can
    /// be rolled back to only by building its commit again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub image_removed: bool,
}

/// Body of `POST /apps/{app}/releases`: roll back to an earlier release, named
/// by its UUID, its version number or `vN`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseCreate {
    pub release: String,
}

/// One process type's scale, as `GET /apps/{app}/formation` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Formation {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: i64,
    /// Each dyno's memory limit, e.g. `512M`.
    #[serde(default)]
    pub size: String,
    pub command: String,
}

/// Body of `PATCH /apps/{app}/formation`, after Heroku's batch update.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormationUpdate {
    pub updates: Vec<FormationChange>,
}

/// One type's change: its quantity, its size, or both.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormationChange {
    #[serde(rename = "type")]
    pub process_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// A memory limit like `512M` or `1G`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// One build, as `GET /apps/{app}/builds` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    pub id: String,
    pub status: String,
    pub commit: String,
    pub image: Option<String>,
    pub created_at: String,
}

/// A build with its full output, as `GET /apps/{app}/builds/{id}` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildOutput {
    #[serde(flatten)]
    pub build: Build,
    pub output: String,
}

/// `GET /apps/{app}/releases/{release}/output`: what made the release, the
/// build's output and the release phase's (`paas releases:output`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseOutput {
    pub version: i64,
    pub build_id: Option<String>,
    /// The app whose build it is, when another app built it (a promotion);
    /// its output is that app's to show (`paas builds:output -a APP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_by: Option<String>,
    /// The build's output, when this app built it.
    pub build_output: Option<String>,
    /// The release phase's output (the Procfile's `release`, app.json's
    /// predeploy), when one ran for this release.
    pub release_output: Option<String>,
}

/// `GET /apps/{app}/twelve-factor`: where the app's running release departs
/// from the twelve factors, from what the platform observed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwelveFactorReport {
    pub app: String,
    /// The release observed (the one that runs); None before the first.
    pub release: Option<i64>,
    pub factors: Vec<FactorReport>,
}

/// One factor in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FactorReport {
    /// 1 to 12.
    pub number: i64,
    /// `VII`
    pub numeral: String,
    /// `Port binding`
    pub name: String,
    /// `ok`, `finding` or `not_observed`.
    pub status: String,
    /// Each observation: departures first, with their fix; then evidence
    /// that it holds.
    pub observations: Vec<Observation>,
}

/// One thing the platform saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    pub ok: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// When it was last seen (none for what is read from config now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_at: Option<String>,
}

/// One app.json cron entry of the app's current release, as
/// `GET /apps/{app}/cron` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronJob {
    /// Its `name`, or an id made from its schedule and command.
    pub id: String,
    /// Five fields, UTC.
    pub schedule: String,
    pub command: String,
    /// `forbid` (a run due while the last still goes is skipped) or `allow`.
    pub concurrency: String,
    /// RFC 3339, UTC.
    pub next_run_at: Option<String>,
    pub last_run: Option<CronRun>,
}

/// One run of a cron entry: `POST /apps/{app}/cron/{id}/runs` answers the
/// one it started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronRun {
    pub entry_id: String,
    /// `running`, `finished` or `skipped`.
    pub outcome: String,
    /// Run by `paas cron:run`, not on its schedule.
    pub manual: bool,
    pub release_version: i64,
    /// Its one-off dyno, `scheduler.N` (none when skipped).
    pub dyno: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Why it was skipped, or how it ended when an exit code does not say.
    pub detail: Option<String>,
}

/// One running (or exited) dyno, as `GET /apps/{app}/dynos` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dyno {
    /// `web.1`, `worker.2`, ...
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: String,
    pub release_version: i64,
    /// `starting`, `up`, `crashed`, `restarting in 4s`, ...
    pub state: String,
    /// Since when it is in that state (RFC 3339).
    #[serde(default)]
    pub since: String,
    /// Restarts after crashes, within its release.
    #[serde(default)]
    pub restarts: u32,
    /// The exit code of its last crash, if it crashed.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// The command as the Procfile gives it.
    pub command: String,
    /// Its memory limit, e.g. `512M`.
    #[serde(default)]
    pub size: String,
    pub container_id: String,
    /// The swarm node it runs on (`PAAS_RUNTIME=swarm`); absent on one engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Memory in use at its newest sample, in bytes (absent before the
    /// first sample, with metrics off, or where the runtime cannot say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Its memory limit in bytes, beside `memory_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// CPU between its last two samples, in percent of one core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
}

/// A machine dynos run on, as `GET /nodes` returns it: the one engine, or
/// a node of the swarm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    /// `ready`, `down`, `unknown`, `disconnected`.
    pub state: String,
    /// `active`, `pause`, `drain`.
    pub availability: String,
    /// `manager`, `worker`, or `engine` (the single engine).
    pub role: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The dynos on it: `APP web.1`.
    #[serde(default)]
    pub dynos: Vec<String>,
}

/// An app's placement constraints on a swarm (`GET`/`PUT
/// /apps/{app}/constraints`): Swarm's `node.labels.pool==web` form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Constraints {
    pub constraints: Vec<String>,
}

/// Config vars as `GET /apps/{app}/config-vars` returns them.
pub type ConfigVars = BTreeMap<String, String>;

/// Body of `PATCH /apps/{app}/config-vars`: a `null` value unsets the key.
pub type ConfigPatch = BTreeMap<String, Option<String>>;

/// Every error the API returns: a stable machine id and a message that says
/// what was wrong and what to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub id: ErrorId,
    pub message: String,
}

/// How a change (a deploy, a config change, a rollback, a scale) ended on
/// the dynos, as the API answers when asked to `wait`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeployState {
    /// The release's dynos run, and its web dynos answer and are routed.
    Serving,
    /// Dynos did not come up; `message` says why and what still serves.
    Failed,
    /// Still converging when the wait ended.
    Pending,
    /// A newer release was made meanwhile and is what the scheduler runs.
    Superseded,
}

/// The outcome of a change on the dynos.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Deploy {
    pub state: DeployState,
    /// The release the change made or acted on.
    pub release: Option<i64>,
    /// Dynos started for it, e.g. `web.1`.
    #[serde(default)]
    pub started: Vec<String>,
    /// New web dynos that did not answer in time.
    #[serde(default)]
    pub unhealthy: Vec<String>,
    /// Whether the previous release's web dynos keep serving.
    #[serde(default)]
    pub previous_serving: bool,
    /// One or more sentences for people: what happened and what to do.
    pub message: String,
}

/// What a release-making endpoint answers when called with `?wait=SECONDS`:
/// the resource the endpoint returns without `wait`, and the outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeResult {
    /// The release the change made, if it made one.
    pub release: Option<Release>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_vars: Option<ConfigVars>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formation: Option<Vec<Formation>>,
    pub deploy: Deploy,
}

/// What `DELETE /apps/{app}/dynos[/{type or dyno}]` (restart) answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DynoRestart {
    /// Dynos restarted, e.g. `web.1`.
    pub restarted: Vec<String>,
    /// Dynos whose replacement did not come up (each keeps running), with
    /// the replacement's exit and last output.
    pub failures: Vec<String>,
}

/// A log drain of an app (`GET /apps/{app}/log-drains`), as Heroku's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogDrain {
    pub id: String,
    /// The URL with any credentials in it replaced by `***`.
    pub url: String,
    /// Sent with each HTTPS batch as `Logplex-Drain-Token`.
    pub token: String,
    pub created_at: String,
}

/// Body of `POST /apps/{app}/log-drains`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogDrainCreate {
    pub url: String,
}

/// One log line as the event stream (`/apps/{app}/log-stream`) sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEvent {
    /// Per app, one more than the line before; 0 for a notice to this
    /// reader only (lines it lost).
    pub seq: u64,
    /// `2026-11-22T10:00:00.000000+00:00`.
    pub time: String,
    /// `app` or `paas`.
    pub source: String,
    /// `web.1`, `router`, `build`, `api`, ...
    pub dyno: String,
    pub text: String,
    /// The whole line as `paas logs` prints it.
    pub line: String,
}

/// A domain an app answers at (`GET /apps/{app}/domains`): its own
/// `APP.PAAS_DOMAIN` (`kind` "paas") and custom ones ("custom").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub hostname: String,
    pub kind: String,
    pub created_at: String,
}

/// Body of `POST /apps/{app}/domains`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainCreate {
    pub hostname: String,
}

/// A TLS certificate of one of an app's domains (`GET /apps/{app}/certs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cert {
    pub hostname: String,
    pub created_at: String,
}

/// Body of `POST /apps/{app}/certs`: PEM texts. The certificate is kept for
/// each of the app's custom domains it is valid for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertCreate {
    pub certificate_chain: String,
    pub private_key: String,
}

/// What to run as a one-off dyno: the body of `POST /apps/{app}/dynos`
/// (detached) and the `spec` query parameter (JSON) of the attach
/// WebSocket, `GET /apps/{app}/run`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunCreate {
    /// A shell command line, run with `/bin/sh -c` in the release's image.
    pub command: String,
    /// Config vars for this run only, on top of the app's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Its memory limit (`512M`, `1G`); default: the platform's dyno size.
    #[serde(default)]
    pub size: Option<String>,
    /// A pseudo-terminal (attached runs only).
    #[serde(default)]
    pub tty: bool,
    /// The terminal's size at start, for a TTY.
    #[serde(default)]
    pub cols: Option<u16>,
    #[serde(default)]
    pub rows: Option<u16>,
}

/// A text message on the attach WebSocket, either way. Binary messages
/// carry the streams: their first byte says which ([`RUN_STDIN`],
/// [`RUN_STDOUT`], [`RUN_STDERR`]), the rest is the data, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunMessage {
    /// Server: the dyno started (`run.3`).
    Started { dyno: String, release_version: i64 },
    /// Client: the terminal's new size.
    Resize { cols: u16, rows: u16 },
    /// Client: the end of standard input.
    Eof,
    /// Client: send the process a signal (`INT`, `QUIT`, `TERM`, `HUP`).
    Signal { signal: String },
    /// Server: the process ended; the last message.
    Exit {
        /// 128 + the signal for a process killed by one, as a shell says.
        code: i64,
        /// Killed for exceeding its memory limit.
        #[serde(default)]
        oom_killed: bool,
        /// Its memory limit, e.g. `512M`.
        #[serde(default)]
        size: String,
        /// Why it ended, when not by itself ("stopped by `paas ps:stop`").
        #[serde(default)]
        reason: Option<String>,
    },
    /// Server: the dyno could not start; the last message.
    Error { message: String },
}

/// First byte of a binary attach message: data for the process's stdin.
pub const RUN_STDIN: u8 = 0;
/// First byte of a binary attach message: the process's stdout (all of a
/// TTY's output).
pub const RUN_STDOUT: u8 = 1;
/// First byte of a binary attach message: the process's stderr.
pub const RUN_STDERR: u8 = 2;

/// Signals a client may send a one-off dyno.
pub const RUN_SIGNALS: &[&str] = &["INT", "QUIT", "TERM", "HUP", "KILL", "USR1", "USR2"];

/// An add-on: a PostgreSQL or Redis service of the platform, owned by the
/// app that created it and attached to it and maybe others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Addon {
    /// Its name (`postgresql-amber-4821`), also its host name on attached
    /// apps' networks.
    pub name: String,
    /// `postgresql` or `redis`.
    pub service: String,
    /// The major it runs (`17`).
    pub version: String,
    /// `provisioning`, `provisioned`, `failed` or `stopped`.
    pub state: String,
    /// Why it failed, when it did.
    #[serde(default)]
    pub reason: Option<String>,
    /// The app that owns it.
    pub app: String,
    pub attachments: Vec<AddonAttachment>,
    pub created_at: String,
    /// The newest backup that succeeded.
    #[serde(default)]
    pub last_good_backup: Option<Backup>,
    /// The newest backup, when it failed (shown until one succeeds).
    #[serde(default)]
    pub last_failed_backup: Option<Backup>,
    #[serde(default)]
    pub backup_schedule: Option<BackupSchedule>,
}

/// An add-on attached to an app: the app's config has `{name}_URL`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonAttachment {
    pub app: String,
    /// `DATABASE`, `REDIS`, or what `--as` said.
    pub name: String,
    /// The config var: `DATABASE_URL`.
    pub config_var: String,
}

/// `POST /apps/{app}/addons`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonCreate {
    /// `postgresql`, `postgresql:17`, `redis`, or Heroku's names
    /// (`heroku-postgresql`).
    pub service: String,
    /// The attachment's name (the app gets `{as}_URL`).
    #[serde(default, rename = "as")]
    pub as_name: Option<String>,
    /// The add-on's name; made up when missing.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /apps/{app}/addon-attachments`: attach an existing add-on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentCreate {
    pub addon: String,
    #[serde(default, rename = "as")]
    pub as_name: Option<String>,
}

/// What creating, attaching, detaching and upgrading answer: the add-on as
/// it now is, and the release the change made on the app (if any) with
/// whether its dynos serve it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonChange {
    pub addon: Addon,
    #[serde(default)]
    pub release: Option<Release>,
    #[serde(default)]
    pub deploy: Option<Deploy>,
    /// What else the change did, for people (`destroyed volume ...`).
    #[serde(default)]
    pub messages: Vec<String>,
}

/// A backup of an add-on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Backup {
    /// `b001`, `b002`, ...
    pub id: String,
    /// `manual`, `scheduled` or `safety` (taken before a restore).
    pub kind: String,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// Why it failed; for a success, a note (`taken late: ...`).
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub sha256: Option<String>,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// An add-on's daily backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupSchedule {
    /// `HH:MM`, UTC.
    pub at: String,
    /// How many scheduled backups are kept.
    pub retain: i64,
}

/// What a restore answers: the backup restored from (None for an uploaded
/// archive) and the safety backup taken first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restore {
    #[serde(default)]
    pub from: Option<Backup>,
    pub safety_backup: Backup,
}

/// An API token as it is listed: never its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    /// What it is for (`--description`, or the name it was made with).
    pub description: String,
    pub created_at: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    /// Whose it is (an email).
    #[serde(default)]
    pub owner: String,
    /// A deploy token's app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// `deploy` for a deploy token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `POST /tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenCreate {
    #[serde(default)]
    pub description: Option<String>,
    /// How long it works: `90s`, `15m`, `12h`, `30d`; none: until revoked.
    #[serde(default)]
    pub expires_in: Option<String>,
    /// With `role: deploy`: a deploy token of this app, which may only push
    /// to it and read its releases and builds.
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// `POST /auth/tokens`: sign in with an email and password for a token of
/// that user (`paas login`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Login {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A person (`GET /users`, `GET /account`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub email: String,
    /// A platform admin.
    pub admin: bool,
    pub created_at: String,
    /// Whether they can sign in with a password yet.
    #[serde(default)]
    pub has_password: bool,
}

/// `POST /users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserCreate {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

/// `GET /account`: who the credential is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub user: User,
    /// The token in use (none for a dashboard session).
    #[serde(default)]
    pub token: Option<Token>,
}

/// One person's role on an app (`GET /apps/{app}/access`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collaborator {
    pub email: String,
    /// `viewer`, `developer` or `admin`.
    pub role: String,
    pub created_at: String,
}

/// `POST /apps/{app}/access`, `PATCH /apps/{app}/access/{email}` (email unused).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccessChange {
    #[serde(default)]
    pub email: String,
    pub role: String,
}

/// One event of the audit log (`GET /audit`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: String,
    /// An email, a deploy token's description, or `anonymous`.
    pub actor: String,
    #[serde(default)]
    pub address: Option<String>,
    /// `config.set`, `git.push`, `auth.failed`, ...
    pub action: String,
    #[serde(default)]
    pub app: Option<String>,
    /// The request, or what failed.
    pub detail: String,
    /// The answer's HTTP status.
    pub status: u16,
}

/// What `POST /tokens` answers: the token, and its value, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenCreated {
    pub token: Token,
    pub value: String,
}

/// A pipeline (`GET /pipelines/{pipeline}`): its apps by stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The apps the caller may see, in stage order (development, staging,
    /// production), then by name.
    #[serde(default)]
    pub apps: Vec<PipelineApp>,
}

/// An app in a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineApp {
    pub app: String,
    /// `development`, `staging` or `production`.
    pub stage: String,
    /// Its current release, and that release's build's commit.
    #[serde(default)]
    pub release: Option<i64>,
    #[serde(default)]
    pub commit: Option<String>,
}

/// `POST /pipelines`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PipelineCreate {
    pub name: String,
}

/// `POST /pipeline-couplings`: put an app in a pipeline at a stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CouplingCreate {
    pub pipeline: String,
    pub app: String,
    pub stage: String,
}

/// An app's coupling to a pipeline (`GET /apps/{app}/pipeline-couplings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coupling {
    pub id: String,
    pub pipeline: String,
    pub app: String,
    pub stage: String,
}

/// `POST /pipeline-promotions`: the source app's current build to the
/// targets (none: every app of the next stage that has apps).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PromotionCreate {
    pub source: String,
    #[serde(default)]
    pub targets: Vec<String>,
}

/// What a promotion did, per target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promotion {
    pub pipeline: String,
    pub source: String,
    /// The source's release whose build was promoted.
    pub source_release: i64,
    pub targets: Vec<PromotionTarget>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromotionTarget {
    pub app: String,
    /// The release made, if one was.
    #[serde(default)]
    pub release: Option<Release>,
    /// Whether its dynos serve it (with `?wait=`).
    #[serde(default)]
    pub deploy: Option<Deploy>,
    /// Why nothing was released there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /apps/{app}/pipeline-diff`: the commits the app's build has that
/// each app of the next stage's does not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineDiff {
    pub app: String,
    #[serde(default)]
    pub commit: Option<String>,
    pub downstream: Vec<DownstreamDiff>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownstreamDiff {
    pub app: String,
    #[serde(default)]
    pub commit: Option<String>,
    /// `abc1234 message`, newest first; empty when they run the same build.
    pub commits: Vec<String>,
    /// Said instead of commits when they cannot be listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `GET/PATCH /apps/{app}/maintenance`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Maintenance {
    pub maintenance: bool,
}

/// `POST /apps/{app}/builds` as JSON: release an image the engine has or
/// can pull, with these process types (none: its `paas.procfile` label,
/// else `web` running its own command).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageDeploy {
    pub image: String,
    #[serde(default)]
    pub process_types: BTreeMap<String, String>,
}

/// `GET /apps/{app}/metrics?since=1h`: the app's metrics by minute (the
/// router's requests and service times, its dynos' memory and CPU) and
/// its running dynos now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppMetrics {
    pub app: String,
    /// The first minute asked for (RFC 3339).
    pub since: String,
    /// Over the whole window.
    pub summary: MetricsSummary,
    /// Minutes with anything to say, oldest first.
    pub minutes: Vec<MetricsMinute>,
    /// Each running dyno's newest sample.
    pub dynos: Vec<DynoUse>,
}

/// Requests and service times over a window (or one minute).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MetricsSummary {
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    /// Service time percentiles, in milliseconds (absent without requests).
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub p95_ms: Option<f64>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
}

/// One minute of an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsMinute {
    /// Its start (RFC 3339).
    pub at: String,
    #[serde(flatten)]
    pub requests: MetricsSummary,
    /// Memory and CPU by process type.
    #[serde(default)]
    pub processes: std::collections::BTreeMap<String, ProcessUse>,
}

/// A process type's dynos in one minute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessUse {
    /// The most memory one of them used, in bytes.
    pub memory_max_bytes: u64,
    pub memory_limit_bytes: u64,
    /// Mean CPU over the minute's samples, in percent of one core.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
}

/// A running dyno's newest sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DynoUse {
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: String,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// When it was taken (RFC 3339).
    pub sampled_at: String,
}

/// The longest window `paas metrics --since` reaches back (a day).
pub const METRICS_WINDOW_SECONDS: u64 = 24 * 3600;

/// A `--since` window: `90s`, `30m`, `1h`, `24h`, `1d` or whole seconds,
/// up to a day.
pub fn parse_window(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a window: write it like 30m, 1h or 24h"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{text:?} is not a window: write it like 30m, 1h or 24h (s, m, h or d)")),
    };
    if seconds == 0 || seconds > METRICS_WINDOW_SECONDS {
        return Err(format!("{text:?} is outside what is kept: give a window from 1s to 24h"));
    }
    Ok(seconds)
}
