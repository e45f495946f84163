//! Python projects as people write them: requirement files, indexes, uv.lock,
//! uv workspaces and path dependencies, poetry, hashed requirements, lock-
//! less pyproject.toml, inline packages, the project installed as a wheel or
//! editable.

use super::common::*;

fn project(fixture: &str, spec: &str) -> Project {
    let p = Project::from_dir(&format!("tests/fixtures/projects/{fixture}"));
    p.write("strata.toml", &format!("# syntax=strata:dev\nversion = 1\n[args]\nBASE = \"python:3.11-slim\"\n{spec}"));
    p
}

/// Nothing of strata's stays in the image: no mount point, no cache.
fn assert_no_residue(p: &Project) {
    assert_eq!(p.residue(), "", "strata left files in the image");
}

#[test]
fn pyproject_and_uv_lock_install_with_uv_sync() {
    gate!();
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

/// Both installers fetch from the indexes the spec names: six from the
/// primary, itsdangerous from the extra index only. pip needs the http host
/// trusted (strata passes --trusted-host for http:// indexes it is given).
#[test]
fn index_url_and_extra_index_urls_with_pip_and_uv() {
    gate!();
    for installer in ["pip", "uv"] {
        // primary: six (and uv, for uv's tool venv); extra: the flask set.
        let index =
            Index::start(&[("primary", repo().join("tests/fixtures/layers/wheels")), ("extra", repo().join("examples/python-web/wheels"))]);
        let p = Project::from_dir("tests/fixtures/indexes");
        let args = [
            "--build-arg".to_string(),
            format!("INSTALLER={installer}"),
            "--build-arg".to_string(),
            format!("INDEX={}/primary/simple", index.base),
            "--build-arg".to_string(),
            format!("EXTRA={}/extra/simple", index.base),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let b = p.build(&args).assert_ok();
        let asked = index.requests();
        assert!(
            asked.iter().any(|r| r.starts_with("/primary/simple/six")),
            "{installer}: primary index not asked for six: {asked:?}\n{}",
            b.log
        );
        assert!(asked.iter().any(|r| r.starts_with("/extra/simple/itsdangerous")), "{installer}: extra index not asked: {asked:?}");
        assert!(
            asked.iter().any(|r| r.starts_with("/extra/files/itsdangerous-2.2.0")),
            "{installer}: itsdangerous not downloaded from the extra index: {asked:?}"
        );
        let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0 2.2.0", "{installer}: {}", String::from_utf8_lossy(&out.stderr));
        // the installer stays in the builder
        assert_eq!(p.run("sh", &["-c", "ls /opt/venv/bin | grep -c -e '^pip' -e '^uv' || true"]), "0", "{installer}");
    }
}

/// A uv project that is a package (hatchling, src layout, a console
/// script, a readme): the dependencies come from the lock, the project is
/// built as a wheel and installed non-editable in a layer of its own, so a
/// code edit re-runs only that.
#[test]
fn uv_project_is_installed_as_a_package() {
    gate!();
    let p = project(
        "uv-package",
        "[image]\nbase = \"${BASE}\"\ncmd = [\"greet\"]\n[python]\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\n[app]\ncopy = [\".\"]\n",
    );
    p.build(&["--build-arg", PY]).assert_ok();
    let out = p.run("greet", &[]);
    assert!(out.contains("greeter") && out.contains("1.2.0"), "{out}");
    assert_eq!(p.run("python", &["-c", "import importlib.metadata as m; print(m.version('greeter'))"]), "1.2.0");
    // non-editable: the package lives in the venv, not in the app copy
    let at = p.run("python", &["-c", "import greeter; print(greeter.__file__)"]);
    assert!(at.starts_with("/opt/venv/lib/python3.11/site-packages/greeter/"), "{at}");
    // the dev group is not installed
    assert_eq!(p.run("python", &["-c", "import importlib.util as u; print(u.find_spec('six') is None)"]), "True");
    assert_no_residue(&p);

    // (a per-run edit: the engine's cache outlives test runs)
    let cli = std::fs::read_to_string(p.dir.join("src/greeter/cli.py")).unwrap().replace("plain", "simple");
    p.write("src/greeter/cli.py", &format!("{cli}# edit {}\n", nonce()));
    let b = p.build(&["--build-arg", PY]).assert_ok();
    assert!(b.cached("python: uv sync uv.lock"), "a code edit re-ran the dependency install:\n{}", b.log);
    assert!(!b.cached("python: install the project"), "the project layer must be rebuilt:\n{}", b.log);
    if lane().has(Feature::MergeOp) {
        // one command builds and installs the project (its diff is the
        // layer), not a wheel build and then an install in the runtime
        let v = b.vertices();
        assert!(v.keys().any(|n| n.starts_with("python: install the project into /opt/venv (built from")), "{}", b.log);
        assert!(!v.keys().any(|n| n.starts_with("python: build the project as a wheel")), "{}", b.log);
    }
    assert!(p.run("greet", &[]).contains("-------"), "the edit is in the image");
}

/// A virtual workspace root whose service is the member `api`, which
/// needs the member `core` and `units`, a path dependency outside the
/// members: `package = "api"` installs exactly those three, built from
/// the context.
#[test]
fn uv_workspace_member_with_a_path_dependency() {
    gate!();
    let p = project(
        "uv-workspace",
        "[image]\nbase = \"${BASE}\"\n[python]\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\npackage = \"api\"\n[app]\ncopy = [\".\"]\n",
    );
    p.build(&["--build-arg", PY]).assert_ok();
    let out = p.run("api-report", &[]);
    for want in ["api", "0.3.0", "core", "0.1.0", "units", "2.0.0", "answer 42 2 m"] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    // non-editable: nothing points back into the build's mounts
    assert_eq!(p.run("sh", &["-c", "grep -rl strata-src /opt/venv/lib/python3.11/site-packages | wc -l"]), "0");
    assert_no_residue(&p);
}

/// poetry.lock: exported to pinned, hashed requirements in the builder
/// (pinned poetry), installed, then the project itself as a package; the
/// `compat` extra is in, the dev group is not.
#[test]
fn poetry_lock_is_exported_and_installed() {
    gate!();
    let p = project(
        "poetry-app",
        "[image]\nbase = \"${BASE}\"\n[python]\npyproject = \"pyproject.toml\"\nlock = \"poetry.lock\"\nextras = [\"compat\"]\n[app]\ncopy = [\".\"]\n",
    );
    p.build(&["--build-arg", PY]).assert_ok();
    let out = p.run("poetry-app", &[]);
    assert!(out.contains("poetry-app") && out.contains("0.4.0") && out.contains("six 1.16.0"), "{out}");
    assert_eq!(p.run("python", &["-c", "import importlib.util as u; print(u.find_spec('pytest') is None)"]), "True");
    assert_no_residue(&p);
}

/// `poetry export` / `pip-compile --generate-hashes` output: requirements
/// continued onto `--hash` lines, with environment markers. With layer
/// groups (cryptography is in the `native` group) each group file keeps
/// its hashes and markers; uv and pip both install it. The layered
/// install leaves no mount point in the image.
#[test]
fn hash_pinned_requirements_with_layers_install_with_uv_and_pip() {
    gate!();
    for installer in ["uv", "pip"] {
        let p = project(
            "hashed-reqs",
            &format!("[image]\nbase = \"${{BASE}}\"\n[python]\ninstaller = \"{installer}\"\nrequirements = [\"requirements.txt\"]\n"),
        );
        let b = p.build(&["--build-arg", PY]).assert_ok();
        assert!(b.log.contains("python: layer native"), "cryptography gets a layer of its own:\n{}", b.log);
        let out = p.run("python", &["-c", "import cryptography, cffi, six; print(cryptography.__version__, six.__version__)"]);
        assert_eq!(out, "43.0.3 1.16.0", "{installer}");
        assert_no_residue(&p);
    }
}

/// A pyproject.toml without a lock (setuptools): its dependencies (with
/// markers, and the `server` extra) install before the project, which is
/// a wheel of its own; `packages` adds an inline specifier.
#[test]
fn pyproject_without_a_lock_with_an_extra_and_inline_packages() {
    gate!();
    let p = project(
        "pyproject-nolock",
        "[image]\nbase = \"${BASE}\"\n[python]\npyproject = \"pyproject.toml\"\nextras = [\"server\"]\npackages = [\"certifi==2024.8.30\"]\n[app]\ncopy = [\".\"]\n",
    );
    let b = p.build(&["--build-arg", PY]).assert_ok();
    assert!(b.log.contains("python: uv install the dependencies of pyproject.toml"), "{}", b.log);
    assert_eq!(p.run("nolock", &[]), "nolock 0.9.1 tabulate six idna certifi");
    // a code edit leaves the dependency install alone
    p.write("nolock/extra.py", &format!("X = {}\n", nonce()));
    let b = p.build(&["--build-arg", PY]).assert_ok();
    assert!(b.cached("python: uv install the dependencies"), "{}", b.log);
    assert!(!b.cached("python: install the project"), "{}", b.log);
}

/// `editable = true`: the project points at the app's copy (for apps that
/// read files next to their package, as mealie reads alembic.ini), with its
/// console scripts and metadata; the install runs after the app copies and
/// leaves nothing of the installer or its cache.
#[test]
fn editable_project_points_at_the_app_copy() {
    gate!();
    let p = project(
        "uv-package",
        "[image]\nbase = \"${BASE}\"\n[python]\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\neditable = true\n[app]\ncopy = [\".\"]\n",
    );
    p.build(&["--build-arg", PY]).assert_ok();
    assert!(p.run("greet", &[]).contains("1.2.0"));
    let at = p.run(
        "python",
        &["-c", "import greeter, pathlib; f = pathlib.Path(greeter.__file__); print(f, (f.parents[2] / 'README.md').exists())"],
    );
    assert_eq!(at, "/app/src/greeter/__init__.py True", "imported from the app copy, next to the project's files");
    assert_no_residue(&p);
    let cli = std::fs::read_to_string(p.dir.join("src/greeter/cli.py")).unwrap().replace("plain", "simple");
    p.write("src/greeter/cli.py", &format!("{cli}# edit {}\n", nonce()));
    let b = p.build(&["--build-arg", PY]).assert_ok();
    assert!(b.cached("python: uv sync uv.lock"), "{}", b.log);
    assert!(!b.cached("python: install the project editable"), "{}", b.log);
    assert!(p.run("greet", &[]).contains("-------"));
}

/// A package built from source against a build package (psycopg2 on
/// libpq-dev) links a library the runtime does not list: strata finds it
/// in the builder's venv and installs it in the runtime, with no compiler;
/// a code edit keeps that layer.
#[test]
fn a_library_the_venv_links_reaches_the_runtime() {
    gate!();
    let p = project(
        "native-link",
        "[image]\nbase = \"${BASE}\"\ncmd = [\"python3\", \"check.py\"]\n[system]\nbuild-packages = [\"build-essential\", \"python3-dev\", \"libpq-dev\"]\n\
         [python]\nrequirements = [\"requirements.txt\"]\n[app]\ncopy = [\"check.py\"]\n",
    );
    let b = p.build(&["--build-arg", PY]).assert_ok();
    let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("psycopg2 2.9.10 libpq "), "{said}{}", String::from_utf8_lossy(&out.stderr));
    // (the install's output is in the log only when it ran in this run;
    // the engine may hold it from an earlier one)
    assert!(b.log.contains("system: the OS libraries the venv links"), "{}", b.log);
    assert_eq!(p.run("sh", &["-c", "dpkg -s libpq5 | grep -c '^Status: install ok installed'"]), "1");
    assert_eq!(p.run("sh", &["-c", "command -v gcc cc || echo none"]), "none");
    assert_no_residue(&p);
    p.write("check.py", &format!("{}# edit {}\n", std::fs::read_to_string(p.dir.join("check.py")).unwrap(), nonce()));
    let b = p.build(&["--build-arg", PY]).assert_ok();
    assert!(b.cached("system: the OS libraries the venv links"), "{}", b.log);
}

/// `groups`: with a uv.lock, the dev group (which `--no-dev` would drop)
/// is installed; without a lock, a PEP 735 group and the group it
/// includes are, and nothing of the others.
#[test]
fn dependency_groups_with_a_uv_lock_and_without_a_lock() {
    gate!();
    let p = project(
        "uv-package",
        "[image]\nbase = \"${BASE}\"\n[python]\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\ngroups = [\"dev\"]\n[app]\ncopy = [\".\"]\n",
    );
    p.build(&["--build-arg", PY]).assert_ok();
    assert_eq!(p.run("python", &["-c", "import six; print(six.__version__)"]), "1.16.0");
    let n = project(
        "pyproject-nolock",
        "[image]\nbase = \"${BASE}\"\n[python]\npyproject = \"pyproject.toml\"\ngroups = [\"web\"]\n[app]\ncopy = [\".\"]\n",
    );
    n.build(&["--build-arg", PY]).assert_ok();
    assert_eq!(n.run("nolock", &[]), "nolock 0.9.1 tabulate six idna certifi");
}

/// `[python]` with only `packages` (no dependency file): what init writes
/// for a project whose Dockerfile runs `pip install gunicorn gevent`.
#[test]
fn packages_without_a_dependency_file() {
    gate!();
    let p = project(
        "native-link",
        "[image]\nbase = \"${BASE}\"\n[python]\npackages = [\"six==1.16.0\", \"tabulate==0.9.0\"]\n[app]\ncopy = [\"check.py\"]\n",
    );
    p.build(&["--build-arg", PY]).assert_ok();
    assert_eq!(p.run("python", &["-c", "import six, tabulate; print(six.__version__, tabulate.__version__)"]), "1.16.0 0.9.0");
}
