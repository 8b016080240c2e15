//! The pushed tree: a `git archive` tar, kept in a temporary file so that a
//! large push never sits whole in the server's memory. This module reads
//! what the builder needs to look at (Dockerfile, Procfile, app.json,
//! `.dockerignore`) and copies the tree into other tars (the Docker build
//! context, the buildpack upload) entry by entry.

use crate::dockerignore::DockerIgnore;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// A tree over the size cap (`PAAS_MAX_PUSH_MB`): its message names the cap.
#[derive(Debug)]
pub struct TooLarge(pub String);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TooLarge {}

/// The pushed tree on disk. The file goes away with this value.
pub struct SourceFile {
    file: tempfile::NamedTempFile,
    pub bytes: u64,
}

impl SourceFile {
    /// Streams `body` into a new temporary file, refusing more than `limit`
    /// bytes.
    pub async fn receive<S, E>(dir: &Path, mut body: S, limit: u64) -> Result<Self>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let file = tempfile::Builder::new().prefix("push-").suffix(".tar").tempfile_in(dir)?;
        let mut w = tokio::fs::File::from_std(file.reopen()?);
        let mut bytes = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| anyhow!("the pushed tree ended early: {e}"))?;
            bytes += chunk.len() as u64;
            if bytes > limit {
                return Err(TooLarge(format!(
                    "the pushed tree is larger than {} KiB (PAAS_MAX_PUSH_MB): leave build artefacts and large data out of the repo",
                    limit >> 10
                ))
                .into());
            }
            w.write_all(&chunk).await?;
        }
        w.flush().await?;
        Ok(Self { file, bytes })
    }

    /// A source file from bytes already in memory (tests, small trees).
    pub fn from_bytes(dir: &Path, tar: &[u8]) -> Result<Self> {
        let mut file = tempfile::Builder::new().prefix("push-").suffix(".tar").tempfile_in(dir)?;
        file.write_all(tar)?;
        file.flush()?;
        Ok(Self { file, bytes: tar.len() as u64 })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn open(&self) -> Result<std::io::BufReader<std::fs::File>> {
        let mut f = self.file.reopen()?;
        f.rewind()?;
        Ok(std::io::BufReader::new(f))
    }
}

/// What the pushed tree holds that the builder looks at.
#[derive(Debug, Default)]
pub struct SourceTree {
    pub has_dockerfile: bool,
    /// The `ARG` names the Dockerfile declares (config vars of these names
    /// are its build arguments).
    pub dockerfile_args: Vec<String>,
    pub procfile: Option<String>,
    pub app_json: Option<String>,
    pub dockerignore: Option<String>,
    /// `maintenance.html`: the page the router shows in maintenance mode.
    pub maintenance_page: Option<String>,
}

/// Reads the files the builder looks at from a `git archive` tar.
pub fn read_source(tar: impl Read) -> Result<SourceTree> {
    let mut tree = SourceTree::default();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().context("the pushed tree is not a tar")? {
        let mut entry = entry?;
        let path = entry_path(&entry)?;
        if entry.header().entry_type().is_file() {
            match path.as_str() {
                ".dockerignore" => tree.dockerignore = Some(read_text(&mut entry, ".dockerignore")?),
                "Procfile" => tree.procfile = Some(read_text(&mut entry, "Procfile")?),
                "app.json" => tree.app_json = Some(read_text(&mut entry, "app.json")?),
                "maintenance.html" => tree.maintenance_page = Some(read_text(&mut entry, "maintenance.html")?),
                "Dockerfile" => {
                    tree.has_dockerfile = true;
                    tree.dockerfile_args = dockerfile_args(&read_text(&mut entry, "Dockerfile")?);
                }
                _ => {}
            }
        }
    }
    Ok(tree)
}

/// Files looked into by [`scan_tree`], and bytes read in all; past these
/// the rest of a tree is not looked into.
const SCAN_FILES: usize = 20_000;
const SCAN_BYTES: usize = 64 << 20;

/// What a pushed tree shows against the twelve factors (its secrets and
/// dependency pins; see [`crate::twelve::scan`]).
pub fn scan_tree(tar: impl Read) -> Result<Vec<crate::twelve::Finding>> {
    let mut scanner = crate::twelve::scan::Scanner::default();
    let (mut files, mut bytes) = (0, 0);
    let mut archive = tar::Archive::new(tar);
    let mut buf = Vec::new();
    for entry in archive.entries().context("the pushed tree is not a tar")? {
        let entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry_path(&entry)?;
        if files >= SCAN_FILES || bytes >= SCAN_BYTES {
            break;
        }
        buf.clear();
        entry.take(crate::twelve::scan::READ_BYTES as u64).read_to_end(&mut buf)?;
        files += 1;
        bytes += buf.len();
        scanner.file(&path, &buf);
    }
    Ok(scanner.finish())
}

