//! Build options as BuildKit passes them to a gateway frontend
//! (`BUILDKIT_FRONTEND_OPT_<i>=<key>=<value>`, in random order).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOpts {
    /// Spec file name inside the `dockerfile` local.
    pub filename: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `--build-context NAME=…` names whose value is a local directory.
    pub named_contexts: BTreeSet<String>,
    pub image_resolve_mode: Option<String>,
    /// `BUILDKIT_SESSION_ID`: the client session serving the locals.
    pub session: Option<String>,
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
            } else {
                match k.as_str() {
                    "filename" if !v.is_empty() => o.filename = v,
                    "target" if !v.is_empty() => o.target = Some(v),
                    "platform" if !v.is_empty() => o.platform = Some(v),
                    "image-resolve-mode" if !v.is_empty() => o.image_resolve_mode = Some(v),
                    _ => {}
                }
            }
        }
        o
    }
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
    }
}
