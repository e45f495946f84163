//! Shared e2e harness: real `docker buildx build` through real BuildKit
//! with `# syntax=strata:dev`, then checks on the built image.
//!
//! Needs the engine from scripts/engine.sh, the base images from
//! scripts/base-images.sh and the fixtures from scripts/fixtures.sh
//! (scripts/test.sh sets all up). Without an engine these tests skip
//! locally and FAIL under CI=true.
//!
//! Image comparisons (`file_tree`, `image_config`) ignore timestamps and the
//! files that hold the time of the run.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// Starts the lane's engine when it is not the main one, and gives it the
/// images the tests build on (the main engine builds strata:dev).
fn lane_up() -> Result<(), String> {
    let (script, env): (&str, &[(&str, &str)]) = match lane() {
        Lane::Containerd => return Ok(()),
        Lane::Classic => ("scripts/engine2.sh", &[("STRATA_E2_NAME", "classic"), ("STRATA_E2_STORE", "classic")]),
        Lane::Old => ("scripts/old-engine.sh", &[]),
    };
    let up = Command::new("bash").arg(repo().join(script)).arg("up").envs(env.iter().copied()).output().map_err(|e| e.to_string())?;
    if !up.status.success() {
        return Err(format!("{script} up failed:\n{}", String::from_utf8_lossy(&up.stderr)));
    }
    let img =
        Command::new("bash").arg(repo().join("scripts/frontend-image.sh")).env_remove("DOCKER_HOST").output().map_err(|e| e.to_string())?;
    if !img.status.success() {
        return Err(format!("frontend image build failed:\n{}", String::from_utf8_lossy(&img.stderr)));
    }
    sync_images(lane().host().expect("a second engine"))
}

/// The second engine (scripts/engine2.sh: own data root on a small disk,
/// own socket), up and holding strata:dev and the base images: its
/// `DOCKER_HOST`. The fault tests kill and fill it; never the main engine.
pub fn engine2() -> Option<String> {
    static READY: OnceLock<Result<String, String>> = OnceLock::new();
    if !engine() {
        return None;
    }
    let r = READY.get_or_init(|| {
        let up = Command::new("bash").arg(repo().join("scripts/engine2.sh")).arg("up").output().map_err(|e| e.to_string())?;
        if !up.status.success() {
            return Err(format!("scripts/engine2.sh up failed:\n{}", String::from_utf8_lossy(&up.stderr)));
        }
        let host = "unix:///run/strata-engine2/docker.sock".to_string();
        sync_images(&host)?;
        Ok(host)
    });
    match r {
        Ok(h) => Some(h.clone()),
        Err(e) => panic!("engine2 required: {e}"),
    }
}

/// The local registry (scripts/registry.sh, 127.0.0.1:5000), up; both
/// engines have it as an insecure registry.
pub fn registry() -> &'static str {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let r = UP.get_or_init(|| {
        let out = Command::new("bash").arg(repo().join("scripts/registry.sh")).arg("up").output().map_err(|e| e.to_string())?;
        out.status.success().then_some(()).ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    if let Err(e) = r {
        panic!("scripts/registry.sh up failed: {e}");
    }
    "127.0.0.1:5000"
}

/// engine2 is killed, restarted and filled by the fault tests: every test
/// that builds there holds this, one at a time.
pub fn engine2_lock() -> std::sync::MutexGuard<'static, ()> {
    static ENGINE2: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ENGINE2.lock().unwrap_or_else(|e| e.into_inner())
}

