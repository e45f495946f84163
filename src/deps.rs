//! `strata.deps.digest`: a content hash of everything that goes into the
//! `deps` image (base + OS packages + installed dependencies), so CI can
//! skip rebuilding and pushing an unchanged deps image.
//!
//! The frontend and `strata plan --deps-digest` compute it from the same
//! inputs (the spec after arg expansion and the dependency files), so the
//! CLI's answer, with no engine, matches the label on the built image.
//! Base images count by reference as written (a moving tag is not
//! resolved), and a wheelhouse by its context name. The strata version
//! counts too: another strata may install differently.

use sha2::{Digest, Sha256};

use crate::spec::Spec;

/// `files`: each dependency file (context-relative path) and its content.
/// The tag a deps image is kept under in `[image] deps-image`:
/// `REPO:deps-` and the digest's first 32 hex digits.
pub fn tag(repo: &str, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("{repo}:deps-{}", &hex[..hex.len().min(32)])
}

pub fn digest(spec: &Spec, files: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    let mut line = |k: &str, v: &str| {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.len().to_string().as_bytes());
        h.update(b":");
        h.update(v.as_bytes());
        h.update(b"\n");
    };
    let list = |v: &[crate::spec::Sp<String>]| v.iter().map(|s| s.value.as_str()).collect::<Vec<_>>().join(",");
    line("format", "strata-deps-v1");
    line("strata", env!("CARGO_PKG_VERSION"));
    line("variant", spec.variant.as_deref().unwrap_or(""));
    line("base", &spec.image.base.value);
    line("builder", spec.image.builder.as_ref().map(|b| b.value.as_str()).unwrap_or(""));
    line("user", &format!("{:?}", spec.image.user.value));
    line("workdir", &spec.image.workdir.value);
    line("init", &spec.image.init.to_string());
    if spec.image.init {
        // The pinned tini: another file is another OS layer.
        let t = &crate::plan::TINI;
        line("tini", &t.files.iter().map(|f| format!("{}={}", f.arch, f.sha256)).collect::<Vec<_>>().join(","));
    }
    line("manager", &format!("{:?}", spec.system.manager));
    if crate::plan::scans_links(spec) {
        // The runtime installs what the venv links: one more OS layer.
        line("linked-libraries", "ldd+dpkg-v1");
    }
    line("packages", &list(&spec.system.packages));
    line("build-packages", &list(&spec.system.build_packages));
    line("system-layers", &spec.system.layers.iter().map(|g| list(g)).collect::<Vec<_>>().join(";"));
    // The deps image carries the runtime's config (env, entrypoint, ...).
    // Debug of std types (strings, vecs, options) is stable and unambiguous.
    line("env", &format!("{:?}", spec.image.env));
    line("entrypoint", &format!("{:?}", spec.image.entrypoint));
    line("cmd", &format!("{:?}", spec.image.cmd));
    line("expose", &list(&spec.image.expose));
    line("labels", &format!("{:?}", spec.image.labels));
    line("healthcheck", &format!("{:?}", spec.image.healthcheck));
    line("stopsignal", spec.image.stopsignal.as_deref().unwrap_or(""));
    if let Some(py) = &spec.python {
        line("installer", &format!("{:?}", py.installer.value));
        line("packages", &list(&py.packages));
        line("lock-kind", &format!("{:?}", py.lock_kind));
        line("extras", &list(&py.extras));
        if !py.groups.is_empty() {
            line("groups", &list(&py.groups));
        }
        line("project", &format!("{:?} editable={}", py.project, py.editable));
        line("package", py.package.as_ref().map(|p| p.value.as_str()).unwrap_or(""));
        // The pinned build tools: another version may install differently.
        line("uv", crate::plan::python::uv_version(py));
        line("poetry", &format!("{} {}", crate::plan::POETRY_VERSION, crate::plan::POETRY_EXPORT_VERSION));
        line("pdm", crate::plan::PDM_VERSION);
        line("venv", &py.venv);
        line("index-url", py.index_url.as_deref().unwrap_or(""));
        line("extra-index-urls", &py.extra_index_urls.join(","));
        line("wheels", py.wheels.as_ref().map(|w| w.value.as_str()).unwrap_or(""));
        line("keep-pip", &py.keep_pip.to_string());
        line("compile", &py.compile.to_string());
        line("system-site-packages", &py.system_site_packages.to_string());
        line("prune-tests", &py.prune_tests.to_string());
        line(
            "python-layers",
            &py.layers.as_ref().map(|ls| ls.iter().map(|g| list(g)).collect::<Vec<_>>().join(";")).unwrap_or_else(|| "auto".into()),
        );
    }
    if let Some(r) = &spec.r {
        line("r-packages", &list(&r.packages));
        line("cran", &list(&r.cran));
        line("repos", &list(&r.repos));
    }
    let mut files: Vec<&(String, Vec<u8>)> = files.iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, data) in files {
        line(&format!("file:{path}"), &hex(&Sha256::digest(data)));
    }
    format!("sha256:{}", hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SPEC: &str =
        "version = 1\n[image]\nbase = \"python:3.11\"\n[python]\nrequirements = [\"requirements.txt\"]\n[app]\ncopy = [\"app.py\"]\n";

    fn d(src: &str, req: &str) -> String {
        digest(&crate::spec::load(src, &BTreeMap::new()).unwrap(), &[("requirements.txt".into(), req.as_bytes().to_vec())])
    }

    #[test]
    fn changes_with_deps_not_with_app() {
        let a = d(SPEC, "flask==3.0.3\n");
        assert_eq!(a, d(SPEC, "flask==3.0.3\n"));
        assert_ne!(a, d(SPEC, "flask==3.0.2\n"));
        assert_eq!(a, d(&SPEC.replace("app.py", "main.py"), "flask==3.0.3\n"), "app code is not a dependency");
        assert_ne!(a, d(&SPEC.replace("python:3.11", "python:3.12"), "flask==3.0.3\n"));
    }

    /// The uv strata installs counts by its effective version: the pinned
    /// default (so bumping strata's default changes the digest) or the
    /// spec's `uv-version`.
    #[test]
    fn the_uv_version_counts() {
        let a = d(SPEC, "flask==3.0.3\n");
        let with = |v: &str| d(&SPEC.replace("[python]\n", &format!("[python]\nuv-version = \"{v}\"\n")), "flask==3.0.3\n");
        assert_eq!(a, with(crate::plan::UV_VERSION), "the default is that version");
        assert_ne!(a, with("0.13.10"), "another uv, another digest");
    }

    /// The deps image carries the image config: changing it changes the image.
    #[test]
    fn changes_with_the_image_config_and_layering() {
        let a = d(SPEC, "flask==3.0.3\n");
        let with =
            |extra: &str| d(&SPEC.replace("base = \"python:3.11\"\n", &format!("base = \"python:3.11\"\n{extra}\n")), "flask==3.0.3\n");
        for extra in [
            "env = { A = \"1\" }",
            "entrypoint = [\"python\"]",
            "cmd = [\"x\"]",
            "expose = [\"8000\"]",
            "labels = { a = \"b\" }",
            "stopsignal = \"SIGINT\"",
            "healthcheck = { cmd = \"true\" }",
        ] {
            assert_ne!(a, with(extra), "{extra}");
        }
        assert_ne!(a, d(&SPEC.replace("requirements = [", "layers = [[\"flask\"]]\nrequirements = ["), "flask==3.0.3\n"));
    }
}
