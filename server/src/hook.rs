//! The pre-receive hook, run by `git receive-pack` as `paas-server
//! hook:pre-receive`. It checks the pushed refs, streams the pushed commit's
//! tree (`git archive`, which sees the quarantined objects through the
//! hook's environment) to the server's internal build endpoint, and prints
//! the build output, which git relays to the pusher as `remote:` lines. A
//! non-zero exit rejects the push.

use crate::git::{HOOK_TOKEN_HEADER, RESULT_OK};
use crate::settings::HookEnv;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, Write};
use tokio_util::io::ReaderStream;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// Picks the one commit to deploy from pre-receive's `old new ref` lines.
pub fn deployable_commit(lines: &[String]) -> Result<String> {
    let mut deploy = None;
    for line in lines {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [old, new, refname] = parts[..] else {
            bail!("unexpected pre-receive input {line:?}");
        };
        // Git hands 40 hex digits (the app repos are SHA-1) and a full ref
        // name; anything else is not git's input (fuzzing found any word
        // taken as the commit).
        let hex = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(old) || !hex(new) {
            bail!("unexpected pre-receive input {line:?}: the commits are not object names");
        }
        let Some(branch) = refname.strip_prefix("refs/heads/") else {
            bail!("pushed {refname}, but only the branches main or master deploy: run `git push paas HEAD:main`");
        };
        if branch != "main" && branch != "master" {
            bail!("pushed {refname}, but only main or master deploy: run `git push paas HEAD:main` (or `git push paas yourbranch:main`)");
        }
        if new == ZERO {
            bail!("deleting {branch} is not supported: push a commit to deploy instead");
        }
        if deploy.replace(new.to_owned()).is_some() {
            bail!("pushed both main and master: push one branch");
        }
    }
    deploy.context("nothing to deploy: the push named no branch")
}

pub fn run() -> i32 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run_async()) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            println!(" !     {e:#}");
            1
        }
    }
}

async fn run_async() -> Result<bool> {
    let HookEnv { url, token, app, push } = HookEnv::from_env()?;
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<std::io::Result<_>>()?;
    let commit = deployable_commit(&lines)?;

    let mut archive = crate::tools::git_archive(&commit)?;
    let tree = ReaderStream::new(archive.stdout.take().expect("stdout is piped"));
    // The hook calls the server that started it, on this machine; over
    // HTTPS (PAAS_TLS_CERT) the certificate names the server's public host
    // name, not 127.0.0.1, and the per-start secret is what authenticates.
    let loopback = reqwest::Url::parse(&url).ok().and_then(|u| u.host_str().map(|h| h == "127.0.0.1" || h == "[::1]" || h == "localhost")).unwrap_or(false);
    let client = reqwest::Client::builder().danger_accept_invalid_certs(loopback).build()?;
    let resp = client
        .post(format!("{url}/internal/apps/{app}/builds?commit={commit}"))
        .header(HOOK_TOKEN_HEADER, token)
        .header(crate::git::PUSH_HEADER, push)
        .body(reqwest::Body::wrap_stream(tree))
        .send()
        .await
        .context("cannot reach paas-server to build")?;
    if !resp.status().is_success() {
        let text = resp.text().await.unwrap_or_default();
        bail!("paas-server refused the build: {text}");
    }
    let status = archive.wait().await?;
    if !status.success() {
        bail!("git archive failed for {commit}");
    }
    let mut resp = resp;
    let mut pending = Vec::new();
    let mut ok = false;
    let mut stdout = std::io::stdout();
    while let Some(chunk) = resp.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if line.starts_with('\0') {
                ok = line == RESULT_OK;
            } else {
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
            }
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Vec<String> {
        s.lines().map(str::to_owned).collect()
    }

    #[test]
    fn only_main_or_master_deploy() {
        let a = "a".repeat(40);
        assert_eq!(deployable_commit(&l(&format!("{ZERO} {a} refs/heads/main"))).unwrap(), a);
        assert_eq!(deployable_commit(&l(&format!("{ZERO} {a} refs/heads/master"))).unwrap(), a);
        let e = deployable_commit(&l(&format!("{ZERO} {a} refs/heads/feature"))).unwrap_err();
        assert!(e.to_string().contains("only main or master deploy"), "{e}");
        assert!(deployable_commit(&l(&format!("{a} {ZERO} refs/heads/main"))).is_err());
        let both = format!("{ZERO} {a} refs/heads/main\n{ZERO} {a} refs/heads/master");
        assert!(deployable_commit(&l(&both)).is_err());
        assert!(deployable_commit(&[]).is_err());
        // What fuzzing found: any word was taken as the commit, and a bare
        // branch name as a ref.
        let e = deployable_commit(&l("\u{1b}a\taa\tmain")).unwrap_err();
        assert!(e.to_string().contains("not object names"), "{e}");
        let e = deployable_commit(&l(&format!("{ZERO} {a} main"))).unwrap_err();
        assert!(e.to_string().contains("only the branches main or master deploy"), "{e}");
    }
}
