//! Lowering a `Plan` to an LLB definition.
//!
//! Everything the engine told us (base image digests and env, which named
//! contexts the client sent) comes in through `Inputs`, so the same plan and
//! inputs always give the same bytes. No per-build value (session id, time)
//! goes into an op.

use std::collections::{BTreeMap, BTreeSet};

use bollard_buildkit_proto::pb;

use super::fileop::{FileOp, On};
use super::{input, Graph, Lines, Output};
use crate::plan::{ContextFilter, FileSource, Mount, NoCache, Op, Owner, Plan, Sharing, StageBase, DEFAULT_PATH};
use crate::platform::Platform;
use crate::spec::Network;

/// A base image as resolved by the engine (or assumed, offline).
#[derive(Debug, Clone, PartialEq)]
pub struct BaseImage {
    /// Fully qualified reference, pinned by digest when known.
    pub source: String,
    /// The image config's `Env`, inherited by every command run on it.
    pub env: Vec<String>,
    /// A base from a build context that is not a registry image (a bake
    /// target's result, an OCI layout, a local directory): its definition,
    /// spliced in instead of a `docker-image://` source.
    pub def: Option<pb::Definition>,
}

pub struct Inputs<'a> {
    pub platform: Platform,
    /// Keyed by the reference as written in the spec.
    pub images: &'a BTreeMap<String, BaseImage>,
    /// Named contexts the client passed (`--build-context NAME=dir`).
    pub named_contexts: &'a BTreeSet<String>,
    /// `image-resolve-mode` (`local` under `docker buildx build`).
    pub resolve_mode: Option<String>,
    /// Spec file name and text for the source map.
    pub spec: Option<(&'a str, &'a str)>,
    /// The client session that serves the locals. BuildKit merges
    /// identical vertices of concurrent builds, so a local source without
    /// its session could be served from another build's context. Only
    /// local source ops carry it; their cache keys are content-based, so
    /// caching across builds is unaffected.
    pub session: Option<String>,
    /// `no-cache`: ignore the cache for every op, or for the ops of the
    /// named custom steps.
    pub no_cache: NoCache,
    /// Stages replaced by an image (the deps stage by a deps image found
    /// under its digest): lowering one gives the image, none of its ops.
    pub stage_images: &'a BTreeMap<usize, BaseImage>,
    /// The engine has MergeOp: copies become independent layers merged
    /// onto the image, so a dependency change does not invalidate the app
    /// layers above it (and vice versa). Without it: the linear chain.
    pub merge: bool,
}

static NO_IMAGES: BTreeMap<String, BaseImage> = BTreeMap::new();
static NO_STAGE_IMAGES: BTreeMap<usize, BaseImage> = BTreeMap::new();
static NO_CONTEXTS: BTreeSet<String> = BTreeSet::new();

impl<'a> Inputs<'a> {
    /// Inputs with nothing resolved by an engine (the CLI, tests, benches):
    /// base images by reference with a default PATH, no named contexts, no
    /// session. Set the other fields with struct update syntax.
    pub fn offline(platform: Platform, spec: Option<(&'a str, &'a str)>, merge: bool) -> Self {
        Inputs {
            platform,
            images: &NO_IMAGES,
            named_contexts: &NO_CONTEXTS,
            resolve_mode: None,
            spec,
            session: None,
            no_cache: NoCache::None,
            stage_images: &NO_STAGE_IMAGES,
            merge,
        }
    }
}

pub struct Lowered {
    pub definition: pb::Definition,
    /// One entry per layer the target stage adds on its base image chain,
    /// in order, for the image history.
    pub history: Vec<String>,
}

/// A lowered stage: its final state and the env its commands run with.
#[derive(Clone)]
struct StageOut {
    state: Output,
    env: Vec<String>,
}

struct Lowering<'a> {
    g: Graph,
    lines: Option<crate::diag::LineIndex<'a>>,
    inputs: &'a Inputs<'a>,
    plan: &'a Plan,
    stages: Vec<Option<StageOut>>,
    context: Option<Output>,
    app_context: Option<Output>,
    /// The stages the plan's image is built on (its layers).
    image_chain: Vec<usize>,
    /// Each merge vertex's inputs: a merge of merges is written as one
    /// merge of all their layers (the same layers, fewer vertices).
    merges: std::collections::HashMap<Output, Vec<Output>>,
}

/// Lowers the stage `target` (an index into `plan.stages`).
pub fn lower(plan: &Plan, inputs: &Inputs, target: usize) -> Lowered {
    let mut l = Lowering {
        g: Graph::new(),
        lines: inputs.spec.map(|(_, text)| crate::diag::LineIndex::new(text)),
        inputs,
        plan,
        stages: vec![None; plan.stages.len()],
        context: None,
        app_context: None,
        image_chain: plan.base_chain(plan.target),
        merges: Default::default(),
    };
    let out = l.stage(target).state;
    let definition = l.g.definition(&out, inputs.spec);
    Lowered { definition, history: history(plan, target, inputs.stage_images) }
}

/// The history of every layer above the image, for the target's chain:
/// computed once here, not per stage (a stage's history holds all of its
/// bases', so keeping one per stage is quadratic in a chain of steps).
fn history(plan: &Plan, target: usize, replaced: &BTreeMap<usize, BaseImage>) -> Vec<String> {
    let mut out = Vec::new();
    // a stage replaced by an image: its layers are the image's, with their
    // history in its config
    let chain: Vec<usize> = plan.base_chain(target).into_iter().take_while(|i| !replaced.contains_key(i)).collect();
    for i in chain.into_iter().rev() {
        for op in &plan.stages[i].ops {
            match op {
                Op::Merge { layers, .. } => out.extend(layers.iter().map(|l| l.name.clone())),
                _ => out.push(op.name().to_string()),
            }
        }
    }
    out
}

