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

async fn build(client: &mut Client, opts: &BuildOpts) -> Result<gw::Result, FrontendError> {
    // Ping and reading the spec are independent round trips.
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
    let resolving = opts.request_id.is_none();
    // Platforms: --platform (comma list), else [image] platforms, else the
    // worker's own.
    let platforms: Vec<Platform> = match &opts.platform {
        Some(list) => {
            list.split(',').filter(|p| !p.trim().is_empty()).map(parse_platform).collect::<Result<_, _>>().map_err(FrontendError::Other)?
        }
        None if !spec.image.platforms.is_empty() => {
            spec.image.platforms.iter().map(|p| parse_platform(&p.value)).collect::<Result<_, _>>().map_err(FrontendError::Other)?
        }
        None => vec![worker_platform],
    };
    // Start resolving the base images now: it overlaps with reading the
    // dependency files below.
    let mut jobs = if resolving { resolve_images(client, opts, &spec, &platforms).await? } else { tokio::task::JoinSet::new() };
    // Layered Python installs need the requirement files' pins at plan time
    // (one more round trip, only for specs that can use them).
    let wanted = if resolving { request::plan_files(&spec) } else { vec![] };
    let names: Vec<String> = wanted.iter().map(|w| w.value.clone()).collect();
    let read = read_context_files(client, opts, &names).await?;
    request::missing_file(&file, &source, &wanted, |p| read.iter().any(|(f, d)| f == p && d.is_some())).map_err(FrontendError::Spec)?;
    let mut files: BTreeMap<String, Vec<u8>> = read.into_iter().filter_map(|(p, d)| Some((p, d?))).collect();
    // Requirement files include others (`-r base.txt`): read those too.
    for _ in 0..8 {
        let more = request::included_files(&file, &source, &spec, &files).map_err(FrontendError::Spec)?;
        if more.is_empty() || !resolving {
            break;
        }
        let names: Vec<String> = more.iter().map(|(p, _)| p.clone()).collect();
        for ((path, span), (_, data)) in more.into_iter().zip(read_context_files(client, opts, &names).await?) {
            match data {
                Some(d) => {
                    files.insert(path, d);
                }
                None => return Err(FrontendError::Spec(request::included_missing(&file, &source, &path, span))),
            }
        }
    }
    let plan = request::plan(&spec, &dockerignore, files.clone(), caps.merge_op());
    if let Some(req) = &opts.request_id {
        let input =
            subrequest::Input { spec: &spec, plan: &plan, source: &source, file: &file, dockerignore: &dockerignore, target: &stage_name };
        return subrequest::answer(req, &input);
    }
    let stage_idx = request::stage(&plan, &spec, &stage_name, &target).map_err(|e| FrontendError::Other(e.to_string()))?;
    let mut patch = plan.stages[stage_idx].config.clone().unwrap_or_default();
    for (k, v) in &opts.labels {
        patch.labels.retain(|(lk, _)| lk != k);
        patch.labels.push((k.clone(), v.clone()));
    }
    // `[image] deps-image`: the deps stage may come from an image kept
    // under the deps digest (runtime and variant targets).
    let deps_stage = plan.stage_named("deps").filter(|d| *d != stage_idx && plan.base_chain(stage_idx).contains(d));
    let deps_repo = spec.image.deps_image.as_ref().filter(|_| deps_stage.is_some() && resolving);
    let labelled = patch.labels.iter().any(|(k, _)| k == "strata.deps.digest");
    let deps_digest = if labelled || deps_repo.is_some() {
        let missing: Vec<String> = plan.deps_files.iter().filter(|f| !files.contains_key(*f)).cloned().collect();
        // A missing file hashes as empty: the build then fails on it.
        files.extend(read_context_files(client, opts, &missing).await?.into_iter().map(|(p, d)| (p, d.unwrap_or_default())));
        Some(request::deps_digest(&spec, &plan, &files))
    } else {
        None
    };
    if let (Some((_, v)), Some(d)) = (patch.labels.iter_mut().find(|(k, _)| k == "strata.deps.digest"), &deps_digest) {
        *v = d.clone();
    }
    // per platform: the deps image found, and its config
    let mut deps_images: Vec<Option<(BaseImage, Vec<u8>)>> = vec![None; platforms.len()];
    if let (Some(repo), Some(digest)) = (deps_repo, &deps_digest) {
        let tag = crate::deps::tag(&repo.value, digest);
        let located = |msg: String| {
            FrontendError::Spec(crate::diag::SpecError::new(&file, &source, crate::diag::Diagnostic::new(repo.span.clone(), msg)))
        };
        for (pi, platform) in platforms.iter().enumerate() {
            let normalized = reference::normalize_ref(&tag);
            let req = gw::ResolveImageConfigRequest {
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
            match client.resolve_image_config(req).await {
                Ok(res) => {
                    let res = res.into_inner();
                    let label = image::config_label(&res.config, "strata.deps.digest");
                    if label.as_deref() != Some(digest.as_str()) {
                        return Err(located(format!(
                            "the deps image {tag} carries strata.deps.digest {}, not {digest}: it was built from other dependency files or settings; refusing it (push the deps target again, or delete the tag)",
                            label.unwrap_or_else(|| "none".into())
                        )));
                    }
                    let img =
                        BaseImage { source: reference::pin(&normalized, &res.digest), env: image::config_env(&res.config), def: None };
                    deps_images[pi] = Some((img, res.config));
                }
                Err(e) if deps_image_missing(&e, &normalized) => {}
                Err(e) => return Err(located(format!("`image.deps-image`: looking for {tag} failed: {}", e.message()))),
            }
        }
    }

    let created = opts.source_date_epoch.map(crate::timefmt::rfc3339).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        crate::timefmt::rfc3339(now)
    });

    let mut resolved: Vec<BTreeMap<String, Resolved>> = vec![BTreeMap::new(); platforms.len()];
    while let Some(j) = jobs.join_next().await {
        let (pi, r, res) = j.map_err(|e| FrontendError::Other(format!("resolving base images: {e}")))?;
        let res = res.map_err(|e| match e {
            ResolveError::Engine(s) => FrontendError::Engine(s),
            // a context's problem, told at the spec line of the image
            ResolveError::Context(msg) => {
                let at = [Some(&spec.image.base), spec.image.builder.as_ref()].into_iter().flatten().find(|b| b.value == r);
                let span = at.map(|b| b.span.clone()).unwrap_or(0..0);
                FrontendError::Spec(crate::diag::SpecError::new(&file, &source, crate::diag::Diagnostic::new(span, msg)))
            }
        })?;
        resolved[pi].insert(r, res);
    }

    // --sbom: strata's own SBOM, unless a scanner image is named (then
    // BuildKit runs it on the result, as for any frontend).
    let sbom = opts.sbom.as_deref().is_some_and(crate::sbom::wants_own_sbom) && caps.attestations();
    if sbom {
        // The lock's pinned archive hashes go in the SBOM.
        let lock: Vec<String> =
            spec.python.iter().flat_map(|p| p.lock.iter()).map(|l| l.value.clone()).filter(|l| !files.contains_key(l)).collect();
        files.extend(read_context_files(client, opts, &lock).await?.into_iter().filter_map(|(p, d)| Some((p, d?))));
    }
    let mut attestations = std::collections::HashMap::new();

    let mut results = Vec::new();
    for (pi, platform) in platforms.iter().enumerate() {
        let images: BTreeMap<String, BaseImage> = resolved[pi]
            .iter()
            .map(|(r, res)| {
                (r.clone(), BaseImage { source: res.source.clone(), env: image::config_env(&res.config), def: res.def.clone() })
            })
            .collect();
        let configs: BTreeMap<String, Vec<u8>> =
            resolved[pi].iter().filter(|(_, res)| !res.config.is_empty()).map(|(r, res)| (r.clone(), res.config.clone())).collect();
        let stage_images: BTreeMap<usize, BaseImage> =
            deps_stage.zip(deps_images[pi].as_ref()).map(|(d, (img, _))| (d, img.clone())).into_iter().collect();
        let inputs = lower::Inputs {
            platform: platform.clone(),
            images: &images,
            stage_images: &stage_images,
            named_contexts: &opts.named_contexts,
            resolve_mode: opts.image_resolve_mode.clone(),
            spec: Some((&file, &source)),
            session: opts.session.clone(),
            no_cache: opts.no_cache.clone(),
            merge: caps.merge_op(),
        };
        let lowered = lower::lower(&plan, &inputs, stage_idx);
        let base_config = match &deps_images[pi] {
            Some((_, config)) => Some(config.as_slice()),
            None => configs.get(plan.base_image(stage_idx)).map(Vec::as_slice),
        };
        let config = image::runtime_config(base_config, &patch, &lowered.history, platform, Some(&created));
        let res = client
            .solve(gw::SolveRequest {
                definition: Some(lowered.definition),
                allow_result_return: true,
                allow_result_array_ref: true,
                cache_imports: opts.cache_imports.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let result = result_ref(res)?;
        let id = crate::platform::format(platform);
        if sbom {
            let base_ref = plan.base_image(stage_idx);
            let pb_platform = pb::Platform::from(platform);
            let base = images.get(base_ref).zip(resolved[pi].get(base_ref)).map(|(img, res)| {
                let def = img.def.clone().unwrap_or_else(|| {
                    crate::llb::image_definition(
                        &img.source,
                        Some(pb_platform.clone()),
                        opts.image_resolve_mode.as_deref(),
                        &format!("[strata] sbom: base {base_ref}"),
                    )
                });
                (base_ref.to_string(), res.digest.clone(), def)
            });
            let mut scan = sbom::Scan {
                spec: &spec,
                files: &files,
                name: format!("{file} ({})", plan.stages[stage_idx].name),
                platform: platform.clone(),
                created: created.clone(),
                base,
                builder: false,
            };
            let mut list = vec![sbom::attestation(client, &result.id, &scan, crate::sbom::FILE_NAME).await?];
            // BUILDKIT_SBOM_SCAN_STAGE: the builder too, as its own document.
            if let Some(b) = plan.stage_named("builder").filter(|b| opts.sbom_scan_builder && *b != stage_idx) {
                let lowered = lower::lower(&plan, &inputs, b);
                let res = client
                    .solve(gw::SolveRequest {
                        definition: Some(lowered.definition),
                        allow_result_return: true,
                        allow_result_array_ref: true,
                        cache_imports: opts.cache_imports.clone(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                scan.name = format!("{file} (builder)");
                scan.builder = true;
                scan.base = None;
                list.push(sbom::attestation(client, &result_ref(res)?.id, &scan, "sbom-builder.spdx.json").await?);
            }
            attestations.insert(id.clone(), gw::Attestations { attestation: list });
        }
        results.push((id, result, serde_json::to_vec(&config).unwrap_or_default(), platform.clone()));
    }

    // As the Dockerfile frontend does: one platform → a single ref (the
    // classic image store cannot export a map); several → a map keyed by
    // platform. `refs.platforms` is set either way.
    let mut metadata = std::collections::HashMap::new();
    let listed: Vec<serde_json::Value> =
        results.iter().map(|(id, _, _, p)| serde_json::json!({"ID": id, "Platform": platform_json(p)})).collect();
    metadata.insert("refs.platforms".to_string(), serde_json::to_vec(&serde_json::json!({"Platforms": listed})).unwrap_or_default());
    if results.len() == 1 {
        let (_, r, config, _) = results.pop().expect("one result");
        metadata.insert("containerimage.config".to_string(), config);
        return Ok(gw::Result { result: Some(gw::result::Result::Ref(r)), metadata, attestations });
    }
    let mut refs = std::collections::HashMap::new();
    for (id, r, config, _) in results {
        metadata.insert(format!("containerimage.config/{id}"), config);
        refs.insert(id, r);
    }
    Ok(gw::Result { result: Some(gw::result::Result::Refs(gw::RefMap { refs })), metadata, attestations })
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
        let pb_platform = pb::Platform::from(platform);
        for r in &refs {
            let mut c = client.clone();
            let r = (*r).clone();
            let plat = crate::platform::format(platform);
            let registry = |image: &str, log_name: String| gw::ResolveImageConfigRequest {
                r#ref: reference::normalize_ref(image),
                platform: Some(pb_platform.clone()),
                resolve_mode: opts.image_resolve_mode.clone().unwrap_or_default(),
                log_name,
                ..Default::default()
            };
            let Some((key, value)) = contexts::lookup(&opts.contexts, &r, platform) else {
                let req = registry(&r, format!("[strata] resolve image config for {r} ({plat})"));
                jobs.spawn(async move {
                    let res = c.resolve_image_config(req).await.map(|x| x.into_inner()).map_err(ResolveError::Engine);
                    let res = res.map(|x| Resolved {
                        source: reference::pin(&reference::normalize_ref(&r), &x.digest),
                        digest: x.digest,
                        config: x.config,
                        def: None,
                    });
                    (pi, r, res)
                });
                continue;
            };
            let from = match contexts::parse(&key, value) {
                Ok(f) => f,
                Err(msg) => {
                    jobs.spawn(async move { (pi, r, Err(ResolveError::Context(msg))) });
                    continue;
                }
            };
            match from {
                contexts::From::Image(image) => {
                    let req = registry(&image, format!("[strata] {r} from build context {key}: docker-image://{image} ({plat})"));
                    jobs.spawn(async move {
                        let res = c.resolve_image_config(req).await.map(|x| x.into_inner()).map_err(|e| {
                            ResolveError::Context(format!("build context {key} (docker-image://{image}) for `{r}`: {}", e.message()))
                        });
                        let res = res.map(|x| Resolved {
                            source: reference::pin(&reference::normalize_ref(&image), &x.digest),
                            digest: x.digest,
                            config: x.config,
                            def: None,
                        });
                        (pi, r, res)
                    });
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
                    jobs.spawn(async move {
                        let res =
                            c.resolve_image_config(req).await.map(|x| x.into_inner()).map_err(|e| {
                                ResolveError::Context(format!("build context {key} (an OCI layout) for `{r}`: {}", e.message()))
                            });
                        let res = res.map(|x| Resolved {
                            source: format!("oci-layout://{}", contexts::oci_ref(&key, &digest)),
                            digest,
                            config: x.config,
                            def: Some(def),
                        });
                        (pi, r, res)
                    });
                }
                contexts::From::Local(local) => {
                    let def = contexts::local_definition(&local, opts.session.as_deref(), &key);
                    let res = Resolved { source: format!("local://{local}"), digest: String::new(), config: vec![], def: Some(def) };
                    jobs.spawn(async move { (pi, r, Ok(res)) });
                }
                contexts::From::Input(name) => {
                    let res = match inputs.get(&name) {
                        None => Err(ResolveError::Context(format!(
                            "build context {key} names the input {name}, which the client did not send (a bake or compose target that was not built?)"
                        ))),
                        Some(def) => contexts::input_config(&opts.input_metadata, &name).map_err(ResolveError::Context).map(|config| Resolved {
                            source: format!("input:{name}"),
                            digest: String::new(),
                            config: config.unwrap_or_default(),
                            def: Some(def.clone()),
                        }),
                    };
                    jobs.spawn(async move { (pi, r, res) });
                }
            }
        }
    }
    Ok(jobs)
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
    let mut out = Vec::new();
    for p in paths {
        out.push((p.clone(), read_file(client, &r, p).await?));
    }
    Ok(out)
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
        let data = read_file(client, &spec_ref, filename)
            .await?
            .ok_or_else(|| FrontendError::Other(format!("cannot read {filename} from the build's spec directory")))?;
        let own = read_file(client, &spec_ref, &own_ignore).await?;
        Ok::<_, FrontendError>((data, own))
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
