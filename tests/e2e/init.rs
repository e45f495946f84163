//! `strata init` as a new user meets it: on fixture projects shaped after
//! public services, init writes a spec that builds unedited, the container
//! starts and the service answers.

use super::common::*;

fn init(p: &Project) -> String {
    let _ = std::fs::remove_file(p.dir.join("strata.toml"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata")).arg("init").arg(&p.dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = std::fs::read_to_string(p.dir.join("strata.toml")).unwrap();
    eprintln!("strata init wrote:\n{spec}\n{}", String::from_utf8_lossy(&out.stdout));
    spec
}

fn build(p: &Project, spec: &str) {
    let b = p.build(&["--build-arg", PY]);
    assert!(b.ok, "the spec strata init wrote does not build:\n{spec}\n{}", b.log);
}

/// A Flask app described by its Dockerfile: the entrypoint script, port,
/// env, gunicorn added on the pip command line, a file copied to another
/// place, a healthcheck; it reads its CHANGELOG at import, and
/// .dockerignore keeps a log and notes out.
#[test]
fn flask_app_from_its_dockerfile() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/flask-boot");
    let spec = init(&p);
    assert!(spec.contains("entrypoint = [\"./boot.sh\"]") && spec.contains("\"gunicorn==23.0.0\""), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &[]);
    assert_eq!(http_get(&c.0, "http://127.0.0.1:5050/"), "hi 1.4.0");
    assert_eq!(p.run("sh", &["-c", "ls /srv/check.py; ls /srv/server.log /srv/notes 2>&1 | grep -c 'No such'"]), "/srv/check.py\n2");
    assert!(p.inspect("{{json .Config.Healthcheck}}").contains("check.py"), "healthcheck");
    assert_eq!(p.inspect("{{.Config.User}}"), "1000:1000");
}

/// A service whose Dockerfile runs as root (shaped after a self-hosted
/// page watcher): its entrypoint script is copied to `/`, it makes its data
/// directory outside the app and refuses to start without it, and it
/// compiles its message catalogs at an image path. strata's image runs as
/// its user: the script is placed, the directory is the user's, the
/// catalogs are compiled by a step.
#[test]
fn root_service_gets_its_entrypoint_data_dir_and_catalogs() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/root-service");
    let spec = init(&p);
    assert!(spec.contains("name = \"dirs\"") && spec.contains("outputs = [\"/entry.sh\"]"), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &[]);
    assert_eq!(http_get(&c.0, "http://127.0.0.1:5000/"), "beobachte ok entry");
    assert_eq!(p.run("sh", &["-c", "stat -c %u:%g /var/lib/watcher; id -u"]), "1000:1000\n1000");
}

/// Django with a dependency built from source (psycopg2: compilers and
/// libpq-dev in the builder, libpq5 in the image), a Node asset stage whose
/// output the app serves, and collectstatic into a hashed manifest (pages
/// fail without it).
#[test]
fn django_with_native_deps_node_assets_and_collectstatic() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/django-native");
    let spec = init(&p);
    // Node on the asset step's own branch, not in the builder
    assert!(spec.contains("packages = [\"nodejs\", \"npm\"]") && !spec.contains("\"libpq-dev\", \"nodejs\""), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &[]);
    let page = http_get(&c.0, "http://127.0.0.1:8000/");
    assert!(page.contains("psycopg2 2.9.10"), "{page}");
    assert_eq!(p.run("sh", &["-c", "command -v node npm || echo none"]), "none");
    let js = page.split("src=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_string();
    assert!(js.starts_with("/static/dist/app.") && js.ends_with(".js") && js != "/static/dist/app.js", "hashed by the manifest: {page}");
    // no compiler reached the image
    assert_eq!(p.run("sh", &["-c", "command -v gcc cc || echo none"]), "none");
    assert_eq!(p.run("sh", &["-c", "ls /app/collected/dist/ | grep -c '^app\\.'"]), "2");
}

/// A uv project whose console script (named after the project) is the
/// server, with no Dockerfile: init finds the lock and the script.
#[test]
fn uv_service_from_its_project_script() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/uv-service");
    let spec = init(&p);
    assert!(spec.contains("cmd = [\"tinyserve\"]"), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &[]);
    assert!(http_get(&c.0, "http://127.0.0.1:8000/").contains("tinyserve  0.2.0"), "the installed package answers");
}

