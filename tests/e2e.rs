//! End-to-end: real `docker buildx build` through real BuildKit with
//! `# syntax=strata:dev`, then checks on the built image.
//!
//! Needs the engine from scripts/engine.sh and the base images from
//! scripts/base-images.sh (scripts/test.sh sets both up). Without an engine
//! these tests skip locally and FAIL under CI=true.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docker() -> Command {
    let mut c = Command::new("docker");
    // Prefer the engine's CLI (28.5) over any older docker on PATH.
    let path = format!("/opt/strata-engine/root/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
    c.env("PATH", path);
    c
}

/// True when the engine is usable and the frontend image is fresh.
fn engine() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
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
struct Project {
    dir: PathBuf,
    tag: String,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Project {
    fn from_example(name: &str) -> Self {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("strata-e2e-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&repo().join("examples").join(name), &dir);
        Project { dir, tag: format!("strata-e2e/{name}-{n}:latest") }
    }

    fn write(&self, rel: &str, content: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn build(&self, extra: &[&str]) -> Build {
        self.build_file("strata.toml", extra)
    }

    fn build_file(&self, spec: &str, extra: &[&str]) -> Build {
        let mut c = docker();
        c.current_dir(&self.dir).args(["buildx", "build", "--progress=plain", "-f", spec, "-t", &self.tag]);
        if self.dir.join("wheels").is_dir() {
            c.args(["--build-context", "wheels=./wheels"]);
        }
        c.args(extra).arg(".");
        let out = c.output().expect("docker buildx build");
        Build::new(out)
    }

    /// `docker run --rm` with an entrypoint override; stdout.
    fn run(&self, entrypoint: &str, args: &[&str]) -> String {
        let out = docker().args(["run", "--rm", "--entrypoint", entrypoint, &self.tag]).args(args).output().unwrap();
        assert!(out.status.success(), "run {entrypoint} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn inspect(&self, format: &str) -> String {
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

fn copy_dir(from: &Path, to: &Path) {
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
struct Build {
    ok: bool,
    log: String,
}

impl Build {
    fn new(out: Output) -> Self {
        let mut log = String::from_utf8_lossy(&out.stderr).to_string();
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        Build { ok: out.status.success(), log }
    }

    fn assert_ok(self) -> Self {
        assert!(self.ok, "build failed:\n{}", self.log);
        self
    }

    /// Vertex name → whether BuildKit reported it CACHED.
    fn vertices(&self) -> BTreeMap<String, bool> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut cached: BTreeMap<String, bool> = BTreeMap::new();
        for line in self.log.lines() {
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
    fn cached(&self, prefix: &str) -> bool {
        let v = self.vertices();
        let hits: Vec<_> = v.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        assert!(!hits.is_empty(), "no vertex named {prefix:?} in build log:\n{}", self.log);
        hits.iter().all(|(_, c)| **c)
    }
}

#[test]
fn hello_example_builds_and_runs() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.build(&[]).assert_ok();
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello from strata (uid 1000) in /app: it works");
    // Only the declared files are in the image: not the .tmp the spec
    // excludes, not files outside [app] copy.
    assert_eq!(p.run("sh", &["-c", "cd /app && find . -type f | sort"]), "./data/message.txt\n./hello.sh");
    assert_eq!(p.run("id", &["-u"]), "1000");
    assert_eq!(p.run("sh", &["-c", "stat -c %u:%g /app /app/hello.sh"]), "1000:1000\n1000:1000");
    assert_eq!(p.inspect("{{.Config.User}}"), "1000:1000");
    assert_eq!(p.inspect("{{json .Config.Entrypoint}}"), r#"["sh","/app/hello.sh"]"#);
    assert!(p.inspect("{{json .Config.Env}}").contains("GREETING=hello from strata"));
    assert_eq!(p.inspect("{{index .Config.Labels \"org.opencontainers.image.title\"}}"), "hello");
    // base layer + user + workdir + one layer per copy entry
    assert_eq!(p.inspect("{{len .RootFS.Layers}}"), "5");
}

#[test]
fn build_args_override_defaults() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.build(&["--build-arg", "GREETING=hi there"]).assert_ok();
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hi there (uid 1000)"));
}

#[test]
fn spec_errors_show_the_spec_line() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.write("bad.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\nentrypont = [\"sh\"]\n");
    let b = p.build_file("bad.toml", &[]);
    assert!(!b.ok);
    assert!(b.log.contains("bad.toml:5:1: unknown key `entrypont` in [image]; did you mean `entrypoint`?"), "{}", b.log);
    // buildx frames the offending line from the source map we attached
    assert!(b.log.contains(">>> entrypont = [\"sh\"]"), "{}", b.log);
}

#[test]
fn failing_step_points_at_its_spec_line() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.write(
        "bad.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/python:3.11\"\n[system]\npackages = [\"no-such-package-strata\"]\n",
    );
    let b = p.build_file("bad.toml", &[]);
    assert!(!b.ok);
    assert!(b.log.contains("Unable to locate package no-such-package-strata"), "{}", b.log);
    // Our op digests match BuildKit's, so its source map finds the line.
    assert!(b.log.contains("bad.toml:6"), "{}", b.log);
    assert!(b.log.contains(">>> packages = [\"no-such-package-strata\"]"), "{}", b.log);
}

#[test]
fn dockerignore_and_filename_are_honoured() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.write(".dockerignore", "data/message.txt\n");
    p.write("data/other.txt", "x\n");
    std::fs::rename(p.dir.join("strata.toml"), p.dir.join("service.toml")).unwrap();
    p.build_file("service.toml", &[]).assert_ok();
    assert_eq!(p.run("sh", &["-c", "cd /app && find . -type f | sort"]), "./data/other.txt\n./hello.sh");
}

#[test]
fn python_web_serves_and_keeps_build_tools_out() {
    if !engine() {
        return;
    }
    let p = Project::from_example("python-web");
    prepare_wheels(&p);
    p.build(&[]).assert_ok();
    assert_eq!(p.run("python", &["-c", "import flask, sys; print(sys.prefix)"]), "/opt/venv");
    assert_eq!(p.run("id", &["-u"]), "1000");
    // no pip/setuptools in the runtime venv, no build mounts, no tests, no
    // stray bytecode of the app, no spec or wheelhouse
    assert_eq!(
        p.run("sh", &["-c", "ls /opt/venv/bin/pip* /opt/venv/lib/python3.11/site-packages/setuptools /tmp/strata /app/tests /app/strata.toml /app/wheels 2>&1 | grep -vc 'No such file'; true"]),
        "0"
    );
    assert_eq!(p.run("sh", &["-c", "find /app -name __pycache__ | wc -l"]), "0");
    assert_eq!(p.run("sh", &["-c", "cd /app && find . -type f | sort"]), "./shop/__init__.py\n./shop/__main__.py\n./shop/app.py\n./shop/catalog.py\n./templates/index.html");
    // apt left no lists or archives in the image
    assert_eq!(p.run("sh", &["-c", "ls /var/lib/apt/lists | grep -vc '^lock$\\|^partial$'; true"]), "0");
    assert!(p.run("sh", &["-c", "dpkg -s libexpat1 | grep Status"]).contains("install ok installed"));

    // The app answers over HTTP.
    let name = format!("strata-e2e-web-{}", std::process::id());
    let started = docker().args(["run", "-d", "--rm", "--name", &name, &p.tag]).output().unwrap();
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let probe = "import time, urllib.request\nfor _ in range(50):\n    try:\n        print(urllib.request.urlopen('http://127.0.0.1:8000/health').read().decode()); break\n    except Exception:\n        time.sleep(0.2)\n";
    let out = docker().args(["exec", &name, "python", "-c", probe]).output().unwrap();
    let index = docker().args(["exec", &name, "python", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/').read().decode())"]).output().unwrap();
    let _ = docker().args(["rm", "-f", &name]).output();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("\"status\":\"ok\"") && body.contains("\"items\":2"), "health: {body} {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&index.stdout).contains("<li>tea: 3</li>"));
}

#[test]
fn rebuild_after_code_edit_reruns_no_os_or_dependency_step() {
    if !engine() {
        return;
    }
    let p = Project::from_example("python-web");
    prepare_wheels(&p);
    p.build(&[]).assert_ok();

    // No change: everything cached.
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("system: apt-get install") && b.cached("python: pip install") && b.cached("app: copy shop/"), "{}", b.log);

    // Code edit: OS and dependency steps CACHED, the edited layer re-runs.
    // The edit is unique per run, so an earlier run's cache cannot hit.
    let n = nonce();
    p.write("shop/catalog.py", &format!("ITEMS = [{{\"name\": \"tea\", \"price\": 5}}]\nNONCE = {n}\n"));
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("system: apt-get install"), "{}", b.log);
    assert!(b.cached("python: pip install"), "{}", b.log);
    assert!(b.cached("user: create app"), "{}", b.log);
    assert!(!b.cached("app: copy shop/"), "{}", b.log);
    assert_eq!(p.run("python", &["-c", "from shop.catalog import ITEMS; print(ITEMS[0]['price'])"]), "5");

    // Dependency file edit: OS step CACHED, install re-runs.
    p.write("requirements.txt", &format!("flask==3.0.3\n# e2e edit {n}\n"));
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("system: apt-get install"), "{}", b.log);
    assert!(!b.cached("python: pip install"), "{}", b.log);
}

/// A value unique to this moment, for edits that must miss every cache.
fn nonce() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn prepare_wheels(p: &Project) {
    let src = repo().join("examples/python-web/wheels");
    if !src.join(".stamp").exists() {
        let st = Command::new("bash").arg(repo().join("scripts/wheelhouse.sh")).arg(repo().join("examples/python-web")).status().unwrap();
        assert!(st.success(), "wheelhouse download failed");
    }
    copy_dir(&src, &p.dir.join("wheels"));
}