impl Lowering<'_> {
    /// Lowers a stage (memoised): its final output, the env its commands
    /// run with, and the history of every layer above the image.
    fn stage(&mut self, idx: usize) -> StageOut {
        if let Some(done) = &self.stages[idx] {
            return done.clone();
        }
        if let Some(img) = self.inputs.stage_images.get(&idx) {
            let name = format!("deps image: {} (found: no OS package or dependency install runs)", img.source);
            let (state, env) = self.image_state(img, &name);
            let out = StageOut { state, env };
            self.stages[idx] = Some(out.clone());
            return out;
        }
        let stage = &self.plan.stages[idx];
        let (state, env) = match &stage.from {
            StageBase::Image(r) => self.image(r),
            StageBase::Stage(i) => {
                let s = self.stage(*i);
                (s.state, s.env)
            }
        };
        // With MergeOp, the copies of a stage the image is built on are
        // layers of their own on scratch (the image's app layers,
        // independent of what is below). A stage the image is not built on
        // (the builder's, a step's, the test target) has no layers anyone
        // pulls: its copies chain as plain file ops (a command on them needs
        // the whole filesystem, and a merge under it would be materialized
        // on every re-run: 2 s on a builder with compilers and a venv), and
        // consecutive file ops are one (fewer vertices for every build's
        // cache check). The image's chain is the plan's, not the request's
        // target, so every target lowers a stage the same way.
        let builder_only = !self.image_chain.contains(&idx);
        let mut layers = vec![state];
        let mut i = 0;
        while i < stage.ops.len() {
            let op = &stage.ops[i];
            match op {
                _ if builder_only && is_file(op) => {
                    let run = stage.ops[i..].iter().take_while(|o| is_file(o)).count();
                    let base = self.merged(&layers);
                    layers = vec![self.file_ops(&stage.ops[i..i + run], base)];
                    i += run;
                    continue;
                }
                Op::Copy { .. } if self.inputs.merge => {
                    let layer = self.copy_layer(op);
                    layers.push(layer);
                }
                _ => {
                    let base = self.merged(&layers);
                    layers = vec![self.op(op, base, &env)];
                }
            }
            i += 1;
        }
        let state = self.merged(&layers);
        let result = StageOut { state, env };
        self.stages[idx] = Some(result.clone());
        result
    }

    fn lines(&self, span: &std::ops::Range<usize>) -> Option<Lines> {
        let idx = self.lines.as_ref()?;
        if span.end <= span.start {
            return None;
        }
        Some(Lines { start: idx.line_col(span.start), end: idx.line_col(span.end - 1) })
    }

    fn platform(&self) -> Option<pb::Platform> {
        Some(pb::Platform::from(&self.inputs.platform))
    }

    fn image(&mut self, r: &str) -> (Output, Vec<String>) {
        let base = self.inputs.images.get(r).cloned().unwrap_or_else(|| BaseImage {
            source: crate::reference::normalize_ref(r),
            env: vec![DEFAULT_PATH.to_string()],
            def: None,
        });
        self.image_state(&base, &format!("base: {r}"))
    }

    fn image_state(&mut self, base: &BaseImage, name: &str) -> (Output, Vec<String>) {
        let mut env = base.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
        }
        if let Some(out) = base.def.as_ref().and_then(|d| self.g.splice(d)) {
            return (out, env);
        }
        let op = super::image_op(&base.source, self.platform(), self.inputs.resolve_mode.as_deref());
        (self.g.add(op, name, None), env)
    }

    fn source(&mut self, from: &FileSource) -> Output {
        match from {
            FileSource::Context => self.context(),
            FileSource::App => self.app_context(),
            FileSource::Named(name) if self.inputs.named_contexts.contains(name) => {
                let mut attrs = self.local_attrs();
                attrs.insert("local.sharedkeyhint".to_string(), name.clone());
                let op = pb::Op {
                    platform: None,
                    op: Some(pb::op::Op::Source(pb::SourceOp { identifier: format!("local://{name}"), attrs })),
                    ..Default::default()
                };
                self.g.add(op, &format!("context: {name}"), None)
            }
            // No such named context: fall back to the directory of that name
            // in the main context (selected by the copy below).
            FileSource::Named(name) => {
                let ctx = self.context();
                self.copy_into_scratch(ctx, std::slice::from_ref(name), &format!("context: {name}/"), true)
            }
            FileSource::Stage(i) => self.stage(*i).state,
            FileSource::Pinned(p) => self.pinned(p),
        }
    }

    /// The target platform's file of a pinned helper, fetched by the engine
    /// and checked against its sha256 (a checked file is cached by that
    /// digest: no request once it is in the cache). A platform without an
    /// entry gets `unknown_arch_url` and no checksum, so the
    /// build fails naming the file that does not exist.
    fn pinned(&mut self, p: &'static crate::plan::Pinned) -> Output {
        let pl = &self.inputs.platform;
        let mut attrs = BTreeMap::new();
        attrs.insert("http.filename".to_string(), p.filename.to_string());
        attrs.insert("http.perm".to_string(), "0644".to_string());
        let url = match p.file(&pl.architecture, &pl.variant) {
            Some(f) => {
                attrs.insert("http.checksum".to_string(), format!("sha256:{}", f.sha256));
                f.url.to_string()
            }
            None => p.unknown_arch_url.replace("{arch}", &pl.architecture),
        };
        let op = pb::Op { platform: None, op: Some(pb::op::Op::Source(pb::SourceOp { identifier: url, attrs })), ..Default::default() };
        self.g.add(op, &format!("{} (pinned)", p.name), None)
    }

    fn local_attrs(&self) -> BTreeMap<String, String> {
        let mut attrs = BTreeMap::new();
        if let Some(s) = &self.inputs.session {
            attrs.insert("local.session".to_string(), s.clone());
        }
        attrs
    }

    fn context(&mut self) -> Output {
        if let Some(c) = &self.context {
            return c.clone();
        }
        let mut filter = self.plan.context.clone();
        // Named contexts that fall back to context directories must be sent.
        for stage in &self.plan.stages {
            for src in stage.ops.iter().flat_map(Op::sources) {
                if let FileSource::Named(n) = src {
                    if !self.inputs.named_contexts.contains(n) {
                        filter.include.push(n.clone());
                    }
                }
            }
        }
        filter.settle();
        let out = self.local_context(&filter, "context", "context");
        self.context = Some(out.clone());
        out
    }

    /// The app copies' own local of the same directory: its excludes
    /// (`[app] exclude`, `.git`) must not hide the inputs of steps or tests.
    fn app_context(&mut self) -> Output {
        if let Some(c) = &self.app_context {
            return c.clone();
        }
        let plan = self.plan;
        let out = self.local_context(&plan.app, "context-app", "context (app)");
        self.app_context = Some(out.clone());
        out
    }

    /// `local://context` sending only `filter`. Each filter gets its own
    /// shared key hint, so the incremental transfer of one never starts
    /// from the other's differently filtered copy.
    fn local_context(&mut self, filter: &ContextFilter, key_hint: &str, name: &str) -> Output {
        let mut attrs = self.local_attrs();
        attrs.insert("local.sharedkeyhint".to_string(), key_hint.to_string());
        if !filter.include.is_empty() && !filter.sends_everything() {
            attrs.insert("local.includepattern".to_string(), serde_json::to_string(&filter.include).unwrap_or_default());
        }
        if !filter.exclude.is_empty() {
            attrs.insert("local.excludepatterns".to_string(), serde_json::to_string(&filter.exclude).unwrap_or_default());
        }
        let op =
            pb::Op { op: Some(pb::op::Op::Source(pb::SourceOp { identifier: "local://context".into(), attrs })), ..Default::default() };
        self.g.add(op, name, None)
    }

    /// A scratch state holding `paths` copied from `src` at the same
    /// relative locations (or, with `contents`, the contents of one dir).
    fn copy_into_scratch(&mut self, src: Output, paths: &[String], name: &str, contents: bool) -> Output {
        let mut f = FileOp::new();
        let from = f.input(&src);
        for (i, p) in paths.iter().enumerate() {
            let rel = p.trim_end_matches('/');
            let dest = if contents { "/".to_string() } else { format!("/{rel}") };
            // The first copy starts from scratch; each next one builds on
            // the previous one's result.
            f.copy(if i == 0 { On::Scratch } else { On::Previous }, from, format!("/{rel}"), dest, None);
        }
        let op = f.finish(self.platform());
        self.g.add(op, name, None)
    }

    fn merged(&mut self, layers: &[Output]) -> Output {
        if layers.len() == 1 {
            return layers[0].clone();
        }
        self.merge_op(layers, None, None)
    }

    /// A merge of `layers`, where a layer that is itself a merge gives its
    /// own layers instead: MergeOp stacks its inputs in order, so
    /// merge(merge(a, b), c) is merge(a, b, c), with one vertex fewer for
    /// every build to check.
    fn merge_op(&mut self, layers: &[Output], name: Option<&str>, lines: Option<Lines>) -> Output {
        let mut flat = Vec::new();
        for l in layers {
            match self.merges.get(l) {
                Some(parts) => flat.extend(parts.iter().cloned()),
                None => flat.push(l.clone()),
            }
        }
        let op = pb::Op {
            inputs: flat.iter().map(input).collect(),
            op: Some(pb::op::Op::Merge(pb::MergeOp { inputs: (0..flat.len() as i64).map(|i| pb::MergeInput { input: i }).collect() })),
            ..Default::default()
        };
        let name = name.map(String::from).unwrap_or_else(|| format!("merge {} layers", flat.len()));
        let out = self.g.add(op, &name, lines);
        self.merges.insert(out.clone(), flat);
        out
    }

    /// A copy as an independent layer: onto scratch, with the directories
    /// above it recreated, because a merged layer's directories replace
    /// the metadata of those below: the workdir with its owner when the
    /// copy lands inside it, and every directory above that (or above the
    /// destination of a copy owned by a user) as root's, 0755. Left to the
    /// copy, they would be the copy's owner's (`/var/lib` the app user's,
    /// for an output at `/var/lib/NAME`).
    fn copy_layer(&mut self, op: &Op) -> Output {
        let Op::Copy { name, from, src, dest, owner, span, epoch } = op else { unreachable!("copy_layer takes copies") };
        let lines = self.lines(span);
        let from = self.source(from);
        let (workdir, wd_owner) = self.plan.workdir.clone();
        let workdir = workdir.trim_end_matches('/').to_string();
        let inside = !workdir.is_empty() && dest.starts_with(&format!("{workdir}/"));
        // Outside the workdir, only a copy owned by someone else than root
        // needs its parents recreated: a root-owned one (the venv) makes
        // them root's itself, and left alone its layer stays the same
        // bytes on every engine (an added mkdir does not).
        let foreign = owner.is_some_and(|o| o.uid != 0 || o.gid != 0);
        let top = if inside {
            workdir.clone()
        } else if foreign {
            dest.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let mut f = FileOp::new();
        let src_input = f.input(&from);
        let mut at = String::new();
        let parts: Vec<&str> = top.split('/').filter(|c| !c.is_empty()).collect();
        for (i, c) in parts.iter().enumerate() {
            at = format!("{at}/{c}");
            let dir_owner = if inside && i + 1 == parts.len() { wd_owner } else { None };
            f.mkdir(if i == 0 { On::Scratch } else { On::Previous }, at.clone(), 0o755, dir_owner);
        }
        let on = if parts.is_empty() { On::Scratch } else { On::Previous };
        f.copy_at(on, src_input, src.clone(), dest.clone(), *owner, *epoch);
        let op = f.finish(self.platform());
        self.g.add(op, name, lines)
    }

    /// Copies and mkdirs on `state` as one file op (one vertex), named for
    /// all of them: one op alone, or a run of them in a builder-only stage.
    fn file_ops(&mut self, ops: &[Op], state: Output) -> Output {
        let lines = self.lines(ops[0].span());
        let mut f = FileOp::new();
        let base = f.input(&state);
        for (i, op) in ops.iter().enumerate() {
            let on = if i == 0 { On::Input(base) } else { On::Previous };
            match op {
                Op::Copy { from, src, dest, owner, epoch, .. } => {
                    let from = self.source(from);
                    let src_input = f.input(&from);
                    f.copy_at(on, src_input, src.clone(), dest.clone(), *owner, *epoch);
                }
                Op::Mkdir { path, owner, .. } => {
                    f.mkdir(on, path.clone(), 0o755, *owner);
                }
                _ => unreachable!("file_ops takes copies and mkdirs"),
            }
        }
        let names: Vec<&str> = ops.iter().map(|o| o.name()).collect();
        let op = f.finish(self.platform());
        self.g.add(op, &fused_name(&names), lines)
    }

    /// A scratch state holding files strata writes (mkfile), e.g. a layer
    /// group's pins: their content is the consuming op's cache key.
    fn generated(&mut self, files: &[(String, String)]) -> Output {
        let mut f = FileOp::new();
        for (i, (name, text)) in files.iter().enumerate() {
            f.mkfile(if i == 0 { On::Scratch } else { On::Previous }, format!("/{name}"), text.as_bytes().to_vec());
        }
        let op = f.finish(self.platform());
        self.g.add(op, "", None)
    }

    /// A scratch state holding `/cache` with the given owner and mode.
    fn cache_base(&mut self, owner: Option<Owner>, mode: Option<u32>) -> Output {
        let mut f = FileOp::new();
        f.mkdir(On::Scratch, "/cache".into(), mode.unwrap_or(0o755) as i32, owner);
        let op = f.finish(self.platform());
        self.g.add(op, "cache dir", None)
    }

    fn op(&mut self, op: &Op, state: Output, env: &[String]) -> Output {
        let lines = self.lines(op.span());
        match op {
            Op::Run(r) => {
                let mut inputs = vec![input(&state)];
                let mut pb_mounts =
                    vec![pb::Mount { input: 0, dest: "/".into(), output: 0, mount_type: pb::MountType::Bind as i32, ..Default::default() }];
                let mut run_env: Vec<String> = env.to_vec();
                // The inputs `Mount::Files` binds from, shared by their binds
                // (and only theirs: a source also mounted writable would turn
                // the content-based key off).
                let mut files_inputs: Vec<(Output, usize)> = Vec::new();
                for m in &r.mounts {
                    match m {
                        Mount::Cache { target, id, sharing, owner, mode } => {
                            let cache_opt = Some(pb::CacheOpt {
                                id: id.clone(),
                                sharing: match sharing {
                                    Sharing::Shared => pb::CacheSharingOpt::Shared,
                                    Sharing::Private => pb::CacheSharingOpt::Private,
                                    Sharing::Locked => pb::CacheSharingOpt::Locked,
                                } as i32,
                            });
                            // An owner or mode needs a base for the cache dir,
                            // as the Dockerfile frontend builds it: a scratch
                            // state with that directory, mounted by selector.
                            let (input_idx, selector) = if owner.is_some() || mode.is_some() {
                                let dir = self.cache_base(*owner, *mode);
                                inputs.push(input(&dir));
                                ((inputs.len() - 1) as i64, "/cache".to_string())
                            } else {
                                (-1, String::new())
                            };
                            pb_mounts.push(pb::Mount {
                                input: input_idx,
                                selector,
                                dest: target.clone(),
                                output: -1,
                                mount_type: pb::MountType::Cache as i32,
                                cache_opt,
                                ..Default::default()
                            })
                        }
                        Mount::Files { target, from, paths } => {
                            // Each file is bound read-only from its source by
                            // selector, as `RUN --mount=type=bind,source=F`
                            // does: the engine hashes exactly the selected
                            // paths' content into the key, with no file op
                            // (a vertex every build checks) to copy them out
                            // first. The binds sit in a tmpfs at the target
                            // (one per target), so the only mount point made
                            // in the rootfs is the target: directly in /tmp,
                            // or `/mnt`, which the image has.
                            let src = self.source(from);
                            if !pb_mounts.iter().any(|m| m.dest == *target && m.mount_type == pb::MountType::Tmpfs as i32) {
                                pb_mounts.push(pb::Mount {
                                    input: -1,
                                    dest: target.clone(),
                                    output: -1,
                                    mount_type: pb::MountType::Tmpfs as i32,
                                    ..Default::default()
                                });
                            }
                            let idx = match files_inputs.iter().find(|(o, _)| *o == src) {
                                Some((_, i)) => *i,
                                None => {
                                    inputs.push(input(&src));
                                    files_inputs.push((src, inputs.len() - 1));
                                    inputs.len() - 1
                                }
                            };
                            for p in paths {
                                let rel = p.trim_end_matches('/');
                                let mut m = bind_ro(idx, &format!("{}/{rel}", target.trim_end_matches('/')));
                                m.selector = format!("/{rel}");
                                pb_mounts.push(m);
                            }
                        }
                        Mount::Source { target, from, writable } => {
                            let src = self.source(from);
                            inputs.push(input(&src));
                            let mut m = bind_ro(inputs.len() - 1, target);
                            m.readonly = !writable;
                            pb_mounts.push(m);
                        }
                        Mount::Generated { target, files } => {
                            let dir = self.generated(files);
                            inputs.push(input(&dir));
                            pb_mounts.push(bind_ro(inputs.len() - 1, target));
                        }
                        Mount::Tmpfs { target } => pb_mounts.push(pb::Mount {
                            input: -1,
                            dest: target.clone(),
                            output: -1,
                            mount_type: pb::MountType::Tmpfs as i32,
                            ..Default::default()
                        }),
                        Mount::Secret { id } => pb_mounts.push(pb::Mount {
                            input: -1,
                            dest: format!("/run/secrets/{id}"),
                            output: -1,
                            mount_type: pb::MountType::Secret as i32,
                            secret_opt: Some(pb::SecretOpt { id: id.clone(), uid: 0, gid: 0, mode: 0o400, optional: false }),
                            ..Default::default()
                        }),
                        Mount::Ssh { id, index } => {
                            let dest = format!("/run/buildkit/ssh_agent.{index}");
                            if *index == 0 {
                                run_env.retain(|e| !e.starts_with("SSH_AUTH_SOCK="));
                                run_env.push(format!("SSH_AUTH_SOCK={dest}"));
                            }
                            pb_mounts.push(pb::Mount {
                                input: -1,
                                dest,
                                output: -1,
                                mount_type: pb::MountType::Ssh as i32,
                                ssh_opt: Some(pb::SshOpt { id: id.clone(), uid: 0, gid: 0, mode: 0o600, optional: false }),
                                ..Default::default()
                            });
                        }
                    }
                }
                let base_path =
                    env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH.trim_start_matches("PATH=")).to_string();
                for (k, v) in &r.env {
                    run_env.retain(|e| !e.starts_with(&format!("{k}=")));
                    run_env.push(format!("{k}={}", v.replace("${PATH}", &base_path)));
                }
                let exec = pb::ExecOp {
                    meta: Some(pb::Meta {
                        args: vec!["/bin/sh".into(), "-c".into(), r.script.clone()],
                        env: run_env,
                        cwd: r.cwd.clone(),
                        // What the engine creates to mount on (/tmp/strata
                        // and its parents) is removed after the command, as
                        // BuildKit's own LLB client asks.
                        remove_mount_stubs_recursive: true,
                        ..Default::default()
                    }),
                    mounts: pb_mounts,
                    network: match r.network {
                        Network::Default => pb::NetMode::Unset,
                        Network::Host => pb::NetMode::Host,
                        Network::None => pb::NetMode::None,
                    } as i32,
                    ..Default::default()
                };
                let op = pb::Op { inputs, platform: self.platform(), op: Some(pb::op::Op::Exec(exec)), ..Default::default() };
                let ignore = match &self.inputs.no_cache {
                    NoCache::None => false,
                    NoCache::All => true,
                    NoCache::Steps(names) => r.step.as_ref().is_some_and(|s| names.contains(s)),
                };
                self.g.add_with(op, &r.name, lines, ignore)
            }
            Op::Copy { .. } | Op::Mkdir { .. } => self.file_ops(std::slice::from_ref(op), state),
            Op::Merge { name, layers, .. } => {
                let mut parts = vec![state];
                for layer in layers {
                    let (l, u) = (self.stage(layer.lower).state, self.stage(layer.upper).state);
                    let op = pb::Op {
                        inputs: vec![input(&l), input(&u)],
                        op: Some(pb::op::Op::Diff(pb::DiffOp {
                            lower: Some(pb::LowerDiffInput { input: 0 }),
                            upper: Some(pb::UpperDiffInput { input: 1 }),
                        })),
                        ..Default::default()
                    };
                    parts.push(self.g.add(op, "", None));
                }
                self.merge_op(&parts, Some(name), lines)
            }
        }
    }
}

