//! app.json: the parts paas reads (`formation`, `healthchecks`, `env`,
//! `buildpacks`, `cron`, and the `scripts` Heroku and Dokku run around a
//! deploy), parsed and validated. Errors carry the line and column
//! serde_json found them at, and only fields paas uses can be errors.
//! Everything else the app.json schema or other platforms put there
//! (`name`, `addons`, `image`, `environments`, `scripts`, a vendor's nested
//! objects, unknown keys inside the sections paas reads) is accepted and
//! named in one warning, as Heroku's and Dokku's tooling share the file.

use paas_wire::{ConfigKey, ProcessType};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
pub struct AppJson {
    #[serde(default)]
    pub formation: BTreeMap<ProcessType, FormationEntry>,
    #[serde(default)]
    pub healthchecks: BTreeMap<ProcessType, Vec<HealthCheck>>,
    #[serde(default)]
    pub env: BTreeMap<ConfigKey, EnvEntry>,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackRef>,
    /// Add-ons to provision on the app's first deploy, as on Heroku.
    #[serde(default)]
    pub addons: Vec<AddonRef>,
    #[serde(default)]
    cron: Vec<RawCron>,
    #[serde(default)]
    scripts: RawScripts,
    /// `cron` and `scripts`, checked: filled in by [`parse`].
    #[serde(skip)]
    pub tasks: Tasks,
}

/// An entry of app.json's `addons`: `"heroku-postgresql"`, or
/// `{"plan": "postgresql", "as": "DB"}` (`options` are accepted and not
/// used). The service is checked when it is provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AddonRef {
    Plan(String),
    Object {
        plan: String,
        #[serde(default, rename = "as")]
        as_name: Option<String>,
        #[serde(default)]
        options: Option<serde_json::Value>,
    },
}

impl AddonRef {
    pub fn plan(&self) -> &str {
        match self {
            AddonRef::Plan(p) | AddonRef::Object { plan: p, .. } => p,
        }
    }

    pub fn as_name(&self) -> Option<&str> {
        match self {
            AddonRef::Plan(_) => None,
            AddonRef::Object { as_name, .. } => as_name.as_deref(),
        }
    }
}

/// What a release runs besides its dynos, from app.json: its scheduled
/// commands and the scripts around a deploy. Stored with the release as
/// JSON, so a rollback brings back that release's schedule too.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Tasks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cron: Vec<CronEntry>,
    /// Dokku's `scripts.dokku.predeploy`: runs before the release's dynos
    /// start, like the release phase (first), and its failure fails the
    /// release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predeploy: Option<String>,
    /// Dokku's `scripts.dokku.postdeploy`: after every deploy whose dynos
    /// came up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postdeploy: Option<String>,
    /// Heroku's `scripts.postdeploy`: once, after the app's first deploy
    /// whose dynos came up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_postdeploy: Option<String>,
}

impl Tasks {
    /// Reads the tasks a release stored (`None`: the release has none or
    /// predates them).
    pub fn from_json(text: Option<&str>) -> Tasks {
        text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
    }

    /// What a release stores; `None` when there is nothing to run.
    pub fn to_json(&self) -> Option<String> {
        (*self != Tasks::default()).then(|| serde_json::to_string(self).expect("tasks always serialize"))
    }

    pub fn cron_entry(&self, id: &str) -> Option<&CronEntry> {
        self.cron.iter().find(|e| e.id == id)
    }
}

/// One scheduled command: app.json `cron` as Dokku writes it
/// (`{"command": "...", "schedule": "0 3 * * *"}`), with an optional `name`
/// (its id; else one made from the schedule and command) and
/// `concurrency` of paas's own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct CronEntry {
    pub id: String,
    pub command: String,
    /// Five fields (minute hour day month weekday) or an alias like
    /// `@daily`, in UTC.
    pub schedule: String,
    pub concurrency: Concurrency,
}

/// What happens when a run is due while the entry's last run still goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Concurrency {
    /// The new run is skipped, and the log says so (the default).
    #[default]
    Forbid,
    /// Runs may overlap.
    Allow,
}

