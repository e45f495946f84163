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

pub mod render;

use std::collections::BTreeMap;

pub use crate::spec::Sharing;
use crate::spec::{Installer, Manager, Network, Python, Span, Spec, Step, StepStage, User};

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
    pub workdir: (String, Option<(u32, u32)>),
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
        owner: Option<(u32, u32)>,
        span: Span,
    },
    Mkdir {
        name: String,
        path: String,
        owner: Option<(u32, u32)>,
        span: Span,
    },
    /// Layers merged onto the state (MergeOp), each the difference between
    /// two stages (DiffOp: `upper` built on `lower`), named for the history.
    Merge {
        name: String,
        layers: Vec<(usize, usize, String)>,
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
        owner: Option<(u32, u32)>,
        mode: Option<u32>,
    },
    /// Read-only mount of selected files; the op's cache key depends on the
    /// content of exactly these files.
    Files {
        target: String,
        from: FileSource,
        paths: Vec<String>,
    },
    /// Read-only mount of a whole source (a named wheel context, say).
    Source {
        target: String,
        from: FileSource,
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
    /// `--ssh ID`: the agent socket, `SSH_AUTH_SOCK` points at it.
    Ssh {
        id: String,
        index: usize,
    },
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

/// Where requirement files are mounted in the install step.
pub const DEPS_MOUNT: &str = "/tmp/strata/deps";
/// Where a wheelhouse is mounted for offline installs.
pub const WHEELS_MOUNT: &str = "/tmp/strata/wheels";
/// The uv tool venv in the builder (never copied to the runtime).
pub const UV_HOME: &str = "/opt/strata-uv";
/// Where R libraries are installed and copied from.
pub const R_LIBS: &str = "/usr/local/lib/R/site-library";
pub const R_REPOS_MOUNT: &str = "/tmp/strata/r-repos";

/// Identifies a cache namespace so unrelated caches never share an id. The
/// apt caches include the base image: lists of different distributions must
/// not mix.
fn cache_id(kind: &str, scope: &str) -> String {
    if scope.is_empty() {
        format!("strata-{kind}")
    } else {
        format!("strata-{kind}-{scope}")
    }
}

/// The cache mounts of a preset or `[caches.NAME]` (extra env in `.1`).
pub fn cache_mounts(name: &str, spec: &Spec, image: &str) -> (Vec<Mount>, Vec<(String, String)>) {
    let custom = spec.caches.get(name);
    let m = |target: &str, id: String, sharing: Sharing| Mount::Cache { target: target.into(), id, sharing, owner: None, mode: None };
    let preset: (Vec<Mount>, Vec<(String, String)>) = match name {
        "apt" => {
            let scope = sanitize_id(image);
            (
                vec![
                    m("/var/cache/apt", cache_id("apt-cache", &scope), Sharing::Locked),
                    m("/var/lib/apt", cache_id("apt-lists", &scope), Sharing::Locked),
                ],
                vec![],
            )
        }
        "pip" => (vec![m("/root/.cache/pip", cache_id("pip", ""), Sharing::Locked)], vec![]),
        "uv" => (vec![m("/root/.cache/uv", cache_id("uv", ""), Sharing::Locked)], vec![("UV_CACHE_DIR".into(), "/root/.cache/uv".into())]),
        // The env points the tools at the mounts whatever HOME, GOPATH or
        // the image set (the golang image's GOPATH is /go, not /root/go).
        "npm" => (vec![m("/root/.npm", cache_id("npm", ""), Sharing::Locked)], vec![("npm_config_cache".into(), "/root/.npm".into())]),
        "cargo" => (
            vec![
                m("/usr/local/cargo/registry", cache_id("cargo-registry", ""), Sharing::Locked),
                m("/usr/local/cargo/git", cache_id("cargo-git", ""), Sharing::Locked),
                m("/root/.cargo/registry", cache_id("cargo-registry", "home"), Sharing::Locked),
                m("/root/.cargo/git", cache_id("cargo-git", "home"), Sharing::Locked),
            ],
            vec![],
        ),
        "go" => (
            vec![
                m("/root/go/pkg/mod", cache_id("go-mod", ""), Sharing::Shared),
                m("/root/.cache/go-build", cache_id("go-build", ""), Sharing::Shared),
            ],
            vec![("GOMODCACHE".into(), "/root/go/pkg/mod".into()), ("GOCACHE".into(), "/root/.cache/go-build".into())],
        ),
        "hf" => (
            vec![m("/root/.cache/huggingface", cache_id("hf", ""), Sharing::Shared)],
            vec![("HF_HOME".into(), "/root/.cache/huggingface".into())],
        ),
        "torch" => (
            vec![m("/root/.cache/torch", cache_id("torch", ""), Sharing::Shared)],
            vec![("TORCH_HOME".into(), "/root/.cache/torch".into())],
        ),
        "ccache" => {
            (vec![m("/root/.ccache", cache_id("ccache", ""), Sharing::Shared)], vec![("CCACHE_DIR".into(), "/root/.ccache".into())])
        }
        _ => (vec![], vec![]),
    };
    let Some(c) = custom else { return preset };
    // A table for a preset name overrides the preset's (first) mount.
    let target = if c.target.is_empty() {
        match preset.0.first() {
            Some(Mount::Cache { target, .. }) => target.clone(),
            _ => String::new(),
        }
    } else {
        c.target.clone()
    };
    let owner = match (c.uid, c.gid) {
        (None, None) => None,
        (u, g) => Some((u.unwrap_or(0), g.or(u).unwrap_or(0))),
    };
    let id = c.id.clone().unwrap_or_else(|| cache_id(name, ""));
    let mut mounts = vec![Mount::Cache { target, id, sharing: c.sharing, owner, mode: c.mode }];
    mounts.extend(preset.0.into_iter().skip(1));
    (mounts, preset.1)
}

fn caches_for(names: &[crate::spec::Sp<String>], spec: &Spec, image: &str) -> (Vec<Mount>, Vec<(String, String)>) {
    let mut mounts = Vec::new();
    let mut env = Vec::new();
    for n in names {
        let (m, e) = cache_mounts(&n.value, spec, image);
        mounts.extend(m);
        env.extend(e);
    }
    (mounts, env)
}

fn run(name: String, script: String, mounts: Vec<Mount>, env: Vec<(String, String)>, span: Span) -> Op {
    Op::Run(Run { name, script, cwd: "/".into(), env, mounts, network: Network::Default, step: None, span })
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
    let image = &spec.image;
    let base = image.base.value.clone();
    let builder_ref = image.builder.as_ref().map(|b| b.value.clone()).unwrap_or_else(|| base.clone());
    let manager = spec.system.manager;
    let mut stages: Vec<Stage> = Vec::new();
    let mut context = ContextFilter { include: vec![], exclude: dockerignore.to_vec() };
    let mut app = ContextFilter { include: vec![], exclude: dockerignore.to_vec() };
    app.exclude.extend(spec.app.exclude.iter().map(|e| e.value.clone()));
    app.exclude.extend(APP_EXCLUDE.iter().map(|e| e.to_string()));
    let mut deps_files = Vec::new();
    let workdir = image.workdir.value.clone();
    let stage = |stages: &mut Vec<Stage>, name: &str, from: StageBase, ops: Vec<Op>, description: &str| -> usize {
        stages.push(Stage { name: name.into(), from, ops, config: None, description: description.into() });
        stages.len() - 1
    };

    // --- OS layer of the runtime image (the builder is a branch of its own).
    let mut pkgs: Vec<&str> = spec.system.packages.iter().map(|p| p.value.as_str()).collect();
    if image.init && !pkgs.contains(&"tini") {
        pkgs.push("tini");
    }
    let mut os_ops = Vec::new();
    // `[system] layers`: each group its own install (and layer), first to
    // last, so adding a package to the rest leaves them alone.
    for group in &spec.system.layers {
        let names: Vec<&str> = group.iter().map(|p| p.value.as_str()).collect();
        pkgs.retain(|p| !names.contains(p));
        os_ops.push(install_packages(spec, manager, &names, &base, list_span(group)));
    }
    if !pkgs.is_empty() {
        os_ops.push(install_packages(spec, manager, &pkgs, &base, list_span(&spec.system.packages)));
    }
    let os = stage(&mut stages, "os", StageBase::Image(base.clone()), os_ops, "base image + OS packages");

    // --- R: its OS packages on top of the OS layer (the runtime builds on
    // this), CRAN packages installed in a branch whose library is copied.
    let mut runtime_base = os;
    let mut r_libs = None;
    if let Some(r) = &spec.r {
        let rpkgs: Vec<&str> = r.packages.iter().map(|p| p.value.as_str()).collect();
        let r_os = stage(
            &mut stages,
            "r-os",
            StageBase::Stage(os),
            vec![install_packages(spec, manager, &rpkgs, &base, list_span(&r.packages))],
            "OS packages + R",
        );
        runtime_base = r_os;
        if !r.cran.is_empty() {
            let op = r_install(r, &base);
            r_libs = Some(stage(&mut stages, "r", StageBase::Stage(r_os), vec![op], "R packages from CRAN-style repos"));
        }
    }

    // --- builder: build packages, then (independently) the Python install
    // and each build step.
    let python = spec.python.as_ref();
    let build_steps: Vec<&Step> = spec.steps.iter().filter(|s| s.stage == StepStage::Build).collect();
    let needs_builder = python.is_some() || !build_steps.is_empty() || spec.test.is_some();
    let mut builder_tools = None;
    let mut venv_stage = None;
    let mut venv_layers: Option<Vec<(usize, usize, String)>> = None;
    if needs_builder {
        // The builder starts from the image, not from the runtime's OS
        // layer: build and runtime packages are parallel branches, so adding
        // a runtime package never re-runs the build packages, the dependency
        // install or the steps. A package the build needs too goes in
        // `build-packages` as well (-dev packages pull their runtime libs).
        let from = StageBase::Image(builder_ref.clone());
        let mut ops = Vec::new();
        if !spec.system.build_packages.is_empty() {
            let bp: Vec<&str> = spec.system.build_packages.iter().map(|p| p.value.as_str()).collect();
            ops.push(install_packages(spec, manager, &bp, &builder_ref, list_span(&spec.system.build_packages)));
        }
        let tools = stage(&mut stages, "builder-base", from, ops, "builder image + build packages");
        builder_tools = Some(tools);
        if let Some(py) = python {
            for f in py.requirements.iter().chain(&py.pyproject).chain(&py.lock) {
                context.include.push(trim_dir(&f.value));
                deps_files.push(f.value.clone());
            }
            // The installer lives in a tool venv of the builder; the app's
            // venv never contains pip, setuptools or uv (unless keep-pip).
            let tool = stage(
                &mut stages,
                "py-tool",
                StageBase::Stage(tools),
                vec![tool_install(py, spec, &builder_ref)],
                "the installer (builder only)",
            );
            let skel = stage(&mut stages, "py-venv", StageBase::Stage(tool), vec![venv_create(py)], "an empty venv");
            let groups = layer_groups(py, &env.files);
            let mut below = skel;
            let mut layers = vec![(tool, skel, format!("python: venv {}", py.venv))];
            if env.merge {
                // Each group on the empty venv alone: its layer depends on
                // its own pins only, and the diffs are merged.
                let mut diffs = Vec::new();
                for (i, g) in groups.iter().enumerate() {
                    let gi = stage(
                        &mut stages,
                        &format!("py-layer-{}", i + 1),
                        StageBase::Stage(skel),
                        vec![group_install(py, spec, &builder_ref, g)],
                        &g.label,
                    );
                    diffs.push((skel, gi, g.label.clone()));
                }
                if !diffs.is_empty() {
                    let merged = Op::Merge { name: "python: merge dependency layers".into(), layers: diffs.clone(), span: py.span.clone() };
                    below = stage(&mut stages, "py-groups", StageBase::Stage(skel), vec![merged], "the dependency layers merged");
                    layers.extend(diffs);
                }
            } else {
                // No MergeOp: the groups chain, so a bump re-runs its group
                // and the ones after it, never the ones before.
                for (i, g) in groups.iter().enumerate() {
                    below = stage(
                        &mut stages,
                        &format!("py-layer-{}", i + 1),
                        StageBase::Stage(below),
                        vec![group_install(py, spec, &builder_ref, g)],
                        &g.label,
                    );
                }
            }
            let install = python_install(py, spec, &builder_ref, !groups.is_empty());
            let install_name = install.name().to_string();
            let installed =
                stage(&mut stages, "builder", StageBase::Stage(below), vec![install], "builder with the installed dependencies");
            layers.push((below, installed, install_name));
            venv_stage = Some(installed);
            if env.merge && !groups.is_empty() {
                venv_layers = Some(layers);
            }
        }
    }

    // --- build steps: after the dependency install (they may use the
    // venv, e.g. to fetch models), each on its own branch with only its
    // inputs, so editing one step's inputs re-runs only that step.
    let venv_env: Vec<(String, String)> = match python {
        Some(py) => vec![("VIRTUAL_ENV".into(), py.venv.clone()), ("PATH".into(), format!("{}/bin:${{PATH}}", py.venv))],
        None => vec![],
    };
    let mut step_results: BTreeMap<String, usize> = BTreeMap::new();
    for s in order_steps(&build_steps) {
        let builder = venv_stage.or(builder_tools).expect("builder exists when build steps do");
        let from = match s.after.first().and_then(|a| step_results.get(&a.value)) {
            Some(&i) => StageBase::Stage(i),
            None => StageBase::Stage(builder),
        };
        let mut ops = after_copies(s, spec, &step_results, &workdir);
        ops.extend(step_ops(s, spec, &builder_ref, &workdir, &mut context, venv_env.clone()));
        let idx = stage(&mut stages, &format!("step-{}", s.name.value), from, ops, &format!("build step {}", s.name.value));
        step_results.insert(s.name.value.clone(), idx);
    }

    // --- runtime image.
    let user = &image.user.value;
    let owner = match user {
        User::Root => None,
        User::Named { uid, gid, .. } => Some((*uid, *gid)),
    };
    let mut deps_ops = Vec::new();
    if let User::Named { name, uid, gid } = user {
        deps_ops.push(run(
            format!("user: create {name} ({uid}:{gid})"),
            create_user_script(name, *uid, *gid),
            vec![],
            vec![],
            image.user.span.clone(),
        ));
    }
    deps_ops.push(Op::Mkdir { name: format!("workdir: {workdir}"), path: workdir.clone(), owner, span: image.workdir.span.clone() });
    let mut config = ConfigPatch {
        env: image.env.clone(),
        path_prepend: vec![],
        // Numeric, so Kubernetes' runAsNonRoot can verify it without
        // reading /etc/passwd.
        user: match user {
            User::Root => "root".to_string(),
            User::Named { uid, gid, .. } => format!("{uid}:{gid}"),
        },
        workdir: workdir.clone(),
        init: image.init.then(|| vec![tini_path(manager).to_string(), "--".to_string()]),
        entrypoint: image.entrypoint.clone(),
        cmd: image.cmd.clone(),
        expose: image.expose.iter().map(|p| p.value.clone()).collect(),
        labels: image.labels.clone(),
        healthcheck: image.healthcheck.clone(),
        stopsignal: image.stopsignal.clone(),
    };
    if let (Some(py), Some(v)) = (python, venv_stage) {
        match venv_layers.take() {
            // Layered: the venv arrives as its layers (skeleton, each
            // group, the rest), each with its own digest.
            Some(layers) => deps_ops.push(Op::Merge { name: format!("python: venv {} in layers", py.venv), layers, span: py.span.clone() }),
            None => deps_ops.push(Op::Copy {
                name: format!("python: venv {}", py.venv),
                from: FileSource::Stage(v),
                src: py.venv.clone(),
                dest: py.venv.clone(),
                owner: None,
                span: py.span.clone(),
            }),
        }
        config.path_prepend.push(format!("{}/bin", py.venv));
        config.env.insert(0, ("VIRTUAL_ENV".into(), py.venv.clone()));
    }
    if let (Some(r), Some(rl)) = (&spec.r, r_libs) {
        deps_ops.push(Op::Copy {
            name: format!("r: libraries {}", r.cran.iter().map(|c| c.value.as_str()).collect::<Vec<_>>().join(" ")),
            from: FileSource::Stage(rl),
            src: R_LIBS.into(),
            dest: R_LIBS.into(),
            owner: None,
            span: list_span(&r.cran),
        });
    }
    let deps =
        stage(&mut stages, "deps", StageBase::Stage(runtime_base), deps_ops, "base + OS packages + installed dependencies, no app code");
    let mut deps_config = config.clone();
    deps_config.labels.push(("strata.deps.digest".into(), String::new()));
    stages[deps].config = Some(deps_config);

    let mut ops = Vec::new();
    for s in order_steps(&build_steps) {
        let idx = step_results[&s.name.value];
        for out in &s.outputs {
            let path = abs_in(&workdir, &out.value);
            ops.push(Op::Copy {
                name: format!("step {}: output {}", s.name.value, out.value),
                from: FileSource::Stage(idx),
                src: path.clone(),
                dest: path,
                owner,
                span: out.span.clone(),
            });
        }
    }
    let runtime_steps: Vec<&Step> = spec.steps.iter().filter(|s| s.stage == StepStage::Runtime).collect();
    for s in order_steps(&runtime_steps) {
        ops.extend(step_ops(s, spec, &base, &workdir, &mut context, venv_env.clone()));
    }
    let app_owner = match spec.app.chown.as_ref().map(|c| &c.value) {
        Some(User::Root) => None,
        Some(User::Named { uid, gid, .. }) => Some((*uid, *gid)),
        None => owner,
    };
    let dest_root = spec.app.dest.clone().unwrap_or_else(|| workdir.clone());
    let app_copies: Vec<Op> = spec
        .app
        .copy
        .iter()
        .map(|entry| {
            app.include.push(trim_dir(&entry.value));
            let (src, dest) = copy_paths(&entry.value, &dest_root);
            Op::Copy {
                name: format!("app: copy {}", entry.value),
                from: FileSource::App,
                src,
                dest,
                owner: app_owner,
                span: entry.span.clone(),
            }
        })
        .collect();
    ops.extend(app_copies.iter().cloned());
    let desc = match &spec.variant {
        Some(v) => format!("the {v} variant image"),
        None => "the runtime image (default)".to_string(),
    };
    let target = stage(&mut stages, "runtime", StageBase::Stage(deps), ops, &desc);
    stages[target].config = Some(config.clone());

    // --- test: dev dependencies on top of the installed deps, then the app
    // and test inputs, then the test command. Fails the build on failure.
    if let Some(t) = &spec.test {
        let mut ops = Vec::new();
        let from = match (python, venv_stage) {
            (Some(py), Some(v)) => {
                // The tests run on the builder's venv, which is a branch
                // apart from the runtime's OS packages: they may import a
                // library that needs one (libpq5, libgl1), so install them.
                if !spec.system.packages.is_empty() {
                    let rt: Vec<&str> = spec.system.packages.iter().map(|p| p.value.as_str()).collect();
                    ops.push(install_packages(spec, manager, &rt, &builder_ref, list_span(&spec.system.packages)));
                }
                if !t.requirements.is_empty() {
                    for r in &t.requirements {
                        context.include.push(trim_dir(&r.value));
                    }
                    ops.push(dev_install(py, t, spec, &builder_ref));
                }
                StageBase::Stage(v)
            }
            _ => StageBase::Stage(target),
        };
        if matches!(from, StageBase::Stage(v) if Some(v) == venv_stage) {
            ops.extend(app_copies.iter().cloned().map(|op| match op {
                Op::Copy { name, from, src, dest, span, .. } => Op::Copy { name, from, src, dest, owner: None, span },
                other => other,
            }));
        }
        for i in &t.inputs {
            context.include.push(trim_dir(&i.value));
            let (src, dest) = copy_paths(&i.value, &workdir);
            ops.push(Op::Copy {
                name: format!("test: copy {}", i.value),
                from: FileSource::Context,
                src,
                dest,
                owner: None,
                span: i.span.clone(),
            });
        }
        let (mounts, cache_env) = caches_for(&t.caches, spec, &builder_ref);
        // The tests run with the image's environment, as the app will.
        let mut env = spec.image.env.clone();
        env.extend(cache_env);
        if let Some(py) = python {
            env.push(("VIRTUAL_ENV".into(), py.venv.clone()));
            env.push(("PATH".into(), format!("{}/bin:${{PATH}}", py.venv)));
        }
        ops.push(Op::Run(Run {
            name: format!("test: {}", t.run.value),
            script: t.run.value.clone(),
            cwd: workdir.clone(),
            env,
            mounts,
            network: Network::Default,
            step: Some("test".into()),
            span: t.run.span.clone(),
        }));
        let idx = stage(&mut stages, "test", from, ops, "app + dev dependencies; runs the tests, fails the build when they fail");
        stages[idx].config = Some(config.clone());
    }

    if let Some(b) = venv_stage.or(builder_tools) {
        stages[b].config = Some(ConfigPatch {
            user: "root".into(),
            workdir: "/".into(),
            path_prepend: config.path_prepend.clone(),
            env: python.map(|py| vec![("VIRTUAL_ENV".to_string(), py.venv.clone())]).unwrap_or_default(),
            ..Default::default()
        });
        stages[b].name = "builder".into();
        stages[b].description = "the builder stage: build packages and installed dependencies".into();
    }
    context.settle();
    app.settle();
    deps_files.sort();
    deps_files.dedup();
    Plan { stages, target, context, app, deps_files, workdir: (workdir, owner) }
}

impl Plan {
    /// Stage index of a target name (`runtime` is the default).
    pub fn stage_index(&self, target: &str) -> Option<usize> {
        if target.is_empty() || target == "runtime" {
            return Some(self.target);
        }
        self.stages.iter().position(|s| s.name == target && s.config.is_some())
    }

    /// Targets a user can pick, with descriptions.
    pub fn targets(&self) -> Vec<(&str, &str)> {
        self.stages.iter().filter(|s| s.config.is_some()).map(|s| (s.name.as_str(), s.description.as_str())).collect()
    }
}

/// Steps in an order where every step comes after the steps it names in
/// `after`, spec order otherwise (Kahn's algorithm, smallest index first).
/// Cycles were rejected by the reader.
fn order_steps<'a>(steps: &[&'a Step]) -> Vec<&'a Step> {
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.name.value.as_str(), i)).collect();
    let mut waiting: Vec<usize> = vec![0; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for a in &s.after {
            if let Some(&j) = index.get(a.value.as_str()) {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut out = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        out.push(steps[i]);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    out
}

/// For a step after several others: the outputs of the 2nd… dependencies
/// (the first is its base).
fn after_copies(s: &Step, spec: &Spec, results: &BTreeMap<String, usize>, workdir: &str) -> Vec<Op> {
    let mut ops = Vec::new();
    for a in s.after.iter().skip(1) {
        let Some(&idx) = results.get(&a.value) else { continue };
        let dep = spec.steps.iter().find(|d| d.name.value == a.value);
        let outs: Vec<String> = match dep {
            Some(d) if !d.outputs.is_empty() => d.outputs.iter().map(|o| abs_in(workdir, &o.value)).collect(),
            _ => vec![workdir.to_string()],
        };
        for o in outs {
            ops.push(Op::Copy {
                name: format!("step {}: from {} {}", s.name.value, a.value, o),
                from: FileSource::Stage(idx),
                src: o.clone(),
                dest: o,
                owner: None,
                span: a.span.clone(),
            });
        }
    }
    ops
}

/// Copies a step's inputs into the workdir and runs it.
fn step_ops(s: &Step, spec: &Spec, image: &str, workdir: &str, context: &mut ContextFilter, extra_env: Vec<(String, String)>) -> Vec<Op> {
    let mut ops = Vec::new();
    for i in &s.inputs {
        context.include.push(trim_dir(&i.value));
        let (src, dest) = copy_paths(&i.value, workdir);
        ops.push(Op::Copy {
            name: format!("step {}: input {}", s.name.value, i.value),
            from: FileSource::Context,
            src,
            dest,
            owner: None,
            span: i.span.clone(),
        });
    }
    if s.inputs.is_empty() {
        ops.push(Op::Mkdir {
            name: format!("step {}: workdir", s.name.value),
            path: workdir.to_string(),
            owner: None,
            span: s.name.span.clone(),
        });
    }
    let (mut mounts, mut env) = caches_for(&s.caches, spec, image);
    env.extend(extra_env);
    env.extend(s.env.iter().cloned());
    for id in &s.secrets {
        mounts.push(Mount::Secret { id: id.value.clone() });
    }
    for (i, id) in s.ssh.iter().enumerate() {
        mounts.push(Mount::Ssh { id: id.value.clone(), index: i });
    }
    ops.push(Op::Run(Run {
        name: format!("step {}: {}", s.name.value, one_line(&s.run.value)),
        script: s.run.value.clone(),
        cwd: workdir.to_string(),
        env,
        mounts,
        network: s.network,
        step: Some(s.name.value.clone()),
        span: s.run.span.clone(),
    }));
    ops
}

fn one_line(s: &str) -> String {
    let first = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if first.chars().count() > 60 || s.trim().lines().count() > 1 {
        format!("{}…", first.chars().take(60).collect::<String>())
    } else {
        first.to_string()
    }
}

/// A workdir-relative or absolute path as an absolute one.
fn abs_in(workdir: &str, p: &str) -> String {
    let p = p.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), p.trim_start_matches("./"))
    }
}