/// The names a Dockerfile declares with `ARG NAME` or `ARG NAME=default`.
pub fn dockerfile_args(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.get(..4).filter(|k| k.eq_ignore_ascii_case("ARG ")).map(|_| &l[4..])?;
            rest.split_whitespace().map(|a| a.split('=').next().unwrap_or_default().to_owned()).next()
        })
        .filter(|n| paas_wire::ConfigKey::parse(n).is_ok() || n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .collect()
}

/// Writes the Docker build context, `.dockerignore` applied, to a new
/// temporary file in `dir`.
pub fn write_context(source: &SourceFile, tree: &SourceTree, dir: &Path) -> Result<tempfile::NamedTempFile> {
    let ignore = match &tree.dockerignore {
        Some(text) => DockerIgnore::parse(text).map_err(|e| anyhow!(e))?,
        None => DockerIgnore::empty(),
    };
    let file = tempfile::Builder::new().prefix("context-").suffix(".tar").tempfile_in(dir)?;
    let mut context = tar::Builder::new(std::io::BufWriter::new(file.reopen()?));
    // Docker always sends the Dockerfile and .dockerignore themselves.
    copy_tree(source.open()?, &mut context, "", |path| {
        !ignore.is_excluded(path) || path == "Dockerfile" || path == ".dockerignore"
    })?;
    context.into_inner()?.flush()?;
    Ok(file)
}

/// Copies the files, folders and symlinks of a `git archive` tar into `out`,
/// each under `prefix`, where `keep(path)` says so. Symlinks are copied as
/// links, never followed; other entry kinds are left out.
pub fn copy_tree<W: Write>(
    tar_in: impl Read,
    out: &mut tar::Builder<W>,
    prefix: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut archive = tar::Archive::new(tar_in);
    for entry in archive.entries().context("the pushed tree is not a tar")? {
        let entry = entry?;
        let path = entry_path(&entry)?;
        let kind = entry.header().entry_type();
        if path.is_empty() || !(kind.is_file() || kind.is_dir() || kind.is_symlink()) || !keep(&path) {
            continue;
        }
        let mut header = entry.header().clone();
        let target = format!("{prefix}{path}");
        if kind.is_symlink() {
            let link = entry.link_name()?.ok_or_else(|| anyhow!("symlink {path} has no target"))?;
            out.append_link(&mut header, &target, link)?;
        } else {
            out.append_data(&mut header, &target, entry)?;
        }
    }
    Ok(())
}

fn entry_path<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String> {
    let path = entry.path()?;
    let path = path.to_str().ok_or_else(|| anyhow!("a file name in the repository is not UTF-8"))?;
    Ok(path.trim_start_matches("./").trim_end_matches('/').to_owned())
}

fn read_text<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<String> {
    const LIMIT: u64 = 1 << 20;
    if entry.header().size()? > LIMIT {
        bail!("{name} is larger than 1 MiB");
    }
    let mut text = String::new();
    entry.read_to_string(&mut text).with_context(|| format!("{name} is not UTF-8 text"))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_args_are_the_declared_names() {
        let text = "FROM x\nARG NPM_TOKEN\narg greeting=hi\n  ARG A B\nRUN echo ARG NOT\n# ARG COMMENTED\n";
        assert_eq!(dockerfile_args(text), ["NPM_TOKEN", "greeting", "A"]);
    }

    pub(crate) fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn names(context: &Path) -> Vec<String> {
        let mut a = tar::Archive::new(std::fs::File::open(context).unwrap());
        a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
    }

    #[test]
    fn context_honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        let src = tar_of(&[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "secret.txt\nlogs\nDockerfile\n"),
            ("Procfile", "web: serve\n"),
            ("secret.txt", "s3cret"),
            ("logs/a.log", "x"),
            ("src/app.sh", "echo hi"),
        ]);
        let source = SourceFile::from_bytes(dir.path(), &src).unwrap();
        let tree = read_source(source.open().unwrap()).unwrap();
        assert!(tree.has_dockerfile);
        assert_eq!(tree.procfile.as_deref(), Some("web: serve\n"));
        let context = write_context(&source, &tree, dir.path()).unwrap();
        assert_eq!(names(context.path()), ["Dockerfile", ".dockerignore", "Procfile", "src/app.sh"]);
    }

    #[test]
    fn no_dockerfile_is_seen() {
        let tree = read_source(&tar_of(&[("index.html", "hi")])[..]).unwrap();
        assert!(!tree.has_dockerfile);
        assert!(tree.procfile.is_none());
    }

    #[tokio::test]
    async fn a_push_over_the_limit_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = futures_util::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 1024]))),
        );
        let err = SourceFile::receive(dir.path(), chunks, 4096).await.err().unwrap();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
