//! Team scale: a cache exported by one engine and used by another (the
//! registry, and a local directory), and the frontend as users get it,
//! pulled from a registry by an engine that never had it.

use std::process::Command;

use super::common::*;

/// A pip project whose install and build step no engine has run before.
fn fresh_project(name: &str) -> Project {
    let n = nonce();
    let p = Project::empty(name);
    p.write(
        "strata.toml",
        &format!(
            "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/python:3.11\"\n[python]\ninstaller = \"pip\"\nrequirements = [\"requirements.txt\"]\nwheels = \"wheels\"\n[[step]]\nname = \"compile\"\nrun = \"echo {n} > /built.txt\"\noutputs = [\"/built.txt\"]\n[app]\ncopy = [\"app.py\"]\n"
        ),
    );
    p.write("requirements.txt", &format!("six==1.16.0\n# {n}\n"));
    p.write("app.py", "import six\nprint(six.__version__)\n");
    copy_dir(&repo().join("tests/fixtures/layers/wheels"), &p.dir.join("wheels"));
    p
}

fn assert_all_cached(b: &Build) {
    for step in ["python: pip install", "step compile:", "app: copy app.py"] {
        assert!(b.cached(step), "`{step}` is not CACHED on the second engine:\n{}", b.log);
    }
}

/// `--cache-to type=registry,mode=max` on the main engine, `--cache-from`
/// on engine2, which never ran these steps: every install and step CACHED.
#[test]
fn registry_cache_from_one_engine_serves_another() {
    gate!(Primary);
    let Some(host) = engine2() else { return };
    let reg = registry();
    let p = fresh_project("cache-registry");
    let cache = format!("{reg}/strata-cache/{}:{}", "cache-registry", nonce());
    p.build(&["--cache-to", &format!("type=registry,ref={cache},mode=max")]).assert_ok();
    let _g = engine2_lock();
    let b = p.build_at(Some(&host), "strata.toml", &["--cache-from", &format!("type=registry,ref={cache}")]).assert_ok();
    assert_all_cached(&b);
    let out = docker_on(&host).args(["run", "--rm", "--entrypoint", "python", &p.tag, "/app/app.py"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0");
}

/// The same through a local cache directory (`type=local`).
#[test]
fn local_cache_directory_from_one_engine_serves_another() {
    gate!(Primary);
    let Some(host) = engine2() else { return };
    let p = fresh_project("cache-local");
    let dir = p.dir.join("../").join(format!("strata-cache-{}", nonce()));
    p.build(&["--cache-to", &format!("type=local,dest={},mode=max", dir.display())]).assert_ok();
    assert!(dir.join("index.json").is_file(), "no cache written");
    let _g = engine2_lock();
    let b = p.build_at(Some(&host), "strata.toml", &["--cache-from", &format!("type=local,src={}", dir.display())]).assert_ok();
    assert_all_cached(&b);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scripts/publish-frontend.sh` pushes the frontend to the registry; an
/// engine without it locally pulls it by `# syntax=REGISTRY/strata:0.1`,
/// and by `BUILDKIT_SYNTAX` for a spec that has no syntax line.
#[test]
fn the_published_frontend_is_pulled_from_the_registry() {
    gate!(Primary);
    let Some(host) = engine2() else { return };
    let reg = registry();
    let out = Command::new("bash").arg(repo().join("scripts/publish-frontend.sh")).arg(reg).output().unwrap();
    assert!(out.status.success(), "publish: {}", String::from_utf8_lossy(&out.stderr));
    let published = format!("{reg}/strata:0.1");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pushed {published}")));
    let _g = engine2_lock();
    let _ = docker_on(&host).args(["image", "rm", "-f", &published]).output();
    let n = nonce();
    let p = Project::empty("published");
    let body = format!("version = 1\n[image]\nbase = \"strata-test/busybox:latest\"\n[[step]]\nname = \"mark\"\nrun = \"echo {n} > /mark\"\noutputs = [\"/mark\"]\n");
    p.write("strata.toml", &format!("# syntax={published}\n{body}"));
    let b = p.build_at(Some(&host), "strata.toml", &[]).assert_ok();
    assert!(b.log.contains(&format!("resolve image config for docker-image://{published}")), "{}", b.log);
    assert!(b.log.contains("[strata] load spec"), "not built by strata:\n{}", b.log);
    // no syntax line: the Dockerfile frontend forwards to BUILDKIT_SYNTAX
    p.write("plain.toml", &body);
    let b = p.build_at(Some(&host), "plain.toml", &["--build-arg", &format!("BUILDKIT_SYNTAX={published}")]).assert_ok();
    assert!(b.log.contains("[strata] load spec"), "BUILDKIT_SYNTAX did not reach strata:\n{}", b.log);
    let out = docker_on(&host).args(["run", "--rm", &p.tag, "cat", "/mark"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), n.to_string());
}

/// `[image] deps-image`: the deps target pushed under the tag `strata plan
/// --deps-image` prints; engine2, which never ran these installs, builds
/// the runtime on it with no venv or install step at all; a dependency
/// edit falls back to building the deps; a tag holding an image of another
/// digest is refused; an unreachable registry is a located error.
#[test]
fn deps_image_by_digest_skips_the_installs_on_another_engine() {
    gate!(Primary);
    let Some(host) = engine2() else { return };
    let reg = registry();
    let n = nonce();
    let deps_repo = format!("{reg}/strata-deps/app-{n}");
    let p = Project::empty("deps-image");
    let spec = |repo: &str| {
        format!("# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/python:3.11\"\ndeps-image = \"{repo}\"\n[python]\ninstaller = \"pip\"\nrequirements = [\"requirements.txt\"]\nwheels = \"wheels\"\n[app]\ncopy = [\"app.py\"]\n")
    };
    p.write("strata.toml", &spec(&deps_repo));
    p.write("requirements.txt", &format!("six==1.16.0\n# {n}\n"));
    p.write("app.py", "import six\nprint(six.__version__)\n");
    copy_dir(&repo().join("tests/fixtures/layers/wheels"), &p.dir.join("wheels"));
    let tag = |p: &Project| {
        let out = strata(&["plan", "--deps-image"], &p.dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let t = tag(&p);
    assert!(t.starts_with(&format!("{deps_repo}:deps-")) && t.len() == deps_repo.len() + 6 + 32, "{t}");
    let push = |p: &Project, t: &str| {
        let out = docker()
            .current_dir(&p.dir)
            .args(["buildx", "build", "--progress=plain", "-f", "strata.toml", "--target", "deps", "--build-context", "wheels=./wheels"])
            .args(["--output", &format!("type=image,name={t},push=true"), "."])
            .output()
            .unwrap();
        assert!(out.status.success(), "pushing the deps image: {}", String::from_utf8_lossy(&out.stderr));
    };
    push(&p, &t);

    let _g = engine2_lock();
    let b = p.build_at(Some(&host), "strata.toml", &[]).assert_ok();
    assert!(b.log.contains("deps image: ") && b.log.contains("(found: no OS package or dependency install runs)"), "{}", b.log);
    for step in ["python: pip install", "python: create venv", "python: pip tool venv"] {
        assert!(!b.log.contains(step), "`{step}` is part of a build on the deps image:\n{}", b.log);
    }
    let run = |p: &Project| {
        let out = docker_on(&host).args(["run", "--rm", "--entrypoint", "python", &p.tag, "/app/app.py"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run(&p), "1.16.0");

    // a dependency edit: another digest, no such tag, the deps are built
    p.write("requirements.txt", &format!("six==1.16.0\n# {n} edited\n"));
    assert_ne!(tag(&p), t);
    let b = p.build_at(Some(&host), "strata.toml", &[]).assert_ok();
    assert!(b.log.contains("python: pip install") && !b.cached("python: pip install"), "{}", b.log);
    assert!(!b.log.contains("(found: no OS package"), "{}", b.log);
    assert_eq!(run(&p), "1.16.0");

    // the tag of this digest holding another image: refused, at the key
    let wrong = tag(&p);
    let out = docker().args(["tag", "strata-test/busybox:latest", &wrong]).output().unwrap();
    assert!(out.status.success());
    let out = docker().args(["push", "-q", &wrong]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b = p.build_at(Some(&host), "strata.toml", &[]).assert_failed();
    assert!(b.log.contains(&format!("the deps image {wrong} carries strata.deps.digest none")), "{}", b.log);
    assert!(b.log.contains("strata.toml:5"), "not located at deps-image:\n{}", b.log);

    // a registry that does not answer
    p.write("strata.toml", &spec("127.0.0.1:1/strata-deps/app"));
    let b = p.build_at(Some(&host), "strata.toml", &[]).assert_failed();
    assert!(b.log.contains("`image.deps-image`: looking for 127.0.0.1:1/strata-deps/app:deps-"), "{}", b.log);
}

/// Layers of `image` in the registry, as a push stores them: (digest,
/// compressed size).
fn registry_layers(image: &str) -> Vec<(String, u64)> {
    let raw = docker_sh(&format!("docker buildx imagetools inspect --raw {image}"));
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
    m["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("not an image manifest: {raw}"))
        .iter()
        .map(|l| (l["digest"].as_str().unwrap().to_string(), l["size"].as_u64().unwrap()))
        .collect()
}

/// Rebase without rebuild: a new digest of the base's tag (a security
/// patch) re-runs what sits on the base, and those runs write the same
/// bytes. On the same engine every layer above the base keeps its digest,
/// so a push uploads only the base's new layer. Built on the second engine,
/// whose cache has none of it (a fresh CI runner), the venv, user and
/// workdir layers are still the same blobs: they come from reproducible
/// installs, not from a cached result. (The app layers hold the context's
/// files with their mtimes, which are the checkout's: the same on one
/// machine, per runner elsewhere, as with a Dockerfile's COPY.)
#[test]
fn a_base_bump_keeps_every_layer_above_the_base() {
    gate!(MergeOp);
    let Some(host) = engine2() else { return };
    // pip writes the install time into what it writes (uv keeps the wheel's
    // times): both must give the same bytes again
    for installer in ["uv", "pip"] {
        base_bump_keeps_layers(&host, installer);
    }
}

fn base_bump_keeps_layers(host: &str, installer: &str) {
    let reg = registry();
    let n = nonce();
    let base = format!("strata-e2e/rebase-base-{n}:latest");
    // Names unique to this run make every layer's content new, so no
    // engine has a result of an earlier run to serve instead.
    let short = n % 1_000_000_000;
    let p = Project::empty("rebase");
    p.write(
        "strata.toml",
        &format!(
            "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"{base}\"\nuser = \"u{short}\"\nworkdir = \"/w{short}\"\ncmd = [\"python\", \"app.py\"]\n[python]\ninstaller = \"{installer}\"\nvenv = \"/opt/v{short}\"\nrequirements = [\"requirements.txt\"]\nwheels = \"wheels\"\n[app]\ncopy = [\"app.py\", \"templates/\"]\n"
        ),
    );
    p.write("requirements.txt", &format!("six==1.16.0\n# {n}\n"));
    p.write("app.py", &format!("import six\nprint(open('/etc/base-bump').read().strip(), six.__version__)  # {n}\n"));
    p.write("templates/index.html", &format!("<p>{n}</p>\n"));
    copy_dir(&repo().join("tests/fixtures/layers/wheels"), &p.dir.join("wheels"));
    let _g = engine2_lock();
    let mut pushed: Vec<Vec<(String, u64)>> = Vec::new();
    for (i, (v, on)) in [(1, None), (2, None), (2, Some(host))].into_iter().enumerate() {
        let env = on.map(|h| format!("DOCKER_HOST={h} ")).unwrap_or_default();
        docker_sh(&format!(
            "printf 'FROM strata-test/python:3.11\\nRUN echo {n}-{v} > /etc/base-bump\\n' | {env}docker build -q -t {base} -"
        ));
        let b = p.build_at(on, "strata.toml", &["--provenance=false"]).assert_ok();
        for step in ["python: create venv", &format!("python: {installer} install"), &format!("user: create u{short}")] {
            assert!(!b.cached(step), "`{step}` must run on the new base:\n{}", b.log);
        }
        let remote = format!("{reg}/strata-e2e/rebase-{n}:{i}");
        eprintln!("pushed {remote}");
        let out = docker_sh(&format!(
            "{env}docker run --rm {tag} && {env}docker tag {tag} {remote} && {env}docker push -q {remote} >/dev/null && {env}docker image rm {remote} >/dev/null",
            tag = p.tag
        ));
        assert_eq!(out.trim(), format!("{n}-{v} 1.16.0"));
        pushed.push(registry_layers(&remote));
    }
    let _ = docker().args(["image", "rm", "-f", &base]).output();
    let _ = docker_on(host).args(["image", "rm", "-f", &p.tag, &base]).output();
    let new_layers = |before: &[(String, u64)], after: &[(String, u64)]| -> Vec<usize> {
        assert_eq!(before.len(), after.len());
        let new: Vec<usize> = (0..after.len()).filter(|&i| !before.iter().any(|(d, _)| *d == after[i].0)).collect();
        let bytes: u64 = new.iter().map(|&i| after[i].1).sum();
        let total: u64 = after.iter().map(|l| l.1).sum();
        eprintln!("base bump ({installer}): {} new layer(s), {bytes} bytes to push of {total}", new.len());
        new
    };
    // base: the debootstrap layer and the patch; then the user and workdir
    // (one command), the venv and the two app copies
    let (v1, same_engine, fresh_engine) = (&pushed[0], &pushed[1], &pushed[2]);
    assert_eq!(v1.len(), 6, "{v1:#?}");
    let new = new_layers(v1, same_engine);
    assert_eq!(new, [1], "{installer}: layers above the base changed:\nbefore {v1:#?}\nafter {same_engine:#?}");
    let new = new_layers(v1, fresh_engine);
    assert!(
        new.iter().all(|&i| i == 1 || i >= 4) && new.contains(&1),
        "{installer}, fresh engine: user, workdir or venv layers changed:\nbefore {v1:#?}\nafter {fresh_engine:#?}"
    );
}
