//! The planner: a driver of named phases over one `Planner`, whose fields
//! are the state the phases hand each other. Each phase adds stages and
//! reads only what earlier phases set; the feature logic (how a package
//! install, a venv or a step looks) lives in the sibling files.

use std::collections::BTreeMap;

use crate::spec::{Manager, Python, Spec, Step, StepStage, User};

use super::caches::caches_for;
use super::paths::{abs_in, copy_paths, list_span, trim_dir};
use super::steps::{after_copies, order_steps, step_ops};
use super::system::{create_user_script, install_linked, install_packages, install_pinned_tini, scan_linked, tini_path};
use super::{
    python, r, run, ConfigPatch, ContextFilter, FileSource, MergeLayer, Op, Owner, Plan, PlanEnv, Run, Stage, StageBase, APP_EXCLUDE,
    R_LIBS,
};

/// Plans `spec`: the phases in the order their stages depend on each other.
pub fn plan(spec: &Spec, dockerignore: &[String], env: &PlanEnv) -> Plan {
    let mut p = Planner::new(spec, dockerignore, env);
    p.os();
    p.r();
    p.builder();
    p.python();
    p.build_steps();
    p.deps();
    p.runtime();
    p.test();
    p.finish()
}

struct Planner<'a> {
    spec: &'a Spec,
    env: &'a PlanEnv,
    /// The runtime's base image and the builder's (the base unless
    /// `[image] builder`).
    base: String,
    builder_ref: String,
    workdir: String,
    /// The image user's ids (None for root): owner of the workdir, the
    /// step outputs and, unless `[app] chown`, the app.
    owner: Option<Owner>,
    stages: Vec<Stage>,
    context: ContextFilter,
    app: ContextFilter,
    deps_files: Vec<String>,
    /// The stage the runtime chain starts from: the OS packages, or R's.
    runtime_base: usize,
    /// R's CRAN library stage.
    r_libs: Option<usize>,
    /// The builder: image + build packages.
    builder_tools: Option<usize>,
    /// The builder with the dependencies installed (the venv's source).
    venv_stage: Option<usize>,
    /// With MergeOp and layer groups: the venv as its diffs.
    venv_layers: Option<Vec<MergeLayer>>,
    /// Build step name → its stage.
    step_results: BTreeMap<String, usize>,
    /// The image config of the runtime (and, labelled, of deps).
    config: ConfigPatch,
    deps: usize,
    target: usize,
    /// The app copies, which the test target repeats.
    app_copies: Vec<Op>,
    /// Installs the project's wheels (runtime and test).
    project: Option<Op>,
    /// Installs the project editable, after the app copies it points at.
    project_after_app: Option<Op>,
}

impl<'a> Planner<'a> {
    fn new(spec: &'a Spec, dockerignore: &[String], env: &'a PlanEnv) -> Self {
        let base = spec.image.base.value.clone();
        let builder_ref = spec.image.builder.as_ref().map(|b| b.value.clone()).unwrap_or_else(|| base.clone());
        let mut app = ContextFilter { include: vec![], exclude: dockerignore.to_vec() };
        app.exclude.extend(spec.app.exclude.iter().map(|e| e.value.clone()));
        app.exclude.extend(APP_EXCLUDE.iter().map(|e| e.to_string()));
        Planner {
            spec,
            env,
            base,
            builder_ref,
            workdir: spec.image.workdir.value.clone(),
            owner: Owner::of(&spec.image.user.value),
            stages: Vec::new(),
            context: ContextFilter { include: vec![], exclude: dockerignore.to_vec() },
            app,
            deps_files: Vec::new(),
            runtime_base: 0,
            r_libs: None,
            builder_tools: None,
            venv_stage: None,
            venv_layers: None,
            step_results: BTreeMap::new(),
            config: ConfigPatch::default(),
            deps: 0,
            target: 0,
            app_copies: Vec::new(),
            project: None,
            project_after_app: None,
        }
    }

    fn stage(&mut self, name: &str, from: StageBase, ops: Vec<Op>, description: &str) -> usize {
        self.stages.push(Stage { name: name.into(), from, ops, config: None, description: description.into() });
        self.stages.len() - 1
    }

