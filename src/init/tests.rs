//! init on small projects written to a temp dir: each spec must parse, and
//! the facts init read must show in it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let d = std::env::temp_dir().join(format!("strata-init-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (p, text) in files {
            let path = d.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Dir(d)
    }
    fn draft(&self) -> (Draft, crate::spec::Spec) {
        let d = inspect(&self.0).unwrap();
        let text = render(&d);
        let spec = crate::spec::load(&text, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        (d, spec)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn strs(v: &[crate::spec::Sp<String>]) -> Vec<&str> {
    v.iter().map(|s| s.value.as_str()).collect()
}

/// A Flask app described by its Dockerfile: its entrypoint script, port,
/// env, the packages it adds on the pip command line.
#[test]
fn a_dockerfile_says_how_the_service_starts() {
    let dir = Dir::new(
        "flask",
        &[
            ("requirements.txt", "flask==3.0.3\npsycopg2-binary==2.9.9\n"),
            ("microblog.py", "from app import create_app\napp = create_app()\n"),
            ("app/__init__.py", "from flask import Flask\ndef create_app():\n    return Flask(__name__)\n"),
            ("boot.sh", "#!/bin/sh\nexec gunicorn -b :5000 microblog:app\n"),
            (
                "Dockerfile",
                "FROM python:3.11-slim\nCOPY requirements.txt requirements.txt\nRUN pip install -r requirements.txt\nRUN pip install gunicorn pymysql\nCOPY app app\nCOPY microblog.py boot.sh ./\nENV FLASK_APP microblog.py\nEXPOSE 5000\nENTRYPOINT [\"./boot.sh\"]\n",
            ),
        ],
    );
    let (d, spec) = dir.draft();
    assert_eq!(d.python_version, "3.11");
    assert_eq!(spec.image.entrypoint, Some(vec!["./boot.sh".to_string()]));
    assert_eq!(strs(&spec.image.expose), ["5000"]);
    assert!(spec.image.env.contains(&("FLASK_APP".into(), "microblog.py".into())), "{:?}", spec.image.env);
    let py = spec.python.unwrap();
    assert_eq!(strs(&py.requirements), ["requirements.txt"]);
    assert_eq!(strs(&py.packages), ["gunicorn", "pymysql"]);
    assert_eq!(strs(&spec.app.copy), ["."]);
}

/// Django with no Dockerfile: migrate + gunicorn on the WSGI module, a
/// collectstatic step into STATIC_ROOT, native packages' OS packages.
#[test]
fn django_with_native_packages_and_static_files() {
    let dir = Dir::new(
        "django",
        &[
            ("requirements.txt", "Django==5.2\npsycopg2==2.9.9\nuwsgi==2.0.28\n"),
            ("manage.py", "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"shop.settings\")\n"),
            ("shop/settings.py", "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent.parent\nSTATIC_ROOT = BASE_DIR / \"static-collected\"\n"),
            ("shop/wsgi.py", "application = None\n"),
            (".dockerignore", "*.sqlite3\n"),
        ],
    );
    let (d, spec) = dir.draft();
    let cmd = spec.image.cmd.unwrap().join(" ");
    assert!(cmd.contains("manage.py migrate") && cmd.contains("gunicorn shop.wsgi --bind 0.0.0.0:8000"), "{cmd}");
    assert_eq!(strs(&spec.python.as_ref().unwrap().packages), ["gunicorn"]);
    for p in ["build-essential", "python3-dev", "libpq-dev", "libpcre2-dev"] {
        assert!(strs(&spec.system.build_packages).contains(&p), "{p}: {:?}", d.build_packages);
    }
    assert!(strs(&spec.system.packages).contains(&"libpq5"));
    let st = spec.steps.iter().find(|s| s.name.value == "static").expect("collectstatic step");
    assert_eq!(strs(&st.outputs), ["static-collected"]);
    assert_eq!(strs(&st.inputs), ["."]);
}

/// A virtual uv workspace root: the member the Dockerfile installs.
#[test]
fn uv_workspace_member_from_the_dockerfile() {
    let lock = "version = 1\n[[package]]\nname = \"app\"\nversion = \"0.1\"\nsource = { editable = \"backend\" }\n[[package]]\nname = \"tools\"\nversion = \"0.1\"\nsource = { editable = \"tools\" }\n";
    let dir = Dir::new(
        "workspace",
        &[
            ("pyproject.toml", "[tool.uv.workspace]\nmembers = [\"backend\", \"tools\"]\n"),
            ("uv.lock", lock),
            ("backend/pyproject.toml", "[project]\nname = \"app\"\n"),
            (
                "backend/Dockerfile",
                "FROM python:3.12\nWORKDIR /app/\nRUN uv sync --frozen --no-install-workspace --package app\nCOPY ./backend/app /app/backend/app\nWORKDIR /app/backend/\nCMD [\"uv\", \"run\", \"fastapi\", \"run\", \"--workers\", \"4\", \"app/main.py\"]\n",
            ),
            ("compose.yml", "services:\n  db:\n    image: postgres:18\n  backend:\n    build:\n      context: .\n      dockerfile: backend/Dockerfile\n"),
        ],
    );
    let (d, spec) = dir.draft();
    let py = spec.python.unwrap();
    assert_eq!(py.package.map(|p| p.value), Some("app".into()));
    assert_eq!(py.lock.map(|l| l.value), Some("uv.lock".into()));
    assert_eq!(spec.image.cmd, Some(vec!["fastapi".into(), "run".into(), "--workers".into(), "4".into(), "app/main.py".into()]));
    assert_eq!(d.python_version, "3.12");
    assert!(d.notes.iter().any(|n| n.contains("postgres")), "{:?}", d.notes);
}

/// No Dockerfile, a FastAPI app object: uvicorn, added when missing.
#[test]
fn fastapi_app_object() {
    let dir = Dir::new(
        "fastapi",
        &[("requirements.txt", "fastapi\n"), ("app/__init__.py", ""), ("app/main.py", "from fastapi import FastAPI\n\napp = FastAPI()\n")],
    );
    let (_, spec) = dir.draft();
    assert_eq!(spec.image.cmd.unwrap().join(" "), "uvicorn app.main:app --host 0.0.0.0 --port 8000");
    assert_eq!(strs(&spec.python.unwrap().packages), ["uvicorn"]);
    assert_eq!(strs(&spec.image.expose), ["8000"]);
}

/// poetry: the lock, extras from the Dockerfile's `poetry install -E`,
/// the script named after the project as the command.
#[test]
fn poetry_project() {
    let dir = Dir::new(
        "poetry",
        &[
            (
                "pyproject.toml",
                "[tool.poetry]\nname = \"shop\"\n[tool.poetry.scripts]\nshop = \"shop:main\"\n[build-system]\nrequires = [\"poetry-core\"]\nbuild-backend = \"poetry.core.masonry.api\"\n",
            ),
            ("poetry.lock", "[[package]]\nname = \"six\"\n"),
            ("shop/__init__.py", "def main(): pass\n"),
        ],
    );
    let (_, spec) = dir.draft();
    let py = spec.python.unwrap();
    assert_eq!(py.lock.map(|l| l.value), Some("poetry.lock".into()));
    assert_eq!(spec.image.cmd, Some(vec!["shop".to_string()]));
}

/// What runs before each deploy (migrations) is not in the image: init
/// says how to run it, quoted for a shell when it is a pipeline.
#[test]
fn a_release_command_becomes_a_note() {
    let web = ("app.py", "from flask import Flask\napp = Flask(__name__)\n");
    let reqs = ("requirements.txt", "flask==3.0.3\n");
    let dir = Dir::new("release-procfile", &[web, reqs, ("Procfile", "release: yes | flask db upgrade\nweb: gunicorn app:app\n")]);
    let (d, spec) = dir.draft();
    // The same Procfile's web line is the command.
    let cmd = spec.image.cmd.unwrap();
    assert!(cmd[..2] == ["sh", "-c"] && cmd[2].contains("gunicorn app:app"), "{cmd:?}");
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains("Procfile runs `yes | flask db upgrade`") && n.contains("docker run IMAGE sh -c 'yes | flask db upgrade'")),
        "{:?}",
        d.notes
    );
    let dir = Dir::new("release-heroku", &[web, reqs, ("heroku.yml", "release:\n  image: web\n  command:\n    - flask db upgrade\n")]);
    let (d, _) = dir.draft();
    assert!(
        d.notes.iter().any(|n| n.contains("heroku.yml runs `flask db upgrade`") && n.contains("`docker run IMAGE flask db upgrade`")),
        "{:?}",
        d.notes
    );
    let dir = Dir::new("release-none", &[web, reqs]);
    assert!(!dir.draft().0.notes.iter().any(|n| n.contains("before each deploy")));
}

