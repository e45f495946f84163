//! `--call targets`, `--call outline`, `--call check`.

use super::common::*;

fn call(p: &Project, what: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["--call", what];
    args.extend_from_slice(extra);
    let b = p.build(&args);
    (b.ok, b.log)
}

#[test]
fn call_targets_outline_and_check() {
    gate!(ModernBuildkit);
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