/// Copies strata:dev and the base images from the main engine to `host`
/// when its copies differ (by image id).
pub fn sync_images(host: &str) -> Result<(), String> {
    for img in ["strata:dev", "strata-test/python:3.11", "strata-test/busybox:latest"] {
        let id = |h: Option<&str>| {
            let mut c = docker();
            match h {
                Some(h) => c.env("DOCKER_HOST", h),
                None => c.env_remove("DOCKER_HOST"),
            };
            c.args(["image", "inspect", "--format", "{{.Id}}", img]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let (here, there) = (id(None).map_err(|e| e.to_string())?, id(Some(host)).unwrap_or_default());
        if here.is_empty() {
            return Err(format!("{img} is missing on the main engine"));
        }
        if here != there {
            let script = format!("docker save {img} | DOCKER_HOST={host} docker load -q");
            let out = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("PATH", format!("/opt/strata-engine/root/usr/bin:{}", std::env::var("PATH").unwrap_or_default()))
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("{script}: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
    }
    Ok(())
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn docker() -> Command {
    let mut c = Command::new("docker");
    // Prefer the engine's CLI (28.5) over any older docker on PATH.
    let path = format!("/opt/strata-engine/root/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
    c.env("PATH", path);
    if let Some(h) = lane().host() {
        c.env("DOCKER_HOST", h);
    }
    c
}

/// The docker CLI talking to another engine (`DOCKER_HOST`), e.g. engine2.
pub fn docker_on(host: &str) -> Command {
    let mut c = docker();
    c.env("DOCKER_HOST", host);
    c
}

/// The engine the suite runs against (`STRATA_LANE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Containerd,
    Classic,
    Old,
}

/// What a test may need of its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// MergeOp/DiffOp (the containerd image store).
    MergeOp,
    /// Multi-platform images and attestations exported to the store.
    MultiPlatform,
    /// `--call` subrequests, framed spec errors, Dockerfile 1.7 syntax
    /// (COPY --exclude) in the built-in frontend: BuildKit >= v0.13.
    ModernBuildkit,
    /// The main lane only: tests that use the second engine, a registry,
    /// or measure the engine itself (run once, not per lane).
    Primary,
}

impl Lane {
    pub fn host(self) -> Option<&'static str> {
        match self {
            Lane::Containerd => None,
            Lane::Classic => Some("unix:///run/strata-classic/docker.sock"),
            Lane::Old => Some("unix:///run/strata-old/docker.sock"),
        }
    }

    pub fn has(self, f: Feature) -> bool {
        match f {
            Feature::MergeOp | Feature::MultiPlatform | Feature::Primary => self == Lane::Containerd,
            Feature::ModernBuildkit => self != Lane::Old,
        }
    }
}

pub fn lane() -> Lane {
    match std::env::var("STRATA_LANE").as_deref() {
        Ok("classic") => Lane::Classic,
        Ok("old") => Lane::Old,
        Ok("containerd") | Err(_) => Lane::Containerd,
        Ok(other) => panic!("STRATA_LANE={other}: containerd, classic or old"),
    }
}

/// Whether a test can run here: an engine answers (else it skips, or fails
/// under CI=true) and the lane has every feature it needs (else it skips,
/// saying which).
pub fn gate(needs: &[Feature]) -> bool {
    if let Some(f) = needs.iter().find(|f| !lane().has(**f)) {
        eprintln!("SKIP on the {:?} lane: needs {f:?}", lane());
        return false;
    }
    engine()
}

/// `gate!(Feature, ...)`: return from the test unless the engine is there
/// and has these features.
macro_rules! gate {
    ($($f:ident),*) => {
        if !$crate::common::gate(&[$($crate::common::Feature::$f),*]) {
            return;
        }
    };
}

/// The local base image the tests swap in for python images.
pub const PY: &str = "BASE=strata-test/python:3.11";

/// The strata CLI of this checkout.
pub fn strata(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).current_dir(dir).output().unwrap()
}

/// The engine has the containerd image store (and so MergeOp).
pub fn containerd_store() -> bool {
    let out = docker().args(["info", "--format", "{{json .DriverStatus}}"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("io.containerd.snapshotter")
}

/// True when the engine is usable and the frontend image is fresh.
pub fn engine() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        lane_up()?;
        let info = docker().args(["info", "--format", "{{.ServerVersion}}"]).output().map_err(|e| e.to_string())?;
        if !info.status.success() {
            return Err(format!("docker info failed: {}", String::from_utf8_lossy(&info.stderr)));
        }
        // Rebuild strata:dev from this checkout so tests never run a stale
        // frontend (a no-op when nothing changed).
        let img = Command::new("bash").arg(repo().join("scripts/frontend-image.sh")).output().map_err(|e| e.to_string())?;
        if !img.status.success() {
            return Err(format!("frontend image build failed:\n{}", String::from_utf8_lossy(&img.stderr)));
        }
        for base in ["strata-test/busybox:latest", "strata-test/python:3.11"] {
            let ok = docker().args(["image", "inspect", base]).output().map(|o| o.status.success()).unwrap_or(false);
            if !ok {
                return Err(format!("base image {base} missing: run scripts/base-images.sh"));
            }
        }
        Ok(())
    });
    match r {
        Ok(()) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("engine required under CI=true: {e}"),
        Err(e) => {
            eprintln!("SKIP (no engine; run scripts/test.sh): {e}");
            false
        }
    }
}

/// A scratch copy of an example, so tests can edit files freely.
pub struct Project {
    pub dir: PathBuf,
    pub tag: String,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Project {
    /// A scratch copy of a directory of this repo (e.g. a test fixture).
    pub fn from_dir(rel: &str) -> Self {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = rel.replace('/', "-");
        let dir = std::env::temp_dir().join(format!("strata-e2e-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let src = repo().join(rel);
        assert!(
            src.join("wheels").is_dir() || !std::fs::read_to_string(src.join("strata.toml")).unwrap_or_default().contains("wheels ="),
            "{rel}/wheels is missing: run scripts/fixtures.sh"
        );
        copy_dir(&src, &dir);
        Project { dir, tag: format!("strata-e2e/{name}-{n}:latest") }
    }

    /// An empty scratch project to write files into.
    pub fn empty(name: &str) -> Self {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("strata-e2e-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Project { dir, tag: format!("strata-e2e/{name}-{n}:latest") }
    }

    pub fn from_example(name: &str) -> Self {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("strata-e2e-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let src = repo().join("examples").join(name);
        let spec = std::fs::read_to_string(src.join("strata.toml")).unwrap_or_default();
        for (needle, fixture) in [("wheels = \"wheels\"", "wheels"), ("context:cran", "cran")] {
            assert!(
                !spec.contains(needle) || src.join(fixture).is_dir(),
                "examples/{name}/{fixture} is missing: run scripts/fixtures.sh (scripts/test.sh does)"
            );
        }
        copy_dir(&src, &dir);
        Project { dir, tag: format!("strata-e2e/{name}-{n}:latest") }
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn build(&self, extra: &[&str]) -> Build {
        self.build_file("strata.toml", extra)
    }

    pub fn build_file(&self, spec: &str, extra: &[&str]) -> Build {
        self.build_at(None, spec, extra)
    }

    /// The `docker buildx build` command line for `spec`, on `host` (a
    /// `DOCKER_HOST`; None for the main engine).
    pub fn build_command(&self, host: Option<&str>, spec: &str, extra: &[&str]) -> Command {
        let mut c = docker();
        if let Some(h) = host {
            c.env("DOCKER_HOST", h);
        }
        c.current_dir(&self.dir).args(["buildx", "build", "--progress=plain", "-f", spec, "-t", &self.tag]);
        for named in ["wheels", "cran"] {
            if self.dir.join(named).is_dir() {
                c.args(["--build-context", &format!("{named}=./{named}")]);
            }
        }
        c.args(extra).arg(".");
        c
    }

    /// A build on another engine (`DOCKER_HOST`), or the main one.
    pub fn build_at(&self, host: Option<&str>, spec: &str, extra: &[&str]) -> Build {
        let mut c = self.build_command(host, spec, extra);
        let b = Build::new(c.output().expect("docker buildx build"));
        if host.is_some() {
            return b;
        }
        // Engine race, not ours: with the containerd image store, another
        // test's `docker image rm` can collect a snapshot while this build's
        // exporter unpacks onto it ("parent snapshot … does not exist").
        // The solve itself succeeded; run the build once more. What ran and
        // what was cached is the first attempt's: the retry finds every
        // step the first one solved in the cache.
        if !b.ok && b.log.contains("failed to prepare extraction snapshot") && b.log.contains("does not exist") {
            eprintln!("retrying a build that hit the image-unpack snapshot race:\n{}", b.log);
            let retry = Build::new(c.output().expect("docker buildx build"));
            return Build { steps: Some(b.log), ..retry };
        }
        b
    }

    /// `docker run --rm` with an entrypoint override; stdout.
    pub fn run(&self, entrypoint: &str, args: &[&str]) -> String {
        let out = docker().args(["run", "--rm", "--entrypoint", entrypoint, &self.tag]).args(args).output().unwrap();
        assert!(out.status.success(), "run {entrypoint} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// What strata left in the image: its temp and tool dirs, the caches.
    /// As root: the image user cannot read /root, and a `find` that is
    /// denied prints nothing.
    pub fn residue(&self) -> String {
        let script = "find /tmp /root/.cache /opt/strata* -mindepth 0 2>/dev/null | grep -vx /tmp; true";
        let out = docker().args(["run", "--rm", "--user", "0", "--entrypoint", "sh", &self.tag, "-c", script]).output().unwrap();
        assert!(out.status.success(), "residue: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn inspect(&self, format: &str) -> String {
        let out = docker().args(["image", "inspect", "--format", format, &self.tag]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = docker().args(["image", "rm", "-f", &self.tag]).output();
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// A finished build and its plain progress log.
pub struct Build {
    pub ok: bool,
    pub log: String,
    /// The log `vertices` reads when it is not `log`: a retried build's
    /// first attempt.
    pub steps: Option<String>,
}

impl Build {
    pub fn new(out: Output) -> Self {
        let mut log = String::from_utf8_lossy(&out.stderr).to_string();
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        Build { ok: out.status.success(), log, steps: None }
    }

    pub fn assert_ok(self) -> Self {
        assert!(self.ok, "build failed:\n{}", self.log);
        self
    }

    pub fn assert_failed(self) -> Self {
        assert!(!self.ok, "build succeeded but must fail:\n{}", self.log);
        self
    }

    /// Vertex name → whether BuildKit reported it CACHED.
    pub fn vertices(&self) -> BTreeMap<String, bool> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut cached: BTreeMap<String, bool> = BTreeMap::new();
        for line in self.steps.as_deref().unwrap_or(&self.log).lines() {
            let Some(rest) = line.strip_prefix('#') else { continue };
            let Some((id, text)) = rest.split_once(' ') else { continue };
            if text == "CACHED" {
                cached.insert(id.to_string(), true);
            } else if !names.contains_key(id) && !text.starts_with("DONE") && !text.starts_with("ERROR") {
                names.insert(id.to_string(), text.to_string());
            }
        }
        names.into_iter().map(|(id, name)| (name, cached.contains_key(&id))).collect()
    }

    /// Whether the vertex whose name starts with `prefix` was CACHED.
    pub fn cached(&self, prefix: &str) -> bool {
        let v = self.vertices();
        let hits: Vec<_> = v.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        assert!(!hits.is_empty(), "no vertex named {prefix:?} in build log:\n{}", self.log);
        hits.iter().all(|(_, c)| **c)
    }
}

/// A value unique to this moment, for edits that must miss every cache.
pub fn nonce() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Whether `needle` occurs anywhere in the image as exported: every layer
/// (decompressed), the config, the manifests, the history.
pub fn image_contains(tag: &str, needle: &str) -> bool {
    let dir = std::env::temp_dir().join(format!("strata-save-{}-{}", std::process::id(), nonce()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "set -e; docker save {tag} | tar -x -C {d}; find {d} -type f | while read -r f; do gzip -dcf \"$f\"; done | grep -a -c -F -- {needle} || true",
        d = dir.display(),
        needle = shell_word(needle)
    );
    let out = docker_sh(&script);
    let _ = std::fs::remove_dir_all(&dir);
    out.trim() != "0"
}

/// Runs a shell script with the engine's docker first on PATH.
pub fn docker_sh(script: &str) -> String {
    let path = format!("/opt/strata-engine/root/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).env("PATH", path);
    if let Some(h) = lane().host() {
        c.env("DOCKER_HOST", h);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Polls an HTTP endpoint from inside a running container (the images
/// have python but no curl).
pub fn http_get(container: &str, url: &str) -> String {
    let probe = format!(
        "import time, urllib.request\nfor _ in range(50):\n    try:\n        print(urllib.request.urlopen('{url}').read().decode()); break\n    except Exception:\n        time.sleep(0.2)\n"
    );
    let out = docker().args(["exec", container, "python", "-c", &probe]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container running the project's image, removed on drop.
pub struct Running(pub String);

impl Running {
    pub fn start(p: &Project, extra: &[&str]) -> Self {
        let name = format!("strata-e2e-{}-{}", std::process::id(), nonce());
        let out = docker().args(["run", "-d", "--rm", "--name", &name]).args(extra).arg(&p.tag).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Running(name)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = docker().args(["rm", "-f", &self.0]).output();
    }
}

/// An image's files, from `docker export`: path → "type mode uid:gid size sha256 link".
pub fn file_tree(tag: &str) -> BTreeMap<String, String> {
    let out = docker().args(["create", tag, "true"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let export = docker().args(["export", &id]).output().unwrap();
    let _ = docker().args(["rm", "-f", &id]).output();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(&export.stdout[..]);
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        if volatile(&path) {
            continue;
        }
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = format!("{:?}", h.entry_type());
        let desc = format!(
            "{kind} {:o} {}:{} {} {:x} {link}",
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            h.gid().unwrap(),
            data.len(),
            Sha256::digest(&data)
        );
        files.insert(path, desc);
    }
    files
}

/// Files whose content is the time of the run (or the container's own).
pub fn volatile(path: &str) -> bool {
    path.starts_with("var/log/")
        || path == "var/cache/ldconfig/aux-cache"
        || matches!(path, ".dockerenv" | "etc/hostname" | "etc/hosts" | "etc/resolv.conf")
}

pub fn image_config(tag: &str) -> String {
    let out = docker()
        .args(["image", "inspect", "--format", "{{json .Config.Env}} {{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}} {{json .Config.Healthcheck}} {{.Config.StopSignal}}", tag])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Differences between two trees: `~` changed, `-` only in `a`, `+` only in `b`.
pub fn tree_diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (path, want) in a {
        match b.get(path) {
            Some(got) if got == want => {}
            Some(got) => diffs.push(format!("~ {path}: {want} | {got}")),
            None => diffs.push(format!("- {path}")),
        }
    }
    for path in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("+ {path}"));
    }
    diffs
}

/// A PEP 503 "simple" package index over plain HTTP, serving wheel
/// directories under prefixes (`/PREFIX/simple/NAME/`, `/PREFIX/files/F`),
/// reachable from build containers at the docker bridge gateway. It logs
/// the paths asked for, so a test can see which index served what.
pub struct Index {
    /// `http://GATEWAY:PORT`
    pub base: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// While set, requests wait (an install that hangs mid-way).
    pub stall: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Index {
    pub fn start(repos: &[(&str, PathBuf)]) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let gw = docker().args(["network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"]).output().unwrap();
        let gw = String::from_utf8_lossy(&gw.stdout).trim().to_string();
        assert!(!gw.is_empty(), "no docker bridge gateway");
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let repos: Vec<(String, PathBuf)> = repos.iter().map(|(p, d)| (p.to_string(), d.clone())).collect();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = log.clone();
        let stall = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stall2 = stall.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (repos, log2, stall2) = (repos.clone(), log2.clone(), stall2.clone());
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    // skip the headers
                    let mut h = String::new();
                    while reader.read_line(&mut h).map(|n| n > 2).unwrap_or(false) {
                        h.clear();
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    log2.lock().unwrap().push(path.clone());
                    while stall2.load(std::sync::atomic::Ordering::SeqCst) {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    let (status, ctype, body) = Self::answer(&repos, &path);
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(&body));
                });
            }
        });
        Index { base: format!("http://{gw}:{port}"), log, stall }
    }

    fn answer(repos: &[(String, PathBuf)], path: &str) -> (&'static str, &'static str, Vec<u8>) {
        let not_found = ("404 Not Found", "text/plain", b"not found".to_vec());
        let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let Some((_, dir)) = repos.iter().find(|(p, _)| Some(&p.as_str()) == parts.first()) else { return not_found };
        let wheels: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".whl"))
            .collect();
        match parts.as_slice() {
            [prefix, "simple", name] => {
                let links: Vec<String> = wheels
                    .iter()
                    .filter(|w| norm(w.split('-').next().unwrap_or("")) == norm(name))
                    .map(|w| format!("<a href=\"/{prefix}/files/{w}\">{w}</a><br>"))
                    .collect();
                if links.is_empty() {
                    return not_found;
                }
                ("200 OK", "text/html", format!("<!DOCTYPE html><html><body>{}</body></html>", links.join("\n")).into_bytes())
            }
            [_, "files", file] if wheels.iter().any(|w| w == file) => {
                ("200 OK", "application/octet-stream", std::fs::read(dir.join(file)).unwrap())
            }
            _ => not_found,
        }
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}
