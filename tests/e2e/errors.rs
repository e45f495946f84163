//! Errors at their spec line: spec errors framed as buildx frames Dockerfile
//! errors, a failing step, a missing requirement file.

use super::common::*;

#[test]
fn spec_errors_show_the_spec_line() {
    gate!(ModernBuildkit);
    let p = Project::from_example("hello");
    p.write("bad.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\nentrypont = [\"sh\"]\n");
    let b = p.build_file("bad.toml", &[]).assert_failed();
    assert!(b.log.contains("bad.toml:5:1: unknown key `entrypont` in [image]; did you mean `entrypoint`?"), "{}", b.log);
    // buildx frames the offending line from the source map we attached
    assert!(b.log.contains(">>> entrypont = [\"sh\"]"), "{}", b.log);
}

#[test]
fn failing_step_points_at_its_spec_line() {
    gate!(ModernBuildkit);
    let p = Project::from_example("hello");
    p.write(
        "bad.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/python:3.11\"\n[system]\npackages = [\"no-such-package-strata\"]\n",
    );
    let b = p.build_file("bad.toml", &[]).assert_failed();
    assert!(b.log.contains("Unable to locate package no-such-package-strata"), "{}", b.log);
    // Our op digests match BuildKit's, so its source map finds the line.
    assert!(b.log.contains("bad.toml:6"), "{}", b.log);
    assert!(b.log.contains(">>> packages = [\"no-such-package-strata\"]"), "{}", b.log);
}

/// A requirement file the context lacks is reported at its line in the
/// spec, not as a failed copy with no location.
#[test]
fn missing_requirement_file_names_its_spec_line() {
    gate!(ModernBuildkit);
    let p = Project::from_example("python-web");
    std::fs::remove_file(p.dir.join("requirements.txt")).unwrap();
    let b = p.build(&[]).assert_failed();
    assert!(
        b.log.contains("strata.toml:28:17: `requirements.txt` is not in the build context (missing, or left out by .dockerignore)"),
        "{}",
        b.log
    );
    assert!(b.log.contains(">>> requirements = [\"requirements.txt\"]"), "{}", b.log);
}
