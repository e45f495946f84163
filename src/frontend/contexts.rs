//! Images from build contexts: `--build-context NAME=…`, bake's
//! `contexts = { NAME = "target:other" }` and compose's
//! `additional_contexts`, with the Dockerfile frontend's rules. The image
//! `python:3.11` is looked up as the opt `context:python:3.11::linux/amd64`
//! (the build platform), then `context:python:3.11` (the familiar name,
//! `:latest` dropped). The value says where the image comes from:
//!
//! - `docker-image://REF`: another image, resolved and pinned as a base is
//! - `oci-layout://STORE[:TAG]@DIGEST`: an OCI layout the client sends
//!   (buildx names the store; the digest is required)
//! - `local:NAME`: a directory of the client's, as the root filesystem
//!   (no image config)
//! - `input:NAME`: a definition the client hands over (bake's `target:`
//!   links); its image config comes in `input-metadata:NAME`.
//!
//! This module is pure: it finds and parses; the frontend resolves.

use std::collections::BTreeMap;

use bollard_buildkit_proto::pb;

use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    Image(String),
    OciLayout { store: String, digest: String },
    Local(String),
    Input(String),
}

/// The familiar name the Dockerfile frontend looks contexts up by:
/// `docker.io/library/python:3.11` → `python:3.11`, `:latest` dropped.
pub fn familiar(r: &str) -> String {
    let n = crate::reference::normalize_ref(r);
    let n = n.strip_prefix("docker.io/library/").or_else(|| n.strip_prefix("docker.io/")).unwrap_or(&n).to_string();
    match n.strip_suffix(":latest") {
        Some(s) if !n.contains('@') => s.to_string(),
        _ => n,
    }
}

/// The context (its opt key without `context:`, and its value) that
/// replaces the image `r` on `platform`, if any.
pub fn lookup<'a>(contexts: &'a BTreeMap<String, String>, r: &str, platform: &Platform) -> Option<(String, &'a str)> {
    let name = familiar(r);
    let with_platform = format!("{name}::{}", crate::platform::format(platform));
    [with_platform, name].into_iter().find_map(|k| contexts.get(&k).map(|v| (k, v.as_str())))
}

/// Parses a context's value. The error says what is accepted.
pub fn parse(key: &str, value: &str) -> Result<From, String> {
    let (scheme, rest) = value.split_once(':').ok_or_else(|| format!("invalid context specifier `{value}` for {key}"))?;
    match scheme {
        "docker-image" => {
            let r = rest.trim_start_matches("//");
            if r.is_empty() {
                return Err(format!("build context {key}: `{value}` names no image"));
            }
            Ok(From::Image(r.to_string()))
        }
        "oci-layout" => {
            let r = rest.trim_start_matches("//");
            let (name, digest) =
                r.split_once('@').ok_or_else(|| format!("build context {key}: oci-layout reference `{r}` has no digest"))?;
            // `STORE:TAG`: the tag is informational (buildx resolved the digest)
            let store = name.split_once(':').map_or(name, |(s, _)| s);
            if store.is_empty() || !digest.starts_with("sha256:") {
                return Err(format!("build context {key}: could not parse oci-layout reference `{r}`"));
            }
            Ok(From::OciLayout { store: store.to_string(), digest: digest.to_string() })
        }
        "local" if !rest.is_empty() => Ok(From::Local(rest.to_string())),
        "input" if !rest.is_empty() => Ok(From::Input(rest.to_string())),
        _ => Err(format!(
            "build context {key} is `{value}`, which strata cannot use as an image: use docker-image://REF, oci-layout://…@sha256:…, a local directory or a bake/compose target"
        )),
    }
}

/// The image config an `input:` carries (`input-metadata:NAME`, JSON of
/// base64 values, `containerimage.config`), if any.
pub fn input_config(metadata: &BTreeMap<String, String>, input: &str) -> Result<Option<Vec<u8>>, String> {
    let Some(md) = metadata.get(input) else { return Ok(None) };
    let m: BTreeMap<String, String> = serde_json::from_str(md).map_err(|e| format!("failed to parse input metadata for {input}: {e}"))?;
    match m.get("containerimage.config") {
        None => Ok(None),
        Some(b) => {
            use base64::Engine as _;
            let config = base64::engine::general_purpose::STANDARD.decode(b);
            config.map(Some).map_err(|_| format!("input metadata for {input}: containerimage.config is not base64"))
        }
    }
}

/// A definition whose result is one source op (a local directory, an OCI
/// layout), spliced into the build like an input's.
pub fn source_definition(
    identifier: String,
    attrs: BTreeMap<String, String>,
    platform: Option<pb::Platform>,
    name: &str,
) -> pb::Definition {
    let mut g = crate::llb::Graph::new();
    let out =
        g.add(pb::Op { platform, op: Some(pb::op::Op::Source(pb::SourceOp { identifier, attrs })), ..Default::default() }, name, None);
    g.definition(&out, None)
}

