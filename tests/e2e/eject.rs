//! `strata dockerfile`: the ejected Dockerfile, built by the built-in
//! frontend, gives the same file tree and config as the strata build.

use super::common::*;

/// `strata_only`: extra flags for the strata build alone (step names differ
/// from the ejected stage names).
fn same_image_both_ways(example: &str, args: &[&str], strata_only: &[&str], files: &[(&str, &str)]) {
    let p = Project::from_example(example);
    for (path, text) in files {
        p.write(path, text);
    }
    let b = p.build(&[args, strata_only].concat()).assert_ok();
    assert!(b.log.contains("strata:dev"), "the first build goes through the strata frontend:\n{}", b.log);
    let strata_tree = file_tree(&p.tag);
    let strata_config = image_config(&p.tag);

    let mut eject = std::process::Command::new(env!("CARGO_BIN_EXE_strata"));
    eject.current_dir(&p.dir).args(["dockerfile", "-f", "strata.toml", "-o", "Dockerfile.ejected"]);
    for pair in args.windows(2).filter(|w| w[0] == "--build-arg") {
        eject.args(["--build-arg", pair[1]]);
    }
    let out = eject.output().unwrap();
    assert!(out.status.success(), "strata dockerfile: {}", String::from_utf8_lossy(&out.stderr));
    let dockerfile = std::fs::read_to_string(p.dir.join("Dockerfile.ejected")).unwrap();
    assert!(!dockerfile.contains("syntax="), "must use the built-in frontend:\n{dockerfile}");

    let b = p.build_file("Dockerfile.ejected", args).assert_ok();
    assert!(!b.log.contains("strata:dev"), "the ejected build must not go through strata:\n{}", b.log);
    let docker_tree = file_tree(&p.tag);
    assert!(strata_tree.len() > 100, "suspiciously small tree: {} entries", strata_tree.len());
    let diffs = tree_diff(&strata_tree, &docker_tree);
    assert!(
        diffs.is_empty(),
        "{example}: {} differences (~ strata | dockerfile, - only strata, + only dockerfile):\n{}\n--- Dockerfile:\n{dockerfile}",
        diffs.len(),
        diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(image_config(&p.tag), strata_config, "{example}: image config differs\n--- Dockerfile:\n{dockerfile}");
}

#[test]
fn hello_ejects_to_the_same_image() {
    gate!(ModernBuildkit);
    same_image_both_ways("hello", &[], &[], &[]);
}

#[test]
fn python_web_ejects_to_the_same_image() {
    gate!(ModernBuildkit);
    same_image_both_ways("python-web", &["--build-arg", PY], &[], &[]);
}

/// Build packages, a native build step with a secret, init, healthcheck.
#[test]
fn media_server_ejects_to_the_same_image() {
    gate!(ModernBuildkit);
    let args = ["--build-arg", PY, "--secret", "id=license_key,src=license.txt"];
    // Secret values are not in cache keys: without the filter the strata
    // build could reuse the step from another test's secret.
    same_image_both_ways("media-server", &args, &["--no-cache-filter", "license"], &[("license.txt", "eject-license")]);
}

/// uv (taken out of the wheelhouse's uv wheel) and auto dependency layers.
#[test]
fn analytics_ejects_to_the_same_image() {
    gate!(ModernBuildkit);
    same_image_both_ways("analytics", &["--build-arg", PY], &[], &[]);
}
