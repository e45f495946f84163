//! Build args: `[args]` defaults and `--build-arg` overrides.

use super::common::*;

#[test]
fn build_args_override_defaults() {
    gate!();
    let p = Project::from_example("hello");
    p.build(&["--build-arg", "GREETING=hi there"]).assert_ok();
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hi there (uid 1000)"));
}
