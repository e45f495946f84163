//! The BuildKit gateway frontend: what runs when a build says
//! `# syntax=strata:dev`.
//!
//! Flow: connect over stdio → read opts → read the spec from the
//! `dockerfile` local → parse (errors go back with the spec range so buildx
//! shows the lines) → resolve base image configs → plan → lower → solve →
//! return the ref and the image config. Every failure ends in a Return with
//! an error status: a frontend that just exits shows users only
//! `exit code: 1`.

mod caps;
mod contexts;
mod errors;
pub mod opts;
mod sbom;
mod subrequest;
mod transport;

use std::collections::BTreeMap;

use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;
use bollard_buildkit_proto::pb;
use gw::llb_bridge_client::LlbBridgeClient;
use tonic::transport::Channel;

pub use errors::FrontendError;
use opts::BuildOpts;

use crate::llb::lower::{self, BaseImage};
use crate::platform::Platform;
use crate::{image, reference, request, spec};

type Client = LlbBridgeClient<Channel>;

/// Entry point of the frontend process. Returns the process exit code.
pub fn main() -> i32 {
    let started = std::time::Instant::now();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata: cannot start runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async {
        let channel = match transport::connect().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("strata: cannot connect to the BuildKit gateway on stdio: {e}");
                return 1;
            }
        };
        let mut client = LlbBridgeClient::new(channel).max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX);
        let opts = BuildOpts::from_env();
        let req = match build(&mut client, &opts).await {
            Ok(result) => gw::ReturnRequest { result: Some(result), error: None },
            Err(e) => gw::ReturnRequest { result: None, error: Some(e.into_status()) },
        };
        match client.r#return(req).await {
            Ok(_) => {
                // stderr goes to the daemon's log: bench/run.py reads the
                // frontend's own run time from there.
                eprintln!("strata: frontend done in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
                0
            }
            Err(e) => {
                eprintln!("strata: return failed: {e}");
                1
            }
        }
    })
}

/// One build request, read and loaded: what every phase below works on.
struct Request {
    file: String,
    source: String,
    dockerignore: Vec<String>,
    spec: spec::Spec,
    /// The stage `--target` picked (a variant builds `runtime`).
    stage_name: String,
    target: String,
    platforms: Vec<Platform>,
    caps: caps::Caps,
}

impl Request {
    /// A spec error at `span`.
    fn error(&self, span: crate::spec::Span, msg: String) -> FrontendError {
        FrontendError::Spec(crate::diag::SpecError::new(&self.file, &self.source, crate::diag::Diagnostic::new(span, msg)))
    }
}

/// The pipeline: read the request, start resolving the base images, read
/// the dependency files, plan (or answer a subrequest), look for a deps
/// image, then lower and solve each platform and assemble the result.
async fn build(client: &mut Client, opts: &BuildOpts) -> Result<gw::Result, FrontendError> {
    let req = read_request(client, opts).await?;
    let resolving = opts.request_id.is_none();
    // Resolving the base images overlaps with reading the dependency files.
    let jobs = if resolving { resolve_images(client, opts, &req.spec, &req.platforms).await? } else { tokio::task::JoinSet::new() };
    let mut files = if resolving { read_dependency_files(client, opts, &req).await? } else { BTreeMap::new() };
    let plan = request::plan(&req.spec, &req.dockerignore, files.clone(), req.caps.merge_op());
    if let Some(id) = &opts.request_id {
        let input = subrequest::Input {
            spec: &req.spec,
            plan: &plan,
            source: &req.source,
            file: &req.file,
            dockerignore: &req.dockerignore,
            target: &req.stage_name,
        };
        return subrequest::answer(id, &input);
    }
    let stage_idx = request::stage(&plan, &req.spec, &req.stage_name, &req.target).map_err(|e| FrontendError::Other(e.to_string()))?;
    let mut patch = plan.stages[stage_idx].config.clone().unwrap_or_default();
    for (k, v) in &opts.labels {
        patch.labels.retain(|(lk, _)| lk != k);
        patch.labels.push((k.clone(), v.clone()));
    }
    let deps = deps_image(client, opts, &req, &plan, stage_idx, &mut files, &mut patch).await?;
    let resolved = join_resolved(jobs, &req).await?;
    // --sbom: strata's own SBOM, unless a scanner image is named (then
    // BuildKit runs it on the result, as for any frontend).
    let sbom = opts.sbom.as_deref().is_some_and(crate::sbom::wants_own_sbom) && req.caps.attestations();
    if sbom {
        // The lock's pinned archive hashes go in the SBOM.
        let lock: Vec<String> =
            req.spec.python.iter().flat_map(|p| p.lock.iter()).map(|l| l.value.clone()).filter(|l| !files.contains_key(l)).collect();
        files.extend(read_context_files(client, opts, &lock).await?.into_iter().filter_map(|(p, d)| Some((p, d?))));
    }
    // The image is dated only by SOURCE_DATE_EPOCH (else by its layers, in
    // the exporter); the SBOM document by the epoch or now.
    let epoch = opts.source_date_epoch.map(crate::timefmt::rfc3339);
    let created = epoch.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        crate::timefmt::rfc3339(now)
    });
    let mut results = Vec::new();
    let mut attestations = std::collections::HashMap::new();
    for (pi, platform) in req.platforms.iter().enumerate() {
        let one = PlatformBuild {
            req: &req,
            plan: &plan,
            stage_idx,
            patch: &patch,
            platform,
            resolved: &resolved[pi],
            deps: deps.stage.zip(deps.found[pi].as_ref()),
            files: &files,
            epoch: epoch.as_deref(),
            created: &created,
            sbom,
        };
        let (built, attested) = solve_platform(client, opts, &one).await?;
        if let Some(list) = attested {
            attestations.insert(built.id.clone(), list);
        }
        results.push(built);
    }
    Ok(assemble(results, attestations))
}

