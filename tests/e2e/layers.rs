//! Dependency layers: a small pin bump keeps the heavy layers, automatic
//! groups with uv, `[system] layers`.

use super::common::*;

fn layers(p: &Project) -> Vec<String> {
    p.inspect("{{range .RootFS.Layers}}{{println .}}{{end}}").lines().map(String::from).collect()
}

/// Every file of the venv with its hash (symlinks with their target).
fn venv_tree(p: &Project) -> String {
    p.run(
        "sh",
        &["-c", "cd /opt/venv && find . \\( -type f -o -type l \\) | LC_ALL=C sort | while read -r f; do if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; else sha256sum \"$f\"; fi; done"],
    )
}

#[test]
fn small_pin_bump_keeps_the_heavy_layer() {
    gate!(MergeOp);
    let p = Project::from_dir("tests/fixtures/layers");
    p.build(&[]).assert_ok();
    assert_eq!(docker().args(["run", "--rm", &p.tag]).output().unwrap().stdout, b"2.1.3 1.16.0\n");
    assert_eq!(p.residue(), "", "strata left files in the image");
    let before = layers(&p);
    let history = p.inspect("{{len .RootFS.Layers}}");
    assert!(history.parse::<usize>().unwrap() >= 5);
    // Test suites shipped inside packages are pruned (numpy.testing, a
    // module, stays).
    let numpy_tests = "ls -d /opt/venv/lib/python3.11/site-packages/numpy/_core/tests 2>/dev/null | wc -l";
    assert_eq!(p.run("sh", &["-c", numpy_tests]), "0");
    assert_eq!(p.run("python", &["-c", "import numpy.testing; print('ok')"]), "ok");

    // Bump the small pin: only the last ("the rest") layer changes.
    p.write("requirements.txt", "numpy==2.1.3\nsix==1.17.0\n");
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("python: layer numpy"), "the numpy layer must not re-run:\n{}", b.log);
    assert_eq!(docker().args(["run", "--rm", &p.tag]).output().unwrap().stdout, b"2.1.3 1.17.0\n");
    let after = layers(&p);
    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
    assert_eq!(changed, [before.len() - 1], "only the rest layer may change:\nbefore {before:#?}\nafter {after:#?}");

    // The layered venv is the single install, file for file.
    let layered = venv_tree(&p);
    assert!(layered.contains("numpy/__init__.py") && layered.contains("six.py"), "{layered}");
    let spec = std::fs::read_to_string(p.dir.join("strata.toml")).unwrap().replace("layers = [[\"numpy\"]]", "layers = []");
    p.write("strata.toml", &spec);
    let b = p.build(&[]).assert_ok();
    assert!(!b.log.contains("python: layer numpy"), "layers = [] installs in one step");
    let single = venv_tree(&p);
    let diff: Vec<(&str, &str)> = layered.lines().zip(single.lines()).filter(|(a, b)| a != b).take(5).collect();
    assert!(diff.is_empty() && layered.lines().count() == single.lines().count(), "layered and single installs differ: {diff:#?}");

    // And the layered venv is consistent (pip check, from the builder).
    let spec = spec.replace("layers = []", "layers = [[\"numpy\"]]");
    p.write("strata.toml", &spec);
    p.build(&["--target", "builder"]).assert_ok();
    let check = p.run("/opt/strata-pip/bin/python", &["-m", "pip", "--python", "/opt/venv/bin/python", "check"]);
    assert_eq!(check, "No broken requirements found.");

    // prune-tests = false keeps them.
    p.write("strata.toml", &spec.replace("[python]\n", "[python]\nprune-tests = false\n"));
    p.build(&[]).assert_ok();
    assert_eq!(p.run("sh", &["-c", numpy_tests]), "1");
}

#[test]
fn auto_groups_with_uv() {
    gate!();
    // No `layers` key: strata puts numpy (known-heavy) in its own layer.
    let p = Project::from_dir("tests/fixtures/layers");
    let spec = std::fs::read_to_string(p.dir.join("strata.toml")).unwrap().replace("layers = [[\"numpy\"]]\n", "");
    p.write("strata.toml", &spec);
    let b = p.build(&["--build-arg", "INSTALLER=uv"]).assert_ok();
    assert!(b.log.contains("python: layer scientific"), "{}", b.log);
    // uv comes straight out of its wheel in the wheelhouse (no pip run)
    assert!(b.log.contains("python: install uv from the wheelhouse (builder only)"), "{}", b.log);
    assert_eq!(docker().args(["run", "--rm", &p.tag]).output().unwrap().stdout, b"2.1.3 1.16.0\n");
    assert_eq!(p.run("sh", &["-c", "ls /opt/venv/bin | grep -c -e '^pip' -e '^uv' || true"]), "0", "no installer in the runtime venv");
    // nor uv's cache: `uv venv` wrote its interpreter cache into the venv's
    // layer (/root/.cache/uv) before it got the cache mount
    assert_eq!(p.residue(), "", "strata left files in the image");
}

#[test]
fn system_layers_keep_their_group_when_the_rest_changes() {
    gate!();
    let p = Project::from_example("hello");
    let spec = |pkgs: &str| {
        format!("# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/python:3.11\"\nentrypoint = [\"sh\"]\n[system]\npackages = [{pkgs}]\nlayers = [[\"less\"]]\n")
    };
    p.write("sys.toml", &spec("\"less\", \"procps\""));
    let b = p.build_file("sys.toml", &[]).assert_ok();
    assert!(b.log.contains("system: apt-get install less") && b.log.contains("system: apt-get install procps"), "{}", b.log);
    let before = layers(&p);
    // A package added to the rest: the grouped layer stays, same digest.
    p.write("sys.toml", &spec("\"less\", \"procps\", \"tree\""));
    let b = p.build_file("sys.toml", &[]).assert_ok();
    assert!(b.cached("system: apt-get install less"), "{}", b.log);
    let after = layers(&p);
    let base = before.len() - 3; // the user (and workdir) and the two apt layers sit on the base
    assert_eq!(before[..base + 1], after[..base + 1], "the base and the less layer keep their digests");
    assert_ne!(before[base + 1], after[base + 1], "the rest layer changed");
    assert!(p.run("sh", &["-c", "command -v less ps tree"]).contains("less"));
}