fn tini_path(m: Manager) -> &'static str {
    match m {
        Manager::Apk => "/sbin/tini",
        Manager::Apt | Manager::Dnf => "/usr/bin/tini",
    }
}

/// From the first to the last item of a list: where a failing install
/// points in the spec.
fn list_span(items: &[crate::spec::Sp<String>]) -> Span {
    match (items.first(), items.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => 0..0,
    }
}

fn trim_dir(p: &str) -> String {
    p.trim_end_matches('/').to_string()
}

/// Source and destination of one `[app] copy` entry: the path keeps its
/// context-relative location under `dest_root`.
fn copy_paths(entry: &str, dest_root: &str) -> (String, String) {
    let root = dest_root.trim_end_matches('/');
    if entry == "." {
        return ("/".into(), format!("{root}/"));
    }
    let rel = entry.trim_end_matches('/');
    if rel.contains(['*', '?', '[']) {
        // A wildcard copies the matches into their parent directory.
        let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let dest = if parent.is_empty() { format!("{root}/") } else { format!("{root}/{parent}/") };
        return (format!("/{rel}"), dest);
    }
    (format!("/{rel}"), format!("{root}/{rel}"))
}

fn install_packages(spec: &Spec, manager: Manager, pkgs: &[&str], image: &str, span: Span) -> Op {
    // Package names were validated to be plain names, so joining them into
    // the script cannot inject shell syntax.
    let list = pkgs.join(" ");
    let (script, mounts, env, tool) = match manager {
        Manager::Apt => (
            // docker-clean (in Debian/Ubuntu images) deletes downloaded
            // .debs; the archives live in a cache mount, keep them.
            format!(
                "set -e; rm -f /etc/apt/apt.conf.d/docker-clean; apt-get update -qq; \
                 apt-get install -y -qq --no-install-recommends -o APT::Keep-Downloaded-Packages=true {list}"
            ),
            cache_mounts("apt", spec, image).0,
            vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())],
            "apt-get",
        ),
        Manager::Apk => (
            format!("set -e; apk add --cache-dir /var/cache/apk {list}"),
            vec![Mount::Cache {
                target: "/var/cache/apk".into(),
                id: cache_id("apk", &sanitize_id(image)),
                sharing: Sharing::Locked,
                owner: None,
                mode: None,
            }],
            vec![],
            "apk",
        ),
        Manager::Dnf => (
            format!("set -e; dnf install -y -q --setopt=keepcache=1 --setopt=install_weak_deps=False {list}"),
            vec![Mount::Cache {
                target: "/var/cache/dnf".into(),
                id: cache_id("dnf", &sanitize_id(image)),
                sharing: Sharing::Locked,
                owner: None,
                mode: None,
            }],
            vec![],
            "dnf",
        ),
    };
    run(format!("system: {tool} install {list}"), script, mounts, env, span)
}

