//! Requirement files as pip reads them, enough to group pins into layers:
//! logical lines (a trailing `\` continues onto the next line, as in the
//! `--generate-hashes` output of pip-compile and `poetry export`),
//! comments, file-wide option lines, and per-requirement options and
//! environment markers kept with their requirement.

/// One requirement: its normalised name and its whole logical line
/// (`pkg==1.0 ; python_version >= "3.9" --hash=sha256:...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    pub name: String,
    pub line: String,
}

/// A requirement file's content, or why it cannot be split into groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReqFile {
    /// File-wide options (`--index-url`, `--extra-index-url`, `--find-links`,
    /// `--pre`, ...): every group's file repeats them.
    pub options: Vec<String>,
    pub reqs: Vec<Req>,
}

/// Parses a requirements file. `None` when it cannot be grouped: it
/// includes other files (`-r`, `-c`), has editable or local-path
/// requirements (`-e`, `./pkg`), or a requirement with no name.
pub fn parse(text: &str) -> Option<ReqFile> {
    let mut out = ReqFile::default();
    for line in logical_lines(text) {
        if line.starts_with('-') {
            let flag = line.split([' ', '=', '\t']).next().unwrap_or("");
            if matches!(flag, "-r" | "--requirement" | "-c" | "--constraint" | "-e" | "--editable") {
                return None;
            }
            out.options.push(line);
            continue;
        }
        let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).unwrap_or(line.len());
        let name = &line[..end];
        // A path or URL, not a name: `./pkg`, `/wheels/x.whl`, `git+https://`.
        if name.is_empty() || line[end..].starts_with([':', '/', '+']) || name.starts_with('.') || name.ends_with(".whl") {
            return None;
        }
        out.reqs.push(Req { name: normalize(name), line });
    }
    Some(out)
}

/// The files a requirements file at `path` includes (`-r`, `-c`), as
/// context paths (relative to its directory); None for one leaving the
/// context.
pub fn includes(path: &str, text: &str) -> Vec<Option<String>> {
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut out = Vec::new();
    for line in logical_lines(text) {
        let rest = ["--requirement", "--constraint", "-r", "-c"].iter().find_map(|f| line.strip_prefix(f));
        let Some(rest) = rest else { continue };
        let target = rest.trim_start_matches(['=', ' ']).split_whitespace().next().unwrap_or("");
        if target.is_empty() || target.contains("://") {
            continue;
        }
        out.push(if target.starts_with('/') { None } else { crate::plan::join_path(dir, target) });
    }
    out
}

/// pip's logical lines: `\`-continued physical lines joined, comments
/// (`#` at the start or after whitespace) and blank lines dropped.
pub fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for raw in text.lines() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let code = strip_comment(raw);
        match code.trim_end().strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head.trim());
                cur.push(' ');
            }
            None => {
                cur.push_str(code.trim());
                let line = cur.split_whitespace().collect::<Vec<_>>().join(" ");
                if !line.is_empty() {
                    out.push(line);
                }
                cur.clear();
            }
        }
    }
    let line = cur.split_whitespace().collect::<Vec<_>>().join(" ");
    if !line.is_empty() {
        out.push(line);
    }
    out
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    let bytes = line.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// PEP 503 normalised name.
pub fn normalize(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        let c = if c == '_' || c == '.' { '-' } else { c };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `poetry export` / `pip-compile --generate-hashes` output: each
    /// requirement continues onto `--hash` lines, with markers.
    const HASHED: &str = "cffi==1.17.1 ; python_version >= \"3.9\" and platform_python_implementation != \"PyPy\" \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\ncryptography==43.0.3 ; python_version >= \"3.9\" \\\n    --hash=sha256:ccc\n# via cryptography\npycparser==2.22 ; python_version >= \"3.9\" \\\n    --hash=sha256:ddd\nsix==1.16.0 \\\n    --hash=sha256:eee  # pinned\n";

    #[test]
    fn continuations_hashes_and_markers_stay_with_their_requirement() {
        let f = parse(HASHED).unwrap();
        assert!(f.options.is_empty(), "{:?}", f.options);
        let names: Vec<&str> = f.reqs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["cffi", "cryptography", "pycparser", "six"]);
        assert_eq!(
            f.reqs[0].line,
            "cffi==1.17.1 ; python_version >= \"3.9\" and platform_python_implementation != \"PyPy\" --hash=sha256:aaa --hash=sha256:bbb"
        );
        assert_eq!(f.reqs[3].line, "six==1.16.0 --hash=sha256:eee");
    }

    #[test]
    fn included_files() {
        let inc = includes(
            "requirements/production.txt",
            "-r base.txt\n--constraint=../constraints.txt\n-r /etc/x.txt\nflask\n-r ../../out.txt\n",
        );
        assert_eq!(inc, [Some("requirements/base.txt".into()), Some("constraints.txt".into()), None, None]);
    }

    #[test]
    fn options_includes_and_paths() {
        let f = parse("--extra-index-url https://x/simple\n-i https://y/simple\nNumpy_Lib==2 # c\nflask>=3\n").unwrap();
        assert_eq!(f.options, ["--extra-index-url https://x/simple", "-i https://y/simple"]);
        assert_eq!(f.reqs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["numpy-lib", "flask"]);
        for bad in ["-r base.txt\nx==1\n", "-e .\n", "./pkg\n", "git+https://h/r.git\n", "--constraint c.txt\n", "/w/x-1.whl\n"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(logical_lines("a \\\n\\\nb\r\n\n#x\nc#not-a-comment\n"), ["a b", "c#not-a-comment"]);
    }
}