/// Dependency groups the Dockerfile installs become `groups`: uv's
/// `--group` in a stage the final one copies its venv from, poetry's
/// `--with`; a `--group` of another command is not one.
#[test]
fn dependency_groups_from_the_dockerfile() {
    let pyproject =
        "[project]\nname = \"svc\"\ndependencies = [\"django\"]\n[dependency-groups]\npostgres = [\"psycopg[c]\"]\ndev = [\"pytest\"]\n";
    let dir = Dir::new(
        "groups",
        &[
            ("pyproject.toml", pyproject),
            ("uv.lock", "version = 1\n"),
            ("manage.py", ""),
            (
                "Dockerfile",
                "FROM python:3.13-slim AS deps\nWORKDIR /app\nCOPY pyproject.toml uv.lock ./\nRUN addgroup --group web && /root/.local/bin/uv sync --no-dev --group postgres\n\
                 FROM python:3.13-slim\nCOPY --from=deps /app/.venv /app/.venv\nCOPY . /app\nCMD [\"python\", \"manage.py\", \"runserver\"]\n",
            ),
        ],
    );
    let (_, spec) = dir.draft();
    assert_eq!(strs(&spec.python.unwrap().groups), ["postgres"]);
}

/// A Flask CLI command that runs pybabel (`flask translate compile`, as
/// in the Flask mega-tutorial): the catalogs are compiled in a step.
#[test]
fn flask_translate_compile_becomes_a_catalog_step() {
    let dir = Dir::new(
        "catalogs",
        &[
            ("requirements.txt", "flask==3.0.3\nflask-babel==4.0.0\n"),
            ("blog.py", "from app import create_app\napp = create_app()\n"),
            ("app/__init__.py", "def create_app():\n    pass\n"),
            ("app/cli.py", "import os\n\ndef compile():\n    if os.system('pybabel compile -d app/translations'):\n        raise RuntimeError('compile command failed')\n"),
            ("app/translations/es/LC_MESSAGES/messages.po", "msgid \"\"\nmsgstr \"\"\n"),
            (
                "Dockerfile",
                "FROM python:slim\nCOPY requirements.txt requirements.txt\nRUN pip install -r requirements.txt\nCOPY app app\nCOPY blog.py ./\nENV FLASK_APP blog.py\nRUN flask translate compile\nEXPOSE 5000\nCMD [\"flask\", \"run\"]\n",
            ),
        ],
    );
    let (d, spec) = dir.draft();
    let step = spec.steps.iter().find(|s| s.name.value == "catalogs").unwrap_or_else(|| panic!("no catalogs step: {:?}", d.notes));
    assert_eq!(step.run.value, "flask translate compile");
    assert_eq!(strs(&step.outputs), ["app/translations"]);
}

