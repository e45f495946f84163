//! The files init reads, gathered once: the top of the project, its
//! `.dockerignore`, the Dockerfile and the stage that is the service, the
//! compose service, the Procfile, pyproject.toml and the Python sources
//! (bounded: init never reads more than a few megabytes).

use std::path::{Path, PathBuf};

use super::compose;
use super::dockerfile::{self, Dockerfile, Stage};
use crate::context::Ignore;

/// Python sources init looks at for app objects, and how much of each.
const MAX_PY_FILES: usize = 400;
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// Directories that are never the app's code.
pub const NOT_CODE: &[&str] = &[
    ".git",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "__pycache__",
    "tests",
    "test",
    "docs",
    "build",
    "dist",
    ".tox",
    "site-packages",
    "migrations",
];

pub struct Facts {
    pub dir: PathBuf,
    /// Top-level entries (name, is a directory), sorted.
    pub top: Vec<(String, bool)>,
    pub ignore_patterns: Vec<String>,
    pub ignore: Ignore,
    /// The Dockerfile (context-relative path) and its parse.
    pub dockerfile: Option<(String, Dockerfile)>,
    /// The stage of `dockerfile` that is the service.
    pub stage: Option<usize>,
    pub compose: Option<compose::Service>,
    /// The `web:` line of a Procfile.
    pub procfile_web: Option<String>,
    /// What runs before each deploy (file, command): a Procfile's
    /// `release:` line or heroku.yml's `release.command`, migrations mostly.
    pub release: Option<(String, String)>,
    /// pyproject.toml's text.
    pub pyproject: Option<String>,
    /// Python sources (context-relative path, text), not ignored.
    pub py_files: Vec<(String, String)>,
}

impl Facts {
    pub fn gather(dir: &Path) -> std::io::Result<Facts> {
        let mut top: Vec<(String, bool)> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| (e.file_name().to_string_lossy().to_string(), e.path().is_dir()))
            .collect();
        top.sort();
        let read = |rel: &str| read_bounded(&dir.join(rel));
        let ignore_patterns = crate::context::parse_dockerignore(&read(".dockerignore").unwrap_or_default());
        let ignore = Ignore::new(&ignore_patterns);
        let compose = compose::find(dir);
        let dockerfile = pick_dockerfile(dir, compose.as_ref());
        let stage = dockerfile.as_ref().and_then(|(_, df)| pick_stage(df, compose.as_ref().and_then(|c| c.target.as_deref())));
        let procfile = read("Procfile");
        let procfile_web = procfile.as_deref().and_then(|t| procfile_process(t, "web"));
        let release = procfile
            .as_deref()
            .and_then(|t| procfile_process(t, "release"))
            .map(|c| ("Procfile".to_string(), c))
            .or_else(|| read("heroku.yml").and_then(|t| heroku_release(&t)).map(|c| ("heroku.yml".to_string(), c)));
        let pyproject = read("pyproject.toml");
        let mut facts = Facts {
            dir: dir.to_path_buf(),
            top,
            ignore_patterns,
            ignore,
            dockerfile,
            stage,
            compose,
            procfile_web,
            release,
            pyproject,
            py_files: vec![],
        };
        let mut files = Vec::new();
        facts.walk_py("", 0, &mut files);
        facts.py_files = files;
        Ok(facts)
    }

    /// A context file's text, when it exists, is not ignored and is small.
    pub fn read(&self, rel: &str) -> Option<String> {
        if self.ignore.excluded(rel) {
            return None;
        }
        read_bounded(&self.dir.join(rel))
    }

    /// Whether a context path exists and reaches the build.
    pub fn has(&self, rel: &str) -> bool {
        self.dir.join(rel).exists() && !self.ignore.excluded(rel)
    }

    pub fn stage(&self) -> Option<&Stage> {
        let (_, df) = self.dockerfile.as_ref()?;
        df.stages.get(self.stage?)
    }

    pub fn dockerfile_name(&self) -> &str {
        self.dockerfile.as_ref().map(|(n, _)| n.as_str()).unwrap_or("Dockerfile")
    }

    /// Every RUN of the service's stage and the stages it needs.
    pub fn runs(&self) -> Vec<&dockerfile::Run> {
        let Some((_, df)) = &self.dockerfile else { return vec![] };
        let Some(i) = self.stage else { return vec![] };
        df.needed_stages(i).into_iter().flat_map(|s| df.stages[s].runs.iter()).collect()
    }

    fn walk_py(&self, rel: &str, depth: usize, out: &mut Vec<(String, String)>) {
        if depth > 4 || out.len() >= MAX_PY_FILES {
            return;
        }
        let Ok(rd) = std::fs::read_dir(self.dir.join(rel)) else { return };
        let mut entries: Vec<(String, bool)> =
            rd.filter_map(|e| e.ok()).map(|e| (e.file_name().to_string_lossy().to_string(), e.path().is_dir())).collect();
        entries.sort();
        for (name, is_dir) in entries {
            let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if name.starts_with('.') || self.ignore.excluded(&path) {
                continue;
            }
            if is_dir {
                if !NOT_CODE.contains(&name.as_str()) {
                    self.walk_py(&path, depth + 1, out);
                }
            } else if name.ends_with(".py") {
                if let Some(t) = read_bounded(&self.dir.join(&path)) {
                    out.push((path, t));
                }
            }
            if out.len() >= MAX_PY_FILES {
                return;
            }
        }
    }
}

