//! `.dockerignore` matching, as Docker's CLI applies it before it sends a
//! build context: patterns match paths relative to the context root (a
//! leading `/` is dropped), `*`/`?` stay within one path segment, `**`
//! crosses segments, a pattern that matches a directory excludes all below
//! it, and a later `!pattern` re-includes what an earlier one excluded.

use globset::GlobMatcher;

pub struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = globset::GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!(".dockerignore line {}: {e}", i + 1))?;
            rules.push((glob.compile_matcher(), negate));
        }
        Ok(Self { rules })
    }

    pub fn empty() -> Self {
        Self { rules: Vec::new() }
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let mut excluded = false;
        for (matcher, negate) in &self.rules {
            if matches_self_or_parent(matcher, path) {
                excluded = !negate;
            }
        }
        excluded
    }
}

/// Docker cleans patterns with `filepath.Clean` and strips the leading `/`.
fn clean(pattern: &str) -> String {
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    parts.join("/")
}

fn matches_self_or_parent(matcher: &GlobMatcher, path: &str) -> bool {
    if matcher.is_match(path) {
        return true;
    }
    let mut parent = path;
    while let Some((p, _)) = parent.rsplit_once('/') {
        if matcher.is_match(p) {
            return true;
        }
        parent = p;
    }
    false
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_by_docker_rules() {
        let ig = DockerIgnore::parse("# comment\nnode_modules\n/secret.txt\n*.log\n!keep.log\ndocs/**/*.md\n").unwrap();
        assert!(ig.is_excluded("node_modules"));
        assert!(ig.is_excluded("node_modules/a/b.js"));
        assert!(ig.is_excluded("secret.txt"));
        assert!(ig.is_excluded("app.log"));
        assert!(!ig.is_excluded("keep.log"));
        assert!(!ig.is_excluded("sub/app.log"), "* does not cross a segment");
        assert!(ig.is_excluded("docs/a/b/c.md"));
        assert!(!ig.is_excluded("src/main.rs"));
    }

    #[test]
    fn bad_pattern_names_its_line() {
        let e = DockerIgnore::parse("ok\n[unclosed\n").err().unwrap();
        assert!(e.starts_with(".dockerignore line 2"), "{e}");
    }
}
