//! The build plan: what to build, in which order, with which mounts.
//!
//! A `Plan` is derived from a `Spec` alone (no engine, no protobuf), so
//! `strata plan` can print it and tests can check the layer order. The
//! ordering rules of the contract live here:
//!
//! * runtime: base → OS packages → (R) → user → workdir → venv → R
//!   libraries → build-step outputs → runtime steps → app code, so an app
//!   edit re-runs nothing above it;
//! * build steps run after the dependency install, each on its own branch
//!   of the builder with only its declared inputs;
//! * dependency files reach the install step as a read-only mount of just
//!   those files, so its cache key is their content and nothing else;
//! * package-manager caches are cache mounts, never layers;
//! * build-only work (build packages, the installer, build steps) happens
//!   in the builder; the runtime stage takes only finished artefacts.
//!
//! Stages are named; a target picks one (`runtime`, `deps`, `builder`,
//! `test`). Identical ops reached from two stages are one LLB vertex.

mod caches;
mod paths;
pub use paths::join_rel as join_path;
mod planner;
pub mod python;
mod r;
pub mod render;
mod shell;
mod steps;
mod system;
pub use system::{scans_links, TINI};

use std::collections::{BTreeMap, BTreeSet};

pub use crate::spec::Sharing;
use crate::spec::{Network, Span, Spec, User};