fn read_bounded(p: &Path) -> Option<String> {
    let meta = std::fs::metadata(p).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    std::fs::read(p).ok().map(|b| String::from_utf8_lossy(&b).to_string())
}

/// The Dockerfile compose builds the service from, else the best
/// candidate (`Dockerfile` at the top first).
fn pick_dockerfile(dir: &Path, compose: Option<&compose::Service>) -> Option<(String, Dockerfile)> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(f) = compose.and_then(|c| c.dockerfile.clone()) {
        candidates.push(dir.join(f));
    }
    candidates.extend(dockerfile::find(dir));
    for c in candidates {
        let Some(text) = read_bounded(&c) else { continue };
        let Ok(df) = dockerfile::parse(&text) else { continue };
        if df.stages.is_empty() {
            continue;
        }
        let rel = c.strip_prefix(dir).unwrap_or(&c).to_string_lossy().to_string();
        return Some((rel, df));
    }
    None
}

/// The stage that is the service: compose's target, else one named like a
/// production image, else the last one unless it only adds development or
/// extras on top of an earlier stage (`linkding-plus`, `dev-envs`).
fn pick_stage(df: &Dockerfile, target: Option<&str>) -> Option<usize> {
    if let Some(i) = target.and_then(|t| df.stage_index(t)) {
        return Some(i);
    }
    let named = |n: &str| df.stages.iter().rposition(|s| s.name.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(n)));
    for n in ["production", "prod", "final", "runtime", "release", "app"] {
        if let Some(i) = named(n) {
            return Some(i);
        }
    }
    let last = df.stages.len().checked_sub(1)?;
    let name = df.stages[last].name.clone().unwrap_or_default().to_ascii_lowercase();
    let extra = ["dev", "test", "ci", "plus", "debug", "envs"].iter().any(|w| name.split(['-', '_']).any(|p| p == *w));
    match (extra, df.stages[last].base_stage) {
        (true, Some(b)) => Some(b),
        _ => Some(last),
    }
}

/// The command of a Procfile's `NAME:` line, when it has one.
fn procfile_process(text: &str, name: &str) -> Option<String> {
    let key = format!("{name}:");
    text.lines().find_map(|l| l.trim().strip_prefix(key.as_str()).map(|c| c.trim().to_string())).filter(|c| !c.is_empty())
}

/// heroku.yml's `release: command:` (a list of strings or one string).
fn heroku_release(text: &str) -> Option<String> {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = YamlLoader::load_from_str(text).ok()?;
    let cmd = &docs.first()?["release"]["command"];
    let c = match cmd {
        Yaml::String(s) => s.clone(),
        Yaml::Array(items) => items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(" "),
        _ => return None,
    };
    (!c.trim().is_empty()).then(|| c.trim().to_string())
}

#[cfg(test)]
mod release_tests {
    #[test]
    fn heroku_release_command() {
        let y = "build:\n  docker:\n    web: Dockerfile\nrelease:\n  image: web\n  command:\n    - ./manage.py migrate --noinput\n";
        assert_eq!(super::heroku_release(y).as_deref(), Some("./manage.py migrate --noinput"));
        assert_eq!(super::heroku_release("release:\n  command: alembic upgrade head\n").as_deref(), Some("alembic upgrade head"));
        assert_eq!(super::heroku_release("build: {}\n"), None);
        assert_eq!(super::heroku_release("[not yaml"), None);
    }
}