/// What a base stage installs is in the final image (`FROM base AS
/// final`); tools left out are named in a note; the HEALTHCHECK's options
/// strata has are kept, the others named; a bun stage gets bun from npm.
#[test]
fn base_stage_packages_healthcheck_options_and_bun() {
    let dir = Dir::new(
        "stages",
        &[
            ("requirements.txt", "flask==3.0.3\ngunicorn==23.0.0\n"),
            ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
            ("web/package.json", "{}\n"),
            (".env.example", "# settings\nAPI_KEY=sample\nexport MODEL_PATH=./m.joblib\n"),
            (
                "Dockerfile",
                "FROM oven/bun:1 AS web\nWORKDIR /web\nCOPY web/ /web/\nRUN bun install && bun run build\nFROM hkotel/crfpp AS crfpp\n\
                 FROM python:3.12-slim AS base\nRUN apt-get update && apt-get install -y --no-install-recommends libpq5 curl\nWORKDIR /app\n\
                 FROM base AS final\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\nCOPY --from=web /web/dist /app/static\nCOPY --from=crfpp /usr/local/bin/crf_test /usr/local/bin/crf_test\n\
                 HEALTHCHECK --interval=30s --start-period=20s --retries=3 CMD [\"python3\", \"-c\", \"print(1)\"]\n\
                 CMD [\"gunicorn\", \"app:app\", \"-b\", \"0.0.0.0:8000\"]\n",
            ),
        ],
    );
    let (d, spec) = dir.draft();
    assert_eq!(strs(&spec.system.packages), ["libpq5"]);
    assert!(d.notes.iter().any(|n| n.contains("installs curl in the image; left out")), "{:?}", d.notes);
    assert!(d.notes.iter().any(|n| n.contains("--start-period=20s are left out")), "{:?}", d.notes);
    assert!(d.notes.iter().any(|n| n.contains("copies /usr/local/bin/crf_test from stage crfpp (FROM hkotel/crfpp)")), "{:?}", d.notes);
    assert!(!d.notes.iter().any(|n| n.contains("from stage web")), "{:?}", d.notes);
    assert!(
        d.notes.iter().any(|n| n.contains(".env.example lists settings the app reads from its environment (API_KEY, MODEL_PATH)")),
        "{:?}",
        d.notes
    );
    let h = spec.image.healthcheck.unwrap();
    assert_eq!((h.interval.as_deref(), h.retries), (Some("30s"), Some(3)));
    let web = spec.steps.iter().find(|s| s.name.value == "assets").unwrap();
    assert!(web.run.value.contains("command -v bun >/dev/null || npm install -g --silent bun@1 && bun install"), "{}", web.run.value);
}

