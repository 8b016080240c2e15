//! The architecture's invariants as a test, as rust-analyzer's `tidy` does:
//! it reads the source tree and fails, naming file and line, when a rule in
//! ARCHITECTURE.md is broken. Test code (`#[cfg(test)]` modules, `tests.rs`)
//! is exempt.

use std::path::{Path, PathBuf};

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-test source of each file under `crate_dir/src`, relative path first.
fn sources(crate_dir: &str) -> Vec<(String, String)> {
    let base = root().join(crate_dir);
    let mut files = Vec::new();
    rust_files(&base.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
            (p.strip_prefix(root()).unwrap().display().to_string(), code)
        })
        .collect()
}

/// Lines of `code` that mention `needle`, outside comments.
fn hits(code: &str, needle: &str) -> Vec<usize> {
    code.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            !t.starts_with("//") && l.contains(needle)
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Fails listing every use of any of `needles` outside the files `allowed`
/// says yes to.
fn only_in(rule: &str, needles: &[&str], allowed: impl Fn(&str) -> bool) {
    let mut bad = Vec::new();
    for (path, code) in sources("server") {
        if allowed(&path) {
            continue;
        }
        for needle in needles {
            for line in hits(&code, needle) {
                bad.push(format!("{path}:{line}: {needle}"));
            }
        }
    }
    assert!(bad.is_empty(), "{rule}; found:\n{}", bad.join("\n"));
}

/// Every way code could reach the Docker engine: the bollard crate, the
/// engine's socket, a raw Unix-socket or hyper client connection, the
/// engine's API paths, and the `docker` command.
const ENGINE_NEEDLES: &[&str] = &[
    "bollard",
    "docker.sock",
    "UnixStream",
    "client::conn",
    "/containers/",
    "/images/",
    "negotiate_version",
    "Command::new(\"docker\")",
];

#[test]
fn only_the_docker_runtime_folder_reaches_the_engine() {
    // Raw HTTP client connections: the engine's, and the router's to dynos
    // (TCP, to addresses in its route table only).
    const RAW_CLIENT: &str = "client::conn";
    let engine: Vec<&str> = ENGINE_NEEDLES.iter().copied().filter(|n| *n != RAW_CLIENT).collect();
    only_in("only server/src/runtime/docker/ may reach the Docker engine", &engine, |p| p.starts_with("server/src/runtime/docker/"));
    only_in(
        "only the Docker runtime and the router (to dynos) open raw HTTP client connections",
        &[RAW_CLIENT],
        |p| p.starts_with("server/src/runtime/docker/") || p == "server/src/router.rs",
    );
}

#[test]
fn the_engine_rule_sees_a_file_outside_the_folder() {
    // The needles catch each way in, whatever the calling code names it.
    let sample = "let s = tokio::net::UnixStream::connect(\"/var/run/docker.sock\");\nlet d = bollard::Docker::connect_with_defaults();";
    let found: usize = ENGINE_NEEDLES.iter().map(|n| hits(sample, n).len()).sum();
    assert!(found >= 3, "the engine needles missed the sample: {found}");
}

#[test]
fn only_the_store_speaks_sql() {
    only_in(
        "only server/src/store/ may use sqlx or write SQL",
        &["sqlx", "SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM"],
        |p| p.starts_with("server/src/store/"),
    );
}

#[test]
fn only_the_tools_module_starts_host_processes() {
    only_in(
        "only server/src/tools.rs may start host processes (git, tar, the stack's script, ...)",
        &["process::Command", "Command::new", "tokio::process", "std::process::Stdio"],
        |p| p == "server/src/tools.rs",
    );
    only_in("only server/src/git.rs may open git repositories", &["git2::"], |p| p == "server/src/git.rs");
}

#[test]
fn only_settings_read_the_environment() {
    only_in(
        "only server/src/settings.rs may read environment variables",
        &["env::var", "env::vars"],
        |p| p == "server/src/settings.rs",
    );
}

#[test]
fn every_source_file_opens_with_its_module_doc() {
    let mut bad = Vec::new();
    for krate in ["server", "cli", "wire"] {
        for (path, code) in sources(krate) {
            if path.ends_with("tests.rs") {
                continue;
            }
            if !code.trim_start().starts_with("//!") {
                bad.push(path);
            }
        }
    }
    assert!(bad.is_empty(), "these files lack a `//!` paragraph saying what they own:\n{}", bad.join("\n"));
}

#[test]
fn the_flow_is_one_way() {
    // Module -> modules it must never name: the receiver → builder →
    // release service → scheduler → runtime flow, and API and git apart.
    let forbidden: &[(&str, &[&str])] = &[
        ("server/src/builder.rs", &["crate::release", "crate::scheduler", "crate::git", "crate::api", "crypto"]),
        ("server/src/buildpack.rs", &["crate::builder", "crate::release", "crate::scheduler"]),
        ("server/src/release.rs", &["crate::builder", "crate::git", "crate::api", "crate::http"]),
        ("server/src/scheduler/", &["crate::release", "crate::builder", "crate::git", "crate::api"]),
        ("server/src/git.rs", &["crate::api"]),
        ("server/src/http/mod.rs", &["crate::api", "crate::git"]),
        ("server/src/http/error.rs", &["crate::api", "crate::git"]),
    ];
    let mut api_files = Vec::new();
    rust_files(&root().join("server/src/api"), &mut api_files);
    let mut bad = Vec::new();
    for (path, code) in sources("server") {
        let mut rules: Vec<&str> = forbidden.iter().filter(|(p, _)| *p == path || (p.ends_with('/') && path.starts_with(p))).flat_map(|(_, n)| n.iter().copied()).collect();
        if path.starts_with("server/src/api/") {
            rules.extend(["crate::git", "crate::builder", "crate::buildpack", "crate::tools"]);
        }
        for needle in rules {
            for line in hits(&code, needle) {
                bad.push(format!("{path}:{line}: {needle}"));
            }
        }
    }
    assert!(bad.is_empty(), "the flow must stay one way (see ARCHITECTURE.md); found:\n{}", bad.join("\n"));
}

#[test]
fn no_module_depends_on_itself_through_others() {
    // Top-level module of each file -> the top-level modules it names.
    use std::collections::{BTreeMap, BTreeSet};
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in sources("server") {
        let rel = path.trim_start_matches("server/src/");
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let deps = graph.entry(module.clone()).or_default();
        for piece in code.split("crate::").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    // Depth-first search for a path back to the start.
    fn path_back(graph: &BTreeMap<String, BTreeSet<String>>, start: &str, at: &str, seen: &mut BTreeSet<String>, trail: &mut Vec<String>) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                trail.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                trail.push(next.clone());
                if path_back(graph, start, next, seen, trail) {
                    return true;
                }
                trail.pop();
            }
        }
        false
    }
    let mut cycles = Vec::new();
    for module in graph.keys() {
        let mut trail = vec![module.clone()];
        if path_back(&graph, module, module, &mut BTreeSet::new(), &mut trail) {
            cycles.push(trail.join(" -> "));
        }
    }
    assert!(cycles.is_empty(), "module cycles (the flow must be one way):\n{}", cycles.join("\n"));
}
