//! Cache mounts: the presets (`apt`, `pip`, `uv`, `npm`, ...) and
//! `[caches.NAME]` tables, with ids namespaced so unrelated caches never
//! share one.

use crate::spec::{Sp, Spec};

use super::{Mount, Owner, Sharing};

/// Identifies a cache namespace so unrelated caches never share an id. The
/// apt caches include the base image: lists of different distributions must
/// not mix.
pub(super) fn cache_id(kind: &str, scope: &str) -> String {
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
        (u, g) => Some(Owner { uid: u.unwrap_or(0), gid: g.or(u).unwrap_or(0) }),
    };
    let id = c.id.clone().unwrap_or_else(|| cache_id(name, ""));
    let mut mounts = vec![Mount::Cache { target, id, sharing: c.sharing, owner, mode: c.mode }];
    mounts.extend(preset.0.into_iter().skip(1));
    (mounts, preset.1)
}

pub(super) fn caches_for(names: &[Sp<String>], spec: &Spec, image: &str) -> (Vec<Mount>, Vec<(String, String)>) {
    let mut mounts = Vec::new();
    let mut env = Vec::new();
    for n in names {
        let (m, e) = cache_mounts(&n.value, spec, image);
        mounts.extend(m);
        env.extend(e);
    }
    (mounts, env)
}

pub(super) fn sanitize_id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}
