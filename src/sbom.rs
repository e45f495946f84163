//! The SBOM strata returns for `--sbom=true`: an SPDX 2.3 JSON document
//! describing what is really in the built image.
//!
//! This module is pure: it parses the package managers' own records (dpkg's
//! status, apk's installed db, Python's `*.dist-info/METADATA`, R's
//! `DESCRIPTION`) and builds the document from [`Facts`]. The frontend
//! (`frontend::sbom`) reads those records out of the built result and the
//! base image, so the SBOM lists what the image holds, not what the spec
//! asked for. Same facts, same bytes: packages are sorted, the namespace is
//! a hash of the content and `created` is the image's creation time.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::platform::Platform;

pub const PREDICATE_TYPE: &str = "https://spdx.dev/Document";
/// Where the SPDX file sits in the attestation's ref.
pub const FILE_NAME: &str = "sbom.spdx.json";

/// An OS package, from dpkg's status or apk's installed db.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OsPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The source package (dpkg `Source:`), when it differs from the name.
    pub source: Option<String>,
    /// As the package manager records it (apk's `L:`); dpkg records none.
    pub license: Option<String>,
    /// Also in the base image (same name and version).
    pub in_base: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsKind {
    Deb,
    Apk,
}

/// A Python distribution installed in a site-packages directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PyDist {
    pub name: String,
    pub version: String,
    /// The license as the metadata declares it (expression, classifier or
    /// free text).
    pub license: Option<String>,
    /// The site-packages directory it is in.
    pub location: String,
    /// sha256 hex of the archive it was installed from, when a lock or a
    /// hashed pin says so unambiguously.
    pub sha256: Option<String>,
    /// Hashes a pin allows when it cannot tell which one was installed.
    pub allowed_hashes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RPackage {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
    pub location: String,
}

/// A file a build step wrote into the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileEntry {
    pub path: String,
    pub sha1: String,
    pub sha256: String,
    /// The `[[step]]` that made it.
    pub step: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Distro {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// As the spec writes it.
    pub reference: String,
    /// The manifest digest it resolved to (`sha256:…`).
    pub digest: String,
}

/// Everything the document says, gathered from the built result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// What the image is called in the document (the spec file and target).
    pub name: String,
    pub platform: Platform,
    pub created: String,
    pub base: Option<BaseImage>,
    pub distro: Distro,
    pub os_kind: OsKind,
    pub os: Vec<OsPackage>,
    pub python: Vec<PyDist>,
    pub r: Vec<RPackage>,
    pub files: Vec<FileEntry>,
    /// What could not be listed (limits), said in the document.
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------
// Parsers of the package managers' records.

