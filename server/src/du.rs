//! A directory's files and how many bytes they hold (`du`), bounded.

use std::path::Path;

/// The regular files under `dir` with their sizes, at most `max_entries`
/// entries looked at (none when it does not exist).
pub fn files(dir: &Path, max_entries: usize) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            seen += 1;
            if seen > max_entries {
                return out;
            }
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if m.is_file() => out.push((e.path(), m.len())),
                _ => {}
            }
        }
    }
    out
}

/// The bytes of the regular files under `dir` (0 when it does not exist).
pub fn bytes(dir: &Path) -> u64 {
    files(dir, 100_000).iter().map(|(_, len)| len).sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_below_are_added_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("g"), b"xy").unwrap();
        assert_eq!(super::bytes(dir.path()), 1002);
        assert_eq!(super::bytes(&dir.path().join("none")), 0);
    }
}