fn sanitize_id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

/// Installer flags for where packages come from: a wheelhouse (offline)
/// or indexes. `pip`: the command is pip's, which ignores a plain-http index
/// unless its host is trusted; naming an http:// index in the spec is that
/// trust (uv takes http indexes as they are).
fn source_flags(py: &Python, mounts: &mut Vec<Mount>, pip: bool) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(w) = &py.wheels {
        args.push("--no-index".into());
        args.push(format!("--find-links={WHEELS_MOUNT}"));
        mounts.push(wheels_mount(&w.value));
    } else {
        if let Some(i) = &py.index_url {
            args.push(format!("--index-url={i}"));
        }
        for e in &py.extra_index_urls {
            args.push(format!("--extra-index-url={e}"));
        }
        if pip {
            let mut hosts: Vec<&str> = py.index_url.iter().chain(&py.extra_index_urls).filter_map(|u| http_host(u)).collect();
            hosts.dedup();
            args.extend(hosts.iter().map(|h| format!("--trusted-host={h}")));
        }
    }
    args
}

/// The wheelhouse (a named build context) at `WHEELS_MOUNT`, read-only.
fn wheels_mount(context: &str) -> Mount {
    Mount::Source { target: WHEELS_MOUNT.into(), from: FileSource::Named(context.to_string()) }
}