/// A poetry project, and a uv workspace whose Dockerfile installs one
/// member: init picks the lock, the member and the command.
#[test]
fn poetry_project_and_uv_workspace_member() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/projects/poetry-app");
    let spec = init(&p);
    assert!(spec.contains("lock = \"poetry.lock\""), "{spec}");
    build(&p, &spec);
    assert!(p.run("poetry-app", &[]).contains("poetry-app"));

    let w = Project::from_dir("tests/fixtures/projects/uv-workspace");
    w.write(
        "Dockerfile",
        "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nRUN uv sync --frozen --no-dev --package api\nCMD [\"uv\", \"run\", \"api-report\"]\n",
    );
    let spec = init(&w);
    assert!(spec.contains("package = \"api\"") && spec.contains("cmd = [\"api-report\"]"), "{spec}");
    build(&w, &spec);
    let out = docker().args(["run", "--rm", &w.tag]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("answer 42 2 m"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An Alpine Dockerfile that runs as root (shaped after a self-hosted
/// budget app): apk's names become Debian's (postgresql-dev → libpq-dev,
/// shadow and musl-dev dropped), `pip install -e /src[pg]` names the
/// project's extra by its copy path, a package added on the pip command
/// line goes in beside the uv.lock, and the start script writes a config
/// under /etc and data into a VOLUME, both the image user's here.
#[test]
fn alpine_root_service_with_a_lock_extras_and_runtime_dirs() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/alpine-service");
    let spec = init(&p);
    assert!(spec.contains("extras = [\"pg\"]") && spec.contains("\"six==1.16.0\"") && !spec.contains("shadow"), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &[]);
    assert_eq!(http_get(&c.0, "http://127.0.0.1:8000/"), "ledger 0.3.0 psycopg2 2.9.10 six 1.16.0 port 8000");
    assert_eq!(p.run("sh", &["-c", "stat -c %u /data /etc/ledger; stat -c %u:%g /etc; id -u"]), "1000\n1000\n0:0\n1000");
    assert_eq!(p.run("sh", &["-c", "command -v gcc || echo none"]), "none");
}

/// A venv that is the app directory (`virtualenv /board` with WORKDIR
/// /board, started as `/board/bin/board-serve`), a Node stage built with
/// make whose output a Python build stage copies into the app, and an
/// editable install by hatchling 1.21 (zip times before 1980 fail it).
#[test]
fn venv_in_the_app_dir_with_node_assets_through_a_build_stage() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/venv-in-app");
    let spec = init(&p);
    assert!(spec.contains("\"/opt/venv/bin/board-serve\"") && spec.contains("\"make\""), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &[]);
    assert_eq!(http_get(&c.0, "http://127.0.0.1:8080/"), "board /* bundled */");
    assert_eq!(p.run("sh", &["-c", "stat -c %u /db; command -v node make || echo none"]), "1000\nnone");
}

/// A Heroku-style Django project with no Dockerfile (shaped after a
/// self-hosted tracker): the Procfile runs a script that starts gunicorn
/// without a bind (it binds $PORT), manage.py names no settings module,
/// and runtime.txt gives the Python. init sets PORT and the settings that
/// hold STATIC_ROOT, so collectstatic runs and the server answers.
#[test]
fn procfile_script_django_without_a_settings_default() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/procfile-django");
    let spec = init(&p);
    assert!(spec.contains("BASE = \"python:3.11-slim-bookworm\"   # runtime.txt"), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &["-e", "SECRET_KEY=run-time"]);
    assert_eq!(http_get(&c.0, "http://127.0.0.1:8000/"), "nursery ok nursery.settings.base");
    assert_eq!(p.run("sh", &["-c", "cat /app/static/nursery/app.css"]), "body { color: teal; }");
}

/// A root image whose entrypoint drops to the user the Dockerfile makes
/// (`su-exec keeper`), and runs as that user when started so (it checks
/// `id -u`, as the official images' entrypoints do): strata's image runs
/// as keeper:9898 from the start. As root it would call su-exec, which a
/// Debian image does not have.
#[test]
fn an_entrypoint_that_drops_to_its_user_runs_as_that_user() {
    gate!(Primary);
    let p = Project::from_dir("tests/fixtures/init/drop-to-user");
    let spec = init(&p);
    assert!(spec.contains("user = \"keeper:9898\""), "{spec}");
    build(&p, &spec);
    let c = Running::start(&p, &[]);
    assert_eq!(http_get(&c.0, "http://127.0.0.1:7000/"), "keeper uid 9898 keeper");
}
