//! The build context: which files leave the client. `.dockerignore`
//! patterns are cleaned and matched as Docker's pattern matcher does, so
//! `strata check`, `strata plan` and `strata init` know which paths a build
//! will see.

/// Patterns of a `.dockerignore` file, cleaned as Docker does: comments and
/// blank lines dropped, leading `/` removed, `!` exceptions kept.
pub fn parse_dockerignore(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (neg, pat) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, line),
        };
        let pat = pat.trim_start_matches('/');
        let pat = pat.strip_suffix('/').unwrap_or(pat);
        if pat.is_empty() || pat == "." {
            continue;
        }
        out.push(if neg { format!("!{pat}") } else { pat.to_string() });
    }
    out
}

/// `.dockerignore` matching: a path is left out when the last pattern
/// that matches it, or one of its parent directories, is not an exception
/// (`!`). Patterns use Go's `filepath.Match` syntax plus `**`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<(bool, Vec<Seg>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// `**`: any number of path segments.
    Any,
    /// One segment's glob (`*`, `?`, `[...]`, `\x`).
    Glob(String),
}

impl Ignore {
    pub fn new(patterns: &[String]) -> Self {
        let patterns = patterns
            .iter()
            .map(|p| {
                let (neg, p) = match p.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, p.as_str()),
                };
                let segs = clean(p)
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| if s == "**" { Seg::Any } else { Seg::Glob(s.to_string()) })
                    .collect();
                (neg, segs)
            })
            .collect();
        Ignore { patterns }
    }

    /// Whether `path` (context-relative, `/`-separated) is left out of the
    /// build context.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut out = false;
        for (neg, segs) in &self.patterns {
            // The path itself or one of its parents.
            let hit = (1..=parts.len()).any(|n| matches(segs, &parts[..n]));
            if hit {
                out = !neg;
            }
        }
        out
    }

    /// The pattern that decides `path`'s exclusion, for messages.
    pub fn excluded_by(&self, path: &str, raw: &[String]) -> Option<String> {
        if !self.excluded(path) {
            return None;
        }
        let path = clean(path);
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.patterns
            .iter()
            .zip(raw)
            .rev()
            .find(|((neg, segs), _)| !neg && (1..=parts.len()).any(|n| matches(segs, &parts[..n])))
            .map(|(_, r)| r.clone())
    }
}

/// `a/./b/../c/` → `a/c` (as Go's filepath.Clean, without leading `/`).
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

fn matches(segs: &[Seg], parts: &[&str]) -> bool {
    match segs.split_first() {
        None => parts.is_empty(),
        Some((Seg::Any, rest)) => (0..=parts.len()).any(|i| matches(rest, &parts[i..])),
        Some((Seg::Glob(g), rest)) => match parts.split_first() {
            Some((first, more)) => glob(g.as_bytes(), first.as_bytes()) && matches(rest, more),
            None => false,
        },
    }
}

/// One path segment against Go's filepath.Match syntax.
fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative with one star backtrack point: linear in practice.
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((true, next)) = class(&p[pi..], s[si]) {
                        pi += next;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                b'\\' if pi + 1 < p.len() => {}
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `p`: whether `c` is in it and the
/// class's length; None when it is not closed.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'^') | Some(b'!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = if p[i] == b'\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_lines() {
        let p = parse_dockerignore("# c\n\n.git\n/outputs/\n!keep.txt\n  *.pyc  \n");
        assert_eq!(p, [".git", "outputs", "!keep.txt", "*.pyc"]);
    }

    fn ig(text: &str) -> Ignore {
        Ignore::new(&parse_dockerignore(text))
    }

    #[test]
    fn matching_follows_docker() {
        let i = ig("*.md\n!README.md\ndocs\n**/__pycache__\nweb-*.json\nsrc/**/*.tmp\n");
        assert!(i.excluded("CHANGELOG.md"));
        assert!(!i.excluded("README.md"));
        assert!(!i.excluded("sub/notes.md"), "`*.md` is for the top level only");
        assert!(i.excluded("docs") && i.excluded("docs/a/b.txt"), "a parent match excludes the children");
        assert!(i.excluded("app/__pycache__/x.pyc") && i.excluded("__pycache__"));
        assert!(i.excluded("web-types.json") && !i.excluded("web.json"));
        assert!(i.excluded("src/a/b/c.tmp") && i.excluded("src/c.tmp") && !i.excluded("src/c.py"));
    }

    /// An allow-list: everything out, then exceptions back in, and a
    /// later exclusion inside an exception.
    #[test]
    fn allow_lists() {
        let i = ig("*\n!/bookmarks\n!/manage.py\n/bookmarks/settings/dev.py\n");
        assert!(i.excluded("Dockerfile") && i.excluded("docs/x"));
        assert!(!i.excluded("manage.py") && !i.excluded("bookmarks/urls.py"));
        assert!(i.excluded("bookmarks/settings/dev.py"));
        assert_eq!(i.excluded_by("Dockerfile", &parse_dockerignore("*\n!/bookmarks\n")).as_deref(), Some("*"));
    }

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("a?c", "abc", true),
            ("a[b-d]c", "acc", true),
            ("a[^b]c", "abc", false),
            ("*.py[cod]", "x.pyc", true),
            ("*x*y*", "axbyc", true),
            ("\\*", "*", true),
            ("[", "[", false),
        ] {
            assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p} {s}");
        }
    }
}
