//! The strata.toml format (v1): typed, validated, with spans kept.
//!
//! `load` parses the TOML into a spanned tree, resolves `[args]` (defaults
//! overridden by `--build-arg`), expands `${NAME}` in every string and reads
//! each section into the types below. Everything here is plain data: no
//! BuildKit types, no I/O. The planner (`crate::plan`) consumes it.

mod expand;
mod read;

use std::collections::BTreeMap;

pub use crate::diag::Span;
pub use read::load;

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
    pub image: Image,
    pub system: System,
    pub python: Option<Python>,
    pub app: App,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub base: Sp<String>,
    /// Image the builder stage starts from; the runtime base when unset.
    pub builder: Option<Sp<String>>,
    pub workdir: Sp<String>,
    pub user: Sp<User>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub expose: Vec<Sp<String>>,
    pub labels: Vec<(String, String)>,
    pub init: bool,
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
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    Pip,
    Uv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Python {
    pub requirements: Vec<Sp<String>>,
    pub installer: Sp<Installer>,
    pub venv: String,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// Name of a build context (or context directory) holding wheels for an
    /// offline install.
    pub wheels: Option<Sp<String>>,
    pub keep_pip: bool,
    pub compile: bool,
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