impl Concurrency {
    pub fn as_str(self) -> &'static str {
        match self {
            Concurrency::Forbid => "forbid",
            Concurrency::Allow => "allow",
        }
    }
}

/// The longest command a cron entry or script may have.
const MAX_TASK_COMMAND_BYTES: usize = 16 * 1024;

/// Parses a 5-field cron schedule (or `@hourly`, `@daily`, ...), as
/// Dokku and crontab take them: no seconds, no years.
pub fn parse_schedule(schedule: &str) -> Result<croner::Cron, String> {
    // croner's default: five fields, a sixth (seconds) refused, no years.
    let cron = croner::Cron::new(schedule.trim()).parse().map_err(|e| {
        format!("schedule {schedule:?} is not a cron schedule ({e}): write five fields, minute hour day-of-month month day-of-week, like \"*/10 * * * *\" or \"30 3 * * 1-5\" (UTC), or @hourly, @daily, @weekly, @monthly")
    })?;
    if cron.find_next_occurrence(&chrono::Utc::now(), false).is_err() {
        return Err(format!("schedule {schedule:?} never comes (no such date): check its day and month"));
    }
    Ok(cron)
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct RawCron {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    concurrency: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct RawScripts {
    #[serde(default)]
    dokku: RawDokkuScripts,
    #[serde(default)]
    postdeploy: Option<RawScript>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct RawDokkuScripts {
    #[serde(default)]
    predeploy: Option<String>,
    #[serde(default)]
    postdeploy: Option<String>,
}

/// Heroku's script: a command, or `{"command": ..., "size": ...}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum RawScript {
    Command(String),
    Full { command: String },
}

/// A task's command: trimmed, not empty, not too long, no NUL.
fn task_command(text: &str, what: &str) -> Result<String, String> {
    let command = text.trim();
    if command.is_empty() || command.len() > MAX_TASK_COMMAND_BYTES || command.contains('\0') {
        return Err(format!("{what} needs a command of 1 to {MAX_TASK_COMMAND_BYTES} bytes: put a long script in the app's code and call it"));
    }
    Ok(command.to_owned())
}

/// Checks `cron` and `scripts` and gives each cron entry its id.
fn tasks(cron: &[RawCron], scripts: &RawScripts) -> Result<Tasks, String> {
    let mut entries: Vec<CronEntry> = Vec::new();
    for (i, raw) in cron.iter().enumerate() {
        let what = match (&raw.name, &raw.command) {
            (Some(n), _) => format!("cron[{i}] ({n:?})"),
            (None, Some(c)) => format!("cron[{i}] ({c:?})"),
            (None, None) => format!("cron[{i}]"),
        };
        let command = task_command(raw.command.as_deref().unwrap_or_default(), &what)?;
        let schedule = raw.schedule.as_deref().map(str::trim).unwrap_or_default();
        if schedule.is_empty() {
            return Err(format!("{what} needs a \"schedule\", like \"0 3 * * *\" for 03:00 UTC every day"));
        }
        parse_schedule(schedule).map_err(|e| format!("{what}: {e}"))?;
        let id = match &raw.name {
            Some(n) => {
                let ok = (1..=30).contains(&n.len())
                    && n.starts_with(|c: char| c.is_ascii_lowercase())
                    && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    return Err(format!("{what}: name {n:?} must be 1 to 30 lowercase letters, digits and dashes, starting with a letter"));
                }
                n.clone()
            }
            None => {
                use sha2::Digest;
                hex::encode(sha2::Sha256::digest(format!("{schedule} {command}")))[..8].to_owned()
            }
        };
        let concurrency = match raw.concurrency.as_deref() {
            None | Some("forbid") => Concurrency::Forbid,
            Some("allow") => Concurrency::Allow,
            Some(other) => return Err(format!("{what}: concurrency {other:?} is unknown: use \"forbid\" (skip a run while the last one goes; the default) or \"allow\"")),
        };
        if entries.iter().any(|e| e.id == id) {
            return Err(format!("{what}: another entry has the id {id:?}: give one of them a different \"name\""));
        }
        entries.push(CronEntry { id, command, schedule: schedule.to_owned(), concurrency });
    }
    let script = |text: &Option<String>, what: &str| text.as_deref().map(|t| task_command(t, what)).transpose();
    let first = scripts.postdeploy.as_ref().map(|s| match s {
        RawScript::Command(c) | RawScript::Full { command: c } => c.clone(),
    });
    Ok(Tasks {
        cron: entries,
        predeploy: script(&scripts.dokku.predeploy, "scripts.dokku.predeploy")?,
        postdeploy: script(&scripts.dokku.postdeploy, "scripts.dokku.postdeploy")?,
        first_postdeploy: script(&first, "scripts.postdeploy")?,
    })
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct FormationEntry {
    pub quantity: Quantity,
    #[serde(default)]
    pub size: Option<FormationSize>,
}

/// A formation entry's size: a memory limit (`512M`, `1G`), or a Heroku
/// dyno type by name, read as its memory (`basic` and `standard-1x` 512M,
/// `standard-2x` 1G, `performance-m` 2.5G, `performance-l` 14G, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormationSize(pub paas_wire::DynoSize);

/// Heroku's dyno types and their memory, in MiB.
const HEROKU_DYNO_TYPES: &[(&str, i64)] = &[
    ("free", 512),
    ("hobby", 512),
    ("eco", 512),
    ("basic", 512),
    ("standard-1x", 512),
    ("standard-2x", 1024),
    ("performance-m", 2560),
    ("performance-l", 14336),
    ("private-s", 1024),
    ("private-m", 2560),
    ("private-l", 14336),
    ("shield-s", 1024),
    ("shield-m", 2560),
    ("shield-l", 14336),
];

impl FormationSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let name = text.trim().to_ascii_lowercase();
        if let Some((_, mib)) = HEROKU_DYNO_TYPES.iter().find(|(n, _)| *n == name) {
            return Ok(Self(paas_wire::DynoSize::from_bytes(mib << 20)));
        }
        paas_wire::DynoSize::parse(text.trim()).map(Self).map_err(|_| {
            format!("size {text:?} is neither a memory size like 512M or 1G nor a Heroku dyno type (basic, standard-1x, standard-2x, performance-m, performance-l)")
        })
    }
}

