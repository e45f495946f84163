//! Targets: deps (labelled with the offline digest), builder, test, an
//! unknown target; labels and no-cache.

use super::common::*;

#[test]
fn deps_target_is_labelled_with_the_offline_digest() {
    gate!();
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
    gate!();
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
    gate!();
    let p = Project::from_example("python-web");
    p.build(&["--target", "builder"]).assert_ok();
    // the builder has the installer (the runtime does not) and the venv
    assert_eq!(p.run("sh", &["-c", "test -x /opt/strata-pip/bin/pip && test -x /opt/venv/bin/flask && echo ok"]), "ok");
    let b = p.build(&["--target", "nope"]).assert_failed();
    assert!(b.log.contains("unknown target \"nope\"; this spec has: builder, deps, runtime"), "{}", b.log);
}

#[test]
fn labels_and_no_cache() {
    gate!();
    let p = Project::from_example("hello");
    p.build(&[]).assert_ok();
    let b = p.build(&["--label", "team=ml", "--no-cache"]).assert_ok();
    assert_eq!(p.inspect("{{index .Config.Labels \"team\"}}"), "ml");
    assert!(!b.cached("user: create app"), "--no-cache re-runs every step:\n{}", b.log);
}
