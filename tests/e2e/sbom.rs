//! Supply chain: `--sbom=true` answered by strata itself (no scanner image
//! pulled), read from the built image and checked against it; provenance
//! `mode=max` maps steps to spec lines; the pinned uv.
//!
//! Attestations are read back where users find them: from the local
//! registry after `--push`, from `docker save` after `--load`, from an OCI
//! tar (`--output type=oci`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use super::common::*;

const SPDX: &str = "https://spdx.dev/Document";

fn curl(url: &str, accept: &str) -> Vec<u8> {
    let out = Command::new("curl").args(["-fsS", "-H", &format!("Accept: {accept}"), url]).output().expect("curl");
    assert!(out.status.success(), "GET {url}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Per platform (`linux/amd64`): the in-toto statements attached to it,
/// walking an image index through `blob` (digest → bytes).
fn attestations(root: &Value, blob: &dyn Fn(&str, &str) -> Vec<u8>) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    let mut indexes = vec![root.clone()];
    while let Some(index) = indexes.pop() {
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let platform_of: BTreeMap<String, String> = manifests
            .iter()
            .filter(|m| m["platform"]["os"] != "unknown")
            .map(|m| {
                (
                    m["digest"].as_str().unwrap_or("").to_string(),
                    format!("{}/{}", m["platform"]["os"].as_str().unwrap_or(""), m["platform"]["architecture"].as_str().unwrap_or("")),
                )
            })
            .collect();
        for m in &manifests {
            let digest = m["digest"].as_str().unwrap_or("");
            if m["mediaType"] == INDEX {
                indexes.push(serde_json::from_slice(&blob(digest, INDEX)).unwrap());
            } else if m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest" {
                let target = m["annotations"]["vnd.docker.reference.digest"].as_str().unwrap_or("");
                let manifest: Value = serde_json::from_slice(&blob(digest, MANIFEST)).unwrap();
                let list: &mut Vec<Value> = out.entry(platform_of.get(target).cloned().unwrap_or_default()).or_default();
                for layer in manifest["layers"].as_array().into_iter().flatten() {
                    list.push(serde_json::from_slice(&blob(layer["digest"].as_str().unwrap(), "*/*")).unwrap());
                }
            }
        }
    }
    out
}

/// From the registry: `name:tag` under 127.0.0.1:5000.
fn pushed_attestations(name: &str, tag: &str) -> BTreeMap<String, Vec<Value>> {
    let base = format!("http://{}/v2/{name}", registry());
    let root: Value = serde_json::from_slice(&curl(&format!("{base}/manifests/{tag}"), INDEX)).unwrap();
    let blob = |digest: &str, accept: &str| {
        if accept == "*/*" {
            curl(&format!("{base}/blobs/{digest}"), accept)
        } else {
            curl(&format!("{base}/manifests/{digest}"), accept)
        }
    };
    attestations(&root, &blob)
}

/// From an OCI layout tar (`--output type=oci` or `docker save`).
fn tar_attestations(path: &std::path::Path) -> BTreeMap<String, Vec<Value>> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        files.insert(name, data);
    }
    let root: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let blob = |digest: &str, _: &str| files[&format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))].clone();
    attestations(&root, &blob)
}

fn predicate<'a>(atts: &'a BTreeMap<String, Vec<Value>>, platform: &str, kind: &str) -> &'a Value {
    let list = atts.get(platform).unwrap_or_else(|| panic!("no attestations for {platform}: {:?}", atts.keys()));
    let st = list.iter().find(|s| s["predicateType"].as_str().is_some_and(|t| t.starts_with(kind))).unwrap_or_else(|| {
        panic!("no {kind} attestation for {platform}: {:?}", list.iter().map(|s| s["predicateType"].clone()).collect::<Vec<_>>())
    });
    &st["predicate"]
}

/// The SPDX document of a stage (`runtime`, `builder`) for a platform.
fn spdx_of<'a>(atts: &'a BTreeMap<String, Vec<Value>>, platform: &str, stage: &str) -> &'a Value {
    let list = &atts[platform];
    let st = list
        .iter()
        .find(|s| s["predicateType"] == SPDX && s["predicate"]["name"].as_str().is_some_and(|n| n.contains(&format!("({stage})"))))
        .unwrap_or_else(|| {
            panic!("no SPDX document of {stage}: {:?}", list.iter().map(|s| s["predicate"]["name"].clone()).collect::<Vec<_>>())
        });
    &st["predicate"]
}

