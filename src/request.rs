//! Request resolution: from "this spec, these build args, this target" to
//! a plan and the stage to build, the same way for the CLI and for the
//! frontend.
//!
//! The policy lives here once: a variant target loads the spec merged for
//! that variant and builds its `runtime` stage; `<spec>.dockerignore` wins
//! over the context's `.dockerignore`; which dependency files the planner
//! reads before planning; a dependency file the context lacks is an error
//! at its spec line; the unknown-target message; what goes into
//! `strata.deps.digest`. The callers only do the I/O: the frontend through
//! the gateway, the CLI from disk ([`resolve_dir`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Span, SpecError};
use crate::plan::{self, Plan, PlanEnv};
use crate::spec::{self, Sp, Spec};

/// What a build (or a CLI command) asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The spec's path (CLI) or file name (frontend), as errors show it.
    pub file: String,
    /// The build context directory (CLI; default: the spec's directory).
    pub context: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    /// `--target` as given (empty: the default image).
    pub target: String,
    /// The engine has MergeOp/DiffOp.
    pub merge: bool,
    /// Check that every declared context path is there and not ignored
    /// (`strata check`, `strata plan`).
    pub check_context: bool,
}

/// Why a request cannot be planned.
#[derive(Debug)]
pub enum RequestError {
    /// Something wrong in the spec, at its location.
    Spec(SpecError),
    /// `--target` names no stage or variant.
    UnknownTarget(String),
    /// A file could not be read (CLI).
    Io(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Spec(e) => write!(f, "{e}"),
            RequestError::UnknownTarget(m) | RequestError::Io(m) => f.write_str(m),
        }
    }
}

/// The spec loaded for a target: merged for the variant when the target is
/// a variant name, whose image is then the `runtime` stage.
pub fn load(file: &str, source: &str, build_args: &BTreeMap<String, String>, target: &str) -> Result<(Spec, String), SpecError> {
    let err = |d| SpecError::new(file, source, d);
    let spec = spec::load(source, build_args).map_err(err)?;
    if spec.variants.iter().any(|v| v.value == target) {
        let merged = spec::load_target(source, build_args, Some(target)).map_err(err)?;
        return Ok((merged, "runtime".to_string()));
    }
    Ok((spec, target.to_string()))
}

/// The ignore patterns of a build: `<spec>.dockerignore` beside the spec
/// wins over the context's `.dockerignore`, as with Dockerfiles.
pub fn dockerignore(own: Option<&[u8]>, context: Option<&[u8]>) -> Vec<String> {
    own.or(context).map(|d| crate::context::parse_dockerignore(&String::from_utf8_lossy(d))).unwrap_or_default()
}

/// Dependency files the planner reads before planning: the requirement
/// files of a layered install (their pins become layer groups), the
/// pyproject.toml (its dependencies without a lock, its readme) and a
/// uv.lock (its local packages are built, not installed from an index).
pub fn plan_files(spec: &Spec) -> Vec<&Sp<String>> {
    let Some(py) = &spec.python else { return vec![] };
    let mut out: Vec<&Sp<String>> = py.requirements.iter().collect();
    out.extend(py.pyproject.iter());
    if py.lock_kind == Some(crate::spec::LockKind::Uv) {
        out.extend(py.lock.iter());
    }
    out
}

