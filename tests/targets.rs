//! Targets, multi-platform, build options and `--call` subrequests through
//! real BuildKit (see common/).

mod common;

use std::process::Command;

use common::*;

const PY: &str = "BASE=strata-test/python:3.11";

fn strata(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).args(args).current_dir(dir).output().unwrap()
}

#[test]
fn deps_target_is_labelled_with_the_offline_digest() {
    if !engine() {
        return;
    }
    let p = Project::from_example("analytics");
    p.build(&["--build-arg", PY, "--target", "deps"]).assert_ok();
    let label = p.inspect("{{index .Config.Labels \"strata.deps.digest\"}}");
    let cli = strata(&["plan", "--deps-digest", "--build-arg", PY], &p.dir);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), label, "strata plan --deps-digest must predict the label");
    assert!(label.starts_with("sha256:") && label.len() == 71, "{label}");
    // deps = base + OS + installed deps, no app code
    assert_eq!(p.run("sh", &["-c", "ls -A /workspace | wc -l"]), "0");
    assert_eq!(p.run("python", &["-c", "import tabulate; print('ok')"]), "ok");

    // The digest moves with a dependency file, not with app code.
    p.write("pipeline/extra.py", "X = 1\n");
    assert_eq!(String::from_utf8_lossy(&strata(&["plan", "--deps-digest", "--build-arg", PY], &p.dir).stdout).trim(), label);
    p.write("requirements.txt", "tabulate==0.9.0\n# bumped\n");
    assert_ne!(String::from_utf8_lossy(&strata(&["plan", "--deps-digest", "--build-arg", PY], &p.dir).stdout).trim(), label);
}

/// The builder is a branch apart from the runtime's OS packages; the test
/// target (which runs on the builder's venv) still gets them.
#[test]
fn runtime_packages_reach_the_test_target_not_the_builder() {
    if !engine() {
        return;
    }
    let p = Project::from_example("python-web");
    let spec = std::fs::read_to_string(p.dir.join("strata.toml"))
        .unwrap()
        .replace("packages = [\"libexpat1\"]", "packages = [\"libexpat1\", \"procps\"]");
    assert!(spec.contains("\"procps\""));
    p.write("t.toml", &format!("{spec}\n[test]\nrun = \"command -v ps && python -c 'import flask' && echo tests-ran-{}\"\n", nonce()));
    let b = p.build_file("t.toml", &["--target", "test"]).assert_ok();
    assert!(b.log.contains("tests-ran-"), "{}", b.log);
    p.build_file("t.toml", &["--target", "builder"]).assert_ok();
    assert_eq!(p.run("sh", &["-c", "command -v ps || echo none"]), "none");
}

#[test]
fn builder_target_and_unknown_target() {
    if !engine() {
        return;
    }
    let p = Project::from_example("python-web");
    p.build(&["--target", "builder"]).assert_ok();
    // the builder has the installer (the runtime does not) and the venv
    assert_eq!(p.run("sh", &["-c", "test -x /opt/strata-pip/bin/pip && test -x /opt/venv/bin/flask && echo ok"]), "ok");
    let b = p.build(&["--target", "nope"]).assert_failed();
    assert!(b.log.contains("unknown target \"nope\"; this spec has: builder, deps, runtime"), "{}", b.log);
}

#[test]
fn multi_platform_builds_every_platform() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.write(
        "multi.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox-multi:latest\"\nplatforms = [\"linux/amd64\", \"linux/386\"]\nentrypoint = [\"sh\", \"/app/hello.sh\"]\n[app]\ncopy = [\"hello.sh\", \"data/\"]\n",
    );
    let b = p.build_file("multi.toml", &[]).assert_ok();
    assert!(b.log.contains("(linux/386)") && b.log.contains("(linux/amd64)"), "base resolved per platform:\n{}", b.log);
    for (platform, elf_class) in [("linux/amd64", "02"), ("linux/386", "01")] {
        let arch =
            docker().args(["image", "inspect", "--platform", platform, "--format", "{{.Os}}/{{.Architecture}}", &p.tag]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), platform);
        // the platform's own busybox (ELF class 1 = 32-bit), and our layers
        let out = docker()
            .args([
                "run",
                "--rm",
                "--platform",
                platform,
                "--entrypoint",
                "sh",
                &p.tag,
                "-c",
                "od -An -tx1 -j4 -N1 /bin/busybox; cat /app/data/message.txt; id -u",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>(),
            [elf_class, "it", "works", "1000"],
            "{platform}"
        );
    }
    // --platform overrides [image] platforms
    p.build_file("multi.toml", &["--platform", "linux/386"]).assert_ok();
    let arch = p.inspect("{{.Architecture}}");
    assert_eq!(arch, "386");
}