/// The SPDX 2.3 JSON schema (tests/fixtures/spdx, from spdx/spdx-spec v2.3).
fn assert_valid_spdx(doc: &Value) {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/spdx/spdx-schema-2.3.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let v = jsonschema::draft7::new(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).take(10).collect();
    assert!(errors.is_empty(), "not SPDX 2.3: {errors:#?}");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
}

/// (name, version) of the packages whose purl has this type (`deb`, `pypi`).
fn listed(doc: &Value, purl_type: &str) -> Pairs {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["externalRefs"][0]["referenceLocator"].as_str().is_some_and(|l| l.starts_with(&format!("pkg:{purl_type}/"))))
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["versionInfo"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn package<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} is not in the SBOM"))
}

type Pairs = BTreeSet<(String, String)>;

/// What the image really holds, asked inside it: dpkg's installed packages
/// and the venv's distributions.
fn installed(tag: &str) -> (Pairs, Pairs) {
    let run = |script: &str| {
        let out = docker().args(["run", "--rm", "--user", "0", "--entrypoint", "sh", tag, "-c", script]).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pairs =
        |text: String| text.lines().filter_map(|l| l.split_once(' ')).map(|(a, b)| (a.to_string(), b.to_string())).collect::<BTreeSet<_>>();
    let deb = pairs(run("dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\\n' | awk '$1 == \"ii\" {print $2, $3}'"));
    let py = pairs(run(
        "/opt/venv/bin/python -c 'import importlib.metadata as m, sys; [print(d.metadata[\"Name\"], d.version) for d in m.distributions(path=[p for p in sys.path if p.startswith(\"/opt/venv\")])]'",
    ));
    (deb, py)
}

const PIP_SPEC: &str = r#"# syntax=strata:dev
version = 1
[image]
base = "strata-test/python:3.11"
entrypoint = ["python", "-m", "shop"]
[system]
packages = ["libexpat1", "tini"]
[python]
installer = "pip"
requirements = ["requirements.txt"]
wheels = "wheels"
[app]
copy = ["shop/", "templates/"]

[[step]]
name = "assets"
run = "mkdir -p static/css && echo 'body{}' > static/css/app.css && echo strata > static/app.js"
outputs = ["static"]
"#;

/// pip, OS packages and a build step, pushed with `--sbom=true
/// --provenance=mode=max`: the SBOM in the registry lists exactly what
/// dpkg and the venv hold, the base by digest and the step's files by hash,
/// validates as SPDX 2.3, and the provenance maps steps to spec lines.
#[test]
fn pushed_sbom_lists_what_the_image_holds() {
    gate!(Primary);
    let mut p = Project::from_example("python-web");
    p.write("strata.toml", PIP_SPEC);
    let name = format!("strata-e2e/sbom-pip-{}", nonce());
    let image = format!("{}/{name}:t", registry());
    p.tag = image.clone();
    let b = p.build(&["--sbom=true", "--provenance=mode=max", "--push"]).assert_ok();
    assert!(!b.log.contains("buildkit-syft-scanner"), "BuildKit's scanner was asked for:\n{}", b.log);
    let atts = pushed_attestations(&name, "t");
    let doc = predicate(&atts, "linux/amd64", SPDX);
    assert_valid_spdx(doc);

    let (deb, py) = installed(&image);
    assert_eq!(listed(doc, "deb"), deb, "the SBOM's OS packages are dpkg's");
    assert_eq!(listed(doc, "pypi"), py, "the SBOM's Python packages are the venv's");
    for (name, version) in [("Flask", "3.0.3"), ("Werkzeug", "3.1.9"), ("click", "8.5.1")] {
        assert!(py.contains(&(name.to_string(), version.to_string())), "{name} {version} in {py:?}");
    }
    assert!(!listed(doc, "pypi").iter().any(|(n, _)| n == "pip"), "pip stays in the builder");
    assert_eq!(package(doc, "tini")["comment"], "OS package installed by this build");
    assert_eq!(package(doc, "libc6")["comment"], "OS package of the base image");
    assert!(package(doc, "libc6")["externalRefs"][0]["referenceLocator"].as_str().unwrap().contains("distro=debian-12"));

    let base = package(doc, "strata-test/python:3.11");
    let id = docker().args(["image", "inspect", "--format", "{{.Id}}", "strata-test/python:3.11"]).output().unwrap();
    assert_eq!(base["versionInfo"].as_str().unwrap(), String::from_utf8_lossy(&id.stdout).trim(), "the base by its resolved digest");

    // The step's files, by the hashes of the image's own copies.
    let files: BTreeMap<&str, &str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["fileName"].as_str().unwrap().trim_start_matches('.'), f["checksums"][1]["checksumValue"].as_str().unwrap()))
        .collect();
    let sums = docker()
        .args(["run", "--rm", "--entrypoint", "sha256sum", &image, "/app/static/css/app.css", "/app/static/app.js"])
        .output()
        .unwrap();
    let want: BTreeMap<String, String> = String::from_utf8_lossy(&sums.stdout)
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, f)| (f.to_string(), h.to_string()))
        .collect();
    assert_eq!(files.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(), want);

    // Provenance (mode=max): the spec is the source, and the step's exec
    // maps to its [[step]] lines.
    let prov = predicate(&atts, "linux/amd64", "https://slsa.dev/provenance/");
    let meta = &prov["metadata"]["https://mobyproject.org/buildkit@v1#metadata"]["source"];
    assert_eq!(meta["infos"][0]["filename"], "strata.toml");
    assert_eq!(meta["infos"][0]["language"], "TOML");
    let step = prov["buildConfig"]["llbDefinition"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["op"]["Op"]["exec"]["meta"]["args"].to_string().contains("echo strata"))
        .expect("the step's exec in the provenance");
    let range = &meta["locations"][step["id"].as_str().unwrap()]["locations"][0]["ranges"][0];
    let line = PIP_SPEC.lines().position(|l| l.starts_with("run = \"mkdir")).unwrap() as i64 + 1;
    let (start, end) = (range["start"]["line"].as_i64().unwrap(), range["end"]["line"].as_i64().unwrap_or(0));
    assert!(start <= line && line <= end.max(start), "the step maps to lines {start}-{end}, its run is line {line}");

    // An independent validator agrees (spdx-tools from PyPI, in a container).
    let dir = tempdir("sbom-validate");
    std::fs::write(dir.join("sbom.json"), serde_json::to_vec(doc).unwrap()).unwrap();
    let out = docker()
        .args(["run", "--rm", "-v", &format!("{}:/in:ro", dir.display()), "--entrypoint", "sh", "strata-test/python:3.11", "-c"])
        .arg("python3 -m venv /tmp/v && /tmp/v/bin/pip install -q spdx-tools==0.8.5 && /tmp/v/bin/pyspdxtools -i /in/sbom.json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyspdxtools rejects the SBOM:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("strata-e2e-{}-{name}-{}", std::process::id(), nonce()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// uv and a uv.lock: each distribution carries the sha256 of the archive
/// the lock pinned for it; uv itself is the pinned one and stays in the
/// builder. Through `--load` (read back with `docker save`) and an OCI tar.
#[test]
fn uv_lock_hashes_in_the_sbom_via_load_and_oci() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/projects/uv-package");
    p.write(
        "strata.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/python:3.11\"\ncmd = [\"greet\"]\n[python]\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\n[app]\ncopy = [\".\"]\n",
    );
    p.build(&["--sbom=true", "--load"]).assert_ok();
    let dir = tempdir("sbom-load");
    let saved = dir.join("saved.tar");
    let out = docker().args(["save", "-o"]).arg(&saved).arg(&p.tag).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded = tar_attestations(&saved);

    let oci = dir.join("oci.tar");
    let dest = format!("type=oci,dest={}", oci.display());
    p.build(&["--sbom=true", "--build-arg", "BUILDKIT_SBOM_SCAN_STAGE=builder", "--output", &dest]).assert_ok();
    let from_oci = tar_attestations(&oci);
    // BUILDKIT_SBOM_SCAN_STAGE=builder: the builder's own document, with
    // the tools strata installed there (uv, pinned).
    let builder = spdx_of(&from_oci, "linux/amd64", "builder");
    assert_valid_spdx(builder);
    assert!(listed(builder, "pypi").contains(&("uv".to_string(), strata::plan::UV_VERSION.to_string())), "{:?}", listed(builder, "pypi"));

    for atts in [&loaded, &from_oci] {
        let doc = spdx_of(atts, "linux/amd64", "runtime");
        assert_valid_spdx(doc);
        let tabulate = package(doc, "tabulate");
        assert_eq!(tabulate["versionInfo"], "0.9.0");
        assert_eq!(
            tabulate["checksums"][0]["checksumValue"], "024ca478df22e9340661486f85298cff5f6dcdba14f3813e8830015b9ed1948f",
            "the wheel's hash from uv.lock"
        );
        assert_eq!(package(doc, "greeter")["versionInfo"], "1.2.0", "the project itself");
        let py = listed(doc, "pypi");
        assert!(!py.iter().any(|(n, _)| n == "uv" || n == "pip" || n == "six"), "no installer, no dev group: {py:?}");
    }
    let (_, py) = installed(&p.tag);
    assert_eq!(listed(predicate(&loaded, "linux/amd64", SPDX), "pypi"), py);

    // The builder's uv is strata's pinned release.
    p.build(&["--target", "builder"]).assert_ok();
    let v = p.run("/opt/strata-uv/bin/uv", &["--version"]);
    assert!(v.starts_with(&format!("uv {} ", strata::plan::UV_VERSION)) || v == format!("uv {}", strata::plan::UV_VERSION), "{v}");
}

