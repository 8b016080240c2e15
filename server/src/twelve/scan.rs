//! The pushed tree, read at build time: files that look like committed
//! secrets (III; named with the kind of secret, never its value) and
//! dependencies a build would resolve afresh each time (II: a manifest
//! without its lockfile, requirements left unpinned).

use super::{Factor, Finding};
use std::collections::{BTreeMap, BTreeSet};

/// Bytes of each file looked at (the start of a larger one).
pub const READ_BYTES: usize = 256 * 1024;

/// Manifests read whole for the dependency check (at the root).
const MANIFESTS: [&str; 7] = ["package.json", "requirements.txt", "Pipfile", "pyproject.toml", "go.mod", "Gemfile", "composer.json"];

/// Fed every regular file of the tree, then [`Scanner::finish`]ed.
#[derive(Default)]
pub struct Scanner {
    paths: BTreeSet<String>,
    manifests: BTreeMap<String, String>,
    /// File -> the kinds of secret seen in it.
    secrets: BTreeMap<String, BTreeSet<&'static str>>,
    looked_at: usize,
}

struct Pattern {
    kind: &'static str,
    regex: regex::bytes::Regex,
}

fn patterns() -> &'static [Pattern] {
    static PATTERNS: std::sync::OnceLock<Vec<Pattern>> = std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            ("a private key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
            ("an AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
            ("a GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
            ("a Slack token", r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
            ("a Stripe live key", r"\b[rs]k_live_[0-9A-Za-z]{16,}"),
            ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
        ]
        .into_iter()
        .map(|(kind, re)| Pattern { kind, regex: regex::bytes::Regex::new(re).expect("the patterns are valid") })
        .collect()
    })
}

/// Whether `name` is an environment file meant to hold real values
/// (`.env`, `.env.production`; not `.env.example` and its kin).
fn is_env_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(".env") else { return false };
    rest.is_empty() || (rest.starts_with('.') && !["example", "sample", "template", "dist", "defaults"].iter().any(|s| rest.contains(s)))
}

/// `KEY=value` lines with a value, as `.env` files hold them.
fn assignments(text: &[u8]) -> usize {
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .filter(|(k, v)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !v.trim().trim_matches(['"', '\'']).is_empty()
        })
        .count()
}

