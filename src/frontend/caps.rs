//! BuildKit capabilities, from Ping. We decide by caps, never by version
//! strings (Debian's build reports `v0.0.0+unknown-moby`).

use std::collections::BTreeSet;

use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;

use super::FrontendError;

/// LLB features every strata build uses, with the BuildKit release that
/// brought them (for the error message).
const REQUIRED_LLB: &[(&str, &str, &str)] = &[
    ("file.base", "file operations (copy, mkdir)", "v0.5"),
    ("exec.mount.cache", "cache mounts", "v0.5"),
    ("exec.mount.cache.sharing", "cache mount sharing modes", "v0.5"),
    ("exec.mount.selector", "mount selectors", "v0.5"),
    ("source.local.includepatterns", "sending only declared files of the context", "v0.5"),
];

pub struct Caps {
    llb: BTreeSet<String>,
    api: BTreeSet<String>,
}

impl Caps {
    pub fn from_pong(p: &gw::PongResponse) -> Self {
        let on = |caps: &[bollard_buildkit_proto::moby::buildkit::v1::apicaps::ApiCap]| {
            caps.iter().filter(|c| c.enabled).map(|c| c.id.clone()).collect()
        };
        Caps { llb: on(&p.llb_caps), api: on(&p.frontend_api_caps) }
    }

    /// The gateway takes attestations in a result (BuildKit v0.11+).
    pub fn attestations(&self) -> bool {
        self.api.contains("reference.attestations")
    }

    /// MergeOp: independent layers (only with the containerd image store;
    /// the classic store lists the cap as disabled).
    pub fn merge_op(&self) -> bool {
        self.llb.contains("mergeop") && self.llb.contains("diffop")
    }

    pub fn require_basics(&self) -> Result<(), FrontendError> {
        let missing: Vec<String> = REQUIRED_LLB
            .iter()
            .filter(|(id, _, _)| !self.llb.contains(*id))
            .map(|(id, what, v)| format!("{what} (LLB cap `{id}`, BuildKit {v}+)"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(FrontendError::Other(format!("this BuildKit lacks features strata needs: {}; upgrade Docker/BuildKit", missing.join("; "))))
        }
    }
}
