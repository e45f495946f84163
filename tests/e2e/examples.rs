//! Every example of the repo, built and checked; and `strata init` on each of
//! them.

use super::common::*;

#[test]
fn tf_service_cpu_variant() {
    gate!();
    let p = Project::from_example("tf-service");
    let b = p.build(&["--target", "cpu", "--build-arg", "CPU_BASE=strata-test/python:3.11"]).assert_ok();
    assert!(b.log.contains("resolve image config for strata-test/python:3.11"), "the cpu variant's base is used:\n{}", b.log);
    let env = p.inspect("{{json .Config.Env}}");
    // variant env merged over the main env
    assert!(env.contains("\"DEVICE=cpu\"") && env.contains("\"CUDA_VISIBLE_DEVICES=\"") && env.contains("TF_CPP_MIN_LOG_LEVEL=2"), "{env}");
    assert_eq!(p.inspect("{{json .Config.ExposedPorts}}"), r#"{"8000/tcp":{},"9100/tcp":{}}"#);
    // the venv sees the base's site-packages (where TF lives in the real base)
    assert_eq!(p.run("sh", &["-c", "grep include-system-site-packages /opt/venv/pyvenv.cfg"]), "include-system-site-packages = true");
    let c = Running::start(&p, &[]);
    let health = http_get(&c.0, "http://127.0.0.1:8000/health");
    assert_eq!(health, r#"{"status": "ok", "device": "cpu", "tensorflow": null}"#);
    assert!(http_get(&c.0, "http://127.0.0.1:9100/metrics").contains("tiny_chat_requests_total"));
}

#[test]
fn media_server_native_step_secret_and_init() {
    gate!();
    let p = Project::from_example("media-server");
    let secret = format!("strata-license-{}", nonce());
    p.write("license.txt", &secret);
    let with_secret = ["--build-arg", PY, "--secret", "id=license_key,src=license.txt"];
    let b = p.build(&with_secret).assert_ok();
    assert!(!b.log.contains(&secret), "the secret reached the build log");
    // tini is the sha256-pinned package, installed offline, not the
    // archive's; the engine's mount points under /tmp/strata are gone.
    assert!(b.log.contains("system: tini 0.19.0-1 (pinned, sha256-checked)"), "{}", b.log);
    assert!(!b.log.contains("apt-get install tini"), "{}", b.log);
    assert_eq!(p.run("dpkg-query", &["-W", "-f", "${Version}", "tini"]), "0.19.0-1");
    assert_eq!(p.run("sh", &["-c", "test -e /tmp/strata && echo residue || echo clean"]), "clean");

    // Compilers stay in the builder; the step's .so reaches the runtime.
    assert_eq!(p.run("sh", &["-c", "command -v gcc cc make || echo none"]), "none");
    assert_eq!(p.run("sh", &["-c", "ls /srv/native"]), "libthumb.so", "only the declared output, not the sources");
    assert_eq!(p.inspect("{{json .Config.Entrypoint}}"), r#"["/usr/bin/tini","--","python","server.py"]"#);
    assert_eq!(p.inspect("{{.Config.StopSignal}}"), "SIGTERM");
    assert!(p.inspect("{{json .Config.Healthcheck}}").contains(r#""Interval":30000000000"#));
    let c = Running::start(&p, &[]);
    assert_eq!(http_get(&c.0, "http://127.0.0.1:8080/thumb/1920/1080/256"), r#"{"width": 256}"#);
    assert!(http_get(&c.0, "http://127.0.0.1:8080/health").contains(r#""license": ""#));
    assert_eq!(
        docker().args(["exec", &c.0, "cat", "/proc/1/cmdline"]).output().unwrap().stdout.split(|b| *b == 0).next().unwrap(),
        b"/usr/bin/tini"
    );
    drop(c);

    // The secret is in no layer, config or history of the image.
    assert!(!image_contains(&p.tag, &secret), "secret found in the exported image");
    assert!(!p.inspect("{{json .}}").contains(&secret));

    // Rebuild matrix: editing one step's inputs re-runs that step only.
    p.write("native/thumb.c", &format!("{}\n/* {} */\n", std::fs::read_to_string(p.dir.join("native/thumb.c")).unwrap(), nonce()));
    let b = p.build(&with_secret).assert_ok();
    assert!(!b.cached("step native: make -C native"), "{}", b.log);
    assert!(b.cached("step license:"), "{}", b.log);
    assert!(b.cached("python: pip install"), "{}", b.log);
    assert!(b.cached("system: apt-get install gcc"), "{}", b.log);
    // An app edit re-runs neither step.
    p.write("server.py", &format!("{}\n# {}\n", std::fs::read_to_string(p.dir.join("server.py")).unwrap(), nonce()));
    let b = p.build(&with_secret).assert_ok();
    assert!(b.cached("step native: make") && b.cached("step license:") && !b.cached("app: copy server.py"), "{}", b.log);

    // Without the secret the step fails and says which secret. (Secret
    // values are not part of cache keys, so force the step to run.)
    let b = Project::from_example("media-server").build(&["--build-arg", PY, "--no-cache-filter", "license"]).assert_failed();
    assert!(b.log.contains("license_key"), "{}", b.log);
}

#[test]
fn analytics_with_and_without_r_and_test_target() {
    gate!();
    let p = Project::from_example("analytics");
    // Without R: no R anywhere in the image; uv only in the builder.
    p.build(&["--build-arg", PY]).assert_ok();
    let out = p.run("python", &["-m", "pipeline"]);
    assert!(out.contains("NASA") && out.ends_with("R not installed"), "{out}");
    assert_eq!(p.run("sh", &["-c", "command -v Rscript uv || ls /opt/venv/bin/pip /opt/strata-uv 2>/dev/null || echo none"]), "none");
    assert_eq!(p.run("id", &["-un"]), "sbir");
    assert_eq!(p.inspect("{{index .Config.Entrypoint 0}}"), "/usr/bin/tini");

    // With R: R, and the CRAN package installed from the repo context.
    let with_r =
        ["--build-arg", PY, "--build-arg", "WITH_R=true", "--build-arg", "R_PACKAGE=strataR", "--build-arg", "R_REPO=context:cran"];
    let b = p.build(&with_r).assert_ok();
    assert!(b.cached("python: uv install"), "toggling R leaves the Python layers alone:\n{}", b.log);
    let out = p.run("python", &["-m", "pipeline"]);
    assert!(out.contains("DOE NASA  NIH") && out.contains("1    2    1"), "R summary missing:\n{out}");
    assert_eq!(p.run("Rscript", &["-e", "cat(as.character(packageVersion('strataR')))"]), "0.1.0");

    // The test target runs the tests (forced to run: `no-cache` for the
    // test step); a failing test fails the build.
    let b = p.build(&["--build-arg", PY, "--target", "test", "--no-cache-filter", "test"]).assert_ok();
    assert!(b.log.contains("2 passed"), "{}", b.log);
    p.write("tests/test_fail.py", "def test_fails():\n    assert 1 == 2\n");
    let b = p.build(&["--build-arg", PY, "--target", "test"]);
    assert!(!b.ok, "a failing test must fail the build");
    assert!(b.log.contains("1 failed, 2 passed"), "{}", b.log);
}

#[test]
fn ml_service_models_through_cache_mounts() {
    gate!();
    let p = Project::from_example("ml-service");
    let args = ["--build-arg", PY, "--build-arg", "REQUIREMENTS=requirements-ci.txt", "--build-arg", "MODEL_SOURCE=stub"];
    let script = std::fs::read_to_string(p.dir.join("scripts/fetch_models.py")).unwrap();
    // A unique edit, so this build runs the step and fills the cache mount.
    p.write("scripts/fetch_models.py", &format!("{script}\n# {}\n", nonce()));
    p.build(&args).assert_ok();
    let model = "/app/models/sentence-transformers--all-MiniLM-L6-v2";
    assert_eq!(p.run("sh", &["-c", &format!("ls {model}")]), "config.json\nweights.txt");
    // The caches are mounts: nothing of them in the image.
    assert_eq!(
        String::from_utf8(
            docker()
                .args([
                    "run",
                    "--rm",
                    "--user",
                    "root",
                    "--entrypoint",
                    "sh",
                    &p.tag,
                    "-c",
                    "test -e /root/.cache && echo present || echo absent"
                ])
                .output()
                .unwrap()
                .stdout
        )
        .unwrap()
        .trim(),
        "absent"
    );
    // Editing the fetch script re-runs the step, which finds the model in
    // the HF cache mount the first build filled (or an earlier run did).
    p.write("scripts/fetch_models.py", &format!("{script}\n# {}\n", nonce()));
    let b = p.build(&args).assert_ok();
    assert!(b.log.contains("cache hit: sentence-transformers/all-MiniLM-L6-v2"), "{}", b.log);
    assert!(b.cached("python: uv install"), "{}", b.log);
}

#[test]
fn strata_init_writes_a_spec_that_builds_for_every_example() {
    gate!();
    for name in ["hello", "python-web", "tf-service", "media-server", "analytics", "ml-service"] {
        let p = Project::from_example(name);
        std::fs::remove_file(p.dir.join("strata.toml")).unwrap();
        let init =
            |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_strata")).arg("init").args(args).arg(&p.dir).output().unwrap();
        let out = init(&[]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        // never over an existing spec without --force
        assert_eq!(init(&[]).status.code(), Some(1), "{name}: init overwrote its own spec");
        assert!(init(&["--force"]).status.success());
        // The local base image, and ml-service's small stand-in for torch.
        let mut args = vec!["--build-arg", PY];
        if name == "ml-service" {
            args.extend(["--build-arg", "REQUIREMENTS=requirements-ci.txt"]);
        }
        let b = p.build(&args);
        assert!(
            b.ok,
            "{name}: the spec strata init wrote does not build:\n{}\n{}",
            std::fs::read_to_string(p.dir.join("strata.toml")).unwrap(),
            b.log
        );
    }
}
