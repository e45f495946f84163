//! `--sbom=true`: strata's own SBOM, read from the built result.
//!
//! For each platform the frontend reads the package managers' records out
//! of the image it just solved (and out of the base image, to tell which
//! packages the build added), hashes the files build steps wrote, builds
//! the SPDX document (`crate::sbom`), puts it in a one-file scratch state
//! and returns it as an in-toto attestation. Any attestation with the SPDX
//! predicate turns BuildKit's scanner fallback off, so nothing is pulled.

use std::collections::{BTreeMap, BTreeSet};

use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;

use super::{read_file, result_ref, Client, FrontendError};
use crate::platform::Platform;
use crate::sbom::{self, Facts, FileEntry, OsKind, PyDist, RPackage};
use crate::spec::{Spec, StepStage};

/// Files hashed for `[[step]]` outputs, at most (the rest is said in the
/// document), and bytes read for them.
const MAX_FILES: usize = 2000;
const MAX_FILE_BYTES: u64 = 64 << 20;
const MAX_DISTS: usize = 5000;
/// Go's `os.ModeDir` and `os.ModeSymlink` in fsutil's `Stat.mode`.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;

pub struct Scan<'a> {
    pub spec: &'a Spec,
    /// Dependency files read for the plan (requirements, locks).
    pub files: &'a BTreeMap<String, Vec<u8>>,
    pub name: String,
    pub platform: Platform,
    pub created: String,
    /// The base as written, its digest and a definition of it alone.
    pub base: Option<(String, String, bollard_buildkit_proto::pb::Definition)>,
    /// The stage scanned is the builder (its tools are not the image's).
    pub builder: bool,
}

/// The attestation for one platform's result `image_ref`, saved as
/// `path` (`sbom.spdx.json`, or `sbom-builder.spdx.json`).
pub async fn attestation(client: &mut Client, image_ref: &str, scan: &Scan<'_>, path: &str) -> Result<gw::Attestation, FrontendError> {
    let facts = gather(client, image_ref, scan).await?;
    let doc = sbom::document(&facts);
    let platform = bollard_buildkit_proto::pb::Platform::from(&scan.platform);
    let def = crate::llb::single_file(path, doc, Some(platform), "[strata] sbom");
    let res = client
        .solve(gw::SolveRequest { definition: Some(def), allow_result_return: true, allow_result_array_ref: true, ..Default::default() })
        .await?
        .into_inner();
    let r = result_ref(res)?;
    Ok(gw::Attestation {
        kind: gw::AttestationKind::InToto as i32,
        metadata: [("reason".to_string(), b"sbom".to_vec())].into_iter().collect(),
        r#ref: Some(gw::Ref { id: r.id, def: None }),
        path: path.to_string(),
        in_toto_predicate_type: sbom::PREDICATE_TYPE.to_string(),
        in_toto_subjects: vec![],
    })
}