/// Ping (the caps and the worker's platform) and the spec, at once; the
/// spec loaded for the target; the platforms: `--platform` (a comma
/// list), else `[image] platforms`, else the worker's own.
async fn read_request(client: &mut Client, opts: &BuildOpts) -> Result<Request, FrontendError> {
    let mut pinger = client.clone();
    let (pong, read) = tokio::join!(pinger.ping(gw::PingRequest {}), read_inputs(client, opts));
    let pong = pong?.into_inner();
    let caps = caps::Caps::from_pong(&pong);
    caps.require_basics()?;
    let worker_platform = match pong.workers.first().and_then(|w| w.platforms.first()) {
        Some(p) => Platform::from(p),
        None => Platform { os: "linux".into(), architecture: "amd64".into(), variant: String::new() },
    };
    let (source, dockerignore) = read?;
    let file = opts.filename.clone();
    let target = opts.target.clone().unwrap_or_default();
    let (spec, stage_name) = request::load(&file, &source, &opts.build_args, &target).map_err(FrontendError::Spec)?;
    let platforms: Vec<Platform> = match &opts.platform {
        Some(list) => {
            list.split(',').filter(|p| !p.trim().is_empty()).map(parse_platform).collect::<Result<_, _>>().map_err(FrontendError::Other)?
        }
        None if !spec.image.platforms.is_empty() => {
            spec.image.platforms.iter().map(|p| parse_platform(&p.value)).collect::<Result<_, _>>().map_err(FrontendError::Other)?
        }
        None => vec![worker_platform],
    };
    Ok(Request { file, source, dockerignore, spec, stage_name, target, platforms, caps })
}

/// The dependency files the plan needs at plan time (layered installs read
/// their pins), and the files they include (`-r base.txt`), up to 8 deep.
async fn read_dependency_files(client: &mut Client, opts: &BuildOpts, req: &Request) -> Result<BTreeMap<String, Vec<u8>>, FrontendError> {
    let (file, source, spec) = (&req.file, &req.source, &req.spec);
    let wanted = request::plan_files(spec);
    let names: Vec<String> = wanted.iter().map(|w| w.value.clone()).collect();
    let read = read_context_files(client, opts, &names).await?;
    request::missing_file(file, source, &wanted, |p| read.iter().any(|(f, d)| f == p && d.is_some())).map_err(FrontendError::Spec)?;
    let mut files: BTreeMap<String, Vec<u8>> = read.into_iter().filter_map(|(p, d)| Some((p, d?))).collect();
    for _ in 0..8 {
        let more = request::included_files(file, source, spec, &files).map_err(FrontendError::Spec)?;
        if more.is_empty() {
            break;
        }
        let names: Vec<String> = more.iter().map(|(p, _)| p.clone()).collect();
        for ((path, span), (_, data)) in more.into_iter().zip(read_context_files(client, opts, &names).await?) {
            match data {
                Some(d) => {
                    files.insert(path, d);
                }
                None => return Err(FrontendError::Spec(request::included_missing(file, source, &path, span))),
            }
        }
    }
    Ok(files)
}

