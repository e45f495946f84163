//! End-to-end: the core pipeline through real BuildKit (see common/).

mod common;

use common::*;

#[test]
fn hello_example_builds_and_runs() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.build(&[]).assert_ok();
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello from strata (uid 1000) in /app: it works");
    // Only the declared files are in the image: not the .tmp the spec
    // excludes, not files outside [app] copy.
    assert_eq!(p.run("sh", &["-c", "cd /app && find . -type f | sort"]), "./data/message.txt\n./hello.sh");
    assert_eq!(p.run("id", &["-u"]), "1000");
    assert_eq!(p.run("sh", &["-c", "stat -c %u:%g /app /app/hello.sh"]), "1000:1000\n1000:1000");
    assert_eq!(p.inspect("{{.Config.User}}"), "1000:1000");
    assert_eq!(p.inspect("{{json .Config.Entrypoint}}"), r#"["sh","/app/hello.sh"]"#);
    assert!(p.inspect("{{json .Config.Env}}").contains("GREETING=hello from strata"));
    assert_eq!(p.inspect("{{index .Config.Labels \"org.opencontainers.image.title\"}}"), "hello");
    // base layer + user + workdir + one layer per copy entry
    assert_eq!(p.inspect("{{len .RootFS.Layers}}"), "5");
}

#[test]
fn build_args_override_defaults() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.build(&["--build-arg", "GREETING=hi there"]).assert_ok();
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hi there (uid 1000)"));
}

#[test]
fn spec_errors_show_the_spec_line() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.write("bad.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\nentrypont = [\"sh\"]\n");
    let b = p.build_file("bad.toml", &[]).assert_failed();
    assert!(b.log.contains("bad.toml:5:1: unknown key `entrypont` in [image]; did you mean `entrypoint`?"), "{}", b.log);
    // buildx frames the offending line from the source map we attached
    assert!(b.log.contains(">>> entrypont = [\"sh\"]"), "{}", b.log);
}

#[test]
fn failing_step_points_at_its_spec_line() {
    if !engine() {
        return;
    }
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
    if !engine() {
        return;
    }
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

#[test]
fn dockerignore_and_filename_are_honoured() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    p.write(".dockerignore", "data/message.txt\n");
    p.write("data/other.txt", "x\n");
    std::fs::rename(p.dir.join("strata.toml"), p.dir.join("service.toml")).unwrap();
    p.build_file("service.toml", &[]).assert_ok();
    assert_eq!(p.run("sh", &["-c", "cd /app && find . -type f | sort"]), "./data/other.txt\n./hello.sh");
}

#[test]
fn python_web_serves_and_keeps_build_tools_out() {
    if !engine() {
        return;
    }
    let p = Project::from_example("python-web");
    p.build(&[]).assert_ok();
    assert_eq!(p.run("python", &["-c", "import flask, sys; print(sys.prefix)"]), "/opt/venv");
    assert_eq!(p.run("id", &["-u"]), "1000");
    // no pip/setuptools in the runtime venv, no build mounts, no tests, no
    // stray bytecode of the app, no spec or wheelhouse
    assert_eq!(
        p.run("sh", &["-c", "ls /opt/venv/bin/pip* /opt/venv/lib/python3.11/site-packages/setuptools /tmp/strata /app/tests /app/strata.toml /app/wheels 2>&1 | grep -vc 'No such file'; true"]),
        "0"
    );
    assert_eq!(p.run("sh", &["-c", "find /app -name __pycache__ | wc -l"]), "0");
    assert_eq!(
        p.run("sh", &["-c", "cd /app && find . -type f | sort"]),
        "./shop/__init__.py\n./shop/__main__.py\n./shop/app.py\n./shop/catalog.py\n./templates/index.html"
    );
    // apt left no lists or archives in the image
    assert_eq!(p.run("sh", &["-c", "ls /var/lib/apt/lists | grep -vc '^lock$\\|^partial$'; true"]), "0");
    assert!(p.run("sh", &["-c", "dpkg -s libexpat1 | grep Status"]).contains("install ok installed"));

    // The app answers over HTTP.
    let c = Running::start(&p, &[]);
    let body = http_get(&c.0, "http://127.0.0.1:8000/health");
    assert!(body.contains("\"status\":\"ok\"") && body.contains("\"items\":2"), "health: {body}");
    assert!(http_get(&c.0, "http://127.0.0.1:8000/").contains("<li>tea: 3</li>"));
}

#[test]
fn rebuild_after_code_edit_reruns_no_os_or_dependency_step() {
    if !engine() {
        return;
    }
    let p = Project::from_example("python-web");
    p.build(&[]).assert_ok();

    // No change: everything cached.
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("system: apt-get install") && b.cached("python: pip install") && b.cached("app: copy shop/"), "{}", b.log);

    // Code edit: OS and dependency steps CACHED, the edited layer re-runs.
    // The edit is unique per run, so an earlier run's cache cannot hit.
    let n = nonce();
    p.write("shop/catalog.py", &format!("ITEMS = [{{\"name\": \"tea\", \"price\": 5}}]\nNONCE = {n}\n"));
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("system: apt-get install"), "{}", b.log);
    assert!(b.cached("python: pip install"), "{}", b.log);
    assert!(b.cached("user: create app"), "{}", b.log);
    assert!(!b.cached("app: copy shop/"), "{}", b.log);
    assert_eq!(p.run("python", &["-c", "from shop.catalog import ITEMS; print(ITEMS[0]['price'])"]), "5");

    // Dependency file edit: OS step CACHED, install re-runs.
    p.write("requirements.txt", &format!("flask==3.0.3\n# e2e edit {n}\n"));
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("system: apt-get install"), "{}", b.log);
    assert!(!b.cached("python: pip install"), "{}", b.log);
    // With MergeOp (containerd image store) the app layers do not sit on
    // the venv: they stay cached, same blobs.
    if containerd_store() {
        assert!(b.cached("app: copy shop/") && b.cached("app: copy templates/"), "{}", b.log);
    }
}

