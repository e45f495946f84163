//! The BuildKit gateway frontend: what runs when a build says
//! `# syntax=strata:dev`.
//!
//! Flow: connect over stdio → read opts → read the spec from the
//! `dockerfile` local → parse (errors go back with the spec range so buildx
//! shows the lines) → resolve base image configs → plan → lower → solve →
//! return the ref and the image config. Every failure ends in a Return with
//! an error status: a frontend that just exits shows users only
//! `exit code: 1`.

mod errors;
pub mod opts;
mod transport;

use std::collections::BTreeMap;

use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;
use bollard_buildkit_proto::pb;
use gw::llb_bridge_client::LlbBridgeClient;
use tonic::transport::Channel;

pub use errors::FrontendError;
use opts::BuildOpts;

use crate::llb::lower::{self, BaseImage};
use crate::{image, plan, spec};

type Client = LlbBridgeClient<Channel>;

/// Entry point of the frontend process. Returns the process exit code.
pub fn main() -> i32 {
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
            Ok(_) => 0,
            Err(e) => {
                eprintln!("strata: return failed: {e}");
                1
            }
        }
    })
}

async fn build(client: &mut Client, opts: &BuildOpts) -> Result<gw::Result, FrontendError> {
    let pong = client.ping(gw::PingRequest {}).await?.into_inner();
    let platform = match &opts.platform {
        Some(p) => parse_platform(p).map_err(FrontendError::Other)?,
        None => pong
            .workers
            .first()
            .and_then(|w| w.platforms.first().cloned())
            .unwrap_or_else(|| pb::Platform { os: "linux".into(), architecture: "amd64".into(), ..Default::default() }),
    };

    let (source, dockerignore) = read_inputs(client, opts).await?;
    let spec_file = opts.filename.clone();
    let spec = spec::load(&source, &opts.build_args).map_err(|d| FrontendError::Spec(crate::diag::SpecError::new(&spec_file, &source, d)))?;
    let mut plan = plan::build(&spec, &dockerignore);
    plan.target = select_target(&plan, opts.target.as_deref())?;
    for (k, v) in &opts.labels {
        plan.config.labels.retain(|(lk, _)| lk != k);
        plan.config.labels.push((k.clone(), v.clone()));
    }

    // Resolve every base image: its digest pins the source op and its
    // config provides env (for RUN) and the result's inherited config.
    let mut images = BTreeMap::new();
    let mut configs = BTreeMap::new();
    for stage in &plan.stages {
        if let plan::StageBase::Image(r) = &stage.from {
            if images.contains_key(r) {
                continue;
            }
            let res = client
                .resolve_image_config(gw::ResolveImageConfigRequest {
                    r#ref: image::normalize_ref(r),
                    platform: Some(platform.clone()),
                    resolve_mode: opts.image_resolve_mode.clone().unwrap_or_default(),
                    log_name: format!("[strata] resolve image config for {r}"),
                    ..Default::default()
                })
                .await?
                .into_inner();
            images.insert(
                r.clone(),
                BaseImage { source: image::pin(&image::normalize_ref(r), &res.digest), env: image::config_env(&res.config) },
            );
            configs.insert(r.clone(), res.config);
        }
    }

    let inputs = lower::Inputs {
        platform: platform.clone(),
        images: &images,
        named_contexts: &opts.named_contexts,
        resolve_mode: opts.image_resolve_mode.clone(),
        spec: Some((&spec_file, &source)),
        session: opts.session.clone(),
    };
    let lowered = lower::lower(&plan, &inputs);
    let base_config = base_of(&plan, plan.target).and_then(|r| configs.get(r)).map(Vec::as_slice);
    let config = image::runtime_config(base_config, &plan.config, &lowered.history, &platform.os, &platform.architecture);

    let res = client
        .solve(gw::SolveRequest {
            definition: Some(lowered.definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let r#ref = result_ref(res)?;
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("containerimage.config".to_string(), serde_json::to_vec(&config).unwrap_or_default());
    Ok(gw::Result { result: Some(gw::result::Result::Ref(r#ref)), metadata, ..Default::default() })
}

/// The image a stage ultimately starts from (following stage bases).
fn base_of(plan: &plan::Plan, mut idx: usize) -> Option<&String> {
    loop {
        match &plan.stages.get(idx)?.from {
            plan::StageBase::Image(r) => return Some(r),
            plan::StageBase::Stage(i) => idx = *i,
        }
    }
}

fn select_target(plan: &plan::Plan, target: Option<&str>) -> Result<usize, FrontendError> {
    match target {
        None | Some("") | Some("runtime") => Ok(plan.target),
        Some(t) => {
            if let Some(i) = plan.stages.iter().position(|s| s.name == t && t == "builder") {
                return Ok(i);
            }
            let mut known = vec!["runtime"];
            if plan.stages.iter().any(|s| s.name == "builder") {
                known.push("builder");
            }
            Err(FrontendError::Other(format!("unknown target \"{t}\"; this spec has: {}", known.join(", "))))
        }
    }
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
    let spec_ref = solve_local(client, session, "dockerfile", &[filename, &own_ignore], "[strata] load spec").await?;
    let data = read_file(client, &spec_ref, filename)
        .await?
        .ok_or_else(|| FrontendError::Other(format!("cannot read {filename} from the build's spec directory")))?;
    let source = String::from_utf8(data).map_err(|e| FrontendError::Other(format!("{filename} is not valid UTF-8 (byte {})", e.utf8_error().valid_up_to())))?;
    let ignore = match read_file(client, &spec_ref, &own_ignore).await? {
        Some(d) => Some(d),
        None => {
            let ctx_ref = solve_local(client, session, "context", &[".dockerignore"], "[strata] load .dockerignore").await?;
            read_file(client, &ctx_ref, ".dockerignore").await?
        }
    };
    let patterns = ignore.map(|d| crate::context::parse_dockerignore(&String::from_utf8_lossy(&d))).unwrap_or_default();
    Ok((source, patterns))
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
        .solve(gw::SolveRequest { definition: Some(g.definition(&out, None)), allow_result_return: true, allow_result_array_ref: true, ..Default::default() })
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

/// `linux/amd64`, `linux/arm/v7` → a pb platform.
pub fn parse_platform(s: &str) -> Result<pb::Platform, String> {
    let parts: Vec<&str> = s.trim().split('/').collect();
    let ok = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
        return Err(format!("invalid platform \"{s}\": expected OS/ARCH[/VARIANT], e.g. linux/amd64"));
    }
    Ok(pb::Platform {
        os: parts[0].to_string(),
        architecture: parts[1].to_string(),
        variant: parts.get(2).map(|v| v.to_string()).unwrap_or_default(),
        ..Default::default()
    })
}