impl<'de> Deserialize<'de> for FormationSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A dyno count, 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(pub i64);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let q = i64::deserialize(d)?;
        if (0..=100).contains(&q) {
            Ok(Quantity(q))
        } else {
            Err(serde::de::Error::custom(format!("quantity {q} is out of range: use 0 to 100")))
        }
    }
}

/// A health check after Dokku's app.json `healthchecks`: `startup` (and
/// `readiness`) checks gate a new dyno (and a web dyno's traffic);
/// `liveness` checks run while it runs, and a dyno failing `attempts` in a
/// row leaves the rotation and is restarted. `timeout`, `wait` and
/// `initialDelay` are seconds; the HTTP check is a GET of `path` on `port`
/// (default `$PORT`) that must answer 2xx/3xx and, with `content`, contain it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(rename = "type", default = "startup")]
    pub kind: CheckKind,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub path: Option<CheckPath>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub timeout: Option<u32>,
    #[serde(default)]
    pub wait: Option<u32>,
    #[serde(default)]
    pub initial_delay: Option<u32>,
    #[serde(default)]
    pub content: Option<String>,
}

fn startup() -> CheckKind {
    CheckKind::Startup
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Startup,
    Liveness,
    Readiness,
}

/// An HTTP path: starts with `/`, no spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct CheckPath(pub String);