fn containerd_store() -> bool {
    let out = docker().args(["info", "--format", "{{json .DriverStatus}}"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("io.containerd.snapshotter")
}

#[test]
fn symlinks_cannot_reach_outside_the_context() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    let marker = format!("outside-the-context-{}", nonce());
    let outside = std::env::temp_dir().join(format!("strata-outside-{}", nonce()));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), &marker).unwrap();
    // An absolute and a relative link out of the context, inside a copied dir.
    std::os::unix::fs::symlink(outside.join("secret.txt"), p.dir.join("data/abs")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../../..".to_string() + &outside.join("secret.txt").display().to_string(),
        p.dir.join("data/rel"),
    )
    .unwrap();
    p.build(&[]).assert_ok();
    // They arrive as links (resolved, if at all, inside the container), never
    // as the host file's content.
    assert_eq!(p.run("sh", &["-c", "test -L /app/data/abs && test -L /app/data/rel && echo links"]), "links");
    assert!(!image_contains(&p.tag, &marker), "a file outside the context reached the image");

    // A copy entry that is itself a link out of the context finds nothing.
    std::os::unix::fs::symlink(&outside, p.dir.join("escape")).unwrap();
    p.write("esc.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\n[app]\ncopy = [\"escape/\"]\n");
    let b = p.build_file("esc.toml", &[]);
    if b.ok {
        assert!(!image_contains(&p.tag, &marker), "a linked-out directory reached the image");
    } else {
        assert!(b.log.contains("escape"), "{}", b.log);
    }
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn ssh_agent_reaches_steps_only() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    let sock = p.dir.join("agent.sock");
    let agent = std::process::Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).spawn().expect("ssh-agent (openssh-client)");
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    p.write(
        "ssh.toml",
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\n[[step]]\nname = \"fetch\"\nrun = \"test -S \\\"$SSH_AUTH_SOCK\\\" && echo agent-ok > ssh.txt\"\nssh = true\noutputs = [\"ssh.txt\"]\n",
    );
    let b = p.build_file("ssh.toml", &["--ssh", &format!("default={}", sock.display())]);
    let mut agent = agent;
    let _ = agent.kill();
    let b = b.assert_ok();
    let _ = b;
    assert_eq!(p.run("cat", &["/app/ssh.txt"]), "agent-ok");
    assert_eq!(p.run("sh", &["-c", "ls /run/buildkit 2>/dev/null | wc -l"]), "0");
    // Without --ssh the step cannot run: BuildKit refuses the missing agent.
    let b = Project::from_example("hello");
    b.write("ssh.toml", &std::fs::read_to_string(p.dir.join("ssh.toml")).unwrap().replace("agent-ok", &format!("agent-{}", nonce())));
    let out = b.build_file("ssh.toml", &[]);
    assert!(!out.ok && out.log.contains("ssh"), "{}", out.log);
}

#[test]
fn pyproject_and_uv_lock_install_with_uv_sync() {
    if !engine() {
        return;
    }
    let p = Project::from_dir("tests/fixtures/uvlock");
    let b = p.build(&[]).assert_ok();
    assert!(b.log.contains("python: uv sync uv.lock"), "{}", b.log);
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("lock  ok"), "{}", String::from_utf8_lossy(&out.stdout));
    // uv and pip stay in the builder
    assert_eq!(p.run("sh", &["-c", "ls /opt/venv/bin | grep -c -e '^pip' -e '^uv' || true"]), "0");
    // the lock is the install's cache key: editing the app keeps it cached
    p.write("app/__main__.py", &format!("print('edited {}')\n", nonce()));
    let b = p.build(&[]).assert_ok();
    assert!(b.cached("python: uv sync uv.lock"), "{}", b.log);
}

#[test]
fn keep_pip_and_app_chown() {
    if !engine() {
        return;
    }
    let p = Project::from_example("python-web");
    let spec = std::fs::read_to_string(p.dir.join("strata.toml"))
        .unwrap()
        .replace("wheels = \"wheels\"", "wheels = \"wheels\"\nkeep-pip = true")
        .replace("exclude = [\"**/__pycache__\", \"**/*.pyc\"]", "exclude = [\"**/__pycache__\", \"**/*.pyc\"]\nchown = \"root\"");
    p.write("strata.toml", &spec);
    p.build(&[]).assert_ok();
    // keep-pip: the venv has its own pip; chown = "root": app files are
    // root's while the image still runs as the app user
    assert_eq!(p.run("sh", &["-c", "test -x /opt/venv/bin/pip && echo pip"]), "pip");
    assert_eq!(p.run("sh", &["-c", "stat -c %u /app/shop/app.py; id -u"]), "0\n1000");
}