/// `local:NAME` as a root filesystem.
pub fn local_definition(local: &str, session: Option<&str>, key: &str) -> pb::Definition {
    let mut attrs = BTreeMap::new();
    if let Some(s) = session {
        attrs.insert("local.session".to_string(), s.to_string());
    }
    attrs.insert("local.sharedkeyhint".to_string(), format!("context:{key}"));
    source_definition(format!("local://{local}"), attrs, None, &format!("[context {key}] load from client"))
}

/// `oci-layout://STORE@DIGEST`: the identifier names the image by the
/// context's own name, as the Dockerfile frontend does.
pub fn oci_ref(key: &str, digest: &str) -> String {
    let name = key.split("::").next().unwrap_or(key);
    let n = crate::reference::normalize_ref(name);
    let bare = match n.rsplit_once(':') {
        Some((b, tag)) if !tag.contains('/') => b.to_string(),
        _ => n,
    };
    format!("{bare}@{digest}")
}

pub fn oci_definition(key: &str, store: &str, digest: &str, session: Option<&str>, platform: Option<pb::Platform>) -> pb::Definition {
    let mut attrs = BTreeMap::new();
    if let Some(s) = session {
        attrs.insert("oci.session".to_string(), s.to_string());
    }
    attrs.insert("oci.store".to_string(), store.to_string());
    source_definition(format!("oci-layout://{}", oci_ref(key, digest)), attrs, platform, &format!("[context {key}] OCI load from client"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Platform {
        crate::platform::parse("linux/amd64").unwrap()
    }

    #[test]
    fn familiar_names_as_the_dockerfile_frontend() {
        assert_eq!(familiar("python:3.11"), "python:3.11");
        assert_eq!(familiar("docker.io/library/python:3.11"), "python:3.11");
        assert_eq!(familiar("python"), "python");
        assert_eq!(familiar("python:latest"), "python");
        assert_eq!(familiar("myuser/app"), "myuser/app");
        assert_eq!(familiar("127.0.0.1:5000/team/base:1"), "127.0.0.1:5000/team/base:1");
        assert_eq!(familiar("strata-test/python:3.11"), "strata-test/python:3.11");
    }

    #[test]
    fn platform_key_first_then_the_name() {
        let mut c = BTreeMap::new();
        c.insert("python:3.11".to_string(), "docker-image://a".to_string());
        assert_eq!(lookup(&c, "docker.io/library/python:3.11", &amd64()), Some(("python:3.11".to_string(), "docker-image://a")));
        c.insert("python:3.11::linux/amd64".to_string(), "input:0-deps::linux/amd64".to_string());
        assert_eq!(lookup(&c, "python:3.11", &amd64()).unwrap().1, "input:0-deps::linux/amd64");
        assert_eq!(lookup(&c, "python:3.12", &amd64()), None);
    }

    #[test]
    fn values() {
        assert_eq!(parse("b", "docker-image://x/y:1"), Ok(From::Image("x/y:1".into())));
        assert_eq!(parse("b", "input:0-deps"), Ok(From::Input("0-deps".into())));
        assert_eq!(parse("b", "local:b"), Ok(From::Local("b".into())));
        assert_eq!(
            parse("b", "oci-layout://k7x:latest@sha256:abc"),
            Ok(From::OciLayout { store: "k7x".into(), digest: "sha256:abc".into() })
        );
        assert!(parse("b", "oci-layout://k7x:latest").unwrap_err().contains("no digest"));
        assert!(parse("b", "https://example.com/x.tar").unwrap_err().contains("cannot use as an image"));
        assert!(parse("b", "nothing").unwrap_err().contains("invalid context specifier"));
        assert_eq!(oci_ref("base", "sha256:abc"), "docker.io/library/base@sha256:abc");
        assert_eq!(oci_ref("strata-test/python:3.11::linux/amd64", "sha256:abc"), "docker.io/strata-test/python@sha256:abc");
    }

    #[test]
    fn input_metadata_config() {
        let mut m = BTreeMap::new();
        m.insert("0-deps".to_string(), r#"{"containerimage.config":"eyJhIjoxfQ==","containerimage.buildinfo":"e30="}"#.to_string());
        assert_eq!(input_config(&m, "0-deps").unwrap().unwrap(), br#"{"a":1}"#);
        assert_eq!(input_config(&m, "other").unwrap(), None);
        m.insert("bad".to_string(), "{".to_string());
        assert!(input_config(&m, "bad").is_err());
        m.insert("nob64".to_string(), r#"{"containerimage.config":"@@@"}"#.to_string());
        assert!(input_config(&m, "nob64").unwrap_err().contains("is not base64"));
    }
}