/// `host[:port]` of an `http://` URL (userinfo dropped), else None.
fn http_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let netloc = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = netloc.rsplit_once('@').map(|(_, h)| h).unwrap_or(netloc);
    (!host.is_empty()).then_some(host)
}

const PIP_ENV: [(&str, &str); 2] = [("PIP_DISABLE_PIP_VERSION_CHECK", "1"), ("PIP_ROOT_USER_ACTION", "ignore")];

fn pip_env() -> Vec<(String, String)> {
    PIP_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// pip's tool venv in the builder: installs go into the app's venv with
/// `pip --python`, so that venv never contains pip.
pub const PIP_HOME: &str = "/opt/strata-pip";

/// The installer, in a tool venv of the builder (never in the runtime).
fn tool_install(py: &Python, spec: &Spec, image: &str) -> Op {
    match py.installer.value {
        Installer::Pip => run(
            "python: pip tool venv (builder only)".into(),
            format!("set -e; python3 -m venv {PIP_HOME}"),
            vec![],
            pip_env(),
            py.installer.span.clone(),
        ),
        // With a wheelhouse, uv's static binary is taken straight out of its
        // wheel (a zip): no venv, no pip run, ~3 s less on a cold build.
        Installer::Uv if py.wheels.is_some() => {
            let wheels = py.wheels.iter().map(|w| wheels_mount(&w.value)).collect();
            run(
                "python: install uv from the wheelhouse (builder only)".into(),
                format!("set -e; python3 -c {}", shell_quote(&uv_from_wheel_script())),
                wheels,
                vec![],
                py.installer.span.clone(),
            )
        }
        Installer::Uv => {
            let mut mounts = cache_mounts("pip", spec, image).0;
            let flags = source_flags(py, &mut mounts, true);
            let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
            run(
                "python: install uv (builder only)".into(),
                format!("set -e; python3 -m venv {UV_HOME}; {UV_HOME}/bin/python -m pip install -q {} uv", quoted.join(" ")),
                mounts,
                pip_env(),
                py.installer.span.clone(),
            )
        }
    }
}

/// Python (stdlib only) that copies `uv` out of the wheelhouse's uv wheel
/// for this machine to `UV_HOME/bin/uv`, choosing as pip would: the
/// architecture, glibc (manylinux) or musl (musllinux), the newest version.
fn uv_from_wheel_script() -> String {
    format!(
        r#"import glob, os, platform, re, shutil, struct, sys, zipfile
m = platform.machine().lower()
if struct.calcsize("P") == 4 and m in ("x86_64", "amd64", "i386", "i686"):
    m = "i686"
m = {{"amd64": "x86_64", "arm64": "aarch64"}}.get(m, m)
libc = "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
def key(w):
    v = re.match(r"uv-([0-9.]+)-", os.path.basename(w))
    return (libc in w, tuple(int(x) for x in v.group(1).split(".") if x) if v else ())
wheels = sorted((w for w in glob.glob("{WHEELS_MOUNT}/uv-*.whl") if "_" + m in w), key=key, reverse=True)
if not wheels:
    sys.exit("strata: no uv wheel for " + m + " in the wheelhouse")
os.makedirs("{UV_HOME}/bin", exist_ok=True)
with zipfile.ZipFile(wheels[0]) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/uv"))
    with z.open(name) as src, open("{UV_HOME}/bin/uv", "wb") as dst:
        shutil.copyfileobj(src, dst)
os.chmod("{UV_HOME}/bin/uv", 0o755)
"#
    )
}

/// The app's venv, empty (with pip only for `keep-pip = true`).
fn venv_create(py: &Python) -> Op {
    let venv = shell_quote(&py.venv);
    let ssp = if py.system_site_packages { " --system-site-packages" } else { "" };
    let script = match py.installer.value {
        Installer::Pip => {
            let pip = if py.keep_pip { "" } else { " --without-pip" };
            format!("set -e; python3 -m venv{pip}{ssp} {venv}")
        }
        Installer::Uv => {
            let seed = if py.keep_pip { " --seed" } else { "" };
            format!("set -e; {UV_HOME}/bin/uv venv -q{seed}{ssp} --python python3 {venv}")
        }
    };
    let env = vec![("UV_PYTHON_DOWNLOADS".to_string(), "never".to_string())];
    run(format!("python: create venv {}", py.venv), script, vec![], env, py.span.clone())
}

/// The install command for the app's venv: `pip --python` from the tool
/// venv, or `uv pip install --python`.
fn installer_cmd(py: &Python) -> String {
    let venv = shell_quote(&py.venv);
    match py.installer.value {
        Installer::Pip => format!("{PIP_HOME}/bin/python -m pip --python {venv}/bin/python install"),
        Installer::Uv => format!("{UV_HOME}/bin/uv pip install -q --python {venv}/bin/python"),
    }
}

fn installer_env(py: &Python, spec: &Spec, image: &str, mounts: &mut Vec<Mount>) -> Vec<(String, String)> {
    let (cache, mut env) = match py.installer.value {
        Installer::Pip => ("pip", pip_env()),
        Installer::Uv => {
            ("uv", vec![("UV_LINK_MODE".to_string(), "copy".to_string()), ("UV_PYTHON_DOWNLOADS".to_string(), "never".to_string())])
        }
    };
    // With SOURCE_DATE_EPOCH set, py_compile writes hash-based .pyc files
    // instead of ones stamped with the install time: the same pins give the
    // same bytes, whether installed at once or in layers.
    env.push(("SOURCE_DATE_EPOCH".to_string(), "0".to_string()));
    let (cm, ce) = cache_mounts(cache, spec, image);
    mounts.extend(cm);
    env.extend(ce);
    env
}

fn compile_flag(py: &Python) -> &'static str {
    match (py.installer.value, py.compile) {
        (Installer::Pip, true) | (Installer::Uv, false) => "",
        (Installer::Pip, false) => " --no-compile",
        (Installer::Uv, true) => " --compile-bytecode",
    }
}

