//! The fast tests' git and CLI: repos pushed with real git to the
//! in-process server (whose hook calls back into it), and the real `paas`
//! CLI pointed at it.

use crate::harness::Fast;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A git repo with a Dockerfile app, one commit.
pub fn dockerfile_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /app\n").unwrap();
    std::fs::write(dir.path().join("Procfile"), "web: serve\n").unwrap();
    for args in [&["init", "-q", "-b", "main"][..], &["add", "-A"], &["commit", "-qm", "first"]] {
        git(dir.path(), args);
    }
    dir
}

/// The standard output of a command that must have succeeded (else its
/// streams in the failure).
pub fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", crate::shared::text(&out.stdout), crate::shared::text(&out.stderr));
    crate::shared::text(&out.stdout)
}

pub fn git(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap()
}

impl Fast {
    /// A real `git push` to this in-process server: (accepted, what git said).
    pub async fn push(&self, dir: &std::path::Path, app: &str) -> (bool, String) {
        let url = format!("http://git:{}@{}/{app}.git", self.token, self.p().api_addr);
        let dir = dir.to_path_buf();
        let out = tokio::task::spawn_blocking(move || git(&dir, &["push", &url, "HEAD:main"])).await.unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

impl Fast {
    /// The CLI with `args` against this server, its streams piped, colour
    /// off, ready to spawn.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::shared::cli_exe());
        c.args(args)
            .env("PAAS_API_URL", self.p().api_url())
            .env("PAAS_TOKEN", &self.token)
            .env("HOME", &self.settings.server.data_dir)
            // Not inside this project's own repo: `apps:create` sets a git
            // remote in a repo it runs in.
            .current_dir(&self.settings.server.data_dir)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("PAAS_APP")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `command` (from [`Fast::cli`]) to its end, fed `input`.
    pub async fn finish(command: Command, input: &[u8]) -> Output {
        let (mut command, input) = (command, input.to_vec());
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let feeder = std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
            let out = child.wait_with_output().unwrap();
            feeder.join().unwrap();
            out
        })
        .await
        .unwrap()
    }

    /// The CLI with `args` against this server, fed `input`, to its end.
    pub async fn paas(&self, args: &[&str], input: &[u8]) -> Output {
        Self::finish(self.cli(args), input).await
    }
}