    fn py(&self) -> Option<&'a Python> {
        self.spec.python.as_ref()
    }

    fn ordered_build_steps(&self) -> Vec<&'a Step> {
        order_steps(&self.spec.steps.iter().filter(|s| s.stage == StepStage::Build).collect::<Vec<_>>())
    }

    /// `VIRTUAL_ENV` and `PATH` for commands that use the venv.
    fn venv_env(&self) -> Vec<(String, String)> {
        match self.py() {
            Some(py) => vec![("VIRTUAL_ENV".into(), py.venv.clone()), ("PATH".into(), format!("{}/bin:${{PATH}}", py.venv))],
            None => vec![],
        }
    }

    /// OS layer of the runtime image (the builder is a branch of its own).
    /// `[system] layers`: each group its own install (and layer), first to
    /// last, so adding a package to the rest leaves them alone.
    fn os(&mut self) {
        let spec = self.spec;
        let mut pkgs: Vec<&str> = spec.system.packages.iter().map(|p| p.value.as_str()).collect();
        // tini from its pinned package on apt images; from the distro's
        // archive on apk/dnf ones, or where the spec lists it itself.
        let wants_tini = spec.image.init && !pkgs.contains(&"tini");
        let pinned_tini = wants_tini && spec.system.manager == Manager::Apt;
        if wants_tini && !pinned_tini {
            pkgs.push("tini");
        }
        let mut ops = Vec::new();
        for group in &spec.system.layers {
            let names: Vec<&str> = group.iter().map(|p| p.value.as_str()).collect();
            pkgs.retain(|p| !names.contains(p));
            ops.push(install_packages(spec, &names, &self.base, "runtime", list_span(group)));
        }
        if !pkgs.is_empty() {
            ops.push(install_packages(spec, &pkgs, &self.base, "runtime", list_span(&spec.system.packages)));
        }
        if pinned_tini {
            ops.push(install_pinned_tini(spec.image.init_span.clone()));
        }
        self.runtime_base = self.stage("os", StageBase::Image(self.base.clone()), ops, "base image + OS packages");
    }

    /// R: its OS packages on top of the OS layer (the runtime builds on
    /// this), CRAN packages installed in a branch whose library is copied.
    fn r(&mut self) {
        let Some(rl) = &self.spec.r else { return };
        let rpkgs: Vec<&str> = rl.packages.iter().map(|p| p.value.as_str()).collect();
        let install = install_packages(self.spec, &rpkgs, &self.base, "runtime", list_span(&rl.packages));
        let r_os = self.stage("r-os", StageBase::Stage(self.runtime_base), vec![install], "OS packages + R");
        self.runtime_base = r_os;
        if !rl.cran.is_empty() {
            let op = r::install(rl, &self.base);
            self.r_libs = Some(self.stage("r", StageBase::Stage(r_os), vec![op], "R packages from CRAN-style repos"));
        }
    }

    /// The builder starts from the image, not from the runtime's OS layer:
    /// build and runtime packages are parallel branches, so adding a runtime
    /// package never re-runs the build packages, the dependency install or
    /// the steps. A package the build needs too goes in `build-packages` as
    /// well (-dev packages pull their runtime libs).
    fn builder(&mut self) {
        let spec = self.spec;
        let needs = spec.python.is_some() || !self.ordered_build_steps().is_empty() || spec.test.is_some();
        if !needs {
            return;
        }
        let mut ops = Vec::new();
        if !spec.system.build_packages.is_empty() {
            let bp: Vec<&str> = spec.system.build_packages.iter().map(|p| p.value.as_str()).collect();
            ops.push(install_packages(spec, &bp, &self.builder_ref, "builder", list_span(&spec.system.build_packages)));
        }
        let from = StageBase::Image(self.builder_ref.clone());
        self.builder_tools = Some(self.stage("builder-base", from, ops, "builder image + build packages"));
    }

    /// The installer in a tool venv of the builder, the app's empty venv,
    /// the layer groups (diffs on the empty venv with MergeOp, a chain
    /// without), then the full install.
    fn python(&mut self) {
        let (Some(py), Some(tools)) = (self.py(), self.builder_tools) else { return };
        let spec = self.spec;
        let files = &self.env.files;
        for f in python::dependency_files(py, files) {
            self.context.include.push(trim_dir(&f));
            self.deps_files.push(f);
        }
        // The app's venv never contains pip, setuptools or uv (unless
        // keep-pip).
        // The installer and the export tool are built on the builder image
        // alone, in parallel with the build packages' install, unless the
        // build packages are what lets the image make a venv.
        let tool_op = python::tool_install(py, spec, &self.builder_ref);
        let on_builder = self.stages[tools].ops.is_empty() || python::tools_need_build_packages(spec);
        let tool_base = if on_builder { StageBase::Stage(tools) } else { StageBase::Image(self.builder_ref.clone()) };
        // /root/.cache in the builder below the venv: the cache mounts'
        // parent, which the engine would otherwise make in the venv's first
        // layer (and so in the image).
        let cache_dir = Op::Mkdir {
            name: "python: /root/.cache (builder only)".into(),
            path: "/root/.cache".into(),
            owner: None,
            span: py.installer.span.clone(),
        };
        let tool = if on_builder {
            // The installer's own command makes /root/.cache first, a
            // vertex fewer than a file op before it, unless a cache mount
            // of its own would make it a mount point there.
            let ops = match tool_op {
                Op::Run(mut r) if !r.mounts.iter().any(|m| matches!(m, super::Mount::Cache { .. })) && r.script.starts_with("set -e; ") => {
                    r.script = format!("set -e; mkdir -p /root/.cache; {}", &r.script["set -e; ".len()..]);
                    vec![Op::Run(r)]
                }
                op => vec![cache_dir, op],
            };
            self.stage("py-tool", tool_base.clone(), ops, "the installer (builder only)")
        } else {
            let home = python::tool_home(py);
            let span = py.installer.span.clone();
            let branch = self.stage("py-tool-branch", tool_base.clone(), vec![tool_op], "the installer, on the builder image alone");
            let copy = Op::Copy {
                epoch: false,
                name: format!("python: the installer {home} (builder only)"),
                from: FileSource::Stage(branch),
                src: home.to_string(),
                dest: home.to_string(),
                owner: None,
                span,
            };
            self.stage("py-tool", StageBase::Stage(tools), vec![copy, cache_dir], "builder + the installer")
        };
        // A poetry or pdm lock is exported to pinned requirements first.
        let exported = match (python::export_tool(py, spec, &self.builder_ref), python::export(py)) {
            (Some(t), Some(e)) => {
                let et = self.stage("py-export-tool", tool_base, vec![t], "the lock export tool (builder only)");
                Some(self.stage("py-export", StageBase::Stage(et), vec![e], "the lock exported to pinned requirements"))
            }
            _ => None,
        };
        let skel = self.stage("py-venv", StageBase::Stage(tool), vec![python::venv_create(py, spec, &self.builder_ref)], "an empty venv");
        let groups = python::layer_groups(py, files);
        let mut below = skel;
        let mut layers = vec![MergeLayer { lower: tool, upper: skel, name: format!("python: venv {}", py.venv) }];
        if self.env.merge {
            // Each group on the empty venv alone: its layer depends on its
            // own pins only, and the diffs are merged.
            let mut diffs = Vec::new();
            for (i, g) in groups.iter().enumerate() {
                let op = python::group_install(py, spec, &self.builder_ref, g);
                let gi = self.stage(&format!("py-layer-{}", i + 1), StageBase::Stage(skel), vec![op], &g.label);
                diffs.push(MergeLayer { lower: skel, upper: gi, name: g.label.clone() });
            }
            if !diffs.is_empty() {
                let merged = Op::Merge { name: "python: merge dependency layers".into(), layers: diffs.clone(), span: py.span.clone() };
                below = self.stage("py-groups", StageBase::Stage(skel), vec![merged], "the dependency layers merged");
                layers.extend(diffs);
            }
        } else {
            // No MergeOp: the groups chain, so a bump re-runs its group and
            // the ones after it, never the ones before.
            for (i, g) in groups.iter().enumerate() {
                let op = python::group_install(py, spec, &self.builder_ref, g);
                below = self.stage(&format!("py-layer-{}", i + 1), StageBase::Stage(below), vec![op], &g.label);
            }
        }
        let install = python::install(py, spec, &self.builder_ref, !groups.is_empty(), exported, files);
        let name = install.name().to_string();
        let installed = self.stage("builder", StageBase::Stage(below), vec![install], "builder with the installed dependencies");
        layers.push(MergeLayer { lower: below, upper: installed, name });
        self.venv_stage = Some(installed);
        // What the builder has beyond the runtime's base (build packages, or
        // a builder image of its own) may be what the venv's native code
        // links: the runtime installs those libraries it lacks.
        if super::system::scans_links(spec) {
            let span = match &spec.image.builder {
                Some(b) if spec.system.build_packages.is_empty() => b.span.clone(),
                _ => list_span(&spec.system.build_packages),
            };
            let scan = self.stage(
                "py-linked",
                StageBase::Stage(installed),
                vec![scan_linked(&py.venv, span.clone())],
                "the OS packages the venv links (builder only)",
            );
            let install = install_linked(spec, &self.base, scan, span);
            self.runtime_base =
                self.stage("os-linked", StageBase::Stage(self.runtime_base), vec![install], "the OS libraries the venv links");
        }
        if self.env.merge && !groups.is_empty() {
            self.venv_layers = Some(layers);
        }
        // The project itself: wheels built from the app's files (so the
        // pyproject.toml, its lock and readme travel with them), installed
        // after the dependencies by the runtime (and the test target).
        if python::installs_project(py, files) && py.editable {
            let root = spec.app.dest.clone().unwrap_or_else(|| self.workdir.clone());
            self.project_after_app = Some(python::editable_install(py, spec, &self.builder_ref, tool, &root, files));
        } else if python::installs_project(py, files) {
            let readme = py.pyproject.as_ref().and_then(|p| {
                let text = String::from_utf8_lossy(files.get(&p.value)?).to_string();
                let readme = python::project::read_pyproject(&text)?.readme?;
                let dir = p.value.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                super::paths::join_rel(dir, &readme)
            });
            self.app.include.extend(py.pyproject.iter().chain(&py.lock).map(|f| f.value.clone()).chain(readme));
            let with_deps = python::dynamic_dependencies(py, files);
            if self.env.merge {
                // Built and installed in one command on the builder's venv
                // (the empty one when the dependencies are installed
                // already, so it runs beside their install); its diff is
                // the runtime's project layer.
                let on = if with_deps { installed } else { skel };
                let op = python::project_build_install(py, spec, &self.builder_ref, files, with_deps);
                let (name, span) = (op.name().to_string(), op.span().clone());
                let built =
                    self.stage("py-project", StageBase::Stage(on), vec![op], "the project installed (builder only; its diff is a layer)");
                let layers = vec![MergeLayer { lower: on, upper: built, name: name.clone() }];
                self.project = Some(Op::Merge { name, layers, span });
            } else {
                let op = python::project_wheels(py, spec, &self.builder_ref, files);
                let wheels = self.stage("py-project", StageBase::Stage(tool), vec![op], "the project's wheels (builder only)");
                self.project = Some(python::project_install(py, wheels, tool, with_deps));
            }
        }
    }

    /// Build steps run after the dependency install (they may use the venv,
    /// e.g. to fetch models), each on its own branch with only its inputs,
    /// so editing one step's inputs re-runs only that step.
    fn build_steps(&mut self) {
        for s in self.ordered_build_steps() {
            let builder = self.venv_stage.or(self.builder_tools).expect("builder exists when build steps do");
            let own_packages = |name: &str| self.spec.steps.iter().any(|d| d.name.value == name && !d.packages.is_empty());
            // A step with packages of its own is a branch: the builder image
            // plus those, in parallel with the build packages and the venv.
            // Otherwise a step starts from the first step it comes after,
            // unless that one is such a branch (it has no venv).
            let first = s.after.first().filter(|a| !own_packages(&a.value)).and_then(|a| self.step_results.get(&a.value).copied());
            let (from, skip) = if !s.packages.is_empty() {
                let pkgs: Vec<&str> = s.packages.iter().map(|p| p.value.as_str()).collect();
                let install =
                    install_packages(self.spec, &pkgs, &self.builder_ref, &format!("step-{}", s.name.value), list_span(&s.packages));
                let from = StageBase::Image(self.builder_ref.clone());
                let os = self.stage(&format!("step-{}-os", s.name.value), from, vec![install], "builder image + the step's packages");
                (StageBase::Stage(os), 0)
            } else if let Some(i) = first {
                (StageBase::Stage(i), 1)
            } else {
                (StageBase::Stage(builder), 0)
            };
            let mut ops = after_copies(s, self.spec, &self.step_results, &self.workdir, skip);
            let venv_env = if s.packages.is_empty() { self.venv_env() } else { vec![] };
            ops.extend(step_ops(s, self.spec, &self.builder_ref, &self.workdir, &mut self.context, venv_env));
            let idx = self.stage(&format!("step-{}", s.name.value), from, ops, &format!("build step {}", s.name.value));
            self.step_results.insert(s.name.value.clone(), idx);
        }
    }

    /// The `deps` stage: the runtime's base with the user, the workdir and
    /// the installed dependencies (venv, R library); and the image config.
    fn deps(&mut self) {
        let image = &self.spec.image;
        let mut ops = Vec::new();
        let workdir = self.workdir.clone();
        match &image.user.value {
            // One command creates the user and its workdir: a FileOp mkdir
            // leaves a directory the base has already (Debian's /srv) owned
            // by root, and it would be a vertex and a layer of its own.
            User::Named { name, uid, gid } => {
                let script = create_user_script(name, *uid, *gid, &workdir);
                ops.push(run(
                    format!("user: create {name} ({uid}:{gid}), workdir {workdir}"),
                    script,
                    vec![],
                    vec![],
                    image.user.span.clone(),
                ));
            }
            User::Root => ops.push(Op::Mkdir {
                name: format!("workdir: {workdir}"),
                path: workdir.clone(),
                owner: self.owner,
                span: image.workdir.span.clone(),
            }),
        }
        self.config = ConfigPatch {
            env: image.env.clone(),
            path_prepend: vec![],
            // Numeric, so Kubernetes' runAsNonRoot can verify it without
            // reading /etc/passwd.
            user: match &image.user.value {
                User::Root => "root".to_string(),
                User::Named { uid, gid, .. } => format!("{uid}:{gid}"),
            },
            workdir,
            init: image.init.then(|| vec![tini_path(self.spec.system.manager).to_string(), "--".to_string()]),
            entrypoint: image.entrypoint.clone(),
            cmd: image.cmd.clone(),
            expose: image.expose.iter().map(|p| p.value.clone()).collect(),
            labels: image.labels.clone(),
            healthcheck: image.healthcheck.clone(),
            stopsignal: image.stopsignal.clone(),
        };
        if let (Some(py), Some(v)) = (self.py(), self.venv_stage) {
            ops.push(match self.venv_layers.take() {
                // Layered: the venv arrives as its layers (skeleton, each
                // group, the rest), each with its own digest.
                Some(layers) => Op::Merge { name: format!("python: venv {} in layers", py.venv), layers, span: py.span.clone() },
                None => Op::Copy {
                    epoch: true,
                    name: format!("python: venv {}", py.venv),
                    from: FileSource::Stage(v),
                    src: py.venv.clone(),
                    dest: py.venv.clone(),
                    owner: None,
                    span: py.span.clone(),
                },
            });
            self.config.path_prepend.push(format!("{}/bin", py.venv));
            self.config.env.insert(0, ("VIRTUAL_ENV".into(), py.venv.clone()));
        }
        if let (Some(rl), Some(libs)) = (&self.spec.r, self.r_libs) {
            ops.push(Op::Copy {
                epoch: false,
                name: format!("r: libraries {}", rl.cran.iter().map(|c| c.value.as_str()).collect::<Vec<_>>().join(" ")),
                from: FileSource::Stage(libs),
                src: R_LIBS.into(),
                dest: R_LIBS.into(),
                owner: None,
                span: list_span(&rl.cran),
            });
        }
        let from = StageBase::Stage(self.runtime_base);
        self.deps = self.stage("deps", from, ops, "base + OS packages + installed dependencies, no app code");
        let mut deps_config = self.config.clone();
        deps_config.labels.push(("strata.deps.digest".into(), String::new()));
        self.stages[self.deps].config = Some(deps_config);
    }

    /// The runtime image: the build steps' outputs, the runtime steps, then
    /// one layer per `[app] copy` entry.
    fn runtime(&mut self) {
        let spec = self.spec;
        let mut ops = Vec::new();
        for s in self.ordered_build_steps() {
            let idx = self.step_results[&s.name.value];
            for out in &s.outputs {
                let path = abs_in(&self.workdir, &out.value);
                ops.push(Op::Copy {
                    epoch: false,
                    name: format!("step {}: output {}", s.name.value, out.value),
                    from: FileSource::Stage(idx),
                    src: path.clone(),
                    dest: path,
                    owner: self.owner,
                    span: out.span.clone(),
                });
            }
        }
        ops.extend(self.project.clone());
        let runtime_steps: Vec<&Step> = spec.steps.iter().filter(|s| s.stage == StepStage::Runtime).collect();
        for s in order_steps(&runtime_steps) {
            let venv_env = self.venv_env();
            ops.extend(step_ops(s, spec, &self.base, &self.workdir, &mut self.context, venv_env));
        }
        let app_owner = match spec.app.chown.as_ref() {
            Some(c) => Owner::of(&c.value),
            None => self.owner,
        };
        let dest_root = spec.app.dest.clone().unwrap_or_else(|| self.workdir.clone());
        for entry in &spec.app.copy {
            self.app.include.push(trim_dir(&entry.value));
            let (src, dest) = copy_paths(&entry.value, &dest_root);
            let name = format!("app: copy {}", entry.value);
            self.app_copies.push(Op::Copy {
                epoch: false,
                name,
                from: FileSource::App,
                src,
                dest,
                owner: app_owner,
                span: entry.span.clone(),
            });
        }
        ops.extend(self.app_copies.iter().cloned());
        ops.extend(self.project_after_app.clone());
        let desc = match &spec.variant {
            Some(v) => format!("the {v} variant image"),
            None => "the runtime image (default)".to_string(),
        };
        self.target = self.stage("runtime", StageBase::Stage(self.deps), ops, &desc);
        self.stages[self.target].config = Some(self.config.clone());
    }

    /// The test target: dev dependencies on top of the installed deps, then
    /// the app and test inputs, then the test command, which fails the
    /// build when it fails.
    fn test(&mut self) {
        let spec = self.spec;
        let Some(t) = &spec.test else { return };
        let mut ops = Vec::new();
        let from = match (self.py(), self.venv_stage) {
            (Some(py), Some(v)) => {
                // The tests run on the builder's venv, which is a branch
                // apart from the runtime's OS packages: they may import a
                // library that needs one (libpq5, libgl1), so install them.
                if !spec.system.packages.is_empty() {
                    let rt: Vec<&str> = spec.system.packages.iter().map(|p| p.value.as_str()).collect();
                    ops.push(install_packages(spec, &rt, &self.builder_ref, "builder", list_span(&spec.system.packages)));
                }
                if !t.requirements.is_empty() {
                    for r in &t.requirements {
                        self.context.include.push(trim_dir(&r.value));
                    }
                    ops.push(python::dev_install(py, t, spec, &self.builder_ref));
                }
                ops.extend(self.project.clone());
                // The app as root: the builder's venv is root's.
                ops.extend(self.app_copies.iter().cloned().map(|op| match op {
                    Op::Copy { name, from, src, dest, span, epoch, .. } => Op::Copy { epoch, name, from, src, dest, owner: None, span },
                    other => other,
                }));
                ops.extend(self.project_after_app.clone());
                StageBase::Stage(v)
            }
            _ => StageBase::Stage(self.target),
        };
        for i in &t.inputs {
            self.context.include.push(trim_dir(&i.value));
            let (src, dest) = copy_paths(&i.value, &self.workdir);
            let name = format!("test: copy {}", i.value);
            ops.push(Op::Copy { epoch: false, name, from: FileSource::Context, src, dest, owner: None, span: i.span.clone() });
        }
        let (mounts, cache_env) = caches_for(&t.caches, spec, &self.builder_ref);
        // The tests run with the image's environment, as the app will.
        let mut env = spec.image.env.clone();
        env.extend(cache_env);
        env.extend(self.venv_env());
        ops.push(Op::Run(Run {
            name: format!("test: {}", t.run.value),
            script: t.run.value.clone(),
            cwd: self.workdir.clone(),
            env,
            mounts,
            network: crate::spec::Network::Default,
            step: Some("test".into()),
            span: t.run.span.clone(),
        }));
        let idx = self.stage("test", from, ops, "app + dev dependencies; runs the tests, fails the build when they fail");
        self.stages[idx].config = Some(self.config.clone());
    }

    /// Names the builder target and settles the context filters.
    fn finish(mut self) -> Plan {
        if let Some(b) = self.venv_stage.or(self.builder_tools) {
            self.stages[b].config = Some(ConfigPatch {
                user: "root".into(),
                workdir: "/".into(),
                path_prepend: self.config.path_prepend.clone(),
                env: self.py().map(|py| vec![("VIRTUAL_ENV".to_string(), py.venv.clone())]).unwrap_or_default(),
                ..Default::default()
            });
            self.stages[b].name = "builder".into();
            self.stages[b].description = "the builder stage: build packages and installed dependencies".into();
        }
        self.context.settle();
        self.app.settle();
        self.deps_files.sort();
        self.deps_files.dedup();
        Plan {
            stages: self.stages,
            target: self.target,
            context: self.context,
            app: self.app,
            deps_files: self.deps_files,
            workdir: (self.workdir, self.owner),
        }
    }
}