/// A group of pins installed as a layer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub label: String,
    /// The requirement-file lines of this group, plus the files' option
    /// lines (index URLs): the group's cache key is exactly this text.
    pub text: String,
}

/// Package families heavy enough to deserve their own layer when the spec
/// gives no `layers`: the CUDA/torch stack, the other DL frameworks, the
/// scientific stack, big native extensions. What is left (mostly pure
/// Python, where small pins change most) is the last layer.
const HEAVY: &[(&str, &[&str])] = &[
    ("torch", &["torch", "torchvision", "torchaudio", "triton", "nvidia-*"]),
    (
        "frameworks",
        &[
            "tensorflow",
            "tensorflow-cpu",
            "tensorflow-gpu",
            "tensorflow-io-gcs-filesystem",
            "keras",
            "jax",
            "jaxlib",
            "onnxruntime",
            "onnxruntime-gpu",
        ],
    ),
    (
        "scientific",
        &["numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "opencv-python", "opencv-python-headless", "numba", "llvmlite"],
    ),
    ("native", &["pydantic-core", "grpcio", "cryptography", "lxml", "pillow", "matplotlib", "tokenizers", "safetensors", "sentencepiece"]),
];

/// PEP 503 normalised name.
fn normalize(name: &str) -> String {
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

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Splits the requirement files' pins into layer groups. Only plain
/// requirement files qualify (no `-r`/`-c`/`-e`; those install in one
/// layer); a lock install is one layer too.
pub fn layer_groups(py: &Python, files: &BTreeMap<String, Vec<u8>>) -> Vec<Group> {
    if py.requirements.is_empty() || matches!(&py.layers, Some(l) if l.is_empty()) {
        return vec![];
    }
    let mut options = Vec::new();
    let mut pins: Vec<(String, String)> = Vec::new();
    for r in &py.requirements {
        let Some(data) = files.get(&r.value) else { return vec![] };
        for raw in String::from_utf8_lossy(data).lines() {
            let line = match raw.find(" #") {
                Some(i) => &raw[..i],
                None => raw,
            }
            .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('-') {
                let flag = line.split([' ', '=']).next().unwrap_or("");
                if matches!(flag, "-r" | "--requirement" | "-c" | "--constraint" | "-e" | "--editable") {
                    return vec![];
                }
                options.push(line.to_string());
                continue;
            }
            let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).unwrap_or(line.len());
            pins.push((normalize(&line[..end]), line.to_string()));
        }
    }
    let families: Vec<(String, Vec<String>)> = match &py.layers {
        Some(groups) => groups
            .iter()
            .map(|g| (g.iter().map(|n| n.value.clone()).collect::<Vec<_>>().join(" "), g.iter().map(|n| normalize(&n.value)).collect()))
            .collect(),
        None => HEAVY.iter().map(|(label, names)| (label.to_string(), names.iter().map(|n| n.to_string()).collect())).collect(),
    };
    let mut taken = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (label, names) in families {
        let chosen: Vec<&(String, String)> =
            pins.iter().filter(|(n, _)| !taken.contains(n) && names.iter().any(|p| matches(p, n))).collect();
        taken.extend(chosen.iter().map(|(n, _)| n.clone()));
        let lines: Vec<&str> = chosen.iter().map(|(_, l)| l.as_str()).collect();
        if lines.is_empty() {
            continue;
        }
        let mut text = options.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&lines.join("\n"));
        text.push('\n');
        out.push(Group { label: format!("python: layer {label}"), text });
    }
    out
}

