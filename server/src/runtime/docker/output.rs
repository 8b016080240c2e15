//! A dyno's output as the engine keeps it: the last lines of a dyno that
//! ended, and following it (`docker logs --follow --timestamps`) from a
//! cursor, frames joined back into lines.

use super::DockerRuntime;
use anyhow::{anyhow, Result};
use bollard::container::{LogOutput, LogsOptions};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// One frame of `docker logs --timestamps`: `2026-11-22T10:00:00.123456789Z text`.
pub(super) fn parse_output_frame(message: &[u8], stderr: bool) -> Option<crate::runtime::OutputLine> {
    let text = String::from_utf8_lossy(message);
    let (stamp, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    let at_ns = at.timestamp_nanos_opt()?;
    let rest = rest.strip_suffix('\n').unwrap_or(rest);
    let rest = rest.strip_suffix('\r').unwrap_or(rest);
    Some(crate::runtime::OutputLine {
        at_ns,
        stderr,
        text: rest.to_owned(),
    })
}

impl DockerRuntime {
    pub(super) async fn output_tail(&self, container_id: &str, lines: usize) -> Result<Vec<String>> {
        let mut logs = self.docker.logs(
            container_id,
            Some(LogsOptions::<String> {
                stdout: true,
                stderr: true,
                tail: lines.to_string(),
                ..Default::default()
            }),
        );
        let mut text = Vec::new();
        while let Some(chunk) = logs.next().await {
            match chunk {
                Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                    text.extend_from_slice(&message)
                }
                Ok(_) => {}
                Err(e) => return Err(anyhow!(e).context("cannot read the dyno's output")),
            }
        }
        let text = String::from_utf8_lossy(&text);
        let all: Vec<String> = text.lines().map(str::to_owned).collect();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }

    pub(super) fn follow_output(&self, container_id: &str, since: i64) -> mpsc::Receiver<Result<crate::runtime::OutputLine>> {
        let (tx, rx) = mpsc::channel(1024);
        let docker = self.docker.clone();
        let id = container_id.to_owned();
        tokio::spawn(async move {
            let options = LogsOptions::<String> {
                follow: true,
                stdout: true,
                stderr: true,
                timestamps: true,
                since,
                tail: "all".into(),
                ..Default::default()
            };
            let mut logs = docker.logs(&id, Some(options));
            // The engine splits lines over 16 KiB into frames; a frame that
            // does not end in a newline continues in the next.
            let mut partial: Option<crate::runtime::OutputLine> = None;
            while let Some(frame) = logs.next().await {
                let (stderr, message) = match frame {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => (false, message),
                    Ok(LogOutput::StdErr { message }) => (true, message),
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow!(e).context("the dyno's output stream broke"))).await;
                        return;
                    }
                };
                let Some(line) = parse_output_frame(&message, stderr) else {
                    continue;
                };
                let ends = message.ends_with(b"\n");
                let line = match partial.take() {
                    Some(mut head) => {
                        head.text.push_str(&line.text);
                        head
                    }
                    None => line,
                };
                if !ends {
                    partial = Some(line);
                    continue;
                }
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
            if let Some(line) = partial {
                let _ = tx.send(Ok(line)).await;
            }
        });
        rx
    }
}