/// The deps stage, and per platform the deps image found for it (with its
/// config), if any.
struct DepsImage {
    stage: Option<usize>,
    found: Vec<Option<(BaseImage, Vec<u8>)>>,
}

/// Computes `strata.deps.digest` when the target is labelled with it or
/// `[image] deps-image` is set (reading every dependency file), and looks
/// for `REPO:deps-<digest>` in the registry for a runtime or variant target.
async fn deps_image(
    client: &mut Client,
    opts: &BuildOpts,
    req: &Request,
    plan: &crate::plan::Plan,
    stage_idx: usize,
    files: &mut BTreeMap<String, Vec<u8>>,
    patch: &mut crate::plan::ConfigPatch,
) -> Result<DepsImage, FrontendError> {
    let stage = plan.stage_named("deps").filter(|d| *d != stage_idx && plan.base_chain(stage_idx).contains(d));
    let mut out = DepsImage { stage, found: vec![None; req.platforms.len()] };
    let repo = req.spec.image.deps_image.as_ref().filter(|_| stage.is_some());
    let labelled = patch.labels.iter().any(|(k, _)| k == "strata.deps.digest");
    if !labelled && repo.is_none() {
        return Ok(out);
    }
    let missing: Vec<String> = plan.deps_files.iter().filter(|f| !files.contains_key(*f)).cloned().collect();
    // A missing file hashes as empty: the build then fails on it.
    files.extend(read_context_files(client, opts, &missing).await?.into_iter().map(|(p, d)| (p, d.unwrap_or_default())));
    let digest = request::deps_digest(&req.spec, plan, files);
    if let Some((_, v)) = patch.labels.iter_mut().find(|(k, _)| k == "strata.deps.digest") {
        *v = digest.clone();
    }
    let Some(repo) = repo else { return Ok(out) };
    let tag = crate::deps::tag(&repo.value, &digest);
    let normalized = reference::normalize_ref(&tag);
    for (pi, platform) in req.platforms.iter().enumerate() {
        let lookup = gw::ResolveImageConfigRequest {
            r#ref: normalized.clone(),
            platform: Some(pb::Platform::from(platform)),
            // the registry only: a local tag must not stand for it
            resolve_mode: "pull".into(),
            log_name: format!(
                "[strata] deps image {tag} ({}): used when found, else the deps are built",
                crate::platform::format(platform)
            ),
            ..Default::default()
        };
        match client.resolve_image_config(lookup).await {
            Ok(res) => {
                let res = res.into_inner();
                let label = image::config_label(&res.config, "strata.deps.digest");
                if label.as_deref() != Some(digest.as_str()) {
                    return Err(req.error(repo.span.clone(), format!(
                        "the deps image {tag} carries strata.deps.digest {}, not {digest}: it was built from other dependency files or settings; refusing it (push the deps target again, or delete the tag)",
                        label.unwrap_or_else(|| "none".into())
                    )));
                }
                let img = BaseImage { source: reference::pin(&normalized, &res.digest), env: image::config_env(&res.config), def: None };
                out.found[pi] = Some((img, res.config));
            }
            Err(e) if deps_image_missing(&e, &normalized) => {}
            Err(e) => return Err(req.error(repo.span.clone(), format!("`image.deps-image`: looking for {tag} failed: {}", e.message()))),
        }
    }
    Ok(out)
}

/// Waits for the base image jobs; a context's problem is told at the spec
/// line of the image it stands for.
async fn join_resolved(mut jobs: tokio::task::JoinSet<Job>, req: &Request) -> Result<Vec<BTreeMap<String, Resolved>>, FrontendError> {
    let mut resolved: Vec<BTreeMap<String, Resolved>> = vec![BTreeMap::new(); req.platforms.len()];
    while let Some(j) = jobs.join_next().await {
        let (pi, r, res) = j.map_err(|e| FrontendError::Other(format!("resolving base images: {e}")))?;
        let res = res.map_err(|e| match e {
            ResolveError::Engine(s) => FrontendError::Engine(s),
            ResolveError::Context(msg) => {
                let at = [Some(&req.spec.image.base), req.spec.image.builder.as_ref()].into_iter().flatten().find(|b| b.value == r);
                req.error(at.map(|b| b.span.clone()).unwrap_or(0..0), msg)
            }
        })?;
        resolved[pi].insert(r, res);
    }
    Ok(resolved)
}