impl Scanner {
    pub fn file(&mut self, path: &str, start: &[u8]) {
        self.paths.insert(path.to_owned());
        if path.starts_with("node_modules/") || path.contains("/node_modules/") {
            return;
        }
        self.looked_at += 1;
        if MANIFESTS.contains(&path) {
            self.manifests.insert(path.to_owned(), String::from_utf8_lossy(start).into_owned());
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if is_env_file(name) && assignments(start) > 0 {
            self.secrets.entry(path.to_owned()).or_default().insert("an environment file with values");
        }
        for p in patterns() {
            if p.regex.is_match(start) {
                self.secrets.entry(path.to_owned()).or_default().insert(p.kind);
            }
        }
    }

    /// What the tree shows: its secrets (III) and its dependency pins
    /// (II), each an observation (ok when nothing is wrong).
    pub fn finish(self) -> Vec<Finding> {
        let mut out = Vec::new();
        for (file, kinds) in &self.secrets {
            let kinds: Vec<&str> = kinds.iter().copied().collect();
            out.push(Finding::bad(
                Factor::Config,
                "secret",
                file.clone(),
                format!("{file} looks like a committed secret: {}", kinds.join(", ")),
                format!("remove {file} from the repository (and rotate what it held); set its values with `paas config:set`"),
            ));
        }
        if self.secrets.is_empty() {
            out.push(Finding::good(Factor::Config, "secret", "", format!("no committed secrets found in {} files", self.looked_at)));
        }
        out.extend(self.dependencies());
        out
    }

    fn has(&self, any: &[&str]) -> Option<String> {
        any.iter().find(|p| self.paths.contains(**p)).map(|p| (*p).to_owned())
    }

    fn dependencies(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let lock = |manifest: &str, locks: &[&str], fix: &str, needed: bool| -> Option<Finding> {
            if !self.manifests.contains_key(manifest) {
                return None;
            }
            Some(match self.has(locks) {
                Some(l) => Finding::good(Factor::Dependencies, "lockfile", manifest, format!("{l} pins the dependencies {manifest} declares")),
                None if needed => Finding::bad(
                    Factor::Dependencies,
                    "lockfile",
                    manifest,
                    format!("{manifest} has no lockfile ({}): each build resolves its dependencies afresh", locks.join(", ")),
                    fix.to_owned(),
                ),
                None => Finding::good(Factor::Dependencies, "lockfile", manifest, format!("{manifest} declares no dependencies to pin")),
            })
        };
        let npm_deps = self.manifests.get("package.json").and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()).is_none_or(|v| {
            ["dependencies", "devDependencies"].iter().any(|k| v[k].as_object().is_some_and(|o| !o.is_empty()))
        });
        out.extend(lock(
            "package.json",
            &["package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock", "bun.lockb"],
            "run `npm install` (or yarn, pnpm) and commit the lockfile it writes",
            npm_deps,
        ));
        out.extend(lock("Pipfile", &["Pipfile.lock"], "run `pipenv lock` and commit Pipfile.lock", true));
        if !self.manifests.contains_key("requirements.txt") && !self.manifests.contains_key("Pipfile") {
            out.extend(lock(
                "pyproject.toml",
                &["poetry.lock", "uv.lock", "pdm.lock"],
                "lock it (`poetry lock`, `uv lock`) and commit the lockfile",
                true,
            ));
        }
        let go_requires = self.manifests.get("go.mod").is_some_and(|t| t.lines().any(|l| l.trim_start().starts_with("require")));
        out.extend(lock("go.mod", &["go.sum"], "run `go mod tidy` and commit go.sum", go_requires));
        out.extend(lock("Gemfile", &["Gemfile.lock"], "run `bundle lock` and commit Gemfile.lock", true));
        out.extend(lock("composer.json", &["composer.lock"], "run `composer update --lock` and commit composer.lock", true));
        if let Some(text) = self.manifests.get("requirements.txt") {
            let loose = unpinned_requirements(text);
            out.push(if loose.is_empty() {
                Finding::good(Factor::Dependencies, "pins", "requirements.txt", "requirements.txt pins every requirement")
            } else {
                let shown: Vec<&str> = loose.iter().take(5).map(String::as_str).collect();
                let more = if loose.len() > 5 { format!(" and {} more", loose.len() - 5) } else { String::new() };
                Finding::bad(
                    Factor::Dependencies,
                    "pins",
                    "requirements.txt",
                    format!("requirements.txt leaves {}{more} unpinned", shown.join(", ")),
                    "pin each with `==` (`pip freeze > requirements.txt` in a fresh virtualenv)",
                )
            });
        }
        out
    }
}

/// Runtime versions the app asked for that the stack does not provide, as
/// the buildpacks say in a build's output ("... asks for Python 3.8, but
/// this stack provides Python 3.13: building with ..."): development and
/// production then run different versions (X).
pub fn runtime_mismatches(build_output: &str) -> Vec<Finding> {
    build_output
        .lines()
        .filter(|l| l.contains(" asks for ") && l.contains("but this stack provides"))
        .map(|l| {
            let said = l.trim_start_matches([' ', '!']).trim();
            let said = said.split(": building with").next().unwrap_or(said);
            let subject = said.split(" asks for ").next().unwrap_or_default().to_owned();
            Finding::bad(
                Factor::DevProdParity,
                "runtime",
                subject,
                said.to_owned(),
                "ask for a version the stack provides (see the buildpack's README), so development and production run the same one",
            )
        })
        .collect()
}