/// One group's pins, without their dependencies (the last install adds
/// whatever is missing), on the empty venv.
fn group_install(py: &Python, spec: &Spec, image: &str, g: &Group) -> Op {
    let mut mounts = vec![Mount::Generated { target: DEPS_MOUNT.into(), files: vec![("group.txt".into(), g.text.clone())] }];
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let env = installer_env(py, spec, image, &mut mounts);
    let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
    run(
        g.label.clone(),
        words(&[
            format!("set -e; {}{} --no-deps", installer_cmd(py), compile_flag(py)),
            quoted.join(" "),
            format!("-r {DEPS_MOUNT}/group.txt{}", venv_cleanup(py)),
        ]),
        mounts,
        env,
        py.span.clone(),
    )
}

/// The full install (on top of the group layers, if any): the requirement
/// files or the lock, with dependencies.
fn python_install(py: &Python, spec: &Spec, image: &str, after_groups: bool) -> Op {
    let venv = shell_quote(&py.venv);
    let mut files: Vec<String> = py.requirements.iter().map(|r| r.value.clone()).collect();
    files.extend(py.pyproject.iter().chain(&py.lock).map(|f| f.value.clone()));
    let mut mounts = vec![Mount::Files { target: DEPS_MOUNT.into(), from: FileSource::Context, paths: files }];
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
    let env = installer_env(py, spec, image, &mut mounts);
    let script = match (&py.pyproject, &py.lock) {
        (Some(p), Some(_)) => {
            let dir = match p.value.rsplit_once('/') {
                Some((d, _)) => format!("{DEPS_MOUNT}/{d}"),
                None => DEPS_MOUNT.to_string(),
            };
            words(&[
                format!(
                    "set -e; cd {}; UV_PROJECT_ENVIRONMENT={venv} {UV_HOME}/bin/uv sync -q --frozen --no-install-project --no-dev{}",
                    shell_quote(&dir),
                    compile_flag(py)
                ),
                quoted.join(" ") + &venv_cleanup(py),
            ])
        }
        _ => {
            let reqs: Vec<String> =
                py.requirements.iter().map(|r| format!("-r {}", shell_quote(&format!("{DEPS_MOUNT}/{}", r.value)))).collect();
            words(&[format!("set -e; {}{}", installer_cmd(py), compile_flag(py)), quoted.join(" "), reqs.join(" ") + &venv_cleanup(py)])
        }
    };
    let installer = if py.installer.value == Installer::Uv { "uv" } else { "pip" };
    let what = match &py.lock {
        Some(l) => format!("sync {}", l.value),
        None => format!("install -r {}", py.requirements.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join(" -r ")),
    };
    let rest = if after_groups { " (the rest)" } else { "" };
    let span = match (py.requirements.first(), py.requirements.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => py.span.clone(),
    };
    run(format!("python: {installer} {what}{rest}"), script, mounts, env, span)
}

