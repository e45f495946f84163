//! The strata.toml format (v1): typed, validated, with spans kept.
//!
//! `load` parses the TOML into a spanned tree, resolves `[args]` (defaults
//! overridden by `--build-arg`), expands `${NAME}` in every string and reads
//! each section into the types below. Everything here is plain data: no
//! BuildKit types, no I/O. The planner (`crate::plan`) consumes it.

mod expand;
mod read;
pub mod schema;
mod variant;

use std::collections::BTreeMap;

pub use crate::diag::Span;
pub use read::{context_path, decode, load, load_target, truthy, MAX_SPEC_BYTES};

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Self {
        Sp { value, span }
    }
}

pub const SUPPORTED_VERSIONS: &[i64] = &[1];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Declared args with their effective values (defaults, then build args).
    pub args: BTreeMap<String, String>,
    /// Where each arg is declared (for `--call outline` and lints).
    pub arg_spans: BTreeMap<String, Span>,
    pub image: Image,
    pub system: System,
    pub python: Option<Python>,
    /// The optional R stage; `None` also when its `if` is false.
    pub r: Option<RLang>,
    pub app: App,
    /// Custom steps whose `if` holds, in spec order.
    pub steps: Vec<Step>,
    /// `[caches.NAME]` tables (presets need none).
    pub caches: BTreeMap<String, CacheDef>,
    pub test: Option<TestSpec>,
    /// Names of `[variants.NAME]`, each another final image (`--target NAME`).
    pub variants: Vec<Sp<String>>,
    /// The variant this spec was merged for, if any.
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Locked,
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDef {
    pub target: String,
    pub sharing: Sharing,
    pub id: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStage {
    /// Runs in the builder; only its `outputs` reach the runtime image.
    Build,
    /// Runs on the runtime image; its changes are a layer of it.
    Runtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: Sp<String>,
    pub run: Sp<String>,
    pub stage: StepStage,
    /// Context-relative paths copied into the workdir before `run`.
    pub inputs: Vec<Sp<String>>,
    /// Paths (relative to the workdir, or absolute) copied into the runtime
    /// image at the same place.
    pub outputs: Vec<Sp<String>>,
    pub caches: Vec<Sp<String>>,
    pub secrets: Vec<Sp<String>>,
    pub ssh: Vec<Sp<String>>,
    pub network: Network,
    pub env: Vec<(String, String)>,
    pub after: Vec<Sp<String>>,
    /// OS packages of this step alone (build steps): the step then runs on
    /// a branch of its own, the builder image plus these, without the
    /// build packages or the venv, in parallel with the dependency install.
    pub packages: Vec<Sp<String>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RLang {
    /// OS packages for R (default `r-base-core`).
    pub packages: Vec<Sp<String>>,
    pub cran: Vec<Sp<String>>,
    /// Repository URLs, or `context:NAME` for a CRAN-style repo in a build
    /// context.
    pub repos: Vec<Sp<String>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSpec {
    pub run: Sp<String>,
    pub requirements: Vec<Sp<String>>,
    pub inputs: Vec<Sp<String>>,
    pub caches: Vec<Sp<String>>,
    pub span: Span,
}

/// Cache presets usable by name without a `[caches.NAME]` table.
pub const CACHE_PRESETS: &[&str] = &["apt", "pip", "uv", "npm", "cargo", "go", "hf", "torch", "ccache"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub base: Sp<String>,
    /// Image the builder stage starts from; the runtime base when unset.
    pub builder: Option<Sp<String>>,
    /// A repository the deps image is kept in, tagged by the deps digest
    /// (`REPO:deps-<digest>`): a runtime build starts from it when it exists.
    pub deps_image: Option<Sp<String>>,
    pub workdir: Sp<String>,
    pub user: Sp<User>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub expose: Vec<Sp<String>>,
    pub labels: Vec<(String, String)>,
    pub init: bool,
    /// Where `init` is written (the `[image]` table when it is not).
    pub init_span: Span,
    pub healthcheck: Option<Healthcheck>,
    pub stopsignal: Option<String>,
    pub platforms: Vec<Sp<String>>,
}

/// The runtime user. Non-root users are created (uid/gid 1000 unless the
/// spec gives numbers) so images never silently run as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    Root,
    Named { name: String, uid: u32, gid: u32 },
}

impl User {
    pub fn name(&self) -> &str {
        match self {
            User::Root => "root",
            User::Named { name, .. } => name,
        }
    }
    pub fn ids(&self) -> (u32, u32) {
        match self {
            User::Root => (0, 0),
            User::Named { uid, gid, .. } => (*uid, *gid),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub cmd: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Apk,
    Dnf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    pub manager: Manager,
    pub packages: Vec<Sp<String>>,
    pub build_packages: Vec<Sp<String>>,
    /// `layers`: groups of `packages` installed as layers of their own,
    /// first to last, before the rest (stable, big ones first).
    pub layers: Vec<Vec<Sp<String>>>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    Pip,
    Uv,
}

/// Which tool wrote a lock file (by its file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// uv.lock: installed with `uv sync --frozen`.
    Uv,
    /// poetry.lock: `poetry export` to pinned requirements in the builder.
    Poetry,
    /// pdm.lock: `pdm export` to pinned requirements in the builder.
    Pdm,
}

impl LockKind {
    /// The lock kind of a path, by its file name.
    pub fn of(path: &str) -> Option<LockKind> {
        match path.rsplit('/').next().unwrap_or(path) {
            "uv.lock" => Some(LockKind::Uv),
            "poetry.lock" => Some(LockKind::Poetry),
            "pdm.lock" => Some(LockKind::Pdm),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Python {
    pub requirements: Vec<Sp<String>>,
    /// Requirement specifiers written in the spec, installed with the
    /// requirement files.
    pub packages: Vec<Sp<String>>,
    /// pyproject.toml: its dependencies (from `lock` when given), and the
    /// project itself when `project`.
    pub pyproject: Option<Sp<String>>,
    pub lock: Option<Sp<String>>,
    /// What wrote `lock` (None without one).
    pub lock_kind: Option<LockKind>,
    /// Optional-dependency extras of the project.
    pub extras: Vec<Sp<String>>,
    /// Dependency groups (PEP 735 `[dependency-groups]`, poetry's and
    /// pdm's groups) to install besides the main dependencies.
    pub groups: Vec<Sp<String>>,
    /// Install the project itself (a wheel, non-editable), in its own layer;
    /// None: when it is a package (it has a `[build-system]`, as uv decides).
    pub project: Option<bool>,
    /// Install the project editable (a .pth to the app's copy), after the
    /// app copies, instead of as a wheel before them.
    pub editable: bool,
    /// A uv workspace member to install instead of the root project.
    pub package: Option<Sp<String>>,
    pub installer: Sp<Installer>,
    /// The uv release strata installs (default: `plan::UV_VERSION`, which
    /// changes only with strata).
    pub uv_version: Option<String>,
    pub venv: String,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// Name of a build context (or context directory) holding wheels for an
    /// offline install.
    pub wheels: Option<Sp<String>>,
    pub keep_pip: bool,
    pub compile: bool,
    /// Extension: the venv sees the base image's site-packages (images
    /// like tensorflow/tensorflow ship the framework system-wide).
    pub system_site_packages: bool,
    /// Extension (default true): delete the `tests` packages that
    /// libraries ship inside themselves (numpy/_core/tests, pandas/tests…)
    /// from the runtime venv; nothing imports them at run time.
    pub prune_tests: bool,
    /// `layers`: package groups installed as layers of their own, heavy
    /// ones first (`None`: strata picks groups of known-heavy packages;
    /// `Some([])`: one install, one layer).
    pub layers: Option<Vec<Vec<Sp<String>>>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Context-relative paths, normalised; each becomes one layer.
    pub copy: Vec<Sp<String>>,
    pub exclude: Vec<Sp<String>>,
    pub dest: Option<String>,
    pub chown: Option<Sp<User>>,
}

/// The spec file's first line may carry `# syntax=`; it is a comment to TOML.
pub fn syntax_directive(source: &str) -> Option<&str> {
    let first = source.lines().next()?.trim();
    let rest = first.strip_prefix('#')?.trim_start();
    let value = rest.strip_prefix("syntax")?.trim_start().strip_prefix('=')?;
    Some(value.trim())
}
