//! app.json: the parts paas reads (`formation`, `healthchecks`, `scripts`,
//! `env`, `buildpacks`), parsed and validated. Errors carry the line and
//! column serde_json found them at. Other keys (name, description, addons,
//! ...) are accepted and ignored, as Heroku's tooling shares the file.

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
    pub scripts: BTreeMap<String, String>,
    #[serde(default)]
    pub env: BTreeMap<ConfigKey, EnvEntry>,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackRef>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FormationEntry {
    pub quantity: Quantity,
    #[serde(default)]
    pub size: Option<String>,
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
            },
        }
        fn yes() -> bool {
            true
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Value(v) => EnvEntry { description: None, value: Some(v), required: true, generator: None },
            Raw::Full { description, value, required, generator } => {
                if let Some(g) = &generator {
                    if g != "secret" {
                        return Err(serde::de::Error::custom(format!("env generator {g:?} is unknown: the only one is \"secret\"")));
                    }
                }
                EnvEntry { description, value, required, generator }
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
#[serde(deny_unknown_fields)]
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

pub fn parse(text: &str) -> Result<AppJson, AppJsonError> {
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
    fn parses_the_known_keys() {
        let text = r#"{
  "name": "demo",
  "formation": {"web": {"quantity": 2}, "worker": {"quantity": 0, "size": "basic"}},
  "healthchecks": {"web": [{"type": "startup", "path": "/health", "attempts": 3}]},
  "scripts": {"postdeploy": "echo hi"},
  "env": {"SECRET": {"generator": "secret"}, "GREETING": "hello"},
  "buildpacks": [{"url": "heroku/python"}]
}"#;
        let a = parse(text).unwrap();
        assert_eq!(a.formation[&ProcessType::parse("web").unwrap()].quantity, Quantity(2));
        assert_eq!(a.healthchecks[&ProcessType::parse("web").unwrap()][0].path, Some(CheckPath("/health".into())));
        assert_eq!(a.env[&ConfigKey::parse("GREETING").unwrap()].value.as_deref(), Some("hello"));
        assert_eq!(a.buildpacks, [BuildpackRef { url: "heroku/python".into() }]);
        assert_eq!(a.web_health_path().as_deref(), Some("/health"));
        assert_eq!(AppJson::default().web_health_path(), None);
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