/// Files the requirement files read so far include (`-r base.txt`) that
/// are not read yet, each with the spec entry it comes from; read them and
/// ask again (they may include more). An include leaving the context is an
/// error at that entry.
pub fn included_files(file: &str, source: &str, spec: &Spec, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<(String, Span)>, SpecError> {
    let Some(py) = &spec.python else { return Ok(vec![]) };
    let mut out: Vec<(String, Span)> = Vec::new();
    for r in &py.requirements {
        // every file reachable from this entry through the files read
        let mut todo = vec![r.value.clone()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(f) = todo.pop() {
            if !seen.insert(f.clone()) || seen.len() > 256 {
                continue;
            }
            let Some(text) = files.get(&f) else { continue };
            for inc in crate::plan::python::requirements::includes(&f, &String::from_utf8_lossy(text)) {
                let Some(inc) = inc else {
                    return Err(SpecError::new(
                        file,
                        source,
                        Diagnostic::new(
                            r.span.clone(),
                            format!("`{f}` includes a file outside the build context (an absolute or `..` path)"),
                        ),
                    ));
                };
                if files.contains_key(&inc) {
                    todo.push(inc);
                } else if !out.iter().any(|(p, _)| *p == inc) {
                    out.push((inc, r.span.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// The located error for the first of `wanted` that `present` lacks: it
/// would otherwise fail later in a copy with no spec location.
pub fn missing_file(file: &str, source: &str, wanted: &[&Sp<String>], present: impl Fn(&str) -> bool) -> Result<(), SpecError> {
    match wanted.iter().find(|w| !present(&w.value)) {
        None => Ok(()),
        Some(w) => Err(SpecError::new(
            file,
            source,
            Diagnostic::new(w.span.clone(), format!("`{}` is not in the build context (missing, or left out by .dockerignore)", w.value)),
        )),
    }
}

/// Every context path the spec declares (dependency files, app copies,
/// step and test inputs) that a build of `dir` would not see: missing, or
/// left out by `.dockerignore` (the app copies also by `[app] exclude`).
/// BuildKit would stop at the first with `"/path": not found` and no spec
/// location; this says where and why.
pub fn check_context(file: &str, source: &str, spec: &Spec, dockerignore: &[String], dir: &Path) -> Result<(), SpecError> {
    let ctx = crate::context::Ignore::new(dockerignore);
    let mut app_patterns = dockerignore.to_vec();
    app_patterns.extend(spec.app.exclude.iter().map(|e| e.value.clone()));
    let app = crate::context::Ignore::new(&app_patterns);
    let mut wanted: Vec<(&Sp<String>, bool)> = Vec::new();
    if let Some(py) = &spec.python {
        wanted.extend(py.requirements.iter().chain(&py.pyproject).chain(&py.lock).map(|p| (p, false)));
    }
    wanted.extend(spec.app.copy.iter().map(|c| (c, true)));
    for s in &spec.steps {
        wanted.extend(s.inputs.iter().map(|i| (i, false)));
    }
    if let Some(t) = &spec.test {
        wanted.extend(t.requirements.iter().chain(&t.inputs).map(|i| (i, false)));
    }
    for (p, is_app) in wanted {
        let path = p.value.trim_end_matches('/');
        if path == "." || path.is_empty() || path.contains(['*', '?', '[']) {
            continue;
        }
        let why = if !dir.join(path).exists() {
            Some(format!("`{}` is not in the build context ({} has no such path)", p.value, dir.display()))
        } else if let Some(pat) = ctx.excluded_by(path, dockerignore) {
            Some(format!("`{}` is left out by .dockerignore (pattern `{pat}`): the build cannot see it", p.value))
        } else if is_app && app.excluded(path) {
            Some(format!("`{}` is left out by `[app] exclude`: the copy would be empty", p.value))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(SpecError::new(file, source, Diagnostic::new(p.span.clone(), why)));
        }
    }
    Ok(())
}

/// The error for an included requirements file the context lacks.
pub fn included_missing(file: &str, source: &str, path: &str, span: Span) -> SpecError {
    SpecError::new(
        file,
        source,
        Diagnostic::new(span, format!("`{path}`, included by this requirements file, is not in the build context")),
    )
}

/// The plan of a loaded spec.
pub fn plan(spec: &Spec, dockerignore: &[String], files: BTreeMap<String, Vec<u8>>, merge: bool) -> Plan {
    plan::build_with(spec, dockerignore, &PlanEnv { files, merge })
}

/// The stage `stage_name` names, or the unknown-target message listing
/// what the spec has (`target` as the user wrote it).
pub fn stage(plan: &Plan, spec: &Spec, stage_name: &str, target: &str) -> Result<usize, RequestError> {
    plan.stage_index(stage_name).ok_or_else(|| {
        let names = target_names(plan, spec);
        RequestError::UnknownTarget(format!("unknown target \"{target}\"; this spec has: {}", names.join(", ")))
    })
}

/// Every name `--target` accepts: the plan's targets, then the variants.
pub fn target_names(plan: &Plan, spec: &Spec) -> Vec<String> {
    let mut names: Vec<String> = plan.targets().iter().map(|(n, _)| n.to_string()).collect();
    names.extend(spec.variants.iter().map(|v| v.value.clone()));
    names
}

/// `strata.deps.digest` from the dependency files' content (`files` may
/// hold more than the plan's dependency files; only those count).
pub fn deps_digest(spec: &Spec, plan: &Plan, files: &BTreeMap<String, Vec<u8>>) -> String {
    let used: Vec<(String, Vec<u8>)> = plan.deps_files.iter().map(|f| (f.clone(), files.get(f).cloned().unwrap_or_default())).collect();
    crate::deps::digest(spec, &used)
}

/// A request resolved against a directory on disk (the CLI).
#[derive(Debug)]
pub struct Resolved {
    /// The spec's path, as errors show it.
    pub file: String,
    pub source: String,
    pub spec: Spec,
    pub dockerignore: Vec<String>,
    pub plan: Plan,
    /// The stage the target builds.
    pub stage: usize,
    /// The build context directory.
    pub dir: PathBuf,
    /// The dependency files read so far.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Resolved {
    /// `strata.deps.digest`, reading every dependency file of the plan.
    pub fn deps_digest(&self) -> Result<String, RequestError> {
        let mut files = self.files.clone();
        for f in &self.plan.deps_files {
            if !files.contains_key(f) {
                let p = self.dir.join(f);
                let d = std::fs::read(&p).map_err(|e| RequestError::Io(format!("{}: {e}", p.display())))?;
                files.insert(f.clone(), d);
            }
        }
        Ok(deps_digest(&self.spec, &self.plan, &files))
    }

    pub fn target_names(&self) -> Vec<String> {
        target_names(&self.plan, &self.spec)
    }
}

/// Reads the spec file as UTF-8.
pub fn read_spec(file: &str) -> Result<String, RequestError> {
    use std::io::Read;
    let f = std::fs::File::open(file).map_err(|e| RequestError::Io(format!("{file}: {e}")))?;
    // Read no more than the reader accepts (plus one byte to know).
    let mut bytes = Vec::new();
    f.take(crate::spec::MAX_SPEC_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| RequestError::Io(format!("{file}: {e}")))?;
    if bytes.len() > crate::spec::MAX_SPEC_BYTES {
        let msg = format!("the spec is more than {} bytes; strata reads specs up to that size", crate::spec::MAX_SPEC_BYTES);
        return Err(RequestError::Spec(SpecError::new(file, "", Diagnostic::new(0..0, msg))));
    }
    crate::spec::decode(file, &bytes).map_err(RequestError::Spec)
}

/// Resolves a request against the spec file and the context directory on
/// disk, as a build of that directory would.
pub fn resolve_dir(req: &Request) -> Result<Resolved, RequestError> {
    let source = read_spec(&req.file)?;
    resolve_source(req, source)
}

/// [`resolve_dir`] with the spec's text already read.
pub fn resolve_source(req: &Request, source: String) -> Result<Resolved, RequestError> {
    let (spec, stage_name) = load(&req.file, &source, &req.build_args, &req.target).map_err(RequestError::Spec)?;
    let dir = req.context.clone().unwrap_or_else(|| Path::new(&req.file).parent().map(Path::to_path_buf).unwrap_or_default());
    let own = std::fs::read(format!("{}.dockerignore", req.file)).ok();
    let ctx = std::fs::read(dir.join(".dockerignore")).ok();
    let ignore = dockerignore(own.as_deref(), ctx.as_deref());
    let mut files = BTreeMap::new();
    let wanted = plan_files(&spec);
    for w in &wanted {
        if let Ok(d) = std::fs::read(dir.join(&w.value)) {
            files.insert(w.value.clone(), d);
        }
    }
    missing_file(&req.file, &source, &wanted, |p| files.contains_key(p)).map_err(RequestError::Spec)?;
    for _ in 0..8 {
        let more = included_files(&req.file, &source, &spec, &files).map_err(RequestError::Spec)?;
        if more.is_empty() {
            break;
        }
        for (path, span) in more {
            match std::fs::read(dir.join(&path)) {
                Ok(d) => {
                    files.insert(path, d);
                }
                Err(_) => return Err(RequestError::Spec(included_missing(&req.file, &source, &path, span))),
            }
        }
    }
    if req.check_context {
        check_context(&req.file, &source, &spec, &ignore, &dir).map_err(RequestError::Spec)?;
    }
    let plan = plan(&spec, &ignore, files.clone(), req.merge);
    let stage = stage(&plan, &spec, &stage_name, &req.target)?;
    Ok(Resolved { file: req.file.clone(), source, spec, dockerignore: ignore, plan, stage, dir, files })
}
