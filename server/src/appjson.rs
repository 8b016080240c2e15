//! app.json: the parts paas reads (`formation`, `healthchecks`, `env`,
//! `buildpacks`), parsed and validated. Errors carry the line and column
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("app.json line {line} column {column}: {message}")]
pub struct AppJsonError {
    pub line: usize,
    pub column: usize,
    pub message: String,
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
    let app = parse_used(text)?;
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
    unknown(top, &["formation", "healthchecks", "env", "buildpacks", "scripts"], "", out);
    if let Some(Value::Object(scripts)) = top.get("scripts") {
        out.extend(scripts.keys().map(|k| format!("scripts.{k}")));
    } else if top.contains_key("scripts") {
        out.push("scripts".into());
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
        assert!(warning.contains("name") && warning.contains("scripts.postdeploy") && !warning.contains("size"), "{warning}");
        assert_eq!(a.formation[&ProcessType::parse("worker").unwrap()].size.map(|s| s.0.to_string()).as_deref(), Some("512M"));
        assert_eq!(a.formation[&ProcessType::parse("web").unwrap()].quantity, Quantity(2));
        assert_eq!(a.healthchecks[&ProcessType::parse("web").unwrap()][0].path, Some(CheckPath("/health".into())));
        assert_eq!(a.env[&ConfigKey::parse("GREETING").unwrap()].value.as_deref(), Some("hello"));
        assert_eq!(a.buildpacks, [BuildpackRef { url: "heroku/python".into() }]);
        assert_eq!(a.web_health_path().as_deref(), Some("/health"));
        assert_eq!(AppJson::default().web_health_path(), None);
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
        for key in ["addons", "image", "environments", "scripts.acme", "scripts.dokku", "healthchecks.web[0].uptime"] {
            assert!(w.contains(key), "{key} in {w}");
        }
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
}