/// A Flask service whose Dockerfile runs as root: its entrypoint script is
/// copied to `/`, its data directory is made outside the app, its catalogs
/// are compiled at an image path of a copied package, and it installs a
/// `-dev` package in the image. Each becomes part of the spec (or a note).
#[test]
fn a_root_dockerfile_places_its_entrypoint_and_data_dir() {
    let dir = Dir::new(
        "rootsvc",
        &[
            ("requirements.txt", "flask==3.0.3\nflask-babel==4.0.0\n"),
            ("watcher/__init__.py", "from flask import Flask\napp = Flask(__name__)\n"),
            ("watcher/translations/de/LC_MESSAGES/messages.po", "msgid \"\"\nmsgstr \"\"\n"),
            ("run.py", "from watcher import app\napp.run(port=5000)\n"),
            ("entry.sh", "#!/bin/sh\nexec \"$@\"\n"),
            (
                "Dockerfile",
                "FROM python:3.11-slim\nRUN apt-get update && apt-get install -y libxml2 libxrender-dev\nCOPY requirements.txt /r.txt\nRUN pip install -r /r.txt\n\
                 RUN [ ! -d \"/var/lib/watcher\" ] && mkdir /var/lib/watcher\nCOPY watcher /srv/watcher\nRUN pybabel compile -d /srv/watcher/translations\n\
                 COPY run.py /srv/run.py\nWORKDIR /srv\nCOPY entry.sh /entry.sh\nRUN chmod +x /entry.sh\nENTRYPOINT [\"/entry.sh\"]\nCMD [\"python\", \"run.py\", \"-d\", \"/var/lib/watcher\"]\n",
            ),
        ],
    );
    let (d, spec) = dir.draft();
    assert_eq!(spec.image.entrypoint, Some(vec!["/entry.sh".to_string()]));
    let step = |n: &str| spec.steps.iter().find(|s| s.name.value == n).unwrap_or_else(|| panic!("no {n} step: {:?}", d.notes));
    let place = step("place");
    assert_eq!(strs(&place.inputs), ["entry.sh"]);
    assert_eq!(strs(&place.outputs), ["/entry.sh"]);
    assert_eq!(place.run.value, "mkdir -p / && cp entry.sh /entry.sh && chmod +x /entry.sh");
    let dirs = step("dirs");
    assert_eq!(strs(&dirs.outputs), ["/var/lib/watcher"]);
    assert_eq!(dirs.run.value, "mkdir -p /var/lib/watcher");
    let catalogs = step("catalogs");
    assert_eq!(strs(&catalogs.outputs), ["watcher/translations"]);
    assert!(strs(&spec.system.build_packages).contains(&"libxrender-dev"));
    assert!(strs(&spec.system.packages).contains(&"libxml2"));
    assert!(d.notes.iter().any(|n| n.contains("libxrender-dev in the image")), "{:?}", d.notes);
}

