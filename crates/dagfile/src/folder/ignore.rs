//! `.updraftignore`: glob patterns (no regexes) that hide files and folders of a DAG folder.
//!
//! One pattern a line; `#` starts a comment line. A pattern applies to the folder holding the
//! ignore file and everything below it. `*` and `?` match within one path component, `**`
//! across components. A pattern without `/` matches a file or folder name at any depth; one
//! with `/` matches the path relative to the ignore file's folder (a leading `/` is allowed).
//! A trailing `/` matches folders only. Negation (`!`) is not supported.

use std::path::{Path, PathBuf};

/// The file name that holds ignore patterns.
pub const IGNORE_FILE: &str = ".updraftignore";

/// The patterns of one ignore file.
#[derive(Debug, Clone)]
pub(crate) struct IgnoreRules {
    base: PathBuf,
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    glob: Vec<char>,
    anchored: bool,
    dir_only: bool,
}

impl IgnoreRules {
    pub fn parse(base: &Path, text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let dir_only = line.ends_with('/');
                let line = line.trim_end_matches('/');
                let anchored = line.contains('/');
                Pattern {
                    glob: line.trim_start_matches('/').chars().collect(),
                    anchored,
                    dir_only,
                }
            })
            .filter(|p| !p.glob.is_empty())
            .collect();
        IgnoreRules {
            base: base.to_path_buf(),
            patterns,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (below `base`) is ignored.
    pub fn ignores(&self, path: &Path, is_dir: bool) -> bool {
        let Ok(relative) = path.strip_prefix(&self.base) else {
            return false;
        };
        let relative: Vec<char> = relative
            .to_string_lossy()
            .replace('\\', "/")
            .chars()
            .collect();
        let name: Vec<char> = path
            .file_name()
            .map(|n| n.to_string_lossy().chars().collect())
            .unwrap_or_default();
        self.patterns.iter().any(|p| {
            (is_dir || !p.dir_only)
                && if p.anchored {
                    glob_match(&p.glob, &relative)
                } else {
                    glob_match(&p.glob, &name)
                }
        })
    }
}

/// Glob matching with backtracking over the last star; `**` also crosses `/`.
fn glob_match(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last star: (pattern index after it, text index, crosses '/').
    let mut resume: Option<(usize, usize, bool)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            let double = pattern.get(p + 1) == Some(&'*');
            p += if double { 2 } else { 1 };
            // `**/` also matches zero folders.
            if double && pattern.get(p) == Some(&'/') {
                p += 1;
            }
            resume = Some((p, t, double));
            continue;
        }
        if p < pattern.len() && (pattern[p] == text[t] || (pattern[p] == '?' && text[t] != '/')) {
            p += 1;
            t += 1;
            continue;
        }
        match resume {
            Some((rp, rt, crosses)) if crosses || text[rt] != '/' => {
                resume = Some((rp, rt + 1, crosses));
                p = rp;
                t = rt + 1;
            }
            _ => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*' || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_match(&p, &t)
    }

    #[test]
    fn globs() {
        let cases = [
            ("*.yaml", "a.yaml", true),
            ("*.yaml", "a.yml", false),
            ("*", "sub/a.yaml", false),
            ("sub/*", "sub/a.yaml", true),
            ("sub/*", "sub/deep/a.yaml", false),
            ("sub/**", "sub/deep/a.yaml", true),
            ("**/a.yaml", "a.yaml", true),
            ("**/a.yaml", "x/y/a.yaml", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("draft_*", "draft_users.yaml", true),
            ("exact.json", "exact.json", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(matches(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn rules() {
        let base = Path::new("/dags");
        let rules = IgnoreRules::parse(base, "# comment\n\ndrafts/\n/vendor/*.yaml\n*.tmp.yaml\n");
        assert!(rules.ignores(Path::new("/dags/drafts"), true));
        assert!(rules.ignores(Path::new("/dags/team/drafts"), true));
        assert!(!rules.ignores(Path::new("/dags/drafts"), false));
        assert!(rules.ignores(Path::new("/dags/vendor/x.yaml"), false));
        assert!(!rules.ignores(Path::new("/dags/team/vendor/x.yaml"), false));
        assert!(rules.ignores(Path::new("/dags/team/x.tmp.yaml"), false));
        assert!(!rules.ignores(Path::new("/dags/team/x.yaml"), false));
    }
}
