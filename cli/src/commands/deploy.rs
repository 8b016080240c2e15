//! `paas deploy [DIR|FILE.tar.gz]`: a build from a tree on this machine
//! instead of a `git push` (for CI that builds elsewhere, or a directory
//! that is not a repository). A directory is packed as a gzipped tar that
//! leaves out what `.gitignore` and `.dockerignore` leave out, and `.git`;
//! the build streams back as a push's does. `paas deploy --image REF`
//! releases an image built elsewhere.

use super::Ctx;
use crate::exit::{self, bail_usage};
use anyhow::{Context, Result};
use clap::Subcommand;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum Cmd {
    /// Build and release a directory (default: this one) or a .tar.gz/.tar of one, as a push would.
    Deploy {
        /// The directory, or a .tar.gz, .tgz or .tar file.
        #[arg(conflicts_with = "image")]
        path: Option<PathBuf>,
        /// Release this image instead (one the server's engine has, or can pull): `paas deploy --image myapp:1.2`.
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        /// With --image: a process type and its command, `web=CMD` (repeatable; default: the image's paas.procfile label, else its own command as web).
        #[arg(long = "process", requires = "image", value_name = "TYPE=CMD")]
        processes: Vec<String>,
    },
}

/// The tree under `dir` as a gzipped tar in a temporary file.
fn pack(dir: &Path) -> Result<tempfile::NamedTempFile> {
    let file = tempfile::NamedTempFile::new()?;
    let gz = flate2::write::GzEncoder::new(file.reopen()?, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let walk = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .add_custom_ignore_filename(".dockerignore")
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let mut files = 0;
    for entry in walk {
        let entry = entry?;
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        if rel.as_os_str().is_empty() || entry.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        tar.append_path_with_name(entry.path(), rel).with_context(|| format!("cannot pack {}", entry.path().display()))?;
        files += 1;
    }
    if files == 0 {
        bail_usage!("{} has no files to deploy", dir.display());
    }
    tar.into_inner()?.finish()?;
    Ok(file)
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let Cmd::Deploy { path, image, processes } = cmd;
    ctx.no_json("deploy", "it streams the build's output as a push does")?;
    let app = ctx.app()?;
    if let Some(image) = image {
        let mut process_types = std::collections::BTreeMap::new();
        for p in &processes {
            let Some((t, c)) = p.split_once('=') else { bail_usage!("--process {p:?} is not TYPE=CMD: write it as --process web='./server --port $PORT'") };
            process_types.insert(t.trim().to_owned(), c.trim().to_owned());
        }
        let body = serde_json::to_vec(&paas_wire::ImageDeploy { image, process_types })?;
        let lines = ctx.client()?.post_stream(&["apps", &app, "builds"], "application/json", body)?;
        return finish(lines);
    }
    let path = path.unwrap_or_else(|| PathBuf::from("."));
    let name = path.to_string_lossy().to_string();
    let (file, kind) = if path.is_dir() {
        eprintln!("Packing {}...", path.display());
        let packed = pack(&path)?;
        (packed.reopen()?, "application/gzip")
    } else if path.is_file() {
        let kind = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            "application/gzip"
        } else if name.ends_with(".tar") {
            "application/x-tar"
        } else {
            bail_usage!("{name} is not a directory, a .tar.gz, a .tgz or a .tar");
        };
        (std::fs::File::open(&path)?, kind)
    } else {
        bail_usage!("{name} does not exist: give a directory or a .tar.gz of one");
    };
    let lines = ctx.client()?.upload_stream(&["apps", &app, "builds"], kind, file)?;
    finish(lines)
}

/// Prints a build's output as it comes; 0 when it ended well.
fn finish(lines: impl BufRead) -> Result<i32> {
    let mut ok = false;
    for line in lines.lines() {
        let line = line.context("the build's output ended early")?;
        match line.strip_prefix('\u{0}') {
            Some(result) => ok = result == "paas-result ok",
            None => println!("{line}"),
        }
    }
    Ok(if ok { 0 } else { exit::FAILED })
}