impl<'de> Deserialize<'de> for CheckPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = String::deserialize(d)?;
        if p.starts_with('/') && p.len() <= 2000 && !p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Ok(CheckPath(p))
        } else {
            Err(serde::de::Error::custom(format!("health check path {p:?} must start with / and contain no spaces")))
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvEntry {
    pub description: Option<String>,
    pub value: Option<String>,
    pub required: bool,
    pub generator: Option<String>,
    /// Dokku's `"sync": true`: the value is set again on every deploy, not
    /// only the first.
    pub sync: bool,
}

impl<'de> Deserialize<'de> for EnvEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Value(String),
            Full {
                #[serde(default)]
                description: Option<String>,
                #[serde(default)]
                value: Option<String>,
                #[serde(default = "yes")]
                required: bool,
                #[serde(default)]
                generator: Option<String>,
                #[serde(default)]
                sync: bool,
            },
        }
        fn yes() -> bool {
            true
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Value(v) => EnvEntry { description: None, value: Some(v), required: true, generator: None, sync: false },
            Raw::Full { description, value, required, generator, sync } => {
                if let Some(g) = &generator {
                    if g != "secret" {
                        return Err(serde::de::Error::custom(format!("env generator {g:?} is unknown: the only one is \"secret\"")));
                    }
                }
                EnvEntry { description, value, required, generator, sync }
            }
        })
    }
}

/// Health checks by process type, as stored with a release.
pub type Checks = BTreeMap<String, Vec<HealthCheck>>;

/// Reads the checks a release stored (`None`: the release predates them).
pub fn checks_from_json(text: Option<&str>) -> Checks {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

impl HealthCheck {
    pub fn is_startup(&self) -> bool {
        matches!(self.kind, CheckKind::Startup | CheckKind::Readiness)
    }
}

impl AppJson {
    /// Every health check, by process type, for the release to keep.
    pub fn checks(&self) -> Checks {
        self.healthchecks.iter().map(|(t, c)| (t.to_string(), c.clone())).collect()
    }

    /// The path web dynos must answer before they get traffic: the first
    /// startup (or readiness) check of `web` that names one.
    pub fn web_health_path(&self) -> Option<String> {
        let checks = self.healthchecks.iter().find(|(t, _)| t.as_str() == "web")?.1;
        checks
            .iter()
            .filter(|c| matches!(c.kind, CheckKind::Startup | CheckKind::Readiness))
            .find_map(|c| c.path.as_ref().map(|p| p.0.clone()))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct BuildpackRef {
    pub url: String,
}

/// An app.json paas cannot use: where (line 0 when the fault is in what
/// an entry means rather than in its text) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AppJsonError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for AppJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "app.json {}", self.message)
        } else {
            write!(f, "app.json line {} column {}: {}", self.line, self.column, self.message)
        }
    }
}

/// Parses app.json: the fields paas uses, and one warning naming every key it
/// ignores (empty when there are none). Comments (`//`, `/* */`, `#`) and
/// trailing commas are accepted, as Dokku accepts them; they are blanked
/// out in place, so an error's line and column are still the file's.
pub fn parse(text: &str) -> Result<(AppJson, Option<String>), AppJsonError> {
    let mut plain = text.to_owned();
    if json_strip_comments::strip(&mut plain).is_err() {
        // An unterminated comment: serde_json says where the text ends up.
        plain = text.to_owned();
    }
    let text = plain.as_str();
    let mut app = parse_used(text)?;
    app.tasks = tasks(&app.cron, &app.scripts).map_err(|message| AppJsonError { line: 0, column: 0, message })?;
    let value: serde_json::Value = serde_json::from_str(text).expect("it parsed above");
    let mut ignored = Vec::new();
    ignored_keys(&value, &mut ignored);
    let warning = (!ignored.is_empty()).then(|| {
        format!("app.json: paas ignores {} (they are not used here)", ignored.join(", "))
    });
    Ok((app, warning))
}