async fn gather(client: &mut Client, image_ref: &str, scan: &Scan<'_>) -> Result<Facts, FrontendError> {
    let mut notes = Vec::new();
    let os_release = match read_file(client, image_ref, "/etc/os-release").await? {
        Some(d) => Some(d),
        None => read_file(client, image_ref, "/usr/lib/os-release").await?,
    };
    let distro = os_release.map(|d| sbom::parse_os_release(&String::from_utf8_lossy(&d))).unwrap_or_default();
    let (os_kind, mut os) = os_packages(client, image_ref).await?;

    let mut base = None;
    if let Some((reference, digest, def)) = &scan.base {
        let res = client
            .solve(gw::SolveRequest {
                definition: Some(def.clone()),
                allow_result_return: true,
                allow_result_array_ref: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        let base_ref = result_ref(res)?.id;
        let (_, in_base) = os_packages(client, &base_ref).await?;
        let in_base: BTreeSet<(String, String)> = in_base.into_iter().map(|p| (p.name, p.version)).collect();
        for p in &mut os {
            p.in_base = in_base.contains(&(p.name.clone(), p.version.clone()));
        }
        base = Some(sbom::BaseImage { reference: reference.clone(), digest: digest.clone() });
    }

    let python = python_dists(client, image_ref, scan, &mut notes).await?;
    let r = r_packages(client, image_ref).await?;
    let files = if scan.builder { vec![] } else { step_files(client, image_ref, scan, &mut notes).await? };
    Ok(Facts {
        name: scan.name.clone(),
        platform: scan.platform.clone(),
        created: scan.created.clone(),
        base,
        distro,
        os_kind,
        os,
        python,
        r,
        files,
        notes,
    })
}

async fn read_dir(client: &mut Client, r#ref: &str, dir: &str, pattern: &str) -> Result<Vec<(String, u32, i64)>, FrontendError> {
    let req = gw::ReadDirRequest {
        r#ref: r#ref.to_string(),
        dir_path: dir.to_string(),
        include_pattern: pattern.to_string(),
        ..Default::default()
    };
    match client.read_dir(req).await {
        Ok(r) => {
            let mut out: Vec<(String, u32, i64)> = r.into_inner().entries.into_iter().map(|s| (s.path, s.mode, s.size)).collect();
            out.sort();
            Ok(out)
        }
        Err(s) if s.code() == tonic::Code::NotFound || s.message().contains("no such file") || s.message().contains("not a directory") => {
            Ok(vec![])
        }
        Err(s) => Err(s.into()),
    }
}

/// Reads many files concurrently (each read is a round trip).
async fn read_many(client: &Client, r#ref: &str, paths: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, FrontendError> {
    let mut out = vec![None; paths.len()];
    for (chunk_no, chunk) in paths.chunks(32).enumerate() {
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in chunk.iter().enumerate() {
            let mut c = client.clone();
            let (r, p) = (r#ref.to_string(), p.clone());
            set.spawn(async move { (i, read_file(&mut c, &r, &p).await) });
        }
        while let Some(j) = set.join_next().await {
            let (i, data) = j.map_err(|e| FrontendError::Other(format!("reading the image for the SBOM: {e}")))?;
            out[chunk_no * 32 + i] = data?;
        }
    }
    Ok(out)
}

/// dpkg's status (and distroless' `status.d`), else apk's installed db.
async fn os_packages(client: &mut Client, r#ref: &str) -> Result<(OsKind, Vec<sbom::OsPackage>), FrontendError> {
    let mut text =
        read_file(client, r#ref, "/var/lib/dpkg/status").await?.map(|d| String::from_utf8_lossy(&d).into_owned()).unwrap_or_default();
    let parts: Vec<String> = read_dir(client, r#ref, "/var/lib/dpkg/status.d", "")
        .await?
        .into_iter()
        .map(|(n, _, _)| format!("/var/lib/dpkg/status.d/{n}"))
        .collect();
    for d in read_many(client, r#ref, parts).await?.into_iter().flatten() {
        text.push_str("\n\n");
        text.push_str(&String::from_utf8_lossy(&d));
    }
    if !text.trim().is_empty() {
        return Ok((OsKind::Deb, sbom::parse_dpkg_status(&text)));
    }
    let apk = read_file(client, r#ref, "/lib/apk/db/installed").await?;
    Ok((OsKind::Apk, apk.map(|d| sbom::parse_apk_installed(&String::from_utf8_lossy(&d))).unwrap_or_default()))
}

/// Site-packages directories: the venv's, and the base's Python under
/// /usr/local (official python images). Debian's own dist-packages are
/// dpkg's and listed as OS packages.
async fn site_dirs(client: &mut Client, r#ref: &str, spec: &Spec, builder: bool) -> Result<Vec<String>, FrontendError> {
    let mut roots = vec!["/usr/local/lib".to_string()];
    if let Some(py) = &spec.python {
        roots.insert(0, format!("{}/lib", py.venv.trim_end_matches('/')));
    }
    if builder {
        // The builder's tool venvs (pip, uv, poetry/pdm for lock exports).
        use crate::plan::python::{EXPORT_TOOL, PIP_HOME, UV_HOME};
        roots.extend([PIP_HOME, UV_HOME, EXPORT_TOOL].map(|t| format!("{t}/lib")));
    }
    let mut out = Vec::new();
    for root in roots {
        for (name, mode, _) in read_dir(client, r#ref, &root, "python3*").await? {
            if mode & MODE_DIR != 0 {
                out.push(format!("{root}/{name}/site-packages"));
            }
        }
    }
    Ok(out)
}

async fn python_dists(client: &mut Client, r#ref: &str, scan: &Scan<'_>, notes: &mut Vec<String>) -> Result<Vec<PyDist>, FrontendError> {
    // What the pins say about archives: locks (exact file per platform) and
    // hashed requirement pins.
    let mut archives: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    let mut pinned: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, data) in scan.files {
        let text = String::from_utf8_lossy(data);
        if path.ends_with(".lock") {
            for (k, v) in sbom::lock_archives(&text) {
                archives.entry(k).or_default().extend(v);
            }
        } else if !path.ends_with(".toml") {
            for (k, v) in sbom::requirement_hashes(&text) {
                pinned.entry(k).or_default().extend(v);
            }
        }
    }
    let mut dists = Vec::new();
    for site in site_dirs(client, r#ref, scan.spec, scan.builder).await? {
        let entries: Vec<String> = read_dir(client, r#ref, &site, "*.dist-info").await?.into_iter().map(|(n, _, _)| n).collect();
        if dists.len() + entries.len() > MAX_DISTS {
            notes.push(format!("{site}: more than {MAX_DISTS} distributions; the rest are not listed."));
            break;
        }
        let mut paths = Vec::new();
        for e in &entries {
            paths.push(format!("{site}/{e}/METADATA"));
            paths.push(format!("{site}/{e}/WHEEL"));
        }
        let read = read_many(client, r#ref, paths).await?;
        for pair in read.chunks(2) {
            let Some(meta) = &pair[0] else { continue };
            let Some(mut d) = sbom::parse_metadata(&String::from_utf8_lossy(meta), &site) else { continue };
            let key = (sbom::normalize_name(&d.name), d.version.clone());
            let tags = pair[1].as_ref().map(|w| sbom::installed_tags(&String::from_utf8_lossy(w))).unwrap_or_default();
            if let Some(files) = archives.get(&key) {
                d.sha256 = sbom::installed_archive(files, &tags);
            } else if let Some(h) = pinned.get(&key.0) {
                match h.as_slice() {
                    [one] => d.sha256 = Some(one.clone()),
                    many => d.allowed_hashes = many.to_vec(),
                }
            }
            dists.push(d);
        }
    }
    dists.sort();
    dists.dedup();
    Ok(dists)
}

async fn r_packages(client: &mut Client, r#ref: &str) -> Result<Vec<RPackage>, FrontendError> {
    let lib = crate::plan::R_LIBS;
    let names: Vec<String> =
        read_dir(client, r#ref, lib, "").await?.into_iter().filter(|(_, m, _)| m & MODE_DIR != 0).map(|(n, _, _)| n).collect();
    let paths = names.iter().map(|n| format!("{lib}/{n}/DESCRIPTION")).collect();
    let mut out: Vec<RPackage> = read_many(client, r#ref, paths)
        .await?
        .into_iter()
        .flatten()
        .filter_map(|d| sbom::parse_description(&String::from_utf8_lossy(&d), lib))
        .collect();
    out.sort();
    Ok(out)
}

/// The files `[[step]]` outputs put in the image, hashed.
async fn step_files(client: &mut Client, r#ref: &str, scan: &Scan<'_>, notes: &mut Vec<String>) -> Result<Vec<FileEntry>, FrontendError> {
    let workdir = &scan.spec.image.workdir.value;
    let mut found: Vec<(String, String)> = Vec::new(); // (path, step)
    let mut truncated = false;
    for step in scan.spec.steps.iter().filter(|s| s.stage == StepStage::Build) {
        for out in &step.outputs {
            let Some(path) = crate::plan::join_path(workdir, &out.value) else { continue };
            let path = format!("/{}", path.trim_start_matches('/'));
            // A directory is walked (breadth first, bounded); a file is itself.
            let mut todo = vec![path.clone()];
            let mut is_root = true;
            while let Some(dir) = todo.pop() {
                let entries = read_dir(client, r#ref, &dir, "").await?;
                if entries.is_empty() && is_root {
                    found.push((path.clone(), step.name.value.clone()));
                }
                is_root = false;
                for (name, mode, _) in entries {
                    let p = format!("{}/{name}", dir.trim_end_matches('/'));
                    if mode & MODE_SYMLINK != 0 {
                        continue;
                    } else if mode & MODE_DIR != 0 {
                        todo.push(p);
                    } else if found.len() < MAX_FILES {
                        found.push((p, step.name.value.clone()));
                    } else {
                        truncated = true;
                    }
                }
            }
        }
    }
    if truncated {
        notes.push(format!("Build-step outputs hold more than {MAX_FILES} files; the first {MAX_FILES} are listed."));
    }
    let mut entries = Vec::new();
    let mut bytes: u64 = 0;
    let paths: Vec<String> = found.iter().map(|(p, _)| format!("/{}", p.trim_start_matches('/'))).collect();
    for chunk in paths.chunks(64).zip(found.chunks(64)) {
        let data = read_many(client, r#ref, chunk.0.to_vec()).await?;
        for ((path, (_, step)), d) in chunk.0.iter().zip(chunk.1).zip(data) {
            let Some(d) = d else { continue };
            bytes += d.len() as u64;
            if bytes > MAX_FILE_BYTES {
                notes.push(format!("Build-step outputs are more than {} MiB; files past that are not listed.", MAX_FILE_BYTES >> 20));
                entries.sort();
                return Ok(entries);
            }
            use sha1::Digest as _;
            let sha1 = hex(&sha1::Sha1::digest(&d));
            let sha256 = hex(&sha2::Sha256::digest(&d));
            entries.push(FileEntry { path: path.clone(), sha1, sha256, step: step.clone() });
        }
    }
    entries.sort();
    Ok(entries)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