/// The requirements of a requirements.txt not pinned to one version (by
/// `==`, `===` or a direct `@` reference).
pub fn unpinned_requirements(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split(" #").next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-') && !l.contains("://"))
        .filter(|l| !l.contains("==") && !l.contains(" @ ") && !l.contains('@'))
        .map(|l| {
            let name: String = l.chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.[]".contains(*c)).collect();
            if name.is_empty() { l.to_owned() } else { name }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(files: &[(&str, &str)]) -> Vec<Finding> {
        let mut s = Scanner::default();
        for (path, text) in files {
            s.file(path, text.as_bytes());
        }
        s.finish()
    }

    fn bad(found: &[Finding]) -> Vec<(&'static str, String)> {
        found.iter().filter(|f| !f.ok).map(|f| (f.code, f.subject.clone())).collect()
    }

    #[test]
    fn committed_secrets_are_named_by_file_and_kind_never_by_value() {
        let key = "AKIAIOSFODNN7EXAMPLE";
        let found = scan(&[
            (".env", &format!("# keys\nAWS_ACCESS_KEY_ID={key}\nEMPTY=\n")),
            (".env.example", "AWS_ACCESS_KEY_ID=put-yours-here\n"),
            ("deploy/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"),
            ("src/app.py", "print('hello')\n"),
            ("node_modules/x/.env", "A=b\n"),
        ]);
        assert_eq!(bad(&found), [("secret", ".env".to_owned()), ("secret", "deploy/id_rsa".to_owned())]);
        let env = &found[0].message;
        assert!(env.contains("an AWS access key") && env.contains("an environment file with values"), "{env}");
        assert!(found.iter().all(|f| !f.message.contains(key) && !f.fix.contains(key)));
        let clean = scan(&[("app.py", "x = 1\n"), (".env.sample", "A=b\n")]);
        assert!(bad(&clean).is_empty(), "{clean:?}");
        assert!(clean.iter().any(|f| f.ok && f.factor == Factor::Config));
    }

    #[test]
    fn a_runtime_the_stack_does_not_provide_is_read_from_the_build_output() {
        let out = "-----> Python app detected\n !     runtime.txt asks for Python 3.8.10, but this stack provides Python 3.13.5: building with Python 3.13.5\n       done\n";
        let found = runtime_mismatches(out);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].factor, found[0].subject.as_str()), (Factor::DevProdParity, "runtime.txt"));
        assert_eq!(found[0].message, "runtime.txt asks for Python 3.8.10, but this stack provides Python 3.13.5");
        assert!(runtime_mismatches("-----> Building\n").is_empty());
    }

    #[test]
    fn manifests_without_their_lockfiles_and_loose_pins_are_named() {
        let found = scan(&[("package.json", r#"{"dependencies": {"express": "^4"}}"#)]);
        assert_eq!(bad(&found), [("lockfile", "package.json".to_owned())]);
        assert!(found.iter().find(|f| !f.ok).unwrap().fix.contains("npm install"));
        let locked = scan(&[("package.json", r#"{"dependencies": {"express": "^4"}}"#), ("yarn.lock", "")]);
        assert!(bad(&locked).is_empty());
        let nothing = scan(&[("package.json", r#"{"name": "x", "scripts": {}}"#)]);
        assert!(bad(&nothing).is_empty(), "no dependencies, nothing to lock");
        let reqs = scan(&[("requirements.txt", "flask==3.0.0\nrequests>=2\ngunicorn\n-r base.txt\n# pinned below\nuvicorn[standard]==0.30 # ok\n")]);
        let loose = reqs.iter().find(|f| !f.ok).unwrap();
        assert_eq!(loose.message, "requirements.txt leaves requests, gunicorn unpinned");
        let go = scan(&[("go.mod", "module x\n\ngo 1.22\n\nrequire github.com/a/b v1.0.0\n")]);
        assert_eq!(bad(&go), [("lockfile", "go.mod".to_owned())]);
        assert!(scan(&[("main.go", "package main")]).iter().all(|f| f.factor != Factor::Dependencies), "nothing to observe");
    }
}