/// Everything one platform's build needs.
struct PlatformBuild<'a> {
    req: &'a Request,
    plan: &'a crate::plan::Plan,
    stage_idx: usize,
    patch: &'a crate::plan::ConfigPatch,
    platform: &'a Platform,
    resolved: &'a BTreeMap<String, Resolved>,
    /// The deps stage and the deps image found for it.
    deps: Option<(usize, &'a (BaseImage, Vec<u8>))>,
    files: &'a BTreeMap<String, Vec<u8>>,
    /// SOURCE_DATE_EPOCH (RFC 3339): the image's time, if given.
    epoch: Option<&'a str>,
    /// The SBOM document's time: the epoch, else now.
    created: &'a str,
    sbom: bool,
}

/// One platform's result: its id (`linux/amd64`), ref, image config.
struct Built {
    id: String,
    result: gw::Ref,
    config: Vec<u8>,
    platform: Platform,
}

/// Lowers and solves the target for one platform, and its SBOM when asked.
async fn solve_platform(
    client: &mut Client,
    opts: &BuildOpts,
    b: &PlatformBuild<'_>,
) -> Result<(Built, Option<gw::Attestations>), FrontendError> {
    let images: BTreeMap<String, BaseImage> = b
        .resolved
        .iter()
        .map(|(r, res)| (r.clone(), BaseImage { source: res.source.clone(), env: image::config_env(&res.config), def: res.def.clone() }))
        .collect();
    let stage_images: BTreeMap<usize, BaseImage> = b.deps.map(|(d, (img, _))| (d, img.clone())).into_iter().collect();
    let inputs = lower::Inputs {
        platform: b.platform.clone(),
        images: &images,
        stage_images: &stage_images,
        named_contexts: &opts.named_contexts,
        resolve_mode: opts.image_resolve_mode.clone(),
        spec: Some((&b.req.file, &b.req.source)),
        session: opts.session.clone(),
        no_cache: opts.no_cache.clone(),
        merge: b.req.caps.merge_op(),
    };
    let lowered = lower::lower(b.plan, &inputs, b.stage_idx);
    let base_config = match b.deps {
        Some((_, (_, config))) => Some(config.as_slice()),
        None => b.resolved.get(b.plan.base_image(b.stage_idx)).map(|r| r.config.as_slice()).filter(|c| !c.is_empty()),
    };
    let config = image::runtime_config(base_config, b.patch, &lowered.history, b.platform, b.epoch);
    let result = solve(client, opts, lowered.definition).await?;
    let attested = if b.sbom { Some(sbom_attestations(client, opts, b, &inputs, &images, &result).await?) } else { None };
    let built = Built {
        id: crate::platform::format(b.platform),
        result,
        config: serde_json::to_vec(&config).unwrap_or_default(),
        platform: b.platform.clone(),
    };
    Ok((built, attested))
}