pub use python::{
    layer_groups, Group, DEPS_MOUNT, GEN_MOUNT, PDM_VERSION, PIP_HOME, POETRY_EXPORT_VERSION, POETRY_VERSION, PROJECT_MOUNT, SRC_MOUNT,
    UV_HOME, UV_VERSION, WHEELS_MOUNT,
};
pub use shell::shell_quote;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// Index into `stages` of the default target (`runtime`).
    pub target: usize,
    /// What the `context` local sends for dependency files, step and test
    /// inputs: nothing outside these patterns leaves the client.
    pub context: ContextFilter,
    /// What the app copies read: the `[app] copy` paths, without
    /// `[app] exclude` (and `.git`). A second local of the same context,
    /// so an app exclude never hides a step's or the test's inputs.
    pub app: ContextFilter,
    /// Files whose content goes into `strata.deps.digest`.
    pub deps_files: Vec<String>,
    /// The workdir and its owner: a copy made as an independent layer
    /// (MergeOp) recreates it, so the merge keeps its ownership.
    pub workdir: (String, Option<Owner>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextFilter {
    pub include: Vec<String>,
    /// `.dockerignore` patterns, followed for the app by `[app] exclude`
    /// and [`APP_EXCLUDE`].
    pub exclude: Vec<String>,
}

impl ContextFilter {
    /// Includes sorted, without repeats (stable LLB bytes).
    pub fn settle(&mut self) {
        self.include.sort();
        self.include.dedup();
    }

    /// Whether a use of the whole context (`.`) is among the includes: then
    /// the local takes no include patterns (BuildKit's matcher would take
    /// `.` as a file name and send nothing).
    pub fn sends_everything(&self) -> bool {
        self.include.iter().any(|p| p == "." || p.is_empty())
    }
}

/// Never part of the app: version-control metadata (guarantee 4). Steps
/// that need it (e.g. setuptools-scm) name it in their `inputs`.
pub const APP_EXCLUDE: &[&str] = &["**/.git"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub from: StageBase,
    pub ops: Vec<Op>,
    /// Image config of a stage that can be a build result.
    pub config: Option<ConfigPatch>,
    /// Shown by `--call targets`.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageBase {
    /// An image reference as written (normalised at lowering).
    Image(String),
    /// Another stage's result, by index: its ops are shared, not repeated.
    Stage(usize),
}

/// Where a copy or file mount takes its files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// The build context (`local://context`), filtered by `Plan::context`.
    Context,
    /// The build context as the app copies see it, filtered by `Plan::app`.
    App,
    /// A named build context (`--build-context NAME=…`); when the client
    /// passes none, the directory of that name in the main context.
    Named(String),
    /// The result of an earlier stage.
    Stage(usize),
    /// A file fetched by URL and checked against its sha256 (the lowering
    /// picks the target platform's entry): `filename` at the source's root.
    Pinned(&'static Pinned),
}

/// A build helper strata fetches from a fixed URL, one per platform, each
/// checked by its sha256: the same bytes on every machine, changed only
/// with strata.
#[derive(Debug, PartialEq, Eq)]
pub struct Pinned {
    pub name: &'static str,
    /// The name the file gets (the same on every platform).
    pub filename: &'static str,
    pub files: &'static [PinnedFile],
    /// What a platform without an entry fetches (`{arch}` replaced), with
    /// no checksum: the build fails naming the file that is not there.
    pub unknown_arch_url: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PinnedFile {
    /// `ARCH` or `ARCH/VARIANT` as in a platform (`amd64`, `arm/v7`).
    pub arch: &'static str,
    pub version: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
}

impl Pinned {
    /// The entry for `arch`/`variant`, else the first one with that arch.
    pub fn file(&self, arch: &str, variant: &str) -> Option<&'static PinnedFile> {
        let full = format!("{arch}/{variant}");
        let family = format!("{arch}/");
        self.files.iter().find(|f| f.arch == full).or_else(|| self.files.iter().find(|f| f.arch == arch || f.arch.starts_with(&family)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A shell command (`/bin/sh -c`), as root, in `cwd`.
    Run(Run),
    /// Copies `src` (relative to the source root) to absolute `dest`.
    Copy {
        name: String,
        from: FileSource,
        src: String,
        dest: String,
        owner: Option<Owner>,
        /// Files and the directories the copy makes get mtime 0 (what is
        /// copied is strata's own, like the venv): the layer is the same
        /// bytes on every machine.
        epoch: bool,
        span: Span,
    },
    Mkdir {
        name: String,
        path: String,
        owner: Option<Owner>,
        span: Span,
    },
    /// Layers merged onto the state (MergeOp), each the difference between
    /// two stages (DiffOp: `upper` built on `lower`), named for the history.
    Merge {
        name: String,
        layers: Vec<MergeLayer>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub name: String,
    pub script: String,
    pub cwd: String,
    /// Set on top of the image's env; `${PATH}` in a value stands for the
    /// image's PATH.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub network: Network,
    /// The custom step this op comes from (for `no-cache=<step>`).
    pub step: Option<String>,
    pub span: Span,
}

impl Op {
    pub fn name(&self) -> &str {
        match self {
            Op::Run(r) => &r.name,
            Op::Copy { name, .. } | Op::Mkdir { name, .. } | Op::Merge { name, .. } => name,
        }
    }
    pub fn span(&self) -> &Span {
        match self {
            Op::Run(r) => &r.span,
            Op::Copy { span, .. } | Op::Mkdir { span, .. } | Op::Merge { span, .. } => span,
        }
    }

    /// The stages the op reads besides the state below it: copy and mount
    /// sources, both sides of each merged layer.
    pub fn stage_inputs(&self) -> Vec<usize> {
        let mut out: Vec<usize> =
            self.sources().into_iter().filter_map(|s| if let FileSource::Stage(i) = s { Some(*i) } else { None }).collect();
        if let Op::Merge { layers, .. } = self {
            out.extend(layers.iter().flat_map(|l| [l.lower, l.upper]));
        }
        out
    }

    /// Where the op reads files from besides the state below it: a copy's
    /// source, a command's file and source mounts.
    pub fn sources(&self) -> Vec<&FileSource> {
        match self {
            Op::Copy { from, .. } => vec![from],
            Op::Run(r) => r
                .mounts
                .iter()
                .filter_map(|m| match m {
                    Mount::Files { from, .. } | Mount::Source { from, .. } => Some(from),
                    _ => None,
                })
                .collect(),
            Op::Mkdir { .. } | Op::Merge { .. } => vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Cache {
        target: String,
        id: String,
        sharing: Sharing,
        owner: Option<Owner>,
        mode: Option<u32>,
    },
    /// Read-only mount of selected files; the op's cache key depends on the
    /// content of exactly these files.
    Files {
        target: String,
        from: FileSource,
        paths: Vec<String>,
    },
    /// Mount of a whole source (a named wheel context, say): read-only, or
    /// `writable` with the writes thrown away after the command (a build
    /// backend writing egg-info into the project's sources).
    Source {
        target: String,
        from: FileSource,
        writable: bool,
    },
    /// Read-only mount of files strata writes (a layer group's pins).
    Generated {
        target: String,
        files: Vec<(String, String)>,
    },
    /// `--secret id=ID`, a file at `/run/secrets/ID`, never in a layer.
    Secret {
        id: String,
    },
    /// An empty tmpfs for a command's scratch files (wheels built and
    /// installed in the same command): nothing of it is in any layer.
    Tmpfs {
        target: String,
    },
    /// `--ssh ID`: the agent socket, `SSH_AUTH_SOCK` points at it.
    Ssh {
        id: String,
        index: usize,
    },
}

/// Owner of copied or created files (uid, gid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

impl Owner {
    /// The ids of a user, None for root (files keep the engine's default).
    pub fn of(user: &User) -> Option<Owner> {
        match user {
            User::Root => None,
            User::Named { uid, gid, .. } => Some(Owner { uid: *uid, gid: *gid }),
        }
    }
}

/// One layer of a merge: what `upper` added on top of `lower` (a DiffOp),
/// named for the image history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeLayer {
    pub lower: usize,
    pub upper: usize,
    pub name: String,
}

/// Image config the spec sets on top of the base image's config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigPatch {
    pub env: Vec<(String, String)>,
    /// Prepended to the base image's PATH.
    pub path_prepend: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// Put before the entrypoint (tini for `init = true`).
    pub init: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub expose: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub healthcheck: Option<crate::spec::Healthcheck>,
    pub stopsignal: Option<String>,
}

/// The PATH commands run with when the base image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which ops ignore the build cache (`--no-cache`, `--no-cache-filter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NoCache {
    #[default]
    None,
    All,
    Steps(BTreeSet<String>),
}

/// Where R libraries are installed and copied from.
pub const R_LIBS: &str = "/usr/local/lib/R/site-library";
pub const R_REPOS_MOUNT: &str = "/tmp/strata-r-repos";

fn run(name: String, script: String, mounts: Vec<Mount>, env: Vec<(String, String)>, span: Span) -> Op {
    Op::Run(Run { name, script, cwd: "/".into(), env, mounts, network: Network::Default, step: None, span })
}

/// `run` with no network: a command that works on what is mounted (a
/// pinned download, the builder's own files).
fn offline_run(name: String, script: String, mounts: Vec<Mount>, span: Span) -> Op {
    Op::Run(Run { name, script, cwd: "/".into(), env: vec![], mounts, network: Network::None, step: None, span })
}

/// What the planner may know beyond the spec: the dependency files'
/// content (to group pins into layers) and whether the engine has
/// MergeOp/DiffOp (to make those layers independent).
#[derive(Debug, Clone, Default)]
pub struct PlanEnv {
    pub files: BTreeMap<String, Vec<u8>>,
    pub merge: bool,
}

pub fn build(spec: &Spec, dockerignore: &[String]) -> Plan {
    build_with(spec, dockerignore, &PlanEnv::default())
}

pub fn build_with(spec: &Spec, dockerignore: &[String], env: &PlanEnv) -> Plan {
    planner::plan(spec, dockerignore, env)
}

impl Plan {
    /// Stage index of a target name (`runtime` is the default).
    pub fn stage_index(&self, target: &str) -> Option<usize> {
        if target.is_empty() || target == "runtime" {
            return Some(self.target);
        }
        self.stages.iter().position(|s| s.name == target && s.config.is_some())
    }

    /// The stage named `name` (after `finish`, the builder is `builder`).
    pub fn stage_named(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// `idx`, the stage it is built on, that one's base, ... (top first).
    pub fn base_chain(&self, idx: usize) -> Vec<usize> {
        let mut chain = vec![idx];
        while let StageBase::Stage(i) = self.stages[*chain.last().expect("non-empty")].from {
            chain.push(i);
        }
        chain
    }

    /// The image reference the stage's base chain starts from.
    pub fn base_image(&self, idx: usize) -> &str {
        let root = *self.base_chain(idx).last().expect("non-empty");
        match &self.stages[root].from {
            StageBase::Image(r) => r,
            StageBase::Stage(_) => unreachable!("the chain ends at an image"),
        }
    }

    /// Every stage `idx` needs, itself included, in plan order: its base
    /// chain, the stages its ops copy or mount from, the two sides of each
    /// merged layer, and theirs in turn.
    pub fn reachable(&self, idx: usize) -> Vec<usize> {
        let mut seen = vec![false; self.stages.len()];
        let mut todo = vec![idx];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if let StageBase::Stage(b) = self.stages[i].from {
                todo.push(b);
            }
            todo.extend(self.stages[i].ops.iter().flat_map(Op::stage_inputs));
        }
        (0..self.stages.len()).filter(|&i| seen[i]).collect()
    }

    /// Targets a user can pick, with descriptions.
    pub fn targets(&self) -> Vec<(&str, &str)> {
        self.stages.iter().filter(|s| s.config.is_some()).map(|s| (s.name.as_str(), s.description.as_str())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::paths::copy_paths;
    use super::python::http_host;
    use super::*;
    use std::collections::BTreeMap;

    fn plan(src: &str) -> Plan {
        build(&crate::spec::load(src, &BTreeMap::new()).unwrap(), &[])
    }

    fn runtime_names(p: &Plan) -> Vec<String> {
        // Walk the runtime chain from its image, as the layers stack.
        let mut chain = vec![p.target];
        while let StageBase::Stage(i) = p.stages[*chain.last().unwrap()].from {
            chain.push(i);
        }
        chain.iter().rev().flat_map(|&i| p.stages[i].ops.iter().map(|o| o.name().to_string())).collect()
    }

    const WEB: &str = r#"version = 1
[image]
base = "python:3.11"
entrypoint = ["python", "app.py"]
[system]
packages = ["libpq5"]
build-packages = ["gcc"]
[python]
requirements = ["requirements.txt"]
installer = "pip"
[app]
copy = ["app.py", "templates/"]
exclude = ["**/__pycache__"]
"#;

    #[test]
    fn runtime_order_is_by_volatility() {
        let p = plan(WEB);
        assert_eq!(
            runtime_names(&p),
            [
                "system: apt-get install libpq5",
                "system: the OS libraries the venv links",
                "user: create app (1000:1000), workdir /app",
                "python: venv /opt/venv",
                "app: copy app.py",
                "app: copy templates/"
            ]
        );
    }

    /// The user's command makes the workdir the user's, also when the base
    /// has it (a FileOp mkdir leaves that one root's): the missing parts
    /// above it are root's; as root, the workdir is a mkdir.
    #[test]
    fn the_user_command_owns_the_workdir_even_when_the_base_has_it() {
        let stage = |p: &Plan, n: &str| p.stages.iter().position(|s| s.name == n).unwrap();
        let p = plan(&WEB.replace("entrypoint = ", "workdir = \"/srv/my app\"\nentrypoint = "));
        let deps = &p.stages[stage(&p, "deps")];
        let Op::Run(r) = &deps.ops[0] else { panic!("the user command first: {:?}", deps.ops[0].name()) };
        let script = &r.script;
        assert!(
            script.contains("for d in /srv '/srv/my app'; do [ -d \"$d\" ] || { mkdir \"$d\"; touch -t $t \"$d\"; }; done;"),
            "{script}"
        );
        assert!(script.contains("done; chown 1000:1000 '/srv/my app';"), "{script}");
        assert!(!deps.ops.iter().any(|o| matches!(o, Op::Mkdir { .. })), "no mkdir besides the command");
        let root = plan(&WEB.replace("entrypoint = ", "user = \"root\"\nentrypoint = "));
        let deps = &root.stages[stage(&root, "deps")];
        assert!(matches!(&deps.ops[0], Op::Mkdir { path, owner: None, .. } if path == "/app"), "{:?}", deps.ops[0].name());
    }

    /// The runtime's, the builder's and a step's package installs run in
    /// parallel: each has caches of its own, so none waits for another's
    /// locked cache; the linked-libraries install shares the runtime's (it
    /// runs after the runtime's packages anyway).
    #[test]
    fn package_installs_of_parallel_branches_do_not_share_a_locked_cache() {
        let p = plan(&(WEB.to_string() + "[[step]]\nname = \"assets\"\nrun = \"true\"\npackages = [\"nodejs\"]\noutputs = [\"dist\"]\n"));
        let ids = |name: &str| -> Vec<String> {
            let op = p.stages.iter().flat_map(|s| &s.ops).find(|o| o.name().starts_with(name)).unwrap_or_else(|| panic!("{name}"));
            let Op::Run(r) = op else { panic!("{name} is a command") };
            r.mounts.iter().filter_map(|m| if let Mount::Cache { id, .. } = m { Some(id.clone()) } else { None }).collect()
        };
        let (rt, b, step, linked) = (
            ids("system: apt-get install libpq5"),
            ids("system: apt-get install gcc"),
            ids("system: apt-get install nodejs"),
            ids("system: the OS libraries the venv links"),
        );
        assert_eq!(rt, ["strata-apt-cache-python_3.11-runtime", "strata-apt-lists-python_3.11-runtime"]);
        assert_eq!(b, ["strata-apt-cache-python_3.11-builder", "strata-apt-lists-python_3.11-builder"]);
        assert_eq!(step, ["strata-apt-cache-python_3.11-step-assets", "strata-apt-lists-python_3.11-step-assets"]);
        assert_eq!(linked, rt);
    }

    /// The runtime installs what the venv's native code links, from a
    /// list the builder writes after the install, when the builder has
    /// more than the base (build packages, a builder image); not when the
    /// builder is the base itself, nor without dpkg.
    #[test]
    fn linked_libraries_come_from_a_scan_of_the_builder_venv() {
        let p = plan(WEB);
        let scan = p.stage_named("py-linked").expect("a scan stage");
        assert_eq!(p.stages[scan].from, StageBase::Stage(p.stage_named("builder").unwrap()));
        let Op::Run(r) = &p.stages[scan].ops[0] else { panic!() };
        assert!(r.script.contains("ldd") && r.script.contains("dpkg -S") && r.network == crate::spec::Network::None, "{}", r.script);
        let os = p.stage_named("os-linked").unwrap();
        assert_eq!(p.stages[os].from, StageBase::Stage(p.stage_named("os").unwrap()));
        let Op::Run(i) = &p.stages[os].ops[0] else { panic!() };
        assert!(i.mounts.iter().any(|m| matches!(m, Mount::Files { from: FileSource::Stage(s), .. } if *s == scan)));
        assert_eq!(p.stages[p.stage_named("deps").unwrap()].from, StageBase::Stage(os));
        let builder = WEB.replace("build-packages = [\"gcc\"]\n", "").replace("[image]\n", "[image]\nbuilder = \"python:3.11-full\"\n");
        assert!(plan(&builder).stage_named("os-linked").is_some());
        assert!(plan(&WEB.replace("build-packages = [\"gcc\"]\n", "")).stage_named("py-linked").is_none());
        let apk = WEB.replace("[system]\n", "[system]\nmanager = \"apk\"\n");
        assert!(plan(&apk).stage_named("py-linked").is_none());
    }

    /// `groups`: `uv sync --group` (without `--no-dev` when the dev group
    /// is asked for, since it means `--no-group dev`), poetry's `--with`.
    #[test]
    fn dependency_groups_reach_the_installers() {
        let script = |lock: &str, groups: &str| {
            let p = plan(&format!(
                "version = 1\n[image]\nbase = \"python:3.12\"\n[python]\npyproject = \"pyproject.toml\"\nlock = \"{lock}\"\ngroups = [{groups}]\n"
            ));
            p.stages
                .iter()
                .flat_map(|s| &s.ops)
                .filter_map(|o| if let Op::Run(r) = o { Some(r.script.clone()) } else { None })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let uv = script("uv.lock", "\"postgres\"");
        assert!(uv.contains("uv sync -q --frozen --no-dev") && uv.contains("--group=postgres"), "{uv}");
        let dev = script("uv.lock", "\"dev\", \"postgres\"");
        assert!(!dev.contains("--no-dev") && dev.contains("--group=dev --group=postgres"), "{dev}");
        let poetry = script("poetry.lock", "\"postgres\"");
        assert!(
            poetry.contains("poetry export --format requirements.txt --output /opt/strata-export/requirements.txt --with postgres"),
            "{poetry}"
        );
    }

    /// `packages` beside a uv.lock (a server the Dockerfile added on the
    /// pip command line) are installed after the sync, in its command:
    /// before, the sync ran alone and the packages never reached the venv.
    #[test]
    fn packages_beside_a_uv_lock_are_installed_after_the_sync() {
        let p = plan(
            "version = 1\n[image]\nbase = \"python:3.12\"\n[python]\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\npackages = [\"gunicorn==23.0.0\"]\n",
        );
        let sync = p
            .stages
            .iter()
            .flat_map(|s| &s.ops)
            .find_map(|o| match o {
                Op::Run(r) if r.script.contains("uv sync") => Some(r),
                _ => None,
            })
            .expect("a sync");
        let (at_sync, at_pip) = (sync.script.find("uv sync").unwrap(), sync.script.find("uv pip install").expect(&sync.script));
        assert!(at_pip > at_sync && sync.script.contains("-r /tmp/strata-gen/requirements.txt"), "{}", sync.script);
        assert!(sync.mounts.iter().any(|m| matches!(m, Mount::Generated { files, .. } if files[0].1 == "gunicorn==23.0.0\n")));
    }

    /// `[image] builder`: the builder stages start from it, the runtime
    /// from `base`.
    #[test]
    fn builder_image_roots_the_builder_only() {
        let p = plan(&WEB.replace("base = \"python:3.11\"\n", "base = \"python:3.11\"\nbuilder = \"python:3.11-bookworm\"\n"));
        let root = |name: &str| {
            let mut at = p.stages[p.stage_index(name).unwrap()].from.clone();
            while let StageBase::Stage(i) = at {
                at = p.stages[i].from.clone();
            }
            at
        };
        assert_eq!(root("builder"), StageBase::Image("python:3.11-bookworm".into()));
        assert_eq!(root("runtime"), StageBase::Image("python:3.11".into()));
    }

    #[test]
    fn builder_is_a_branch_of_its_own_and_mounts_only_requirements() {
        let p = plan(WEB);
        let b = &p.stages[p.stage_index("builder").unwrap()];
        // builder ← py-venv ← py-tool ← builder-base ← the image: not on the
        // runtime's OS packages, so editing those re-runs nothing here
        let mut chain = vec![];
        let mut at = b.from.clone();
        while let StageBase::Stage(i) = at {
            chain.push(p.stages[i].name.clone());
            at = p.stages[i].from.clone();
        }
        assert_eq!(chain, ["py-venv", "py-tool", "builder-base"]);
        assert!(matches!(at, StageBase::Image(_)), "{at:?}");
        let Op::Run(r) = &b.ops[0] else { panic!() };
        assert!(r.mounts.contains(&Mount::Files {
            target: DEPS_MOUNT.into(),
            from: FileSource::Context,
            paths: vec!["requirements.txt".into()]
        }));
        assert!(
            r.script
                .contains("/opt/strata-pip/bin/python -m pip --python /opt/venv/bin/python install -r /tmp/strata-deps/requirements.txt"),
            "{}",
            r.script
        );
        // the app venv is created without pip
        let v = &p.stages[p.stages.iter().position(|s| s.name == "py-venv").unwrap()];
        let Op::Run(r) = &v.ops[0] else { panic!() };
        assert!(r.script.starts_with("set -e; python3 -m venv --without-pip /opt/venv; python3 -c "), "{}", r.script);
        // and what it wrote gets mtime 0, as every install's files do
        assert!(r.script.contains("if os.lstat(p).st_mtime_ns]' /opt/venv;"), "{}", r.script);
        assert!(r.script.ends_with("p=os.path.dirname(p)' /opt/venv"), "its parents too: {}", r.script);
        let b = &p.stages[p.stage_index("builder").unwrap()];
        let Op::Run(i) = &b.ops[0] else { panic!() };
        assert!(i.script.ends_with("if os.lstat(p).st_mtime_ns]' /opt/venv"), "{}", i.script);
    }

    #[test]
    fn only_declared_paths_leave_the_client() {
        let p = plan(WEB);
        assert_eq!(p.context.include, ["requirements.txt"]);
        assert!(p.context.exclude.is_empty());
        assert_eq!(p.app.include, ["app.py", "templates"]);
        assert_eq!(p.app.exclude, ["**/__pycache__", "**/.git"]);
        assert_eq!(p.deps_files, ["requirements.txt"]);
    }

    /// The contract's own example excludes `tests/` from the app and feeds
    /// `tests/` to the test target: the app exclude must not hide it.
    #[test]
    fn app_excludes_do_not_hide_test_or_step_inputs() {
        let spec = crate::spec::load(
            "version = 1\n[image]\nbase = \"python:3.12-slim\"\n[python]\nrequirements = [\"requirements.txt\"]\n[app]\ncopy = [\"src/\"]\nexclude = [\"tests/\"]\n[[step]]\nname = \"gen\"\nrun = \"true\"\ninputs = [\"tests/fixtures\"]\n[test]\ninputs = [\"tests/\"]\nrun = \"pytest\"\n",
            &BTreeMap::new(),
        )
        .unwrap();
        let p = build_with(&spec, &["*.log".to_string()], &PlanEnv { files: BTreeMap::new(), merge: false });
        assert_eq!(p.context.include, ["requirements.txt", "tests", "tests/fixtures"]);
        assert_eq!(p.context.exclude, ["*.log"]);
        assert_eq!(p.app.include, ["src"]);
        assert_eq!(p.app.exclude, ["*.log", "tests/", "**/.git"]);
        let sources = |stage: &str| -> Vec<FileSource> {
            let s = &p.stages[p.stage_index(stage).unwrap()];
            s.ops.iter().filter_map(|o| if let Op::Copy { from, .. } = o { Some(from.clone()) } else { None }).collect()
        };
        assert!(sources("test").contains(&FileSource::Context), "test inputs read the unfiltered context");
        assert!(sources("runtime").contains(&FileSource::App));
        assert!(!sources("runtime").contains(&FileSource::Context));
    }

    #[test]
    fn copy_destinations() {
        assert_eq!(copy_paths("src/", "/app"), ("/src".into(), "/app/src".into()));
        assert_eq!(copy_paths("a.py", "/app/"), ("/a.py".into(), "/app/a.py".into()));
        assert_eq!(copy_paths(".", "/app"), ("/".into(), "/app/".into()));
        assert_eq!(copy_paths("src/*.py", "/app"), ("/src/*.py".into(), "/app/src/".into()));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--index-url=https://x/y"), "--index-url=https://x/y");
        assert_eq!(http_host("http://user:pw@10.0.0.1:8080/simple"), Some("10.0.0.1:8080"));
        assert_eq!(http_host("https://pypi.org/simple"), None);
        assert_eq!(shell_quote("a b'c"), "'a b'\\''c'");
    }

    const STEPS: &str = r#"version = 1
[args]
WITH_DOCS = "false"
[image]
base = "python:3.11"
[[step]]
name = "assets"
run = "npm ci && npm run build"
inputs = ["package.json", "web/"]
caches = ["npm"]
outputs = ["web/dist"]
secrets = ["npmrc"]
[[step]]
name = "native"
run = "make"
inputs = ["native/"]
outputs = ["/usr/local/lib/libfast.so"]
[[step]]
name = "docs"
run = "make docs"
if = "WITH_DOCS"
[[step]]
name = "warm"
stage = "runtime"
run = "echo warm > /var/warm"
[app]
copy = ["app.py"]
"#;

    #[test]
    fn steps_are_independent_branches_and_outputs_precede_app() {
        let p = plan(STEPS);
        let names = runtime_names(&p);
        let pos = |n: &str| names.iter().position(|x| x.starts_with(n)).unwrap_or_else(|| panic!("{n} not in {names:?}"));
        assert!(pos("step assets: output web/dist") < pos("app: copy app.py"));
        assert!(pos("step native: output /usr/local/lib/libfast.so") < pos("step warm:"));
        assert!(pos("step warm:") < pos("app: copy app.py"));
        assert!(!names.iter().any(|n| n.contains("docs")), "disabled step is absent");
        // each build step starts from the builder base, not from another step
        let a = &p.stages[p.stages.iter().position(|s| s.name == "step-assets").unwrap()];
        let n = &p.stages[p.stages.iter().position(|s| s.name == "step-native").unwrap()];
        assert_eq!(a.from, n.from);
        let Some(Op::Run(r)) = a.ops.last() else { panic!() };
        assert!(r.mounts.contains(&Mount::Secret { id: "npmrc".into() }));
        assert!(r.mounts.iter().any(|m| matches!(m, Mount::Cache { target, .. } if target == "/root/.npm")));
        assert_eq!(r.cwd, "/app");
    }

    #[test]
    fn a_step_with_its_own_packages_is_a_branch_off_the_builder_image() {
        // assets: Node on the builder image alone; native comes after it and
        // starts from the builder (which has the build packages), with
        // assets' outputs copied in.
        let src = STEPS
            .replace("caches = [\"npm\"]\n", "caches = [\"npm\"]\npackages = [\"nodejs\", \"npm\"]\n")
            .replace("name = \"native\"\nrun = \"make\"", "name = \"native\"\nrun = \"make\"\nafter = [\"assets\"]")
            .replace("[image]\nbase = \"python:3.11\"\n", "[image]\nbase = \"python:3.11\"\n[system]\nbuild-packages = [\"gcc\"]\n");
        let p = plan(&src);
        let at = |n: &str| {
            p.stages
                .iter()
                .position(|s| s.name == n)
                .unwrap_or_else(|| panic!("no stage {n}: {:?}", p.stages.iter().map(|s| &s.name).collect::<Vec<_>>()))
        };
        let os = &p.stages[at("step-assets-os")];
        assert_eq!(os.from, StageBase::Image("python:3.11".into()));
        assert_eq!(os.ops[0].name(), "system: apt-get install nodejs npm");
        assert_eq!(p.stages[at("step-assets")].from, StageBase::Stage(at("step-assets-os")));
        let Some(Op::Run(r)) = p.stages[at("step-assets")].ops.last() else { panic!() };
        assert!(!r.env.iter().any(|(k, _)| k == "VIRTUAL_ENV"), "{:?}", r.env);
        let native = &p.stages[at("step-native")];
        assert_eq!(native.from, StageBase::Stage(at("builder")));
        assert!(
            native.ops.iter().any(
                |o| matches!(o, Op::Copy { from: FileSource::Stage(i), src, .. } if *i == at("step-assets") && src == "/app/web/dist")
            ),
            "{:?}",
            native.ops
        );
        // and nodejs is in neither the builder nor the runtime
        assert!(p.stages[at("builder")].ops.iter().all(|o| !o.name().contains("nodejs")));
        assert!(runtime_names(&p).iter().all(|n| !n.contains("nodejs")), "{:?}", runtime_names(&p));
        // runtime steps take their packages from [system]
        let bad = src.replace("name = \"warm\"\nstage = \"runtime\"\n", "name = \"warm\"\nstage = \"runtime\"\npackages = [\"curl\"]\n");
        let e = crate::spec::load(&bad, &BTreeMap::new()).unwrap_err();
        assert!(e.message.contains("`packages` apply to build steps"), "{}", e.message);
    }

    #[test]
    fn after_builds_on_the_named_step() {
        let src = STEPS.replace("name = \"native\"\nrun = \"make\"", "name = \"native\"\nrun = \"make\"\nafter = [\"assets\"]");
        let p = plan(&src);
        let a = p.stages.iter().position(|s| s.name == "step-assets").unwrap();
        let n = &p.stages[p.stages.iter().position(|s| s.name == "step-native").unwrap()];
        assert_eq!(n.from, StageBase::Stage(a));
    }

    fn spec_packages(src: &str) -> Vec<String> {
        crate::spec::load(src, &BTreeMap::new()).unwrap().system.packages.iter().map(|p| p.value.clone()).collect()
    }

    #[test]
    fn targets_and_uv() {
        let src = WEB.replace("installer = \"pip\"", "installer = \"uv\"")
            + "[test]\nrun = \"pytest -q\"\nrequirements = [\"requirements-dev.txt\"]\ninputs = [\"tests/\"]\n";
        let p = plan(&src);
        let t: Vec<&str> = p.targets().iter().map(|(n, _)| *n).collect();
        assert_eq!(t, ["builder", "deps", "runtime", "test"]);
        // uv is installed on the builder image alone, in parallel with the
        // build packages, then copied into the builder
        let stage = |p: &Plan, n: &str| p.stages.iter().position(|s| s.name == n).unwrap();
        let branch = &p.stages[stage(&p, "py-tool-branch")];
        assert_eq!(branch.ops[0].name(), "python: uv 0.13.9 (pinned wheel, sha256-checked; builder only)");
        let Op::Run(r) = &branch.ops[0] else { panic!() };
        assert!(
            matches!(&r.mounts[..], [Mount::Source { from: FileSource::Pinned(t), .. }] if t.files[0].arch == "amd64" && t.files[0].url.contains("manylinux"))
        );
        assert_eq!(r.network, crate::spec::Network::None);
        // another index (a mirror, PyPI unreachable) or uv version: pip
        // installs uv from it
        for other in ["index-url = \"https://mirror.example/simple\"\n", "uv-version = \"0.12.0\"\n"] {
            let p = plan(&src.replace("[python]\n", &format!("[python]\n{other}")));
            let op = &p.stages[stage(&p, "py-tool-branch")].ops[0];
            assert_eq!(op.name(), "python: install uv (builder only)", "{other}");
        }
        let musl = plan(&src.replace("[system]\n", "[system]\nmanager = \"apk\"\n"));
        let Op::Run(r) = &musl.stages[stage(&musl, "py-tool-branch")].ops[0] else { panic!() };
        assert!(matches!(&r.mounts[..], [Mount::Source { from: FileSource::Pinned(t), .. }] if t.files[0].url.contains("musllinux")));
        assert!(matches!(&branch.from, StageBase::Image(_)), "{:?}", branch.from);
        let tool = &p.stages[stage(&p, "py-tool")];
        assert_eq!(tool.from, StageBase::Stage(stage(&p, "builder-base")));
        assert!(
            matches!(&tool.ops[..], [Op::Copy { src, from: FileSource::Stage(b), .. }, Op::Mkdir { path, .. }] if src == UV_HOME && *b == stage(&p, "py-tool-branch") && path == "/root/.cache"),
            "{:?}",
            tool.ops
        );
        // unless the build packages are what makes a venv possible
        let venv = src.replace("build-packages = [", "build-packages = [\"python3-venv\", ");
        assert_ne!(venv, src);
        let pv = plan(&venv);
        assert!(pv.stages.iter().all(|s| s.name != "py-tool-branch"));
        // one command: /root/.cache made by the installer's own
        let ops = &pv.stages[stage(&pv, "py-tool")].ops;
        assert_eq!(ops.len(), 1, "{ops:?}");
        let Op::Run(r) = &ops[0] else { panic!() };
        assert_eq!(r.name, "python: uv 0.13.9 (pinned wheel, sha256-checked; builder only)");
        assert!(r.script.starts_with("set -e; mkdir -p /root/.cache; python3 -c "), "{}", r.script);
        // with a wheelhouse, straight out of the uv wheel
        let p = plan(&src.replace("[python]\n", "[python]\nwheels = \"wheels\"\n"));
        let tool = &p.stages[stage(&p, "py-tool-branch")];
        let Op::Run(r) = &tool.ops[0] else { panic!() };
        assert_eq!(r.name, "python: install uv from the wheelhouse (builder only)");
        assert!(
            r.script.starts_with("set -e; python3 -c 'import glob")
                && r.mounts.iter().any(|m| matches!(m, Mount::Source { target, .. } if target == WHEELS_MOUNT)),
            "{r:?}"
        );
        let b = &p.stages[p.stage_index("builder").unwrap()];
        let Op::Run(r) = &b.ops[0] else { panic!() };
        assert!(r.script.contains("/opt/strata-uv/bin/uv pip install"), "{}", r.script);
        assert!(r.mounts.iter().any(|m| matches!(m, Mount::Cache { target, .. } if target == "/root/.cache/uv")));
        let test = &p.stages[p.stage_index("test").unwrap()];
        assert!(test.ops.iter().any(|o| o.name() == "test: copy tests/"));
        // the runtime's OS packages are there for the tests (the builder has not got them)
        assert_eq!(spec_packages(&src), ["libpq5"]);
        assert_eq!(test.ops[0].name(), "system: apt-get install libpq5");
        assert_eq!(test.ops.last().unwrap().name(), "test: pytest -q");
    }

    fn layered(src: &str, req: &str, merge: bool) -> Plan {
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        let files = [("requirements.txt".to_string(), req.as_bytes().to_vec())].into();
        build_with(&spec, &[], &PlanEnv { files, merge })
    }

    #[test]
    fn heavy_packages_get_their_own_layers() {
        let req = "--extra-index-url https://download.pytorch.org/whl/cpu\ntorch==2.5.1  # the big one\nnumpy==2.1.3\nflask==3.0.3\nNVIDIA_cudnn_cu12==9.1\n";
        let py = crate::spec::load(WEB, &BTreeMap::new()).unwrap().python.unwrap();
        let g = layer_groups(&py, &[("requirements.txt".to_string(), req.as_bytes().to_vec())].into());
        let got: Vec<(&str, &str)> = g.iter().map(|g| (g.label.as_str(), g.text.as_str())).collect();
        assert_eq!(
            got,
            [
                ("python: layer torch", "--extra-index-url https://download.pytorch.org/whl/cpu\ntorch==2.5.1\nNVIDIA_cudnn_cu12==9.1\n"),
                ("python: layer scientific", "--extra-index-url https://download.pytorch.org/whl/cpu\nnumpy==2.1.3\n"),
            ]
        );
        // explicit groups, and `layers = []` for one install
        let src = WEB.replace("[python]\n", "[python]\nlayers = [[\"flask\"]]\n");
        let py = crate::spec::load(&src, &BTreeMap::new()).unwrap().python.unwrap();
        assert_eq!(layer_groups(&py, &[("requirements.txt".to_string(), req.as_bytes().to_vec())].into()).len(), 1);
        let src = WEB.replace("[python]\n", "[python]\nlayers = []\n");
        let py = crate::spec::load(&src, &BTreeMap::new()).unwrap().python.unwrap();
        assert!(layer_groups(&py, &[("requirements.txt".to_string(), req.as_bytes().to_vec())].into()).is_empty());
        // includes make it one install
        assert!(layer_groups(&py, &[("requirements.txt".to_string(), b"-r base.txt\nnumpy==2\n".to_vec())].into()).is_empty());
    }

    #[test]
    fn layers_are_diffs_merged_into_the_runtime() {
        let p = layered(WEB, "numpy==2.1.3\nsix==1.16.0\n", true);
        let deps = &p.stages[p.stage_index("deps").unwrap()];
        let Some(Op::Merge { layers, .. }) = deps.ops.iter().find(|o| matches!(o, Op::Merge { .. })) else { panic!("{:?}", deps.ops) };
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["python: venv /opt/venv", "python: layer scientific", "python: pip install -r requirements.txt (the rest)"]);
        // the numpy layer is built on the empty venv alone
        let (lower, upper) = (layers[1].lower, layers[1].upper);
        assert_eq!(p.stages[lower].name, "py-venv");
        assert_eq!(p.stages[upper].from, StageBase::Stage(lower));
        // without MergeOp the groups chain and the runtime copies the venv
        let p = layered(WEB, "numpy==2.1.3\nsix==1.16.0\n", false);
        let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"py-layer-1") && !names.contains(&"py-groups"), "{names:?}");
        let deps = &p.stages[p.stage_index("deps").unwrap()];
        assert!(deps.ops.iter().any(|o| o.name() == "python: venv /opt/venv"));
    }

    #[test]
    fn system_layers_are_separate_installs() {
        let p = plan(&WEB.replace("packages = [\"libpq5\"]", "packages = [\"libpq5\", \"libgl1\", \"curl\"]\nlayers = [[\"libgl1\"]]"));
        let names: Vec<&str> = p.stages[0].ops.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["system: apt-get install libgl1", "system: apt-get install libpq5 curl"]);
    }

    #[test]
    fn init_adds_tini() {
        let p = plan(&WEB.replace("entrypoint =", "init = true\nentrypoint ="));
        assert_eq!(p.stages[p.target].config.as_ref().unwrap().init, Some(vec!["/usr/bin/tini".to_string(), "--".to_string()]));
        // On apt images: the pinned package, installed offline after the
        // distro's packages, not `tini` from the archive.
        let names: Vec<&str> = p.stages[0].ops.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["system: apt-get install libpq5", "system: tini 0.19.0-1 (pinned, sha256-checked)"]);
        let Op::Run(r) = &p.stages[0].ops[1] else { panic!() };
        assert_eq!(r.network, Network::None);
        assert!(matches!(&r.mounts[..], [Mount::Source { from: FileSource::Pinned(t), writable: false, .. }] if t.name == "tini"));
        // Listed by the spec itself: the distro's, as before.
        let p = plan(&WEB.replace("entrypoint =", "init = true\nentrypoint =").replace("[\"libpq5\"]", "[\"libpq5\", \"tini\"]"));
        let names: Vec<&str> = p.stages[0].ops.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["system: apt-get install libpq5 tini"]);
    }

    #[test]
    fn pinned_files_match_platforms_by_arch_and_variant() {
        let f = |a: &str, v: &str| TINI.file(a, v).map(|f| f.url.rsplit('_').next().unwrap());
        assert_eq!(f("amd64", ""), Some("amd64.deb"));
        assert_eq!(f("arm64", "v8"), Some("arm64.deb"));
        assert_eq!(f("arm", ""), Some("armhf.deb"));
        assert_eq!(f("arm", "v7"), Some("armhf.deb"));
        assert_eq!(f("arm", "v6"), Some("armel.deb"));
        assert_eq!(f("ppc64le", ""), Some("ppc64el.deb"));
        assert_eq!(f("riscv64", ""), None);
        for t in TINI.files {
            assert_eq!(t.sha256.len(), 64, "{t:?}");
            assert!(t.url.contains(&format!("tini_{}_", t.version)), "{t:?}");
        }
    }
}
