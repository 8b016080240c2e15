//! How many bytes a directory's files hold (`du`), bounded: the first
//! 100,000 entries.

use std::path::Path;

/// The bytes of the regular files under `dir` (0 when it does not exist).
pub fn bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            seen += 1;
            if seen > 100_000 {
                return total;
            }
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
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