#[test]
fn source_date_epoch_gives_the_same_image() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    let sde = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000", "--provenance=false"];
    p.build(&sde).assert_ok();
    let first = p.inspect("{{.Id}}");
    assert_eq!(p.inspect("{{.Created}}"), "2023-11-14T22:13:20Z");
    p.build(&sde).assert_ok();
    assert_eq!(p.inspect("{{.Id}}"), first, "same SOURCE_DATE_EPOCH, same image digest");
    p.build(&["--build-arg", "SOURCE_DATE_EPOCH=1700000001", "--provenance=false"]).assert_ok();
    assert_ne!(p.inspect("{{.Id}}"), first);
}

#[test]
fn labels_and_no_cache() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.build(&[]).assert_ok();
    let b = p.build(&["--label", "team=ml", "--no-cache"]).assert_ok();
    assert_eq!(p.inspect("{{index .Config.Labels \"team\"}}"), "ml");
    assert!(!b.cached("user: create app"), "--no-cache re-runs every step:\n{}", b.log);
}

fn call(p: &Project, what: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["--call", what];
    args.extend_from_slice(extra);
    let b = p.build(&args);
    (b.ok, b.log)
}

#[test]
fn call_targets_outline_and_check() {
    if !engine() {
        return;
    }
    let p = Project::from_example("media-server");
    let (ok, out) = call(&p, "targets", &[]);
    assert!(ok, "{out}");
    for line in ["TARGET", "runtime (default)", "deps", "builder", "base + OS packages + installed dependencies"] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let (ok, out) = call(&p, "targets,format=json", &[]);
    assert!(ok && out.contains("\"name\": \"runtime\"") && out.contains("\"default\": true"), "{out}");

    let (ok, out) = call(&p, "outline", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("BASE") && out.contains("python:3.11-slim"), "args with defaults:\n{out}");
    assert!(out.contains("license_key"), "secrets the build needs:\n{out}");

    // check: a clean spec exits 0; lints fail the call with the spec line
    let (ok, out) = call(&p, "check", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("no warnings found"), "{out}");
    let q = Project::from_example("hello");
    q.write(
        "lint.toml",
        "# syntax=strata:dev\nversion = 1\n[args]\nUNUSED = \"x\"\n[image]\nbase = \"strata-test/busybox:1\"\nuser = \"root\"\n",
    );
    let b = q.build_file("lint.toml", &["--call", "check"]).assert_failed();
    assert!(b.log.contains("UnusedArg") && b.log.contains("RootUser"), "{}", b.log);
    assert!(b.log.contains("lint.toml:4"), "warning points at the spec line:\n{}", b.log);
}

/// The contract's example excludes `tests/` from the app and feeds `tests/`
/// to a step and to the test target: `[app] exclude` hides it from the app
/// copies only. `.git` (a directory at the root, a file in a submodule)
/// never reaches the image, even with `copy = ["."]` (guarantee 4). The
/// tests run with the image's env.
#[test]
fn app_excludes_hide_nothing_from_steps_and_tests() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.write("tests/test_greeting.sh", "test -f hello.sh && test -f vendored/lib/lib.sh && echo tests-saw-the-app\n");
    p.write(".git/HEAD", "ref: refs/heads/main\n");
    p.write("vendored/lib/.git", "gitdir: ../../.git/modules/lib\n");
    p.write("vendored/lib/lib.sh", "echo lib\n");
    p.write(
        "t.toml",
        &format!(
            r#"# syntax=strata:dev
version = 1
[image]
base = "strata-test/busybox:latest"
env = {{ APP_MODE = "e2e" }}
[app]
copy = ["."]
exclude = ["tests/", "t.toml"]
[[step]]
name = "count"
run = "ls tests | wc -l > test-count.txt"
inputs = ["tests/"]
outputs = ["test-count.txt"]
[test]
inputs = ["tests/"]
run = "test \"$APP_MODE\" = e2e && sh tests/test_greeting.sh && echo {}"
"#,
            nonce()
        ),
    );
    let b = p.build_file("t.toml", &["--target", "test"]).assert_ok();
    assert!(b.log.contains("tests-saw-the-app"), "{}", b.log);
    p.build_file("t.toml", &[]).assert_ok();
    let tree = file_tree(&p.tag);
    assert!(!tree.keys().any(|k| k.starts_with("app/tests")), "tests/ reached the image");
    assert!(
        !tree.keys().any(|k| k.contains(".git")),
        "a .git reached the image: {:?}",
        tree.keys().filter(|k| k.contains(".git")).collect::<Vec<_>>()
    );
    assert!(tree.contains_key("app/vendored/lib/lib.sh") && tree.contains_key("app/hello.sh"));
    // The step saw tests/ although the app excludes it.
    assert_eq!(p.run("cat", &["/app/test-count.txt"]), "1");
}