async fn solve(client: &mut Client, opts: &BuildOpts, definition: pb::Definition) -> Result<gw::Ref, FrontendError> {
    let res = client
        .solve(gw::SolveRequest {
            definition: Some(definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            cache_imports: opts.cache_imports.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    result_ref(res)
}

/// strata's SBOM of the result (and, with BUILDKIT_SBOM_SCAN_STAGE, of the
/// builder), read from the solved refs.
async fn sbom_attestations(
    client: &mut Client,
    opts: &BuildOpts,
    b: &PlatformBuild<'_>,
    inputs: &lower::Inputs<'_>,
    images: &BTreeMap<String, BaseImage>,
    result: &gw::Ref,
) -> Result<gw::Attestations, FrontendError> {
    let base_ref = b.plan.base_image(b.stage_idx);
    let pb_platform = pb::Platform::from(b.platform);
    let base = images.get(base_ref).zip(b.resolved.get(base_ref)).map(|(img, res)| {
        let def = img.def.clone().unwrap_or_else(|| {
            let name = format!("[strata] sbom: base {base_ref}");
            crate::llb::image_definition(&img.source, Some(pb_platform.clone()), opts.image_resolve_mode.as_deref(), &name)
        });
        (base_ref.to_string(), res.digest.clone(), def)
    });
    let mut scan = sbom::Scan {
        spec: &b.req.spec,
        files: b.files,
        name: format!("{} ({})", b.req.file, b.plan.stages[b.stage_idx].name),
        platform: b.platform.clone(),
        created: b.created.to_string(),
        base,
        builder: false,
    };
    let mut list = vec![sbom::attestation(client, &result.id, &scan, crate::sbom::FILE_NAME).await?];
    // BUILDKIT_SBOM_SCAN_STAGE: the builder too, as its own document.
    if let Some(builder) = b.plan.stage_named("builder").filter(|s| opts.sbom_scan_builder && *s != b.stage_idx) {
        let lowered = lower::lower(b.plan, inputs, builder);
        let r = solve(client, opts, lowered.definition).await?;
        scan.name = format!("{} (builder)", b.req.file);
        scan.builder = true;
        scan.base = None;
        list.push(sbom::attestation(client, &r.id, &scan, "sbom-builder.spdx.json").await?);
    }
    Ok(gw::Attestations { attestation: list })
}

/// As the Dockerfile frontend does: one platform → a single ref (the
/// classic image store cannot export a map); several → a map keyed by
/// platform. `refs.platforms` is set either way.
fn assemble(mut results: Vec<Built>, attestations: std::collections::HashMap<String, gw::Attestations>) -> gw::Result {
    let mut metadata = std::collections::HashMap::new();
    let listed: Vec<serde_json::Value> =
        results.iter().map(|b| serde_json::json!({"ID": b.id, "Platform": platform_json(&b.platform)})).collect();
    metadata.insert("refs.platforms".to_string(), serde_json::to_vec(&serde_json::json!({"Platforms": listed})).unwrap_or_default());
    if results.len() == 1 {
        let b = results.pop().expect("one result");
        metadata.insert("containerimage.config".to_string(), b.config);
        return gw::Result { result: Some(gw::result::Result::Ref(b.result)), metadata, attestations };
    }
    let mut refs = std::collections::HashMap::new();
    for b in results {
        metadata.insert(format!("containerimage.config/{}", b.id), b.config);
        refs.insert(b.id, b.result);
    }
    gw::Result { result: Some(gw::result::Result::Refs(gw::RefMap { refs })), metadata, attestations }
}

/// A base image, resolved: what the build's source is and its config.
#[derive(Clone)]
struct Resolved {
    /// `docker-image://` reference, pinned (or a context's identifier).
    source: String,
    digest: String,
    /// The image config JSON; empty when there is none (a local directory).
    config: Vec<u8>,
    /// A context's definition, spliced in instead of an image source.
    def: Option<pb::Definition>,
}

enum ResolveError {
    Engine(tonic::Status),
    /// A build context that cannot stand for the image.
    Context(String),
}

type Job = (usize, String, Result<Resolved, ResolveError>);

/// Resolves `[image] base` and `builder` for every platform, at once: from
/// the registry, or from a build context named after the image (see
/// `contexts`). Progress says which context an image came from.
async fn resolve_images(
    client: &mut Client,
    opts: &BuildOpts,
    spec: &spec::Spec,
    platforms: &[Platform],
) -> Result<tokio::task::JoinSet<Job>, FrontendError> {
    let mut refs: Vec<&String> = std::iter::once(&spec.image.base.value).chain(spec.image.builder.as_ref().map(|b| &b.value)).collect();
    refs.sort();
    refs.dedup();
    // The client's inputs (bake targets), read once if a context names one.
    let wants_inputs =
        platforms.iter().any(|p| refs.iter().any(|r| contexts::lookup(&opts.contexts, r, p).is_some_and(|(_, v)| v.starts_with("input:"))));
    let inputs = if wants_inputs { client.inputs(gw::InputsRequest {}).await?.into_inner().definitions } else { Default::default() };
    let mut jobs = tokio::task::JoinSet::new();
    for (pi, platform) in platforms.iter().enumerate() {
        for r in &refs {
            let (mut c, r) = (client.clone(), (*r).clone());
            let lookup = plan_lookup(opts, &inputs, &r, platform);
            jobs.spawn(async move { (pi, r, run_lookup(&mut c, lookup).await) });
        }
    }
    Ok(jobs)
}

/// How one image is found.
enum Lookup {
    /// A config from the registry (or an OCI layout); `context` names the
    /// build context it stands for, for the error.
    Resolve { req: Box<gw::ResolveImageConfigRequest>, source: String, def: Option<pb::Definition>, context: Option<String> },
    /// Known without asking the engine (a local directory, an input, an
    /// unusable context).
    Ready(Result<Resolved, ResolveError>),
}

fn plan_lookup(opts: &BuildOpts, inputs: &std::collections::HashMap<String, pb::Definition>, r: &str, platform: &Platform) -> Lookup {
    let pb_platform = pb::Platform::from(platform);
    let plat = crate::platform::format(platform);
    let registry = |image: &str, log_name: String| gw::ResolveImageConfigRequest {
        r#ref: reference::normalize_ref(image),
        platform: Some(pb_platform.clone()),
        resolve_mode: opts.image_resolve_mode.clone().unwrap_or_default(),
        log_name,
        ..Default::default()
    };
    let Some((key, value)) = contexts::lookup(&opts.contexts, r, platform) else {
        let req = registry(r, format!("[strata] resolve image config for {r} ({plat})"));
        return Lookup::Resolve { req: Box::new(req), source: reference::normalize_ref(r), def: None, context: None };
    };
    let from = match contexts::parse(&key, value) {
        Ok(f) => f,
        Err(msg) => return Lookup::Ready(Err(ResolveError::Context(msg))),
    };
    match from {
        contexts::From::Image(image) => {
            let req = registry(&image, format!("[strata] {r} from build context {key}: docker-image://{image} ({plat})"));
            let context = Some(format!("build context {key} (docker-image://{image}) for `{r}`"));
            Lookup::Resolve { req: Box::new(req), source: reference::normalize_ref(&image), def: None, context }
        }
        contexts::From::OciLayout { store, digest } => {
            let req = gw::ResolveImageConfigRequest {
                r#ref: contexts::oci_ref(&key, &digest),
                platform: Some(pb_platform.clone()),
                log_name: format!("[strata] {r} from build context {key}: OCI layout ({plat})"),
                resolver_type: 1,
                session_id: opts.session.clone().unwrap_or_default(),
                store_id: store.clone(),
                ..Default::default()
            };
            let def = contexts::oci_definition(&key, &store, &digest, opts.session.as_deref(), Some(pb_platform.clone()));
            let source = format!("oci-layout://{}", contexts::oci_ref(&key, &digest));
            Lookup::Resolve {
                req: Box::new(req),
                source,
                def: Some(def),
                context: Some(format!("build context {key} (an OCI layout) for `{r}`")),
            }
        }
        contexts::From::Local(local) => {
            let def = contexts::local_definition(&local, opts.session.as_deref(), &key);
            Lookup::Ready(Ok(Resolved { source: format!("local://{local}"), digest: String::new(), config: vec![], def: Some(def) }))
        }
        contexts::From::Input(name) => Lookup::Ready(match inputs.get(&name) {
            None => Err(ResolveError::Context(format!(
                "build context {key} names the input {name}, which the client did not send (a bake or compose target that was not built?)"
            ))),
            Some(def) => contexts::input_config(&opts.input_metadata, &name).map_err(ResolveError::Context).map(|config| Resolved {
                source: format!("input:{name}"),
                digest: String::new(),
                config: config.unwrap_or_default(),
                def: Some(def.clone()),
            }),
        }),
    }
}

async fn run_lookup(c: &mut Client, lookup: Lookup) -> Result<Resolved, ResolveError> {
    let (req, source, def, context) = match lookup {
        Lookup::Ready(r) => return r,
        Lookup::Resolve { req, source, def, context } => (req, source, def, context),
    };
    let res = c.resolve_image_config(*req).await.map_err(|e| match &context {
        Some(ctx) => ResolveError::Context(format!("{ctx}: {}", e.message())),
        None => ResolveError::Engine(e),
    })?;
    let res = res.into_inner();
    // a registry image is pinned to the digest whose config was read; an
    // OCI layout's identifier carries its digest already
    let source = if def.is_none() { reference::pin(&source, &res.digest) } else { source };
    Ok(Resolved { source, digest: res.digest, config: res.config, def })
}

/// A deps image tag that is not there (as opposed to a registry that
/// cannot be reached). BuildKit's not-found errors reach a frontend as
/// `Unknown` with the message ending in "REF: not found".
fn deps_image_missing(e: &tonic::Status, normalized: &str) -> bool {
    let m = e.message();
    e.code() == tonic::Code::NotFound
        || (m.ends_with(&format!("{normalized}: not found")) && !m.contains("no match for platform"))
        || m.contains("pull access denied")
}

fn platform_json(p: &Platform) -> serde_json::Value {
    let mut v = serde_json::json!({"architecture": p.architecture, "os": p.os});
    if !p.variant.is_empty() {
        v["variant"] = serde_json::json!(p.variant);
    }
    v
}

/// Reads files from the build context (the dependency files, for layering
/// and the deps digest); `None` for a file the context does not have.
async fn read_context_files(
    client: &mut Client,
    opts: &BuildOpts,
    paths: &[String],
) -> Result<Vec<(String, Option<Vec<u8>>)>, FrontendError> {
    if paths.is_empty() {
        return Ok(vec![]);
    }
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let r = solve_local(client, opts.session.as_deref(), "context", &refs, "[strata] read dependency files").await?;
    // One round trip for all of them: the reads run concurrently.
    let mut reads = tokio::task::JoinSet::new();
    for (i, p) in paths.iter().enumerate() {
        let (mut c, r, p) = (client.clone(), r.clone(), p.clone());
        reads.spawn(async move { (i, read_file(&mut c, &r, &p).await) });
    }
    let mut data: Vec<Option<Vec<u8>>> = vec![None; paths.len()];
    while let Some(j) = reads.join_next().await {
        let (i, d) = j.map_err(|e| FrontendError::Other(format!("reading the dependency files: {e}")))?;
        data[i] = d?;
    }
    Ok(paths.iter().cloned().zip(data).collect())
}

fn result_ref(res: gw::SolveResponse) -> Result<gw::Ref, FrontendError> {
    match res.result.and_then(|r| r.result) {
        Some(gw::result::Result::Ref(r)) => Ok(r),
        Some(gw::result::Result::RefDeprecated(id)) => Ok(gw::Ref { id, def: None }),
        _ if !res.r#ref.is_empty() => Ok(gw::Ref { id: res.r#ref, def: None }),
        _ => Err(FrontendError::Other("BuildKit returned no result for the build".into())),
    }
}

/// Reads the spec (from the `dockerfile` local) and the ignore file:
/// `<spec>.dockerignore` beside the spec wins over the context's
/// `.dockerignore`, as with Dockerfiles.
async fn read_inputs(client: &mut Client, opts: &BuildOpts) -> Result<(String, Vec<String>), FrontendError> {
    let filename = opts.filename.as_str();
    let own_ignore = format!("{filename}.dockerignore");
    let session = opts.session.as_deref();
    // Both reads are round trips to the client: run them concurrently
    // (start-up time is every build's cost).
    let mut c2 = client.clone();
    let spec_read = async {
        let spec_ref = solve_local(client, session, "dockerfile", &[filename, &own_ignore], "[strata] load spec").await?;
        let mut c3 = client.clone();
        let (data, own) = tokio::join!(read_file(client, &spec_ref, filename), read_file(&mut c3, &spec_ref, &own_ignore));
        let data = data?.ok_or_else(|| FrontendError::Other(format!("cannot read {filename} from the build's spec directory")))?;
        Ok::<_, FrontendError>((data, own?))
    };
    let ctx_read = async {
        let ctx_ref = solve_local(&mut c2, session, "context", &[".dockerignore"], "[strata] load .dockerignore").await?;
        read_file(&mut c2, &ctx_ref, ".dockerignore").await
    };
    let (spec_res, ctx_res) = tokio::join!(spec_read, ctx_read);
    let (data, own) = spec_res?;
    let source = String::from_utf8(data).map_err(|e| match spec::decode(filename, e.as_bytes()) {
        Err(se) => FrontendError::Spec(se),
        Ok(_) => FrontendError::Other(format!("{filename} is not valid UTF-8")),
    })?;
    let ctx = if own.is_some() { None } else { ctx_res? };
    Ok((source, request::dockerignore(own.as_deref(), ctx.as_deref())))
}

async fn solve_local(client: &mut Client, session: Option<&str>, name: &str, paths: &[&str], label: &str) -> Result<String, FrontendError> {
    let mut attrs = BTreeMap::new();
    if let Some(s) = session {
        attrs.insert("local.session".to_string(), s.to_string());
    }
    let list = serde_json::to_string(paths).unwrap_or_default();
    attrs.insert("local.includepattern".to_string(), list.clone());
    attrs.insert("local.followpaths".to_string(), list);
    attrs.insert("local.sharedkeyhint".to_string(), format!("{name}-strata-meta"));
    attrs.insert("local.differ".to_string(), "none".to_string());
    let op = pb::Op { op: Some(pb::op::Op::Source(pb::SourceOp { identifier: format!("local://{name}"), attrs })), ..Default::default() };
    let mut g = crate::llb::Graph::new();
    let out = g.add(op, label, None);
    let res = client
        .solve(gw::SolveRequest {
            definition: Some(g.definition(&out, None)),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(result_ref(res)?.id)
}

/// `Ok(None)` when the file does not exist.
async fn read_file(client: &mut Client, r#ref: &str, path: &str) -> Result<Option<Vec<u8>>, FrontendError> {
    match client.read_file(gw::ReadFileRequest { r#ref: r#ref.to_string(), file_path: path.to_string(), ..Default::default() }).await {
        Ok(r) => Ok(Some(r.into_inner().data)),
        Err(s) if s.code() == tonic::Code::NotFound || s.message().contains("no such file") => Ok(None),
        Err(s) => Err(s.into()),
    }
}

pub use crate::platform::parse as parse_platform;

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BuildOpts {
        BuildOpts::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn err(l: Lookup) -> String {
        match l {
            Lookup::Ready(Err(ResolveError::Context(m))) => m,
            _ => panic!("expected a context error"),
        }
    }

    /// The lookups the client's options lead to, before any engine call.
    #[test]
    fn lookups_from_build_contexts() {
        let amd64 = parse_platform("linux/amd64").unwrap();
        let none = std::collections::HashMap::new();
        // no context: the registry, under the normalised name
        match plan_lookup(&opts(&[]), &none, "python:3.11", &amd64) {
            Lookup::Resolve { req, context: None, def: None, .. } => assert_eq!(req.r#ref, "docker.io/library/python:3.11"),
            _ => panic!("expected a registry lookup"),
        }
        // an input the client did not send: a context error naming it
        let o = opts(&[("context:team/deps", "input:0-deps")]);
        let m = err(plan_lookup(&o, &none, "team/deps", &amd64));
        assert!(m.contains("build context team/deps names the input 0-deps, which the client did not send"), "{m}");
        // an input with its image config
        let mut inputs = std::collections::HashMap::new();
        inputs.insert("0-deps".to_string(), crate::llb::image_definition("docker.io/library/busybox:latest", None, None, "x"));
        let o = opts(&[("context:team/deps", "input:0-deps"), ("input-metadata:0-deps", r#"{"containerimage.config":"e30="}"#)]);
        match plan_lookup(&o, &inputs, "team/deps:latest", &amd64) {
            Lookup::Ready(Ok(r)) => assert_eq!((r.config.as_slice(), r.def.is_some()), (b"{}".as_slice(), true)),
            _ => panic!("expected the input"),
        }
        // the platform's own context wins
        let o = opts(&[("context:team/deps", "docker-image://a:1"), ("context:team/deps::linux/amd64", "docker-image://b:2")]);
        match plan_lookup(&o, &none, "team/deps", &amd64) {
            Lookup::Resolve { req, context: Some(c), .. } => {
                assert_eq!(req.r#ref, "docker.io/library/b:2");
                assert!(c.contains("team/deps::linux/amd64"), "{c}");
            }
            _ => panic!("expected the platform's context"),
        }
        // not an image
        let m = err(plan_lookup(&opts(&[("context:team/deps", "https://x/y.tar")]), &none, "team/deps", &amd64));
        assert!(m.contains("cannot use as an image"), "{m}");
    }
}
