//! Host tools: the only module that starts processes on the host (git, tar,
//! iptables, and bash for the stack's fixed build script). Every tool gets an argv
//! array, never a shell line made from input, so no user-supplied string can
//! reach a shell; options end with `--` before anything a user chose.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// `git receive-pack --stateless-rpc --advertise-refs REPO`: the refs a
/// pusher sees first.
pub async fn git_advertise_refs(repo: &Path) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .args(["receive-pack", "--stateless-rpc", "--advertise-refs"])
        .arg(repo)
        .output()
        .await
        .context("cannot run git receive-pack")?;
    if !out.status.success() {
        bail!("git receive-pack --advertise-refs failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

/// `git receive-pack --stateless-rpc REPO` with stdin and stdout piped; `env`
/// reaches its hooks.
/// Packs over `max_bytes` are refused by git itself, and the repo is
/// garbage-collected when git's auto rules say (`receive.autogc`).
pub fn git_receive_pack(repo: &Path, env: &[(&str, &str)], max_bytes: u64) -> Result<Child> {
    Command::new("git")
        .arg("-c")
        .arg(format!("receive.maxInputSize={max_bytes}"))
        .args(["-c", "receive.autogc=true", "receive-pack", "--stateless-rpc"])
        .arg(repo)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run git receive-pack")
}

/// `git archive --format=tar COMMIT` in the current repository (the hook's),
/// with the tar on stdout.
pub fn git_archive(commit: &str) -> Result<Child> {
    archive(None, commit)
}

/// `git archive --format=tar COMMIT` in the bare repository `repo`, with the
/// tar on stdout (a restore's rebuild).
pub fn git_archive_in(repo: &Path, commit: &str) -> Result<Child> {
    archive(Some(repo), commit)
}

fn archive(repo: Option<&Path>, commit: &str) -> Result<Child> {
    if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{commit:?} is not a commit id");
    }
    let mut git = Command::new("git");
    if let Some(repo) = repo {
        git.arg("-C").arg(repo);
    }
    git.args(["archive", "--format=tar", commit])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run git archive")
}

/// `pg_dump --format=custom` of the database at `url` into `out`.
pub async fn pg_dump(url: &str, out: &Path) -> Result<()> {
    let status = Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(out)
        .arg(url)
        .status()
        .await
        .context("cannot run pg_dump: install PostgreSQL's client (apt-get install postgresql-client)")?;
    if !status.success() {
        bail!("pg_dump failed ({status}); its reason is above");
    }
    Ok(())
}

/// `pg_restore` of a `pg_dump --format=custom` file into the (empty)
/// database at `url`.
pub async fn pg_restore(url: &str, dump: &Path) -> Result<()> {
    let status = Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(url)
        .arg(dump)
        .status()
        .await
        .context("cannot run pg_restore: install PostgreSQL's client (apt-get install postgresql-client)")?;
    if !status.success() {
        bail!("pg_restore failed ({status}); its reason is above");
    }
    Ok(())
}

/// Limits on fetching code from elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub timeout: Duration,
    pub max_bytes: u64,
}

/// A shallow `git clone` of `url` (optionally at `reference`) into `dest`,
/// killed after the timeout and refused when the checkout is over the size
/// cap. Only `https://` (and operator-allowed `file://`) URLs are cloned.
/// `credentials` (`user:password`) go to git through its environment as an
/// HTTP header, never on the command line, where process listings show it.
/// The address an https host was checked at; git connects there only.
pub struct Pin {
    pub host: String,
    pub port: u16,
    pub ip: std::net::IpAddr,
}

pub async fn git_clone(
    url: &str,
    reference: Option<&str>,
    credentials: Option<&str>,
    pin: Option<&Pin>,
    dest: &Path,
    limits: FetchLimits,
) -> Result<()> {
    if !(url.starts_with("https://") || url.starts_with("file://")) {
        bail!("only https:// git URLs are fetched");
    }
    if reference.is_some_and(|r| r.starts_with('-') || r.is_empty()) {
        bail!("the git ref after # is invalid");
    }
    let mut cmd = Command::new("git");
    cmd.args(["clone", "--quiet", "--depth", "1"]);
    if let Some(r) = reference {
        cmd.args(["--branch", r]);
    }
    cmd.arg("--").arg(url).arg(dest).env("GIT_TERMINAL_PROMPT", "0").kill_on_drop(true);
    // Only the protocols named above, also for submodules and redirects.
    cmd.env("GIT_ALLOW_PROTOCOL", "https:file");
    // Settings through the environment, never argv: credentials must not
    // show in a process listing.
    let mut config: Vec<(&str, String)> = vec![("http.followRedirects", "false".into())];
    if let Some(credentials) = credentials {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        config.push(("http.extraHeader", format!("Authorization: Basic {basic}")));
    }
    if let Some(pin) = pin {
        let ip = match pin.ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        config.push(("http.curloptResolve", format!("{}:{}:{ip}", pin.host, pin.port)));
    }
    cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
    for (i, (key, value)) in config.into_iter().enumerate() {
        cmd.env(format!("GIT_CONFIG_KEY_{i}"), key).env(format!("GIT_CONFIG_VALUE_{i}"), value);
    }
    let out = match tokio::time::timeout(limits.timeout, cmd.output()).await {
        Ok(out) => out.context("cannot run git clone")?,
        Err(_) => bail!("git clone took longer than {} s", limits.timeout.as_secs()),
    };
    if !out.status.success() {
        bail!("git clone failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let size = dir_size(dest)?;
    if size > limits.max_bytes {
        bail!("the clone is {} MiB, over the {} MiB limit", size >> 20, limits.max_bytes >> 20);
    }
    Ok(())
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// Runs `script`, a fixed script embedded in this binary (never text made
/// from input), with bash and `env` (the operator's settings, which the
/// script quotes), sending each line it prints to `out`. Fails when it does.
pub async fn run_fixed_script(script: &'static str, env: &[(&str, &str)], out: &tokio::sync::mpsc::Sender<String>) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let mut child = Command::new("bash")
        .args(["-c", script, "paas-script"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run bash")?;
    let stdout = child.stdout.take().context("the script's output")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        let _ = out.send(line).await;
    }
    let status = child.wait().await?;
    if !status.success() {
        bail!("the script failed ({status}); its reason is above");
    }
    Ok(())
}

/// `iptables -w ARGS` (waiting for the lock other firewall writers hold):
/// its output, whatever its exit status; an error only when it cannot run.
pub async fn iptables(args: &[&str]) -> Result<std::process::Output> {
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run iptables: install it (apt-get install iptables)")
}
