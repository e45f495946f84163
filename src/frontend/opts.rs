//! Build options as BuildKit passes them to a gateway frontend
//! (`BUILDKIT_FRONTEND_OPT_<i>=<key>=<value>`, in random order).

use std::collections::{BTreeMap, BTreeSet};

use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;

use crate::plan::NoCache;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOpts {
    /// Spec file name inside the `dockerfile` local.
    pub filename: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `--build-context NAME=…` names whose value is a local directory.
    pub named_contexts: BTreeSet<String>,
    /// Every `context:NAME[::PLATFORM]` opt and its value
    /// (`docker-image://REF`, `oci-layout://…`, `local:NAME`, `input:NAME`):
    /// images strata uses may come from here.
    pub contexts: BTreeMap<String, String>,
    /// `input-metadata:NAME`: JSON of base64 values, the image config of an
    /// `input:` under `containerimage.config` (bake's `target:` links).
    pub input_metadata: BTreeMap<String, String>,
    pub image_resolve_mode: Option<String>,
    /// `BUILDKIT_SESSION_ID`: the client session serving the locals.
    pub session: Option<String>,
    /// `--call NAME` arrives as `requestid=frontend.NAME`.
    pub request_id: Option<String>,
    pub no_cache: NoCache,
    pub cache_imports: Vec<gw::CacheOptionsEntry>,
    /// `--build-arg SOURCE_DATE_EPOCH=…`: the image's timestamps.
    pub source_date_epoch: Option<i64>,
    /// `attest:sbom` (`--sbom`, `--attest type=sbom,…`) or the build arg
    /// `BUILDKIT_ATTEST_SBOM`: its CSV value when an SBOM is asked for.
    pub sbom: Option<String>,
    /// `BUILDKIT_SBOM_SCAN_STAGE`: `true` or a list naming `builder` adds
    /// the builder stage's SBOM.
    pub sbom_scan_builder: bool,
}

impl BuildOpts {
    pub fn from_env() -> Self {
        let mut o = Self::from_pairs(std::env::vars().filter(|(k, _)| k.starts_with("BUILDKIT_FRONTEND_OPT_")).filter_map(|(_, v)| {
            let (k, v) = v.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        }));
        o.session = std::env::var("BUILDKIT_SESSION_ID").ok().filter(|s| !s.is_empty());
        o
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut o = BuildOpts { filename: "strata.toml".into(), ..Default::default() };
        // Sort so the outcome never depends on the order BuildKit used.
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        pairs.sort();
        for (k, v) in pairs {
            if let Some(name) = k.strip_prefix("build-arg:") {
                o.build_args.insert(name.to_string(), v);
            } else if let Some(name) = k.strip_prefix("label:") {
                o.labels.insert(name.to_string(), v);
            } else if let Some(name) = k.strip_prefix("context:") {
                if v.starts_with("local:") {
                    o.named_contexts.insert(name.to_string());
                }
                o.contexts.insert(name.to_string(), v);
            } else if let Some(name) = k.strip_prefix("input-metadata:") {
                o.input_metadata.insert(name.to_string(), v);
            } else {
                match k.as_str() {
                    "filename" if !v.is_empty() => o.filename = v,
                    "target" if !v.is_empty() => o.target = Some(v),
                    "platform" if !v.is_empty() => o.platform = Some(v),
                    "image-resolve-mode" if !v.is_empty() => o.image_resolve_mode = Some(v),
                    "requestid" if !v.is_empty() => o.request_id = Some(v),
                    "no-cache" => {
                        o.no_cache = if v.is_empty() {
                            NoCache::All
                        } else {
                            NoCache::Steps(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                        }
                    }
                    "cache-imports" => o.cache_imports = parse_cache_imports(&v),
                    "attest:sbom" => o.sbom = Some(v),
                    _ => {}
                }
            }
        }
        o.source_date_epoch = o.build_args.get("SOURCE_DATE_EPOCH").and_then(|v| v.trim().parse().ok());
        if o.sbom.is_none() {
            o.sbom = o.build_args.get("BUILDKIT_ATTEST_SBOM").cloned();
        }
        o.sbom_scan_builder = o.build_args.get("BUILDKIT_SBOM_SCAN_STAGE").is_some_and(|v| match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => true,
            other => other.split(',').any(|s| s.trim() == "builder"),
        });
        o
    }
}

/// `cache-imports` is a JSON array of `{"Type": …, "Attrs": {…}}`, passed
/// through to the solve so `--cache-from` works.
fn parse_cache_imports(v: &str) -> Vec<gw::CacheOptionsEntry> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "Type", alias = "type")]
        kind: String,
        #[serde(rename = "Attrs", alias = "attrs", default)]
        attrs: std::collections::HashMap<String, String>,
    }
    serde_json::from_str::<Vec<Entry>>(v)
        .map(|es| es.into_iter().map(|e| gw::CacheOptionsEntry { r#type: e.kind, attrs: e.attrs }).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildx_opts() {
        let o = BuildOpts::from_pairs(
            [
                ("filename", "strata.toml"),
                ("build-arg:BASE", "a=b"),
                ("context:wheels", "local:wheels"),
                ("context:img", "docker-image://x"),
                ("image-resolve-mode", "local"),
                ("target", ""),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string())),
        );
        assert_eq!(o.build_args["BASE"], "a=b");
        assert!(o.named_contexts.contains("wheels") && !o.named_contexts.contains("img"));
        assert_eq!(o.image_resolve_mode.as_deref(), Some("local"));
        assert_eq!(o.target, None);
        assert_eq!(o.sbom, None);
    }

    #[test]
    fn sbom_requests() {
        let o = BuildOpts::from_pairs([("attest:sbom".to_string(), "type=sbom".to_string())]);
        assert_eq!(o.sbom.as_deref(), Some("type=sbom"));
        let o = BuildOpts::from_pairs(
            [("build-arg:BUILDKIT_ATTEST_SBOM", ""), ("build-arg:BUILDKIT_SBOM_SCAN_STAGE", "tests,builder")]
                .map(|(a, b)| (a.to_string(), b.to_string())),
        );
        assert_eq!(o.sbom.as_deref(), Some(""));
        assert!(o.sbom_scan_builder);
    }
}