/// Radicale's shape: the builder's venv (`python -m venv /app/venv`) is
/// copied onto the app directory and started by path; the port is in
/// `--hosts`; apk's runtime packages become Debian's; the home under
/// /var/lib is a VOLUME, so the user owns it. And `/etc/NAME` made for a
/// start script's config is the user's; `/etc/apt/…` is not.
#[test]
fn an_alpine_venv_copied_onto_the_app_dir() {
    let dir = Dir::new(
        "alpinevenv",
        &[
            ("pyproject.toml", "[project]\nname = \"cal\"\nversion = \"1\"\ndependencies = []\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n"),
            ("cal/__init__.py", ""),
            (
                "Dockerfile",
                "FROM python:3-alpine AS builder\nRUN apk add --no-cache --virtual gcc libffi-dev musl-dev && python -m venv /app/venv && /app/venv/bin/pip install .\n\
                 FROM python:3-alpine\nWORKDIR /app\nRUN apk add --no-cache ca-certificates openssl curl libmagic && mkdir -p /etc/cal /etc/apt/keyrings\n\
                 COPY --from=builder /app/venv /app\nVOLUME /var/lib/cal\nENTRYPOINT [\"/app/bin/python\", \"/app/bin/cal\"]\nCMD [\"--hosts\", \"0.0.0.0:5232,[::]:5232\"]\n",
            ),
        ],
    );
    let (d, spec) = dir.draft();
    assert_eq!(spec.image.entrypoint, Some(vec!["/opt/venv/bin/python".to_string(), "/opt/venv/bin/cal".to_string()]), "{:?}", d.notes);
    assert_eq!(spec.python.as_ref().unwrap().venv, "/opt/venv");
    assert_eq!(strs(&spec.image.expose), ["5232"]);
    assert_eq!(strs(&spec.system.packages), ["openssl", "libmagic1"]);
    assert!(strs(&spec.system.build_packages).contains(&"libffi-dev") && !strs(&spec.system.build_packages).contains(&"musl-dev"));
    let dirs = spec.steps.iter().find(|s| s.name.value == "dirs").expect("a dirs step");
    assert_eq!(strs(&dirs.outputs), ["/var/lib/cal", "/etc/cal"]);
}

/// `pip install -e /src[pg]` after `ADD . /src`: the project, editable,
/// with its extra; `pip install other[x]` is not the project.
#[test]
fn a_pip_install_of_the_copy_path_is_the_project() {
    let dir = Dir::new(
        "copypath",
        &[
            ("pyproject.toml", "[project]\nname = \"ledger\"\nversion = \"1\"\ndependencies = []\n[project.optional-dependencies]\npg = [\"psycopg2\"]\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n"),
            ("ledger/__init__.py", ""),
            ("Dockerfile", "FROM python:3.11-alpine\nADD . /src\nRUN pip install requests[socks] && pip install -e /src[pg]\nCMD [\"python\", \"-m\", \"ledger\"]\n"),
        ],
    );
    let (_, spec) = dir.draft();
    let py = spec.python.as_ref().unwrap();
    assert_eq!(strs(&py.extras), ["pg"]);
    assert!(py.editable);
}