fn is_file(op: &Op) -> bool {
    matches!(op, Op::Copy { .. } | Op::Mkdir { .. })
}

/// One name for ops lowered as one vertex: `step a: input x, input y`
/// when they share the part before `: `, else the names joined.
fn fused_name(names: &[&str]) -> String {
    let prefix = names[0].split_once(": ").map(|(p, _)| p);
    match prefix {
        Some(p) if names.iter().all(|n| n.split_once(": ").is_some_and(|(q, _)| q == p)) => {
            let rests: Vec<&str> = names.iter().filter_map(|n| n.split_once(": ").map(|(_, r)| r)).collect();
            format!("{p}: {}", rests.join(", "))
        }
        _ => names.join(", "),
    }
}

fn bind_ro(input_idx: usize, target: &str) -> pb::Mount {
    pb::Mount {
        input: input_idx as i64,
        dest: target.to_string(),
        output: -1,
        readonly: true,
        mount_type: pb::MountType::Bind as i32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"version = 1
[image]
base = "python:3.11"
[system]
packages = ["libpq5"]
[python]
requirements = ["requirements.txt"]
wheels = "wheels"
[app]
copy = ["app.py", "templates/"]
"#;

    fn lowered(named: &[&str]) -> Lowered {
        lowered_with(named, false)
    }

    fn lowered_with(named: &[&str], merge: bool) -> Lowered {
        let spec = crate::spec::load(SPEC, &BTreeMap::new()).unwrap();
        let plan = crate::plan::build(&spec, &[]);
        let named: BTreeSet<String> = named.iter().map(|s| s.to_string()).collect();
        let platform = crate::platform::parse("linux/amd64").unwrap();
        let inputs = Inputs {
            named_contexts: &named,
            resolve_mode: Some("local".into()),
            ..Inputs::offline(platform, Some(("strata.toml", SPEC)), merge)
        };
        lower(&plan, &inputs, plan.target)
    }

    /// The dependency files reach the install as read-only binds of the
    /// context by selector (the engine keys them by content), in a tmpfs at
    /// the mount target: no file op copies them out first.
    #[test]
    fn dependency_files_are_bound_by_selector_without_a_file_op() {
        for merge in [false, true] {
            let def = lowered_with(&["wheels"], merge).definition;
            let ops: Vec<pb::Op> = def.def.iter().map(|b| <pb::Op as prost::Message>::decode(b.as_slice()).unwrap()).collect();
            let names: Vec<&String> = def.metadata.values().filter_map(|m| m.description.get("llb.customname")).collect();
            assert!(!names.iter().any(|n| n.starts_with("files:")), "{names:?}");
            let install = ops
                .iter()
                .find_map(|o| match &o.op {
                    Some(pb::op::Op::Exec(e)) if e.meta.as_ref().unwrap().args[2].contains("-r /tmp/strata-deps/requirements.txt") => {
                        Some(e)
                    }
                    _ => None,
                })
                .expect("the install");
            let tmpfs = install.mounts.iter().position(|m| m.dest == "/tmp/strata-deps" && m.mount_type == pb::MountType::Tmpfs as i32);
            let bind = install.mounts.iter().position(|m| m.dest == "/tmp/strata-deps/requirements.txt");
            let (Some(t), Some(b)) = (tmpfs, bind) else { panic!("{:?}", install.mounts) };
            assert!(t < b, "the tmpfs is mounted first");
            let m = &install.mounts[b];
            assert!(m.readonly && m.selector == "/requirements.txt" && m.output == -1, "{m:?}");
        }
    }

    /// Every op of a definition is one its result needs: a merge folded
    /// into a bigger one is not left behind.
    #[test]
    fn a_definition_holds_only_the_ops_its_result_needs() {
        for merge in [false, true] {
            let def = lowered_with(&["wheels"], merge).definition;
            let ops: Vec<(String, pb::Op)> =
                def.def.iter().map(|b| (crate::llb::digest_of(b), <pb::Op as prost::Message>::decode(b.as_slice()).unwrap())).collect();
            let mut needed: BTreeSet<String> = [ops.last().unwrap().0.clone()].into();
            for (d, o) in ops.iter().rev() {
                if needed.contains(d) {
                    needed.extend(o.inputs.iter().map(|i| i.digest.clone()));
                }
            }
            assert_eq!(needed.len(), ops.len(), "unused ops in the definition (merge: {merge})");
            assert!(def.metadata.keys().all(|d| needed.contains(d)));
        }
    }

    /// `[python]` with only `packages` has no dependency file to mount:
    /// every file op of every target has an action (the engine rejects an
    /// empty one, which httpbin's spec from `strata init` hit).
    #[test]
    fn a_packages_only_install_lowers_without_an_empty_file_op() {
        let src = "version = 1\n[image]\nbase = \"python:3.12\"\n[python]\npackages = [\"gunicorn\", \"gevent\"]\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        for merge in [false, true] {
            let plan = crate::plan::build_with(&spec, &[], &crate::plan::PlanEnv { merge, ..Default::default() });
            for (name, _) in plan.targets() {
                let def = lower(
                    &plan,
                    &Inputs::offline(crate::platform::parse("linux/amd64").unwrap(), None, merge),
                    plan.stage_index(name).unwrap(),
                )
                .definition;
                for bytes in &def.def {
                    let op = <pb::Op as prost::Message>::decode(bytes.as_slice()).unwrap();
                    if let Some(pb::op::Op::File(f)) = op.op {
                        assert!(!f.actions.is_empty(), "target {name}: a file op with no actions");
                    }
                }
            }
        }
    }

    /// `init = true`: tini is an https source pinned by the target
    /// platform's sha256, mounted into an offline dpkg install.
    #[test]
    fn pinned_tini_is_a_checked_download_per_platform() {
        let spec = crate::spec::load(&SPEC.replace("[system]", "init = true\n[system]"), &BTreeMap::new()).unwrap();
        let plan = crate::plan::build(&spec, &[]);
        let http = |platform: &str| -> Vec<pb::SourceOp> {
            let def = lower(&plan, &Inputs::offline(crate::platform::parse(platform).unwrap(), None, true), plan.target).definition;
            def.def
                .iter()
                .filter_map(|b| match <pb::Op as prost::Message>::decode(b.as_slice()).unwrap().op {
                    Some(pb::op::Op::Source(s)) if s.identifier.starts_with("https://") => Some(s),
                    _ => None,
                })
                .collect()
        };
        let [amd] = &http("linux/amd64")[..] else { panic!() };
        assert_eq!(amd.identifier, "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1_amd64.deb");
        assert_eq!(amd.attrs["http.checksum"], "sha256:de5c1090fdb767c6c826b23e1248f4644546697ac4a5bc50b3823901881d4607");
        assert_eq!(amd.attrs["http.filename"], "tini.deb");
        let [arm] = &http("linux/arm/v7")[..] else { panic!() };
        assert!(arm.identifier.ends_with("_armhf.deb") && arm.attrs["http.checksum"].starts_with("sha256:c13155"), "{arm:?}");
        let [rv] = &http("linux/riscv64")[..] else { panic!() };
        assert!(rv.identifier.ends_with("_riscv64.deb") && !rv.attrs.contains_key("http.checksum"), "{rv:?}");
    }

    /// The venv is copied with mtime 0 (its files have it already; the
    /// directories the copy makes get it too); app files keep theirs.
    #[test]
    fn the_venv_copy_is_dated_zero_and_app_copies_keep_their_times() {
        for merge in [false, true] {
            let copies: Vec<(String, i64)> = lowered_with(&["wheels"], merge)
                .definition
                .def
                .iter()
                .filter_map(|b| match <pb::Op as prost::Message>::decode(b.as_slice()).unwrap().op {
                    Some(pb::op::Op::File(f)) => Some(f.actions),
                    _ => None,
                })
                .flatten()
                .filter_map(|a| match a.action {
                    Some(pb::file_action::Action::Copy(c)) => Some((c.dest, c.timestamp)),
                    _ => None,
                })
                .collect();
            let venv: Vec<i64> = copies.iter().filter(|(d, _)| d == "/opt/venv").map(|(_, t)| *t).collect();
            let app: Vec<i64> = copies.iter().filter(|(d, _)| d.starts_with("/app/")).map(|(_, t)| *t).collect();
            if !merge {
                assert_eq!(venv, [0], "{copies:?}");
            }
            assert!(!app.is_empty() && app.iter().all(|t| *t == -1), "{copies:?}");
        }
    }

    /// With MergeOp, a build step's inputs are plain copies under its
    /// command (no merge to materialize on each re-run); the app copies of
    /// the image stay layers on scratch, merged.
    #[test]
    fn step_inputs_chain_under_the_command_and_app_copies_stay_layers() {
        let src = SPEC.to_string() + "[[step]]\nname = \"gen\"\nrun = \"ls\"\ninputs = [\"app.py\"]\noutputs = [\"out\"]\n";
        let spec = crate::spec::load(&src, &BTreeMap::new()).unwrap();
        let plan = crate::plan::build(&spec, &[]);
        let named: BTreeSet<String> = ["wheels".to_string()].into();
        let platform = crate::platform::parse("linux/amd64").unwrap();
        let inputs = Inputs { named_contexts: &named, resolve_mode: Some("local".into()), ..Inputs::offline(platform, None, true) };
        let def = lower(&plan, &inputs, plan.target).definition;
        let ops: Vec<pb::Op> = def.def.iter().map(|b| <pb::Op as prost::Message>::decode(b.as_slice()).unwrap()).collect();
        let digests: Vec<String> = def.def.iter().map(|b| crate::llb::digest_of(b)).collect();
        let at = |d: &str| digests.iter().position(|x| x == d).unwrap();
        let exec = ops.iter().find(|o| matches!(&o.op, Some(pb::op::Op::Exec(e)) if e.meta.as_ref().unwrap().args[2] == "ls")).unwrap();
        let under = &ops[at(&exec.inputs[0].digest)];
        let Some(pb::op::Op::File(f)) = &under.op else { panic!("the step's command runs on {:?}", under.op) };
        assert!(matches!(&f.actions[0].action, Some(pb::file_action::Action::Copy(c)) if c.dest.ends_with("app.py")), "{f:?}");
        // the copy is onto the builder, not onto scratch
        assert_eq!(under.inputs.len(), 2, "{under:?}");
        let merges = ops.iter().filter(|o| matches!(o.op, Some(pb::op::Op::Merge(_)))).count();
        assert!(merges >= 1, "the image's layers are still merged");
    }

    /// A stage the image is not built on: a step's inputs are one file op
    /// (one vertex for the cache check, not one per input), and such a
    /// stage lowers to the same ops whatever the target, so the test
    /// target shares the builder's cache with the runtime.
    #[test]
    fn builder_only_file_ops_are_one_vertex_and_the_same_for_every_target() {
        let src = "version = 1\n[image]\nbase = \"python:3.11\"\n[system]\nbuild-packages = [\"gcc\"]\n[python]\nrequirements = [\"requirements.txt\"]\n[app]\ncopy = [\"app.py\"]\n[[step]]\nname = \"gen\"\nrun = \"ls\"\ninputs = [\"a.py\", \"b.py\", \"conf/\"]\noutputs = [\"out\"]\n[test]\nrun = \"true\"\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        for merge in [false, true] {
            let plan = crate::plan::build_with(&spec, &[], &crate::plan::PlanEnv { merge, ..Default::default() });
            let named = BTreeSet::new();
            let inputs = Inputs::offline(crate::platform::parse("linux/amd64").unwrap(), None, merge);
            let inputs = Inputs { named_contexts: &named, ..inputs };
            let def = lower(&plan, &inputs, plan.target).definition;
            let ops: Vec<pb::Op> = def.def.iter().map(|b| <pb::Op as prost::Message>::decode(b.as_slice()).unwrap()).collect();
            let digests: Vec<String> = def.def.iter().map(|b| crate::llb::digest_of(b)).collect();
            let exec = ops.iter().find(|o| matches!(&o.op, Some(pb::op::Op::Exec(e)) if e.meta.as_ref().unwrap().args[2] == "ls")).unwrap();
            let under = &ops[digests.iter().position(|d| *d == exec.inputs[0].digest).unwrap()];
            let Some(pb::op::Op::File(f)) = &under.op else { panic!("the step runs on {:?}", under.op) };
            let dests: Vec<String> = f
                .actions
                .iter()
                .filter_map(|a| match &a.action {
                    Some(pb::file_action::Action::Copy(c)) => Some(c.dest.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(dests.len(), 3, "merge {merge}: the three inputs in one file op: {dests:?}");
            let name = &def.metadata[&exec.inputs[0].digest].description["llb.customname"];
            assert_eq!(name, "step gen: input a.py, input b.py, input conf/", "merge {merge}");
            // the builder lowers the same for the runtime and the test target
            let test = plan.stage_named("test").unwrap();
            let tdef = lower(&plan, &inputs, test).definition;
            let builder = lower(&plan, &inputs, plan.stage_named("builder").unwrap()).definition;
            let tdigests: BTreeSet<String> = tdef.def.iter().map(|b| crate::llb::digest_of(b)).collect();
            for b in &builder.def[..builder.def.len() - 1] {
                assert!(tdigests.contains(&crate::llb::digest_of(b)), "merge {merge}: a builder op the test target lowers otherwise");
            }
        }
    }

    /// The deps stage replaced by a deps image: no exec of the deps or the
    /// builder is in the definition, the app copies sit on the image, and
    /// the history lists only the layers above it.
    #[test]
    fn a_deps_image_replaces_the_deps_stage() {
        let spec = crate::spec::load(SPEC, &BTreeMap::new()).unwrap();
        let plan = crate::plan::build(&spec, &[]);
        let deps = plan.stage_named("deps").unwrap();
        let img = BaseImage {
            source: "reg.example/app-deps:deps-0123@sha256:ab".into(),
            env: vec!["PATH=/opt/venv/bin:/usr/bin".into()],
            def: None,
        };
        let replaced: BTreeMap<usize, BaseImage> = [(deps, img)].into();
        let named: BTreeSet<String> = ["wheels".to_string()].into();
        for merge in [false, true] {
            let inputs = Inputs {
                named_contexts: &named,
                stage_images: &replaced,
                ..Inputs::offline(crate::platform::parse("linux/amd64").unwrap(), Some(("strata.toml", SPEC)), merge)
            };
            let l = lower(&plan, &inputs, plan.target);
            let ops: Vec<pb::Op> = l.definition.def.iter().map(|b| <pb::Op as prost::Message>::decode(b.as_slice()).unwrap()).collect();
            let execs = ops.iter().filter(|o| matches!(o.op, Some(pb::op::Op::Exec(_)))).count();
            let sources: Vec<String> = ops
                .iter()
                .filter_map(|o| match &o.op {
                    Some(pb::op::Op::Source(s)) => Some(s.identifier.clone()),
                    _ => None,
                })
                .collect();
            // the user's creation is a deps op too: nothing runs at all
            assert_eq!(execs, 0, "merge {merge}: {sources:?}");
            assert!(sources.contains(&"docker-image://reg.example/app-deps:deps-0123@sha256:ab".to_string()), "{sources:?}");
            assert!(!sources.iter().any(|s| s.contains("python:3.11")), "the original base is still used: {sources:?}");
            assert_eq!(l.history, ["app: copy app.py", "app: copy templates/"], "merge {merge}");
        }
    }

    #[test]
    fn deterministic_bytes() {
        let a = lowered(&["wheels"]).definition;
        let b = lowered(&["wheels"]).definition;
        assert_eq!(prost::Message::encode_to_vec(&a), prost::Message::encode_to_vec(&b));
    }

    /// Pins the bytes: a change here changes every user's cache keys, so it
    /// must be deliberate (update the constant in the same commit).
    #[test]
    fn digest_is_stable_across_runs_and_versions() {
        let def = lowered(&["wheels"]).definition;
        let last = crate::llb::digest_of(def.def.last().unwrap());
        assert_eq!(last, GOLDEN, "LLB bytes changed");
    }
    const GOLDEN: &str = "sha256:ed1981d0ee18bb5c13548a637717e9faa958ea3d96683d659f4052bd2ef54faa";

    #[test]
    fn runtime_packages_install_once_and_not_in_the_builder() {
        let def = lowered(&["wheels"]).definition;
        let execs: Vec<String> = def
            .def
            .iter()
            .filter_map(|b| match <pb::Op as prost::Message>::decode(b.as_slice()).unwrap().op {
                Some(pb::op::Op::Exec(e)) => Some(e.meta.unwrap().args[2].clone()),
                _ => None,
            })
            .collect();
        assert_eq!(execs.iter().filter(|s| s.contains("apt-get install")).count(), 1, "{execs:?}");
    }

    #[test]
    fn mergeop_makes_app_layers_independent_of_the_venv() {
        let ops = |merge| -> Vec<pb::Op> {
            lowered_with(&["wheels"], merge)
                .definition
                .def
                .iter()
                .map(|b| <pb::Op as prost::Message>::decode(b.as_slice()).unwrap())
                .collect()
        };
        let linear = ops(false);
        assert!(!linear.iter().any(|o| matches!(o.op, Some(pb::op::Op::Merge(_)))));
        let merged = ops(true);
        let merges: Vec<&pb::Op> = merged.iter().filter(|o| matches!(o.op, Some(pb::op::Op::Merge(_)))).collect();
        // runtime = (base..workdir) + venv + two app copies: one merge, the
        // deps stage's merge folded into it
        assert_eq!(merges.iter().map(|m| m.inputs.len()).collect::<Vec<_>>(), [4]);
        // each app copy starts from scratch: its only input is the context
        for o in &merged {
            if let Some(pb::op::Op::File(f)) = &o.op {
                if let Some(pb::file_action::Action::Copy(c)) = &f.actions.last().unwrap().action {
                    if c.dest.starts_with("/app/") {
                        assert_eq!(o.inputs.len(), 1, "{}", c.dest);
                        assert!(matches!(f.actions[0].action, Some(pb::file_action::Action::Mkdir(_))), "workdir recreated");
                    }
                }
            }
        }
        assert_eq!(lowered_with(&["wheels"], true).history, lowered(&["wheels"]).history, "same layers either way");
    }

    /// A merged copy layer recreates the directories above its files: the
    /// workdir with the user's ids, everything above it (or above an
    /// output outside the workdir) root's, so the merge does not hand
    /// `/srv` or `/var/lib` to the app user.
    #[test]
    fn merged_copies_recreate_the_directories_above_them_as_roots() {
        let src = "version = 1\n[image]\nbase = \"busybox\"\nworkdir = \"/srv/site\"\n\
                   [[step]]\nname = \"dirs\"\nrun = \"mkdir -p /var/lib/w\"\noutputs = [\"/var/lib/w\"]\n[app]\ncopy = [\"a.txt\"]\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        let plan = crate::plan::build_with(&spec, &[], &crate::plan::PlanEnv { merge: true, ..Default::default() });
        let platform = crate::platform::parse("linux/amd64").unwrap();
        let def = lower(&plan, &Inputs::offline(platform, None, true), plan.target).definition;
        let mut seen = BTreeMap::new();
        for b in &def.def {
            let Some(pb::op::Op::File(f)) = <pb::Op as prost::Message>::decode(b.as_slice()).unwrap().op else { continue };
            let Some(pb::file_action::Action::Copy(c)) = &f.actions.last().unwrap().action else { continue };
            let dirs: Vec<(String, Option<i64>)> = f
                .actions
                .iter()
                .filter_map(|a| match &a.action {
                    Some(pb::file_action::Action::Mkdir(m)) => Some((
                        m.path.clone(),
                        m.owner.as_ref().and_then(|o| match o.user.as_ref()?.user.as_ref()? {
                            pb::user_opt::User::ById(id) => Some(*id as i64),
                            _ => None,
                        }),
                    )),
                    _ => None,
                })
                .collect();
            seen.insert(c.dest.clone(), dirs);
        }
        let d = |v: &[(&str, Option<i64>)]| v.iter().map(|(p, o)| (p.to_string(), *o)).collect::<Vec<_>>();
        assert_eq!(seen["/srv/site/a.txt"], d(&[("/srv", None), ("/srv/site", Some(1000))]), "{seen:?}");
        assert_eq!(seen["/var/lib/w"], d(&[("/var", None), ("/var/lib", None)]), "{seen:?}");
    }

    #[test]
    fn history_lists_runtime_layers() {
        let h = lowered(&[]).history;
        assert_eq!(h[0], "system: apt-get install libpq5");
        assert_eq!(h.last().unwrap(), "app: copy templates/");
    }

    fn decoded(src: &str) -> Vec<pb::Op> {
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        let plan = crate::plan::build(&spec, &[]);
        let platform = crate::platform::parse("linux/amd64").unwrap();
        let def = lower(&plan, &Inputs::offline(platform, None, false), plan.target).definition;
        def.def.iter().map(|b| <pb::Op as prost::Message>::decode(b.as_slice()).unwrap()).collect()
    }

    fn exec_of<'a>(ops: &'a [pb::Op], script_part: &str) -> &'a pb::ExecOp {
        ops.iter()
            .find_map(|o| match &o.op {
                Some(pb::op::Op::Exec(e)) if e.meta.as_ref().is_some_and(|m| m.args.last().is_some_and(|a| a.contains(script_part))) => {
                    Some(e)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no exec running {script_part}"))
    }

    /// `network` reaches the ExecOp; a custom cache keeps its id, sharing,
    /// and its owner/mode through a scratch base dir (as the Dockerfile
    /// frontend does for `--mount=type=cache,uid=,gid=,mode=`).
    #[test]
    fn step_network_and_cache_options_reach_the_exec() {
        let ops = decoded(
            "version = 1\n[image]\nbase = \"busybox\"\n[caches.models]\ntarget = \"/models\"\nsharing = \"private\"\nid = \"acme-models\"\nmode = \"0700\"\nuid = 1000\ngid = 1001\n\
             [[step]]\nname = \"offline\"\nrun = \"echo offline\"\nnetwork = \"none\"\ncaches = [\"models\"]\noutputs = [\"a\"]\n\
             [[step]]\nname = \"hostnet\"\nrun = \"echo hostnet\"\nnetwork = \"host\"\noutputs = [\"b\"]\n\
             [[step]]\nname = \"plain\"\nrun = \"echo plain\"\noutputs = [\"c\"]\n",
        );
        assert_eq!(exec_of(&ops, "echo offline").network, pb::NetMode::None as i32);
        assert_eq!(exec_of(&ops, "echo hostnet").network, pb::NetMode::Host as i32);
        assert_eq!(exec_of(&ops, "echo plain").network, pb::NetMode::Unset as i32);
        let e = exec_of(&ops, "echo offline");
        let m = e.mounts.iter().find(|m| m.dest == "/models").expect("cache mount");
        let c = m.cache_opt.as_ref().unwrap();
        assert_eq!((c.id.as_str(), c.sharing), ("acme-models", pb::CacheSharingOpt::Private as i32));
        assert_eq!(m.selector, "/cache");
        // the mount's input is the scratch dir with that owner and mode
        let dir = ops
            .iter()
            .find_map(|o| match &o.op {
                Some(pb::op::Op::File(f)) => f.actions.iter().find_map(|a| match &a.action {
                    Some(pb::file_action::Action::Mkdir(d)) if d.path == "/cache" => Some(d.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .expect("cache base dir");
        assert_eq!(dir.mode, 0o700);
        let owner = format!("{:?}", dir.owner);
        assert!(owner.contains("1000") && owner.contains("1001"), "{owner}");
    }

    /// `copy = ["."]` sends the whole context (minus excludes): `.` as an
    /// include pattern would match no file and send nothing.
    #[test]
    fn whole_context_copy_sends_everything_but_the_excludes() {
        let ops = decoded("version = 1\n[image]\nbase = \"busybox\"\n[app]\ncopy = [\".\"]\nexclude = [\"tests/\"]\n");
        let locals: Vec<pb::SourceOp> = ops
            .into_iter()
            .filter_map(|o| match o.op {
                Some(pb::op::Op::Source(s)) if s.identifier == "local://context" => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(locals.len(), 1, "only the app reads the context here");
        assert!(!locals[0].attrs.contains_key("local.includepattern"), "{:?}", locals[0].attrs);
        assert_eq!(locals[0].attrs["local.excludepatterns"], r#"["tests/","**/.git"]"#);
        assert_eq!(locals[0].attrs["local.sharedkeyhint"], "context-app");
    }

    #[test]
    fn missing_named_context_falls_back_to_context_dir() {
        let def = lowered(&[]).definition;
        let ops: Vec<pb::Op> = def.def.iter().map(|b| <pb::Op as prost::Message>::decode(b.as_slice()).unwrap()).collect();
        let ctx = ops
            .iter()
            .find_map(|o| match &o.op {
                Some(pb::op::Op::Source(s)) if s.identifier == "local://context" && s.attrs["local.sharedkeyhint"] == "context" => {
                    Some(s.clone())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(ctx.attrs["local.includepattern"], r#"["requirements.txt","wheels"]"#);
        assert!(!ops.iter().any(|o| matches!(&o.op, Some(pb::op::Op::Source(s)) if s.identifier == "local://wheels")));
        let def = lowered(&["wheels"]).definition;
        assert!(def.def.iter().any(|b| {
            matches!(<pb::Op as prost::Message>::decode(b.as_slice()).unwrap().op, Some(pb::op::Op::Source(s)) if s.identifier == "local://wheels")
        }));
    }
}
