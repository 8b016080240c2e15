//! The commands run around a deploy, each once in a task container of the
//! release's image: Dokku's predeploy and the Procfile's `release` before a
//! release is made, Heroku's and Dokku's postdeploy after its dynos came up.

use super::Scheduler;
use crate::output::Output;
use crate::runtime::TaskSpec;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::time::Duration;

impl Scheduler {
    /// Runs a command around a deploy (the `release` command, or an
    /// app.json script) once in a container from `image` with `env`, its
    /// output into `out`. A non-zero exit is an error.
    pub async fn run_phase(
        &self,
        app: &str,
        image: &str,
        phase: Phase,
        command: &str,
        env: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<()> {
        let what = phase.as_str();
        out.heading(format!("Running {what} command: {command}")).await;
        let mut env = env.clone();
        env.insert("PAAS_APP".into(), app.to_owned());
        env.insert("DYNO".into(), format!("{what}.1"));
        let spec = TaskSpec {
            name: format!("{what}-{app}"),
            image: image.to_owned(),
            cmd: vec!["/bin/sh".into(), "-c".into(), command.to_owned()],
            env,
            timeout: Some(Duration::from_secs(30 * 60)),
            ..Default::default()
        };
        let sink = out.sink(true);
        let result = self.inner.runtime.run_task(&spec, &sink.tx).await;
        sink.close().await;
        let code = result?.exit_code;
        if code != 0 {
            bail!("the {what} command exited with status {code}");
        }
        Ok(())
    }
}

/// A command run around a deploy, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// app.json `scripts.dokku.predeploy`: before the release is made.
    Predeploy,
    /// The Procfile's `release` command: before the release is made.
    Release,
    /// app.json `scripts.postdeploy` (Heroku's, once per app): after the
    /// first deploy whose dynos came up.
    FirstPostdeploy,
    /// app.json `scripts.dokku.postdeploy`: after each deploy whose dynos
    /// came up.
    Postdeploy,
}

impl Phase {
    /// Its name in the output, in `DYNO` and in the task container's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Predeploy => "predeploy",
            Phase::Release => "release",
            Phase::FirstPostdeploy => "first-postdeploy",
            Phase::Postdeploy => "postdeploy",
        }
    }
}