/// The keys paas reads, by where they are; everything else is ignored.
fn ignored_keys(v: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let Value::Object(top) = v else { return };
    let unknown = |obj: &serde_json::Map<String, Value>, used: &[&str], at: &str, out: &mut Vec<String>| {
        for k in obj.keys().filter(|k| !used.contains(&k.as_str())) {
            out.push(if at.is_empty() { k.clone() } else { format!("{at}.{k}") });
        }
    };
    unknown(top, &["formation", "healthchecks", "env", "buildpacks", "scripts", "cron", "addons"], "", out);
    for (i, a) in top.get("addons").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Value::Object(a) = a {
            unknown(a, &["plan", "as", "options"], &format!("addons[{i}]"), out);
        }
    }
    if let Some(Value::Object(scripts)) = top.get("scripts") {
        unknown(scripts, &["dokku", "postdeploy"], "scripts", out);
        if let Some(Value::Object(dokku)) = scripts.get("dokku") {
            unknown(dokku, &["predeploy", "postdeploy"], "scripts.dokku", out);
        }
        if let Some(Value::Object(post)) = scripts.get("postdeploy") {
            unknown(post, &["command"], "scripts.postdeploy", out);
        }
    }
    for (i, c) in top.get("cron").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Value::Object(c) = c {
            unknown(c, &["command", "schedule", "name", "concurrency"], &format!("cron[{i}]"), out);
        }
    }
    if let Some(Value::Object(f)) = top.get("formation") {
        for (t, entry) in f {
            if let Value::Object(e) = entry {
                unknown(e, &["quantity", "size"], &format!("formation.{t}"), out);
            }
        }
    }
    if let Some(Value::Object(h)) = top.get("healthchecks") {
        for (t, checks) in h {
            for (i, check) in checks.as_array().into_iter().flatten().enumerate() {
                if let Value::Object(c) = check {
                    let used = ["type", "name", "path", "port", "attempts", "timeout", "wait", "initialDelay", "content"];
                    unknown(c, &used, &format!("healthchecks.{t}[{i}]"), out);
                }
            }
        }
    }
    if let Some(Value::Object(env)) = top.get("env") {
        for (k, entry) in env {
            if let Value::Object(e) = entry {
                unknown(e, &["description", "value", "required", "generator", "sync"], &format!("env.{k}"), out);
            }
        }
    }
    for (i, b) in top.get("buildpacks").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Value::Object(b) = b {
            unknown(b, &["url"], &format!("buildpacks[{i}]"), out);
        }
    }
}