/// A multi-platform push: one SBOM per platform, each naming its platform.
#[test]
fn multi_platform_push_has_an_sbom_per_platform() {
    gate!(MultiPlatform);
    let mut p = Project::from_example("hello");
    p.write(
        "multi.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox-multi:latest\"\nplatforms = [\"linux/amd64\", \"linux/386\"]\nentrypoint = [\"sh\", \"/app/hello.sh\"]\n[app]\ncopy = [\"hello.sh\", \"data/\"]\n",
    );
    let name = format!("strata-e2e/sbom-multi-{}", nonce());
    p.tag = format!("{}/{name}:t", registry());
    p.build_file("multi.toml", &["--sbom=true", "--push"]).assert_ok();
    let atts = pushed_attestations(&name, "t");
    let mut digests = BTreeSet::new();
    for platform in ["linux/amd64", "linux/386"] {
        let doc = predicate(&atts, platform, SPDX);
        assert_valid_spdx(doc);
        assert!(doc["name"].as_str().unwrap().contains(platform), "{}", doc["name"]);
        let base = package(doc, "strata-test/busybox-multi:latest");
        assert!(base["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .ends_with(&format!("platform={}", platform.replace('/', "%2F"))));
        digests.insert(base["versionInfo"].as_str().unwrap().to_string());
    }
    // The base resolves to its index (one digest; the platform is the
    // purl's qualifier).
    let id = docker().args(["image", "inspect", "--format", "{{.Id}}", "strata-test/busybox-multi:latest"]).output().unwrap();
    assert_eq!(digests.into_iter().collect::<Vec<_>>(), [String::from_utf8_lossy(&id.stdout).trim().to_string()]);
}

/// `generator=IMAGE` asks for that scanner: strata returns no SBOM and
/// BuildKit runs the scanner (here one that does not exist, so the build
/// says it cannot resolve it).
#[test]
fn a_named_generator_leaves_the_scan_to_buildkit() {
    gate!(Primary);
    let p = Project::from_example("hello");
    let scanner = format!("{}/strata-e2e/no-such-scanner:1", registry());
    let b = p.build(&["--attest", &format!("type=sbom,generator={scanner}")]).assert_failed();
    assert!(b.log.contains("no-such-scanner"), "BuildKit did not try the named scanner:\n{}", b.log);
}
