//! One-off dynos (`paas run`): created as dynos of kind `run` with the
//! session and expiry labels, attached before they start when a client
//! waits, listed back, sized and signalled.

use super::DockerRuntime;
use crate::runtime::labels;
use anyhow::{anyhow, Context, Result};
use bollard::models::ContainerSummary;
use std::time::Duration;

impl DockerRuntime {
    pub(super) fn one_off_from_summary(&self, c: &ContainerSummary) -> Option<crate::runtime::OneOff> {
        let dyno = self.dyno_from_summary(c, crate::runtime::KIND_RUN, None)?;
        let l = c.labels.as_ref()?;
        Some(crate::runtime::OneOff {
            dyno,
            command: l.get(labels::COMMAND).cloned().unwrap_or_default(),
            session: l.get(labels::SESSION).filter(|s| !s.is_empty()).cloned(),
            expires_at: l.get(labels::EXPIRES).and_then(|e| e.parse().ok()).unwrap_or(i64::MAX),
        })
    }

    pub(super) async fn start_one_off(
        &self,
        spec: &crate::runtime::OneOffSpec,
    ) -> Result<(crate::runtime::OneOff, Option<crate::runtime::Attachment>)> {
        let d = &spec.dyno;
        let extra = [
            (labels::COMMAND, d.command.clone()),
            (labels::SESSION, spec.session.clone().unwrap_or_default()),
            (labels::EXPIRES, spec.expires_at.to_string()),
        ];
        let (name, mut config) = self.dyno_config(d, crate::runtime::KIND_RUN, &extra).await?;
        let attached = spec.session.is_some();
        config.tty = Some(spec.tty.is_some());
        config.open_stdin = Some(attached);
        config.stdin_once = Some(attached);
        config.attach_stdin = Some(attached);
        config.attach_stdout = Some(attached);
        config.attach_stderr = Some(attached);
        let what = format!("{}.{}", d.process_type, d.index);
        let id = self.create(&name, config, &what).await?;
        let attachment = if attached {
            match self.attach(&id, spec.tty.is_some()).await {
                Ok(a) => Some(a),
                Err(e) => {
                    let _ = self.stop_dyno(&id, Duration::ZERO).await;
                    return Err(e);
                }
            }
        } else {
            None
        };
        self.start_created(&id, &what).await?;
        if let Some((cols, rows)) = spec.tty {
            // The engine (API 1.41) takes a size only once the process
            // runs, as `docker run -t` does it.
            if let Err(e) = self.resize_tty(&id, cols, rows).await {
                tracing::debug!(error = %format!("{e:#}"), "cannot size the terminal");
            }
        }
        let one_off = self
            .listed(&id)
            .await?
            .iter()
            .find_map(|c| self.one_off_from_summary(c))
            .ok_or_else(|| anyhow!("one-off dyno {what} vanished right after it started"))?;
        Ok((one_off, attachment))
    }

    pub(super) async fn list_one_offs(&self, app: Option<&str>) -> Result<Vec<crate::runtime::OneOff>> {
        let kind = format!("{}={}", labels::KIND, crate::runtime::KIND_RUN);
        let list = self
            .labelled(std::iter::once(kind).chain(app.map(|app| format!("{}={app}", labels::APP))))
            .await?;
        Ok(list.iter().filter_map(|c| self.one_off_from_summary(c)).collect())
    }

    pub(super) async fn resize_tty(&self, container_id: &str, cols: u16, rows: u16) -> Result<()> {
        let size = bollard::container::ResizeContainerTtyOptions {
            width: cols,
            height: rows,
        };
        self.docker
            .resize_container_tty(container_id, size)
            .await
            .context("cannot resize the terminal")
    }

    pub(super) async fn signal(&self, container_id: &str, signal: &str) -> Result<()> {
        let options = bollard::container::KillContainerOptions {
            signal: format!("SIG{signal}"),
        };
        match self.docker.kill_container(container_id, Some(options)).await {
            Ok(()) => Ok(()),
            // Not running (409) or gone (404): nothing to signal.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409, ..
            }) => Ok(()),
            Err(e) => Err(anyhow!(e).context("cannot signal the process")),
        }
    }
}