fn parse_used(text: &str) -> Result<AppJson, AppJsonError> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json appends " at line L column C"; the line is ours to say.
        let msg = e.to_string();
        let message = msg.rsplit_once(" at line ").map_or(msg.clone(), |(m, _)| m.to_owned());
        AppJsonError { line: e.line(), column: e.column(), message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formation_sizes_are_memory_or_herokus_dyno_types() {
        let size = |s: &str| FormationSize::parse(s).map(|f| f.0.to_string());
        assert_eq!(size("1G").as_deref(), Ok("1G"));
        assert_eq!(size("Standard-2X").as_deref(), Ok("1G"));
        assert_eq!(size("performance-m").as_deref(), Ok("2560M"));
        let err = parse("{\"formation\": {\"web\": {\"quantity\": 1, \"size\": \"huge\"}}}").unwrap_err();
        assert!(err.message.contains("Heroku dyno type"), "{err}");
    }

    #[test]
    fn comments_and_trailing_commas_as_dokku_writes_them() {
        let text = "{\n  // the app's dynos\n  \"formation\": {\"web\": {\"quantity\": 2,},},\n  /* checks\n     here */\n  \"healthchecks\": {\"web\": [{\"type\": \"startup\", \"path\": \"/x\",}]},\n}\n";
        let (app, _) = parse(text).unwrap();
        assert_eq!(app.formation[&ProcessType::parse("web").unwrap()].quantity, Quantity(2));
        assert_eq!(app.web_health_path().as_deref(), Some("/x"));
        // Positions stay the file's: the error is on line 3.
        let err = parse("{\n  // fine\n  \"formation\": 7\n}").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }

    #[test]
    fn parses_the_known_keys() {
        let text = r#"{
  "name": "demo",
  "formation": {"web": {"quantity": 2}, "worker": {"quantity": 0, "size": "basic"}},
  "healthchecks": {"web": [{"type": "startup", "path": "/health", "attempts": 3}]},
  "scripts": {"postdeploy": "echo hi"},
  "env": {"SECRET": {"generator": "secret"}, "GREETING": "hello"},
  "buildpacks": [{"url": "heroku/python"}]
}"#;
        let (a, warning) = parse(text).unwrap();
        let warning = warning.unwrap();
        assert!(warning.contains("name") && !warning.contains("scripts") && !warning.contains("size"), "{warning}");
        assert_eq!(a.tasks.first_postdeploy.as_deref(), Some("echo hi"));
        assert_eq!(a.formation[&ProcessType::parse("worker").unwrap()].size.map(|s| s.0.to_string()).as_deref(), Some("512M"));
        assert_eq!(a.formation[&ProcessType::parse("web").unwrap()].quantity, Quantity(2));
        assert_eq!(a.healthchecks[&ProcessType::parse("web").unwrap()][0].path, Some(CheckPath("/health".into())));
        assert_eq!(a.env[&ConfigKey::parse("GREETING").unwrap()].value.as_deref(), Some("hello"));
        assert_eq!(a.buildpacks, [BuildpackRef { url: "heroku/python".into() }]);
        assert_eq!(a.web_health_path().as_deref(), Some("/health"));
        assert_eq!(AppJson::default().web_health_path(), None);
        let (a, warning) = parse(r#"{"addons": ["heroku-postgresql", {"plan": "heroku-redis:mini", "as": "CACHE", "options": {"x": 1}, "oops": 1}]}"#).unwrap();
        assert_eq!((a.addons[0].plan(), a.addons[0].as_name()), ("heroku-postgresql", None));
        assert_eq!((a.addons[1].plan(), a.addons[1].as_name()), ("heroku-redis:mini", Some("CACHE")));
        assert!(warning.unwrap().contains("addons[1].oops"));
    }

    #[test]
    fn what_other_platforms_write_is_accepted_with_a_warning() {
        let text = r#"{
  "name": "x", "addons": ["heroku-postgresql"], "image": "heroku/ruby",
  "environments": {"test": {"scripts": {"test": "make test"}}},
  "scripts": {"acme": {"postdeploy": "./go"}, "dokku": {"predeploy": "true"}},
  "healthchecks": {"web": [{"type": "startup", "path": "/", "uptime": 5, "command": ["true"]}]},
  "formation": {"web": {"quantity": 1, "size": "standard-1X"}}
}"#;
        let (a, warning) = parse(text).unwrap();
        assert_eq!(a.healthchecks.len(), 1);
        let w = warning.unwrap();
        for key in ["image", "environments", "scripts.acme", "healthchecks.web[0].uptime"] {
            assert!(w.contains(key), "{key} in {w}");
        }
        assert!(!w.contains("scripts.dokku"), "Dokku's scripts are used now: {w}");
        assert!(!w.contains("addons"), "add-ons are made now: {w}");
        assert_eq!(a.addons[0].plan(), "heroku-postgresql");
        assert_eq!(a.tasks.predeploy.as_deref(), Some("true"));
        assert!(!w.contains("formation"), "formation's size is used now: {w}");
        assert_eq!(parse("{}").unwrap().1, None);
        // Still an error: a bad value in a field paas uses.
        assert!(parse(r#"{"healthchecks": {"web": [{"path": "no-slash"}]}}"#).is_err());
    }

    #[test]
    fn errors_say_where() {
        let e = parse("{\n  \"formation\": {\n    \"web\": {\"quantity\": 500}\n  }\n}").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("out of range"), "{e}");
        let e = parse("{\n  \"formation\": {\"Web!\": {\"quantity\": 1}}\n}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("process type"), "{e}");
        let e = parse("{\n\n  \"healthchecks\": {\"web\": [{\"path\": \"no-slash\"}]}\n}").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("{\"env\": {\"PORT\": \"1\"}}").unwrap_err();
        assert!(e.message.contains("reserved"), "{e}");
        let e = parse("{\"formation\": ").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(parse("{\"env\": {\"X\": {\"generator\": \"uuid\"}}}").is_err());
    }

    #[test]
    fn cron_entries_as_dokku_writes_them_get_ids_and_bad_schedules_name_the_entry() {
        let text = r#"{"cron": [
            {"command": "python3 report.py", "schedule": "*/5 * * * *"},
            {"command": "./cleanup", "schedule": "@daily", "name": "cleanup", "concurrency": "allow", "extra": 1}
        ]}"#;
        let (a, warning) = parse(text).unwrap();
        let cron = &a.tasks.cron;
        assert_eq!(cron.len(), 2);
        assert_eq!(cron[0].id.len(), 8, "{:?}", cron[0]);
        assert_eq!(cron[0].concurrency, Concurrency::Forbid);
        assert_eq!((cron[1].id.as_str(), cron[1].concurrency), ("cleanup", Concurrency::Allow));
        assert_eq!(warning.as_deref(), Some("app.json: paas ignores cron[1].extra (they are not used here)"));
        // The same entry has the same id in every build.
        assert_eq!(parse(text).unwrap().0.tasks.cron[0].id, cron[0].id);
        let err = |t: &str| parse(t).unwrap_err().to_string();
        let e = err(r#"{"cron": [{"command": "ok", "schedule": "* * * * *"}, {"command": "./nightly", "schedule": "61 3 * * *"}]}"#);
        assert!(e.starts_with("app.json cron[1] (\"./nightly\"): schedule \"61 3 * * *\" is not a cron schedule"), "{e}");
        let e = err(r#"{"cron": [{"name": "six", "command": "x", "schedule": "0 * * * * *"}]}"#);
        assert!(e.contains("cron[0] (\"six\")") && e.contains("five fields"), "{e}");
        assert!(err(r#"{"cron": [{"command": "x"}]}"#).contains("needs a \"schedule\""));
        assert!(err(r#"{"cron": [{"command": "x", "schedule": "0 0 30 2 *"}]}"#).contains("never comes"));
        // What the README promises: aliases, names, ranges, lists and steps.
        for ok in ["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "30 3 * * MON-FRI", "0 9 1 JAN,JUL *", "*/15 8-18 * * 1-5"] {
            assert!(parse_schedule(ok).is_ok(), "{ok}: {:?}", parse_schedule(ok).err());
        }
        assert!(err(r#"{"cron": [{"command": " ", "schedule": "* * * * *"}]}"#).contains("needs a command"));
        assert!(err(r#"{"cron": [{"command": "x", "schedule": "* * * * *", "concurrency": "replace"}]}"#).contains("\"forbid\""));
        assert!(err(r#"{"cron": [{"command": "x", "schedule": "* * * * *", "name": "Bad Name"}]}"#).contains("lowercase"));
        let twice = r#"{"cron": [{"command": "x", "schedule": "* * * * *"}, {"command": "x", "schedule": "* * * * *"}]}"#;
        assert!(err(twice).contains("different \"name\""), "{}", err(twice));
    }

    #[test]
    fn scripts_heroku_and_dokku_run_are_read_and_stored_with_the_release() {
        let text = r#"{"scripts": {
            "dokku": {"predeploy": "touch /app/predeploy.test", "postdeploy": "./notify", "other": "x"},
            "postdeploy": {"command": "./seed", "size": "basic"},
            "test": "make test"
        }}"#;
        let (a, warning) = parse(text).unwrap();
        let t = &a.tasks;
        assert_eq!(t.predeploy.as_deref(), Some("touch /app/predeploy.test"));
        assert_eq!(t.postdeploy.as_deref(), Some("./notify"));
        assert_eq!(t.first_postdeploy.as_deref(), Some("./seed"));
        let w = warning.unwrap();
        assert!(w.contains("scripts.dokku.other") && w.contains("scripts.postdeploy.size") && w.contains("scripts.test"), "{w}");
        assert_eq!(Tasks::from_json(t.to_json().as_deref()), *t);
        assert_eq!(Tasks::default().to_json(), None);
        assert_eq!(Tasks::from_json(None), Tasks::default());
        assert!(parse(r#"{"scripts": {"dokku": {"predeploy": ""}}}"#).unwrap_err().to_string().contains("scripts.dokku.predeploy needs a command"));
    }
}