/// RFC 822-style paragraphs (dpkg status, R DESCRIPTION): fields
/// `Key: value` with continuation lines indented. Keys keep their case.
fn paragraphs(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            last = None;
        } else if line.starts_with([' ', '\t']) {
            if let Some(v) = last.as_ref().and_then(|k| cur.get_mut(k)) {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_string();
            cur.insert(k.clone(), v.trim().to_string());
            last = Some(k);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The installed packages of a dpkg status file (`Status: install ok
/// installed`; half-removed ones are not in the image as packages).
pub fn parse_dpkg_status(text: &str) -> Vec<OsPackage> {
    let mut out: Vec<OsPackage> = paragraphs(text)
        .into_iter()
        .filter(|p| p.get("Status").is_none_or(|s| s.ends_with(" installed")))
        .filter_map(|p| {
            let name = p.get("Package")?.clone();
            let version = p.get("Version")?.clone();
            // `Source: name (version)` when the binary version differs.
            let source =
                p.get("Source").map(|s| s.split_whitespace().next().unwrap_or("").to_string()).filter(|s| !s.is_empty() && *s != name);
            Some(OsPackage {
                name,
                version,
                arch: p.get("Architecture").cloned().unwrap_or_default(),
                source,
                license: None,
                in_base: false,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// apk's `/lib/apk/db/installed`: one-letter fields, blank-line separated.
pub fn parse_apk_installed(text: &str) -> Vec<OsPackage> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut f: BTreeMap<&str, &str> = BTreeMap::new();
        for line in block.lines() {
            if let Some((k, v)) = line.split_once(':') {
                f.entry(k).or_insert(v);
            }
        }
        if let (Some(n), Some(v)) = (f.get("P"), f.get("V")) {
            out.push(OsPackage {
                name: n.to_string(),
                version: v.to_string(),
                arch: f.get("A").unwrap_or(&"").to_string(),
                source: f.get("o").map(|s| s.to_string()).filter(|s| s != n),
                license: f.get("L").map(|s| s.to_string()),
                in_base: false,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `/etc/os-release`.
pub fn parse_os_release(text: &str) -> Distro {
    let mut d = Distro::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => d.id = v,
            "VERSION_ID" => d.version_id = v,
            "PRETTY_NAME" => d.pretty_name = v,
            _ => {}
        }
    }
    d
}

/// A distribution's `METADATA` (or `PKG-INFO`): name, version, license.
/// Only the header block is read (the body is the long description).
pub fn parse_metadata(text: &str, location: &str) -> Option<PyDist> {
    let head = text.split("\n\n").next().unwrap_or("");
    let mut name = None;
    let mut version = None;
    let mut expression = None;
    let mut license = None;
    let mut classifiers = Vec::new();
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let v = v.trim();
        match k {
            "Name" => name = Some(v.to_string()),
            "Version" => version = Some(v.to_string()),
            "License-Expression" => expression = Some(v.to_string()),
            "License" if !v.is_empty() => license = Some(v.to_string()),
            "Classifier" => {
                if let Some(l) = v.strip_prefix("License :: ") {
                    classifiers.push(l.to_string());
                }
            }
            _ => {}
        }
    }
    let license = expression
        .or_else(|| classifiers.iter().find_map(|c| classifier_license(c)).map(String::from))
        .or(license)
        .or_else(|| classifiers.first().map(|c| c.rsplit(" :: ").next().unwrap_or(c).to_string()));
    Some(PyDist { name: name?, version: version?, license, location: location.to_string(), sha256: None, allowed_hashes: vec![] })
}

/// An R package's `DESCRIPTION`.
pub fn parse_description(text: &str, location: &str) -> Option<RPackage> {
    let p = paragraphs(text).into_iter().next()?;
    Some(RPackage {
        name: p.get("Package")?.clone(),
        version: p.get("Version")?.clone(),
        license: p.get("License").cloned(),
        location: location.to_string(),
    })
}

/// PEP 503 name normalization (and the purl's name for PyPI).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The archives a lock file pins, per (normalized name, version): file name
/// and sha256 hex. uv.lock (`wheels`, `sdist`), poetry.lock and pdm.lock
/// (`files`).
pub fn lock_archives(lock: &str) -> BTreeMap<(String, String), Vec<(String, String)>> {
    use toml::de::{DeTable, DeValue};
    fn text<'a>(t: &'a DeTable<'a>, key: &str) -> Option<&'a str> {
        match t.get(key).map(|v| v.get_ref()) {
            Some(DeValue::String(s)) => Some(s.as_ref()),
            _ => None,
        }
    }
    let mut out: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    let Ok(doc) = DeTable::parse(lock) else { return out };
    let Some(DeValue::Array(pkgs)) = doc.get_ref().get("package").map(|v| v.get_ref()) else { return out };
    for p in pkgs {
        let DeValue::Table(p) = p.get_ref() else { continue };
        let (Some(name), Some(version)) = (text(p, "name"), text(p, "version")) else { continue };
        let mut files = Vec::new();
        let mut take = |f: &DeTable| {
            let file = text(f, "file")
                .or_else(|| text(f, "filename"))
                .map(String::from)
                .or_else(|| text(f, "url").map(|u| u.rsplit('/').next().unwrap_or(u).to_string()));
            if let (Some(file), Some(hash)) = (file, text(f, "hash").and_then(|h| h.strip_prefix("sha256:"))) {
                files.push((file, hash.to_string()));
            }
        };
        for key in ["wheels", "files"] {
            if let Some(DeValue::Array(a)) = p.get(key).map(|v| v.get_ref()) {
                for f in a {
                    if let DeValue::Table(f) = f.get_ref() {
                        take(f);
                    }
                }
            }
        }
        if let Some(DeValue::Table(s)) = p.get("sdist").map(|v| v.get_ref()) {
            take(s);
        }
        if !files.is_empty() {
            out.entry((normalize_name(name), version.to_string())).or_default().extend(files);
        }
    }
    out
}

/// The hashes `--hash=sha256:…` pins of a requirements file allow, per
/// normalized name (only exact `==` pins).
pub fn requirement_hashes(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in crate::plan::python::requirements::logical_lines(text) {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        let Some((name, _)) = first.split_once("==") else { continue };
        let name = normalize_name(name.split('[').next().unwrap_or(name));
        let hashes: Vec<String> = line
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("--hash=sha256:").or_else(|| w.strip_prefix("--hash=sha256=")))
            .map(String::from)
            .collect();
        if !hashes.is_empty() {
            out.entry(name).or_default().extend(hashes);
        }
    }
    out
}

/// Wheel tags (`cp311-cp311-manylinux_2_17_x86_64`) of a wheel file name.
pub fn wheel_tags(file: &str) -> BTreeSet<String> {
    let Some(stem) = file.strip_suffix(".whl") else { return BTreeSet::new() };
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() < 5 {
        return BTreeSet::new();
    }
    let n = parts.len();
    let mut tags = BTreeSet::new();
    for py in parts[n - 3].split('.') {
        for abi in parts[n - 2].split('.') {
            for plat in parts[n - 1].split('.') {
                tags.insert(format!("{py}-{abi}-{plat}"));
            }
        }
    }
    tags
}

/// The installed dist's `WHEEL` file: its tags.
pub fn installed_tags(wheel_file: &str) -> BTreeSet<String> {
    wheel_file.lines().filter_map(|l| l.strip_prefix("Tag:")).map(|t| t.trim().to_string()).collect()
}

/// Which archive of a lock was installed: the wheel whose tags match the
/// installed dist's, else the one sdist (built here), else the only file.
pub fn installed_archive(files: &[(String, String)], tags: &BTreeSet<String>) -> Option<String> {
    let wheels: Vec<&(String, String)> = files.iter().filter(|(f, _)| !tags.is_empty() && !wheel_tags(f).is_disjoint(tags)).collect();
    if let [one] = wheels.as_slice() {
        return Some(one.1.clone());
    }
    if wheels.is_empty() {
        let sdists: Vec<&(String, String)> = files.iter().filter(|(f, _)| !f.ends_with(".whl")).collect();
        if let [one] = sdists.as_slice() {
            return Some(one.1.clone());
        }
    }
    match files {
        [one] => Some(one.1.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Licenses: only valid SPDX expressions go in `licenseDeclared`.

/// SPDX license ids strata recognises (a validator rejects unknown ids, so
/// anything else is NOASSERTION with the declared text as a comment).
const KNOWN_IDS: &[&str] = &[
    "0BSD",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSL-1.0",
    "CC-BY-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CNRI-Python",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.2",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MPL-1.1",
    "MPL-2.0",
    "OFL-1.1",
    "OpenSSL",
    "PSF-2.0",
    "Python-2.0",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
];

/// The SPDX ids of common free-text and classifier spellings.
fn alias(s: &str) -> Option<&'static str> {
    let k = s.trim().trim_end_matches(" License").trim_end_matches(" license").to_ascii_lowercase();
    Some(match k.as_str() {
        "mit" | "mit/expat" | "expat" => "MIT",
        "apache 2.0" | "apache-2.0" | "apache 2" | "apache software" | "apache license 2.0" | "apache license, version 2.0" | "asl 2" => {
            "Apache-2.0"
        }
        "bsd-3-clause" | "bsd 3-clause" | "new bsd" | "modified bsd" | "bsd-3" | "3-clause bsd" => "BSD-3-Clause",
        "bsd-2-clause" | "bsd 2-clause" | "simplified bsd" | "2-clause bsd" => "BSD-2-Clause",
        "isc" | "isc license (iscl)" => "ISC",
        "mpl-2.0" | "mpl 2.0" | "mozilla public license 2.0 (mpl 2.0)" => "MPL-2.0",
        "python software foundation" | "psf" | "psf-2.0" | "psfl" => "PSF-2.0",
        "gnu general public license v2 (gplv2)" | "gpl-2" | "gpl-2.0" | "gplv2" => "GPL-2.0-only",
        "gnu general public license v2 or later (gplv2+)" | "gpl (>= 2)" | "gpl-2 | gpl-3" | "gpl (>= 2.0)" => "GPL-2.0-or-later",
        "gnu general public license v3 (gplv3)" | "gpl-3" | "gpl-3.0" | "gplv3" => "GPL-3.0-only",
        "gnu general public license v3 or later (gplv3+)" | "gpl (>= 3)" => "GPL-3.0-or-later",
        "gnu lesser general public license v2 or later (lgplv2+)" | "lgpl (>= 2)" => "LGPL-2.0-or-later",
        "gnu lesser general public license v3 (lgplv3)" | "lgpl-3" => "LGPL-3.0-only",
        "gnu lesser general public license v3 or later (lgplv3+)" => "LGPL-3.0-or-later",
        "gnu library or lesser general public license (lgpl)" => return None,
        "the unlicense (unlicense)" | "unlicense" => "Unlicense",
        "zope public" => "ZPL-2.1",
        "cc0 1.0 universal (cc0 1.0) public domain dedication" | "cc0" => "CC0-1.0",
        "historical permission notice and disclaimer (hpnd)" => "HPND",
        "eclipse public license 2.0 (epl-2.0)" => "EPL-2.0",
        "boost software license 1.0 (bsl-1.0)" => "BSL-1.0",
        "zlib/libpng" => "Zlib",
        _ => return None,
    })
}

/// `License :: OSI Approved :: MIT License` → MIT.
fn classifier_license(c: &str) -> Option<&'static str> {
    alias(c.rsplit(" :: ").next().unwrap_or(c))
}

/// A valid SPDX expression for a declared license, if strata can tell:
/// an expression of known ids (`MIT OR Apache-2.0`), an R-style `MIT + file
/// LICENSE`, or a known spelling.
pub fn spdx_license(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 200 || raw.contains('\n') {
        return None;
    }
    // R: `MIT + file LICENSE`, `GPL-2 | GPL-3`.
    let r = raw.strip_suffix("+ file LICENSE").or_else(|| raw.strip_suffix("+ file LICENCE")).map(str::trim).unwrap_or(raw);
    if let Some(id) = alias(r) {
        return Some(id.to_string());
    }
    if r.contains(" | ") {
        let parts: Option<Vec<String>> = r.split(" | ").map(spdx_license).collect();
        return parts.map(|p| p.join(" OR "));
    }
    let tokens: Vec<&str> = r.split(|c: char| c.is_whitespace() || c == '(' || c == ')').filter(|t| !t.is_empty()).collect();
    let ok = !tokens.is_empty()
        && tokens.iter().all(|t| {
            matches!(*t, "AND" | "OR" | "WITH")
                || KNOWN_IDS.contains(t)
                || t.strip_suffix('+').is_some_and(|b| KNOWN_IDS.contains(&b))
                || matches!(*t, "LLVM-exception" | "Classpath-exception-2.0" | "GCC-exception-3.1")
        })
        && !matches!(tokens.first(), Some(&("AND" | "OR" | "WITH")))
        && !matches!(tokens.last(), Some(&("AND" | "OR" | "WITH")));
    ok.then(|| r.to_string())
}

// ---------------------------------------------------------------------------
// The document.

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SPDX ids allow `[A-Za-z0-9.-]`.
fn id_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect()
}

/// purl percent-encoding of a version or qualifier value.
fn purl_enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn platform_id(p: &Platform) -> String {
    crate::platform::format(p)
}

fn license_fields(pkg: &mut serde_json::Map<String, Value>, declared: Option<&str>) {
    pkg.insert("licenseConcluded".into(), json!("NOASSERTION"));
    match declared {
        Some(raw) => match spdx_license(raw) {
            Some(expr) => {
                pkg.insert("licenseDeclared".into(), json!(expr));
            }
            None => {
                pkg.insert("licenseDeclared".into(), json!("NOASSERTION"));
                let mut text: String = raw.chars().take(300).collect();
                if text.len() < raw.len() {
                    text.push('…');
                }
                pkg.insert("licenseComments".into(), json!(format!("declared: {text}")));
            }
        },
        None => {
            pkg.insert("licenseDeclared".into(), json!("NOASSERTION"));
        }
    }
    pkg.insert("copyrightText".into(), json!("NOASSERTION"));
}

fn package(id: &str, name: &str, version: Option<&str>, purl: Option<String>, purpose: Option<&str>) -> serde_json::Map<String, Value> {
    let mut p = serde_json::Map::new();
    p.insert("SPDXID".into(), json!(id));
    p.insert("name".into(), json!(name));
    if let Some(v) = version {
        p.insert("versionInfo".into(), json!(v));
    }
    p.insert("downloadLocation".into(), json!("NOASSERTION"));
    p.insert("filesAnalyzed".into(), json!(false));
    if let Some(purl) = purl {
        p.insert(
            "externalRefs".into(),
            json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]),
        );
    }
    if let Some(purpose) = purpose {
        p.insert("primaryPackagePurpose".into(), json!(purpose));
    }
    p
}

fn relationship(a: &str, kind: &str, b: &str) -> Value {
    json!({"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b})
}

/// `pkg:docker/…` of an image reference and digest.
fn docker_purl(reference: &str, digest: &str, platform: &Platform) -> String {
    let full = crate::reference::normalize_ref(reference);
    let no_digest = full.split('@').next().unwrap_or(&full);
    // Strip the tag (a colon after the last slash).
    let repo = match no_digest.rfind(':') {
        Some(i) if i > no_digest.rfind('/').unwrap_or(0) => &no_digest[..i],
        _ => no_digest,
    };
    let (registry, path) = repo.split_once('/').unwrap_or(("docker.io", repo));
    let mut purl = format!("pkg:docker/{path}@{}", purl_enc(digest));
    let mut q = Vec::new();
    if registry != "docker.io" {
        q.push(format!("repository_url={}", purl_enc(repo)));
    }
    q.push(format!("platform={}", purl_enc(&platform_id(platform))));
    purl.push('?');
    purl.push_str(&q.join("&"));
    purl
}

/// The SPDX 2.3 document, as bytes (pretty JSON, stable for the same facts).
pub fn document(f: &Facts) -> Vec<u8> {
    let mut packages: Vec<Value> = Vec::new();
    let mut files: Vec<Value> = Vec::new();
    let mut rels: Vec<Value> = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image")];

    let mut image = package("SPDXRef-Image", &f.name, None, None, Some("CONTAINER"));
    license_fields(&mut image, None);
    image.insert("comment".into(), json!(format!("built by strata {} for {}", env!("CARGO_PKG_VERSION"), platform_id(&f.platform))));
    packages.push(Value::Object(image));

    if let Some(b) = &f.base {
        let mut p = package(
            "SPDXRef-Base",
            &b.reference,
            Some(&b.digest),
            Some(docker_purl(&b.reference, &b.digest, &f.platform)),
            Some("CONTAINER"),
        );
        if let Some(h) = b.digest.strip_prefix("sha256:") {
            p.insert("checksums".into(), json!([{"algorithm": "SHA256", "checksumValue": h}]));
        }
        license_fields(&mut p, None);
        p.insert("comment".into(), json!("the base image ([image] base), by the manifest digest it resolved to"));
        packages.push(Value::Object(p));
        rels.push(relationship("SPDXRef-Image", "DESCENDANT_OF", "SPDXRef-Base"));
    }

    let distro = if f.distro.version_id.is_empty() { f.distro.id.clone() } else { format!("{}-{}", f.distro.id, f.distro.version_id) };
    let namespace = if f.distro.id.is_empty() { "unknown".to_string() } else { f.distro.id.clone() };
    for (i, o) in f.os.iter().enumerate() {
        let (kind, qual) = match f.os_kind {
            OsKind::Deb => ("deb", "arch"),
            OsKind::Apk => ("apk", "arch"),
        };
        let mut purl = format!("pkg:{kind}/{namespace}/{}@{}?{qual}={}", o.name, purl_enc(&o.version), purl_enc(&o.arch));
        if !distro.is_empty() {
            purl.push_str(&format!("&distro={}", purl_enc(&distro)));
        }
        if let Some(s) = &o.source {
            purl.push_str(&format!("&upstream={}", purl_enc(s)));
        }
        let id = format!("SPDXRef-{kind}-{i}-{}", id_part(&o.name));
        let mut p = package(&id, &o.name, Some(&o.version), Some(purl), None);
        license_fields(&mut p, o.license.as_deref());
        p.insert("comment".into(), json!(if o.in_base { "OS package of the base image" } else { "OS package installed by this build" }));
        packages.push(Value::Object(p));
        rels.push(relationship("SPDXRef-Image", "CONTAINS", &id));
        if o.in_base && f.base.is_some() {
            rels.push(relationship("SPDXRef-Base", "CONTAINS", &id));
        }
    }

    for (i, d) in f.python.iter().enumerate() {
        let purl = format!("pkg:pypi/{}@{}", normalize_name(&d.name), purl_enc(&d.version));
        let id = format!("SPDXRef-pypi-{i}-{}", id_part(&d.name));
        let mut p = package(&id, &d.name, Some(&d.version), Some(purl), Some("LIBRARY"));
        if let Some(h) = &d.sha256 {
            p.insert("checksums".into(), json!([{"algorithm": "SHA256", "checksumValue": h}]));
        }
        license_fields(&mut p, d.license.as_deref());
        let mut comment = format!("Python distribution in {}", d.location);
        if !d.allowed_hashes.is_empty() {
            comment.push_str(&format!("; the pin allows sha256 {}", d.allowed_hashes.join(", ")));
        }
        p.insert("comment".into(), json!(comment));
        packages.push(Value::Object(p));
        rels.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }

    for (i, r) in f.r.iter().enumerate() {
        let purl = format!("pkg:cran/{}@{}", r.name, purl_enc(&r.version));
        let id = format!("SPDXRef-cran-{i}-{}", id_part(&r.name));
        let mut p = package(&id, &r.name, Some(&r.version), Some(purl), Some("LIBRARY"));
        license_fields(&mut p, r.license.as_deref());
        p.insert("comment".into(), json!(format!("R package in {}", r.location)));
        packages.push(Value::Object(p));
        rels.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }

    // Files build steps wrote: a package per step (its outputs), holding
    // the files; SPDX's verification code over their SHA1s.
    let mut steps: Vec<&str> = f.files.iter().map(|x| x.step.as_str()).collect();
    steps.sort();
    steps.dedup();
    let mut n = 0;
    for (si, step) in steps.iter().enumerate() {
        let sid = format!("SPDXRef-Step-{si}-{}", id_part(step));
        let mine: Vec<&FileEntry> = f.files.iter().filter(|x| x.step == *step).collect();
        let mut sha1s: Vec<&str> = mine.iter().map(|x| x.sha1.as_str()).collect();
        sha1s.sort();
        let code = hex(&sha1::Sha1::digest(sha1s.concat().as_bytes()));
        let mut p = package(&sid, &format!("[[step]] {step}"), None, None, Some("FILE"));
        p.insert("filesAnalyzed".into(), json!(true));
        p.insert("packageVerificationCode".into(), json!({"packageVerificationCodeValue": code}));
        license_fields(&mut p, None);
        p.insert(
            "comment".into(),
            json!(format!("the outputs of the build step `{step}`, as files (strata cannot know what packages they came from)")),
        );
        packages.push(Value::Object(p));
        rels.push(relationship("SPDXRef-Image", "CONTAINS", &sid));
        for file in mine {
            let id = format!("SPDXRef-File-{n}");
            n += 1;
            files.push(json!({
                "SPDXID": id,
                "fileName": format!(".{}", file.path),
                "checksums": [{"algorithm": "SHA1", "checksumValue": file.sha1}, {"algorithm": "SHA256", "checksumValue": file.sha256}],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }));
            rels.push(relationship(&sid, "CONTAINS", &id));
        }
    }

    let mut comment = String::from(
        "Read from the built image: the package managers' records (dpkg or apk, Python dist-info, R DESCRIPTION) and the files build steps wrote. Files a step writes are files, not packages.",
    );
    for n in &f.notes {
        comment.push(' ');
        comment.push_str(n);
    }
    let mut doc = serde_json::Map::new();
    doc.insert("spdxVersion".into(), json!("SPDX-2.3"));
    doc.insert("dataLicense".into(), json!("CC0-1.0"));
    doc.insert("SPDXID".into(), json!("SPDXRef-DOCUMENT"));
    doc.insert("name".into(), json!(format!("{} ({})", f.name, platform_id(&f.platform))));
    doc.insert("documentNamespace".into(), json!(""));
    doc.insert(
        "creationInfo".into(),
        json!({"created": f.created, "creators": [format!("Tool: strata-{}", env!("CARGO_PKG_VERSION"))], "comment": comment}),
    );
    doc.insert("packages".into(), Value::Array(packages));
    if !files.is_empty() {
        doc.insert("files".into(), Value::Array(files));
    }
    doc.insert("relationships".into(), Value::Array(rels));
    // The namespace is unique per content: a hash of the document itself.
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    let ns = format!("https://strata.invalid/spdx/{}/{}", id_part(&platform_id(&f.platform)), &hex(&Sha256::digest(&body))[..32]);
    doc.insert("documentNamespace".into(), json!(ns));
    let mut out = serde_json::to_vec_pretty(&Value::Object(doc)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The attestation's options from `attest:sbom` (CSV `k=v`, as BuildKit
/// parses it): strata answers unless a `generator` (scanner image) is
/// named, which leaves the scan to BuildKit.
pub fn wants_own_sbom(value: &str) -> bool {
    !value.split(',').any(|f| f.trim().split_once('=').is_some_and(|(k, v)| k.trim() == "generator" && !v.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\nDescription: GNU C\n multi line\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: libpq5\nStatus: install ok installed\nArchitecture: amd64\nSource: postgresql-15 (15.14-0+deb12u1)\nVersion: 15.14-0+deb12u1\n";

    #[test]
    fn dpkg_status_lists_installed_packages_only() {
        let p = parse_dpkg_status(STATUS);
        assert_eq!(p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["libc6", "libpq5"]);
        assert_eq!(p[1].source.as_deref(), Some("postgresql-15"));
        assert_eq!(p[0].version, "2.36-9+deb12u10");
    }

    #[test]
    fn metadata_license_prefers_the_expression_then_classifiers() {
        let m = "Metadata-Version: 2.4\nName: Flask\nVersion: 3.0.3\nLicense: BSD\nClassifier: License :: OSI Approved :: BSD License\nClassifier: License :: OSI Approved :: MIT License\n\nLong text\nLicense: no\n";
        let d = parse_metadata(m, "/opt/venv/lib/python3.11/site-packages").unwrap();
        assert_eq!((d.name.as_str(), d.version.as_str(), d.license.as_deref()), ("Flask", "3.0.3", Some("MIT")));
        let d = parse_metadata("Name: x\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\n", "/s").unwrap();
        assert_eq!(d.license.as_deref(), Some("MIT OR Apache-2.0"));
        assert!(parse_metadata("Name: x\n", "/s").is_none());
        let d = parse_metadata("Name: x\nVersion: 1\nClassifier: License :: OSI Approved :: BSD License\n", "/s").unwrap();
        assert_eq!(d.license.as_deref(), Some("BSD License"), "ambiguous: kept as text");
    }

    #[test]
    fn licenses_are_valid_spdx_or_not_asserted() {
        assert_eq!(spdx_license("MIT").as_deref(), Some("MIT"));
        assert_eq!(spdx_license("Apache 2.0").as_deref(), Some("Apache-2.0"));
        assert_eq!(spdx_license("(MIT OR Apache-2.0) AND BSD-3-Clause").as_deref(), Some("(MIT OR Apache-2.0) AND BSD-3-Clause"));
        assert_eq!(spdx_license("MIT + file LICENSE").as_deref(), Some("MIT"));
        assert_eq!(spdx_license("GPL-2 | GPL-3").as_deref(), Some("GPL-2.0-or-later"));
        assert_eq!(spdx_license("GPL (>= 2)").as_deref(), Some("GPL-2.0-or-later"));
        for bad in ["BSD", "Dual License", "MIT OR", "Proprietary", "MIT\nmore"] {
            assert_eq!(spdx_license(bad), None, "{bad}");
        }
    }

    #[test]
    fn lock_archives_and_wheel_tags_find_the_installed_file() {
        let lock = "version = 1\n[[package]]\nname = \"Numpy\"\nversion = \"2.1.3\"\nsdist = { url = \"https://x/numpy-2.1.3.tar.gz\", hash = \"sha256:aa\" }\nwheels = [\n { url = \"https://x/numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl\", hash = \"sha256:bb\" },\n { url = \"https://x/numpy-2.1.3-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl\", hash = \"sha256:cc\" },\n]\n";
        let a = lock_archives(lock);
        let files = &a[&("numpy".to_string(), "2.1.3".to_string())];
        let tags = installed_tags("Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n");
        assert_eq!(installed_archive(files, &tags).as_deref(), Some("bb"));
        // no wheel matches: built from the sdist
        assert_eq!(installed_archive(files, &installed_tags("Tag: cp311-cp311-linux_x86_64\n")).as_deref(), Some("aa"));
        let poetry = "[[package]]\nname = \"six\"\nversion = \"1.16.0\"\nfiles = [\n {file = \"six-1.16.0-py2.py3-none-any.whl\", hash = \"sha256:dd\"},\n {file = \"six-1.16.0.tar.gz\", hash = \"sha256:ee\"},\n]\n";
        let a = lock_archives(poetry);
        let files = &a[&("six".to_string(), "1.16.0".to_string())];
        assert_eq!(installed_archive(files, &installed_tags("Tag: py3-none-any\n")).as_deref(), Some("dd"));
    }

    #[test]
    fn requirement_hashes_per_name() {
        let r = "Flask==3.0.3 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\nsix==1.16.0 --hash=sha256:cc\nrequests>=2\n";
        let h = requirement_hashes(r);
        assert_eq!(h["flask"], ["aa", "bb"]);
        assert_eq!(h["six"], ["cc"]);
        assert!(!h.contains_key("requests"));
    }

    fn facts() -> Facts {
        let mut os = parse_dpkg_status(STATUS);
        os[0].in_base = true;
        Facts {
            name: "strata.toml (runtime)".into(),
            platform: Platform { os: "linux".into(), architecture: "amd64".into(), variant: String::new() },
            created: "2024-01-01T00:00:00Z".into(),
            base: Some(BaseImage { reference: "python:3.11-slim".into(), digest: "sha256:0123".into() }),
            distro: parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"),
            os_kind: OsKind::Deb,
            os,
            python: vec![PyDist {
                name: "Flask".into(),
                version: "3.0.3".into(),
                license: Some("BSD".into()),
                location: "/opt/venv".into(),
                sha256: Some("ab".into()),
                allowed_hashes: vec![],
            }],
            r: vec![],
            files: vec![FileEntry { path: "/app/static/app.css".into(), sha1: "11".into(), sha256: "22".into(), step: "assets".into() }],
            notes: vec![],
        }
    }

    #[test]
    fn document_shape() {
        let d: Value = serde_json::from_slice(&document(&facts())).unwrap();
        assert_eq!(d["spdxVersion"], "SPDX-2.3");
        let pkgs = d["packages"].as_array().unwrap();
        let libpq = pkgs.iter().find(|p| p["name"] == "libpq5").unwrap();
        assert_eq!(
            libpq["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libpq5@15.14-0%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=postgresql-15"
        );
        let flask = pkgs.iter().find(|p| p["name"] == "Flask").unwrap();
        assert_eq!(flask["externalRefs"][0]["referenceLocator"], "pkg:pypi/flask@3.0.3");
        assert_eq!(flask["licenseDeclared"], "NOASSERTION");
        assert_eq!(flask["licenseComments"], "declared: BSD");
        let base = pkgs.iter().find(|p| p["SPDXID"] == "SPDXRef-Base").unwrap();
        assert_eq!(base["externalRefs"][0]["referenceLocator"], "pkg:docker/library/python@sha256%3A0123?platform=linux%2Famd64");
        let rels = d["relationships"].as_array().unwrap();
        assert!(rels.iter().any(|r| r["spdxElementId"] == "SPDXRef-Base" && r["relationshipType"] == "CONTAINS"));
        assert_eq!(d["files"][0]["checksums"][0]["algorithm"], "SHA1");
        assert_eq!(d["files"][0]["fileName"], "./app/static/app.css", "SPDX file names are relative");
        let step = pkgs.iter().find(|p| p["name"] == "[[step]] assets").unwrap();
        assert_eq!(step["filesAnalyzed"], true);
        // SPDX 2.3 §7.9: sha1 of the sorted files' sha1s, concatenated
        assert_eq!(step["packageVerificationCode"]["packageVerificationCodeValue"], hex(&sha1::Sha1::digest(b"11")));
    }

    #[test]
    fn document_is_deterministic_and_its_namespace_follows_the_content() {
        let a = document(&facts());
        assert_eq!(a, document(&facts()));
        let mut other = facts();
        other.python[0].version = "3.0.4".into();
        let ns = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap()["documentNamespace"].as_str().unwrap().to_string();
        assert_ne!(ns(&a), ns(&document(&other)));
    }

    #[test]
    fn generator_leaves_the_scan_to_buildkit() {
        assert!(wants_own_sbom(""));
        assert!(wants_own_sbom("type=sbom"));
        assert!(!wants_own_sbom("type=sbom,generator=registry.local/scanner:1"));
    }
}
