//! A real terminal for the tests of `paas run`: tmux, read back with its
//! escape codes.

use super::platform::unique_app;
use crate::shared::text;
use std::process::Command;
use std::time::{Duration, Instant};

/// A real terminal: a detached tmux session running one command, whose
/// screen is read back with its escape codes. Each has a tmux server of
/// its own (`-L`), so tests in parallel never race to start the shared
/// one. Killed when dropped.
pub struct Terminal {
    pub session: String,
}

impl Terminal {
    /// Runs `command` (a shell command line) in a new `cols`×`rows`
    /// terminal with `env` set and TERM=xterm-256color.
    pub fn start(command: &str, env: &[(&str, String)], cols: u16, rows: u16) -> Self {
        let session = unique_app("tty");
        let mut tmux = Command::new("tmux");
        tmux.args(["-L", &session, "new-session", "-d", "-s", &session, "-x", &cols.to_string(), "-y", &rows.to_string()]);
        for (k, v) in env.iter().map(|(k, v)| (*k, v.as_str())).chain([("TERM", "xterm-256color")]) {
            tmux.args(["-e", &format!("{k}={v}")]);
        }
        let status = tmux.arg(command).status().expect("tmux: scripts/ensure-deps installs it");
        assert!(status.success(), "tmux could not start a session");
        Self { session }
    }

    /// tmux, talking to this terminal's own server.
    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.session]);
        c
    }

    /// The screen as text, with escape codes when `escapes`.
    pub fn screen(&self, escapes: bool) -> String {
        let mut c = self.tmux();
        c.args(["capture-pane", "-p", "-t", &self.session]);
        if escapes {
            c.arg("-e");
        }
        c.output().map(|o| text(&o.stdout)).unwrap_or_default()
    }

    /// Waits until the screen shows `needle`; returns the screen.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let mut last;
        let found = {
            let deadline = Instant::now() + timeout;
            loop {
                last = self.screen(false);
                if last.contains(needle) {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        assert!(found, "the terminal never showed {needle:?}; it shows:\n{last}");
        last
    }

    /// Types `keys` (tmux key names: "Enter", "C-c", or literal text).
    pub fn keys(&self, keys: &[&str]) {
        let status = self.tmux().args(["send-keys", "-t", &self.session]).args(keys).status().unwrap();
        assert!(status.success());
    }

    /// Types a line of text and Enter.
    pub fn type_line(&self, line: &str) {
        let status = self.tmux().args(["send-keys", "-l", "-t", &self.session, line]).status().unwrap();
        assert!(status.success());
        self.keys(&["Enter"]);
    }

    /// Resizes the terminal, as a user dragging its window would.
    pub fn resize(&self, cols: u16, rows: u16) {
        let status = self
            .tmux()
            .args(["resize-window", "-t", &self.session, "-x", &cols.to_string(), "-y", &rows.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}
