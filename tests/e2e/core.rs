//! The core build: the hello and python-web examples, the rebuild matrix,
//! keep-pip and chown.

use super::common::*;

#[test]
fn hello_example_builds_and_runs() {
    gate!();
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
    // base layer + user and workdir (one command) + one layer per copy entry
    assert_eq!(p.inspect("{{len .RootFS.Layers}}"), "4");
}

/// Debian's base has /srv (root's): the workdir is still the user's, on
/// every lane. (A FileOp mkdir left it root's where no merged app layer
/// recreated it: the linear chain, or a spec that copies nothing there.)
#[test]
fn a_workdir_the_base_has_is_the_users() {
    gate!();
    let p = Project::empty("srv-workdir");
    p.write("strata.toml", "# syntax=strata:dev\nversion = 1\n[args]\nBASE = \"python:3.11-slim\"\n[image]\nbase = \"${BASE}\"\nworkdir = \"/srv\"\nentrypoint = [\"sh\"]\n");
    p.build(&["--build-arg", PY]).assert_ok();
    assert_eq!(p.run("sh", &["-c", "stat -c %u:%g /srv; touch /srv/x && echo writable"]), "1000:1000\nwritable");
}

/// What sits above the workdir and above an output outside it stays
/// root's: a merged layer recreates those directories, and left to the
/// copy they were the app user's (`/srv`, `/var`, `/var/lib`).
#[test]
fn directories_above_the_workdir_and_outputs_stay_roots() {
    gate!();
    let p = Project::empty("above-workdir");
    p.write(
        "strata.toml",
        "# syntax=strata:dev\nversion = 1\n[args]\nBASE = \"python:3.11-slim\"\n[image]\nbase = \"${BASE}\"\nworkdir = \"/srv/site\"\nentrypoint = [\"sh\"]\n\
         [[step]]\nname = \"dirs\"\nrun = \"mkdir -p /var/lib/watcher\"\noutputs = [\"/var/lib/watcher\"]\n[app]\ncopy = [\"a.txt\"]\n",
    );
    p.write("a.txt", "a\n");
    p.build(&["--build-arg", PY]).assert_ok();
    assert_eq!(
        p.run("sh", &["-c", "stat -c '%n %u:%g' /srv /srv/site /srv/site/a.txt /var /var/lib /var/lib/watcher"]),
        "/srv 0:0\n/srv/site 1000:1000\n/srv/site/a.txt 1000:1000\n/var 0:0\n/var/lib 0:0\n/var/lib/watcher 1000:1000"
    );
}

#[test]
fn python_web_serves_and_keeps_build_tools_out() {
    gate!();
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
    gate!();
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

#[test]
fn keep_pip_and_app_chown() {
    gate!();
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