fn dev_install(py: &Python, t: &crate::spec::TestSpec, spec: &Spec, image: &str) -> Op {
    let mut mounts = vec![Mount::Files {
        target: DEPS_MOUNT.into(),
        from: FileSource::Context,
        paths: t.requirements.iter().map(|r| r.value.clone()).collect(),
    }];
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let mut args: Vec<String> = flags;
    args.extend(t.requirements.iter().flat_map(|r| ["-r".to_string(), format!("{DEPS_MOUNT}/{}", r.value)]));
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let env = installer_env(py, spec, image, &mut mounts);
    run(
        format!("test: install -r {}", t.requirements.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join(" -r ")),
        words(&[format!("set -e; {}", installer_cmd(py)), quoted.join(" ")]),
        mounts,
        env,
        list_span(&t.requirements),
    )
}

/// CRAN packages into R_LIBS. `install.packages` only warns when a package
/// fails, so the script checks every package loads afterwards.
fn r_install(r: &crate::spec::RLang, image: &str) -> Op {
    let mut mounts = vec![Mount::Cache {
        target: "/var/cache/strata-r".into(),
        id: cache_id("r-downloads", &sanitize_id(image)),
        sharing: Sharing::Locked,
        owner: None,
        mode: None,
    }];
    let mut urls = Vec::new();
    for repo in &r.repos {
        match repo.value.strip_prefix("context:") {
            Some(name) => {
                let target = format!("{R_REPOS_MOUNT}/{name}");
                mounts.push(Mount::Source { target: target.clone(), from: FileSource::Named(name.to_string()) });
                urls.push(format!("file://{target}"));
            }
            None => urls.push(repo.value.clone()),
        }
    }
    if urls.is_empty() {
        urls.push("https://cloud.r-project.org".into());
    }
    // Names and URLs were validated (no quotes or spaces), so they can be
    // written into the R string literals.
    let pkgs: Vec<String> = r.cran.iter().map(|c| format!("'{}'", c.value)).collect();
    let repos: Vec<String> = urls.iter().map(|u| format!("'{u}'")).collect();
    let code = format!(
        "p <- c({p}); install.packages(p, lib='{R_LIBS}', repos=c({r}), destdir='/var/cache/strata-r'); \
         for (x in p) if (!requireNamespace(x, lib.loc='{R_LIBS}', quietly=TRUE)) stop('R package ', x, ' failed to install')",
        p = pkgs.join(", "),
        r = repos.join(", ")
    );
    run(
        format!("r: install {}", r.cran.iter().map(|c| c.value.as_str()).collect::<Vec<_>>().join(" ")),
        format!("set -e; mkdir -p {R_LIBS}; Rscript -e {}", shell_quote(&code)),
        mounts,
        vec![],
        list_span(&r.cran),
    )
}

