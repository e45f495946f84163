//! Base images from build contexts, as the Dockerfile frontend takes them:
//! `--build-context NAME=docker-image://…` and `oci-layout://…`, bake's
//! `contexts = { NAME = "target:other" }` (an `input:` with its image
//! config), and the errors for contexts that cannot be an image.

use super::common::*;

/// A spec on a base no registry has, the local python image standing in
/// for it through a build context: the build resolves nothing from the
/// original name and the image inherits the stand-in's config.
#[test]
fn docker_image_context_replaces_the_base() {
    gate!(ModernBuildkit);
    let n = nonce();
    let p = Project::empty("ctx-image");
    p.write(
        "strata.toml",
        &format!("# syntax=strata:dev\nversion = 1\n[image]\nbase = \"registry.invalid/team/python:3.11\"\nuser = \"root\"\n[[step]]\nname = \"mark\"\nrun = \"echo {n} > /mark; python3 -c 'import sys; print(sys.version)' >> /mark\"\noutputs = [\"/mark\"]\n"),
    );
    let b = p.build(&["--build-context", "registry.invalid/team/python:3.11=docker-image://strata-test/python:3.11"]).assert_ok();
    assert!(b.log.contains("from build context registry.invalid/team/python:3.11: docker-image://strata-test/python:3.11"), "{}", b.log);
    assert!(!b.log.contains("resolve image config for registry.invalid"), "the original name was resolved:\n{}", b.log);
    assert!(p.run("cat", &["/mark"]).starts_with(&format!("{n}\n3.11")));
    // the base's env is inherited, as from a registry image
    let env = p.inspect("{{json .Config.Env}}");
    let base_env = docker().args(["image", "inspect", "--format", "{{json .Config.Env}}", "strata-test/python:3.11"]).output().unwrap();
    let base_env: Vec<String> = serde_json::from_slice(&base_env.stdout).unwrap();
    for e in base_env {
        assert!(env.contains(&e), "{e} missing from {env}");
    }
}

/// An OCI layout directory (as `--output type=oci,tar=false` writes it)
/// as the base: no registry access for the spec's base name.
#[test]
fn oci_layout_context_replaces_the_base() {
    gate!(MergeOp);
    let n = nonce();
    let src = Project::empty("ctx-oci-src");
    src.write(
        "strata.toml",
        &format!("# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\nuser = \"root\"\nenv = {{ FROM_LAYOUT = \"{n}\" }}\n[[step]]\nname = \"mark\"\nrun = \"echo {n} > /layout-mark\"\noutputs = [\"/layout-mark\"]\n"),
    );
    let layout = src.dir.join("layout");
    src.build(&["--output", &format!("type=oci,tar=false,dest={}", layout.display())]).assert_ok();
    assert!(layout.join("index.json").is_file());
    let p = Project::empty("ctx-oci");
    p.write("strata.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"team-base\"\nentrypoint = [\"cat\", \"/layout-mark\"]\n");
    let b = p.build(&["--build-context", &format!("team-base=oci-layout://{}", layout.display())]).assert_ok();
    assert!(b.log.contains("from build context team-base: OCI layout"), "{}", b.log);
    assert_eq!(p.run("cat", &["/layout-mark"]), n.to_string());
    assert!(p.inspect("{{json .Config.Env}}").contains(&format!("FROM_LAYOUT={n}")));
}

/// Two specs: `deps.toml` (busybox, env DEPS and /opt/deps/marker, both
/// the nonce) and `strata.toml` on `team/deps`, which a bake or compose
/// link must resolve to the deps build, and copies `app.txt` (`app`).
fn linked_pair(name: &str, app: &str) -> (Project, u128) {
    let n = nonce();
    let p = Project::empty(name);
    p.write(
        "deps.toml",
        &format!("# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\nuser = \"root\"\nenv = {{ DEPS = \"{n}\" }}\n[[step]]\nname = \"deps\"\nrun = \"mkdir -p /opt/deps && echo {n} > /opt/deps/marker\"\noutputs = [\"/opt/deps\"]\n"),
    );
    p.write("strata.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"team/deps\"\nentrypoint = [\"cat\", \"/opt/deps/marker\", \"/app/app.txt\"]\n[app]\ncopy = [\"app.txt\"]\n");
    p.write("app.txt", &format!("{app}\n"));
    (p, n)
}

/// The app image holds the deps build's files and env, then its own.
fn assert_built_on_deps(p: &Project, n: u128, app: &str) {
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{n}\n{app}\n"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(p.inspect("{{json .Config.Env}}").contains(&format!("DEPS={n}")), "the deps target's env is not inherited");
}

/// bake: the app's base is `target:deps`, another strata spec. The app is
/// built on the deps target's result and inherits its config.
#[test]
fn bake_links_a_target_as_the_base() {
    gate!(ModernBuildkit);
    let (p, n) = linked_pair("ctx-bake", "app");
    p.write(
        "docker-bake.hcl",
        &format!(
            "group \"default\" {{\n  targets = [\"app\"]\n}}\ntarget \"deps\" {{\n  dockerfile = \"deps.toml\"\n}}\ntarget \"app\" {{\n  dockerfile = \"strata.toml\"\n  contexts = {{ \"team/deps\" = \"target:deps\" }}\n  tags = [\"{}\"]\n}}\n",
            p.tag
        ),
    );
    let out = docker().current_dir(&p.dir).args(["buildx", "bake", "--progress=plain", "--load"]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "bake failed:\n{log}");
    assert!(!log.contains("resolve image config for team/deps"), "team/deps was looked up in a registry:\n{log}");
    assert_built_on_deps(&p, n, "app");
}

/// Contexts that cannot be an image fail at the spec line of the image,
/// naming the context.
#[test]
fn contexts_that_cannot_be_an_image_are_located_errors() {
    gate!(ModernBuildkit);
    let p = Project::empty("ctx-bad");
    p.write("strata.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"team/base:1\"\n");
    let b = p.build(&["--build-context", "team/base:1=https://example.invalid/rootfs.tar"]).assert_failed();
    assert!(
        b.log.contains("build context team/base:1 is `https://example.invalid/rootfs.tar`, which strata cannot use as an image"),
        "{}",
        b.log
    );
    assert!(b.log.contains("strata.toml:4"), "not located at the base line:\n{}", b.log);
    let b = p.build(&["--build-context", "team/base:1=docker-image://strata-test/none-such:1"]).assert_failed();
    assert!(b.log.contains("build context team/base:1 (docker-image://strata-test/none-such:1)"), "{}", b.log);
    assert!(b.log.contains("strata.toml:4"), "{}", b.log);
}

/// compose: a service whose `additional_contexts` names another service
/// builds on that service's image (compose runs bake).
#[test]
fn compose_additional_context_names_another_service() {
    gate!(ModernBuildkit);
    let (p, n) = linked_pair("ctx-compose", "composed");
    p.write(
        "compose.yaml",
        &format!(
            "services:\n  deps:\n    build:\n      context: .\n      dockerfile: deps.toml\n  app:\n    image: {}\n    build:\n      context: .\n      dockerfile: strata.toml\n      additional_contexts:\n        team/deps: service:deps\n",
            p.tag
        ),
    );
    let project = format!("strata-compose-{n}");
    let out =
        docker().current_dir(&p.dir).args(["compose", "-p", &project, "build", "app"]).env("BUILDKIT_PROGRESS", "plain").output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "compose build failed:\n{log}");
    assert!(!log.contains("resolve image config for team/deps"), "team/deps was looked up in a registry:\n{log}");
    assert_built_on_deps(&p, n, "composed");
}