/// Creates the runtime user without relying on useradd/adduser, which
/// minimal and busybox images lack: append to /etc/passwd and /etc/group
/// unless the user already exists.
fn create_user_script(name: &str, uid: u32, gid: u32) -> String {
    format!(
        "set -e; \
         grep -q '^{name}:' /etc/group || echo '{name}:x:{gid}:' >> /etc/group; \
         grep -q '^{name}:' /etc/passwd || echo '{name}:x:{uid}:{gid}::/home/{name}:/bin/sh' >> /etc/passwd; \
         mkdir -p /home/{name}; chown {uid}:{gid} /home/{name}"
    )
}

/// Appended to the runtime venv's installs; each install cleans up what it
/// installed, so with layers no diff whites out another layer's files.
/// `prune-tests`: the `tests` dirs below a package (never a top-level one).
fn venv_cleanup(py: &Python) -> String {
    let venv = shell_quote(&py.venv);
    let mut out = String::new();
    if py.prune_tests {
        out += &format!("; find {venv}/lib -path '*/site-packages/*/tests' -type d -prune -exec rm -rf {{}} +");
    }
    if py.installer.value == Installer::Uv {
        // uv records the mtime of the wheel it installed from (a build
        // context file, so it differs per checkout) in uv_cache.json and
        // hashes that into RECORD; nothing reads it in a runtime venv. Drop
        // both so the same pins give the same venv bytes.
        out += &format!(
            "; for f in {venv}/lib/python*/site-packages/*.dist-info/uv_cache.json; do [ -e \"$f\" ] || continue; rm -f \"$f\"; sed -i '/uv_cache\\.json,/d' \"${{f%/uv_cache.json}}/RECORD\"; done"
        );
    }
    out
}

/// Joins the non-empty parts of a command line with single spaces.
fn words(parts: &[String]) -> String {
    parts.iter().filter(|p| !p.is_empty()).map(String::as_str).collect::<Vec<_>>().join(" ")
}

/// Single-quotes a word for /bin/sh.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
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
                "user: create app (1000:1000)",
                "workdir: /app",
                "python: venv /opt/venv",
                "app: copy app.py",
                "app: copy templates/"
            ]
        );
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
                .contains("/opt/strata-pip/bin/python -m pip --python /opt/venv/bin/python install -r /tmp/strata/deps/requirements.txt"),
            "{}",
            r.script
        );
        // the app venv is created without pip
        let v = &p.stages[p.stages.iter().position(|s| s.name == "py-venv").unwrap()];
        let Op::Run(r) = &v.ops[0] else { panic!() };
        assert_eq!(r.script, "set -e; python3 -m venv --without-pip /opt/venv");
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
        let src = WEB.replace("[python]\n", "[python]\ninstaller = \"uv\"\n")
            + "[test]\nrun = \"pytest -q\"\nrequirements = [\"requirements-dev.txt\"]\ninputs = [\"tests/\"]\n";
        let p = plan(&src);
        let t: Vec<&str> = p.targets().iter().map(|(n, _)| *n).collect();
        assert_eq!(t, ["builder", "deps", "runtime", "test"]);
        let tool = &p.stages[p.stages.iter().position(|s| s.name == "py-tool").unwrap()];
        assert_eq!(tool.ops[0].name(), "python: install uv (builder only)");
        // with a wheelhouse, straight out of the uv wheel
        let p = plan(&src.replace("[python]\n", "[python]\nwheels = \"wheels\"\n"));
        let tool = &p.stages[p.stages.iter().position(|s| s.name == "py-tool").unwrap()];
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
        let names: Vec<&str> = layers.iter().map(|(_, _, n)| n.as_str()).collect();
        assert_eq!(names, ["python: venv /opt/venv", "python: layer scientific", "python: pip install -r requirements.txt (the rest)"]);
        // the numpy layer is built on the empty venv alone
        let (lower, upper, _) = layers[1];
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
        assert!(p.stages[0].ops[0].name().ends_with("libpq5 tini"));
        assert_eq!(p.stages[p.target].config.as_ref().unwrap().init, Some(vec!["/usr/bin/tini".to_string(), "--".to_string()]));
    }
}
