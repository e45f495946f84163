//! The Python side of `strata init`: the base image's Python, where the
//! dependencies are declared (a lock, requirement files, pyproject.toml),
//! extra packages the Dockerfile installs on the pip command line, extras,
//! a uv workspace member, and the OS packages native builds need.

use super::distro;
use super::dockerfile::OsFamily;
use super::source::Facts;
use super::{Deps, Draft};
use crate::plan::python::project::{read_pyproject, read_uv_lock};
use crate::plan::python::requirements::{self, normalize};

/// Packages that build from source (no wheel on PyPI) and what they need:
/// (name, build packages, runtime packages on Debian bookworm, on trixie).
type Native = (&'static str, &'static [&'static str], &'static [&'static str], &'static [&'static str]);
const NATIVE: &[Native] = &[
    ("psycopg2", &["libpq-dev"], &["libpq5"], &["libpq5"]),
    ("psycopg-c", &["libpq-dev"], &["libpq5"], &["libpq5"]),
    ("mysqlclient", &["default-libmysqlclient-dev", "pkg-config"], &["libmariadb3"], &["libmariadb3"]),
    ("mariadb", &["libmariadb-dev"], &["libmariadb3"], &["libmariadb3"]),
    ("uwsgi", &["libpcre2-dev"], &["libpcre2-8-0"], &["libpcre2-8-0"]),
    ("python-ldap", &["libldap2-dev", "libsasl2-dev"], &["libldap-2.5-0", "libsasl2-2"], &["libldap2", "libsasl2-2"]),
    ("pycairo", &["libcairo2-dev", "pkg-config"], &["libcairo2"], &["libcairo2"]),
    ("pygobject", &["libgirepository1.0-dev", "libcairo2-dev", "pkg-config"], &["gir1.2-glib-2.0"], &["gir1.2-glib-2.0"]),
];

/// apt packages of a Dockerfile that are tools of the image build or of
/// people, not what the app needs at run time.
const NOISE: &[&str] = &[
    "curl",
    "wget",
    "gnupg",
    "gnupg1",
    "gnupg2",
    "lsb-release",
    "ca-certificates",
    "apt-transport-https",
    "software-properties-common",
    "python3-pip",
    "python3-venv",
    "python3",
    "unzip",
    "git",
    "sudo",
    "vim",
    "nano",
    "less",
    "libnss-myhostname",
    "mime-support",
    "shared-mime-info",
];

/// What every native build needs besides its libraries.
const COMPILERS: &[&str] = &["build-essential", "python3-dev"];
/// Installers and build tools a Dockerfile installs that are not the app's.
const TOOLS: &[&str] = &["pip", "setuptools", "wheel", "uv", "poetry", "pdm", "pipenv", "virtualenv", "poetry-plugin-export"];

pub fn detect(f: &Facts, d: &mut Draft) {
    python_version(f, d);
    dependencies(f, d);
    natives(f, d);
    d.wheels = f.top.iter().any(|(n, dir)| n == "wheels" && *dir);
}

/// `.python-version` (or Heroku's `runtime.txt`), else the Dockerfile's `python:X.Y` base, else
/// pyproject's `requires-python` lower bound; the Debian release from the
/// Dockerfile's tag when it names one.
fn python_version(f: &Facts, d: &mut Draft) {
    // Heroku's runtime.txt (`python-3.11.9`) says the same as .python-version.
    let (from_file, file) = match f.read(".python-version").and_then(|t| major_minor(t.lines().next()?.trim())) {
        Some(v) => (Some(v), ".python-version"),
        None => (f.read("runtime.txt").and_then(|t| major_minor(t.lines().next()?.trim())), "runtime.txt"),
    };
    let base = match (&f.dockerfile, f.stage) {
        (Some((_, df)), Some(i)) if i < df.stages.len() => df.root_stage(i).base.clone(),
        _ => String::new(),
    };
    let image = base.trim_start_matches("docker.io/").trim_start_matches("library/");
    let from_docker = image.strip_prefix("python:").and_then(major_minor);
    let from_pyproject = f.pyproject.as_deref().and_then(requires_python);
    if let Some(v) = from_file.clone().or(from_docker.clone()).or(from_pyproject.clone()) {
        let src = if from_file.is_some() {
            file.to_string()
        } else if from_docker.is_some() {
            format!("{}: FROM {base}", f.dockerfile_name())
        } else {
            "pyproject.toml requires-python".to_string()
        };
        d.python_version = v;
        d.why("BASE", src);
    }
    for rel in ["trixie", "bookworm"] {
        if base.contains(rel) {
            d.debian = rel.to_string();
        }
    }
}

fn major_minor(v: &str) -> Option<String> {
    let v = v.trim().trim_start_matches("python").trim_start_matches('-');
    let mut parts = v.split(['.', '-']);
    let (a, b) = (parts.next()?, parts.next()?);
    (a == "3" && !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit())).then(|| format!("{a}.{b}"))
}

/// `>=3.10,<3.13` → 3.12 is not decidable; take the lower bound, at least
/// 3.11 (older Pythons are out of support).
fn requires_python(pyproject: &str) -> Option<String> {
    let line = pyproject.lines().find(|l| l.trim_start().starts_with("requires-python"))?;
    let spec = line.split_once('=')?.1.trim().trim_matches(['"', '\'']);
    let lower = spec
        .split(',')
        .find_map(|c| c.trim().strip_prefix(">=").or_else(|| c.trim().strip_prefix("^")).or_else(|| c.trim().strip_prefix("~=")))?;
    let v = major_minor(lower)?;
    let minor: u32 = v.split('.').nth(1)?.parse().ok()?;
    Some(format!("3.{}", minor.max(11)))
}

/// Which lock or requirement files, extras, workspace member and extra
/// packages.
fn dependencies(f: &Facts, d: &mut Draft) {
    let runs: Vec<String> = f.runs().iter().map(|r| r.command.clone()).collect();
    let mentions = |w: &str| runs.iter().any(|r| r.contains(w));
    let has = |n: &str| f.has(n);
    let lock = if has("uv.lock") && (mentions("uv ") || !(mentions("poetry") || mentions("pdm"))) {
        Some("uv.lock")
    } else if has("poetry.lock") && !(mentions("pdm ") && has("pdm.lock")) {
        Some("poetry.lock")
    } else if has("pdm.lock") {
        Some("pdm.lock")
    } else {
        None
    };
    if let (Some(l), true) = (lock, has("pyproject.toml")) {
        d.deps = Deps::Pyproject { lock: Some(l.to_string()) };
        let others: Vec<&str> = ["uv.lock", "poetry.lock", "pdm.lock"].into_iter().filter(|o| *o != l && has(o)).collect();
        let also = if others.is_empty() { String::new() } else { format!(" (also has {}; the Dockerfile's tool wins)", others.join(", ")) };
        d.why("lock", format!("{l} beside pyproject.toml{also}"));
        if l == "uv.lock" {
            workspace_member(f, d, &runs);
        }
    } else if let Some(reqs) = requirement_files(f) {
        d.why("requirements", reqs.1);
        d.deps = Deps::Requirements(reqs.0);
    } else if f.pyproject.as_deref().and_then(read_pyproject).is_some_and(|p| p.dependencies.is_some() || p.is_package) {
        d.deps = Deps::Pyproject { lock: None };
        d.why("pyproject", "pyproject.toml declares the dependencies; there is no lock, so they resolve at build time".to_string());
        d.note("no lock file: dependencies resolve when the image is built; `uv lock` would pin them");
    }
    extras(f, d, &runs);
    groups(f, d, &runs);
    inline_packages(f, d);
    editable(f, d, &runs);
}

/// The Dockerfile installs the project editable (`uv sync`, `poetry
/// install`, `pip install -e .`) over its copy of the sources: the app may
/// read files next to its package, so keep it that way.
fn editable(f: &Facts, d: &mut Draft, runs: &[String]) {
    if !matches!(d.deps, Deps::Pyproject { .. }) || f.dockerfile.is_none() {
        return;
    }
    let installs_editable = runs.iter().any(|r| {
        r.split("&&").any(|c| {
            let c = c.trim();
            (c.contains("uv sync") && !c.contains("--no-install-project") && !c.contains("--no-editable"))
                || (c.contains("poetry install") && !c.contains("--no-root"))
                || (c.contains("pdm install") && !c.contains("--no-self") && !c.contains("--prod --no-editable"))
                || ((c.contains("pip install") || c.contains("pip3 install"))
                    && (c.contains("--editable")
                        || c.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w[0] == "-e" && is_project(f, w[1]))))
        })
    });
    if installs_editable {
        d.editable = true;
        d.why("editable", format!("{} installs the project editable over its sources", f.dockerfile_name()));
    }
}

/// A pip argument that names the project itself: `.`, `./`, or where the
/// Dockerfile copied the whole context (`ADD . /src` → `/src`), with or
/// without `[extras]`.
fn is_project(f: &Facts, arg: &str) -> bool {
    let path = arg.trim_matches(['"', '\'']).split('[').next().unwrap_or("").trim_end_matches('/');
    if path == "." || path.is_empty() {
        return path == ".";
    }
    let Some((_, df)) = &f.dockerfile else { return false };
    path.starts_with('/')
        && df
            .stages
            .iter()
            .flat_map(|s| &s.copies)
            .any(|c| c.from.is_none() && c.sources.iter().any(|s| matches!(s.as_str(), "." | "./")) && c.dest.trim_end_matches('/') == path)
}

/// A virtual uv workspace root: the member the Dockerfile installs
/// (`--package X`), else the only member with an app in it.
fn workspace_member(f: &Facts, d: &mut Draft, runs: &[String]) {
    let Some(pp) = &f.pyproject else { return };
    if !pp.contains("[tool.uv.workspace]") || pp.lines().any(|l| l.trim() == "[project]") {
        return;
    }
    let from_docker = runs.iter().find_map(|r| {
        let w: Vec<&str> = r.split_whitespace().collect();
        w.windows(2)
            .find(|p| p[0] == "--package")
            .map(|p| p[1].to_string())
            .or_else(|| w.iter().find_map(|x| x.strip_prefix("--package=").map(String::from)))
    });
    let lock = f.read("uv.lock").and_then(|t| read_uv_lock(&t)).unwrap_or_default();
    let member = from_docker.clone().or_else(|| {
        let members: Vec<&String> = lock.locals.keys().collect();
        if members.len() == 1 {
            return Some(members[0].clone());
        }
        members.into_iter().find(|m| ["api", "app", "backend", "server", "web"].contains(&m.as_str())).cloned()
    });
    match member {
        Some(m) => {
            let why = if from_docker.is_some() {
                format!("{} installs --package {m}", f.dockerfile_name())
            } else {
                "the workspace's app member".into()
            };
            d.why("package", why);
            d.package = Some(m);
        }
        None => d.note("a uv workspace with several members: set [python] package to the one to install"),
    }
}

/// The requirement files the Dockerfile installs (mapped back from where
/// its COPY put them), else the usual names.
fn requirement_files(f: &Facts) -> Option<(Vec<String>, String)> {
    if let (Some((name, df)), Some(i)) = (&f.dockerfile, f.stage) {
        let mut out = Vec::new();
        for s in df.needed_stages(i) {
            let st = &df.stages[s];
            for r in &st.pip_requirement_files {
                if let Some(ctx) = context_path(st, r).filter(|p| f.has(p)) {
                    if !out.contains(&ctx) {
                        out.push(ctx);
                    }
                }
            }
        }
        if !out.is_empty() {
            return Some((out, format!("{name} installs them")));
        }
    }
    let names =
        ["requirements.txt", "requirements/production.txt", "requirements/prod.txt", "requirements-prod.txt", "requirements/base.txt"];
    names.iter().find(|n| f.has(n)).map(|n| (vec![n.to_string()], format!("{n} in the project")))
}

/// A path a RUN names inside the image, as a context path: through the
/// COPY that put it there (`COPY requirements/ /requirements/`).
pub(super) fn context_path(st: &super::dockerfile::Stage, path: &str) -> Option<String> {
    let abs = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", st.workdir.as_deref().unwrap_or("").trim_end_matches('/'))
    };
    for c in st.copies.iter().filter(|c| c.from.is_none()) {
        for src in &c.sources {
            let src = src.trim_start_matches("./").trim_end_matches('/');
            let dest = c.dest.trim_end_matches('/');
            if c.dest.ends_with('/') || c.sources.len() > 1 {
                // into a directory: dest/<basename> or, for a dir source, dest/<rest>
                let base = src.rsplit('/').next().unwrap_or(src);
                if abs == format!("{dest}/{base}") {
                    return Some(src.to_string());
                }
                if let Some(rest) = abs.strip_prefix(&format!("{dest}/")) {
                    let cand = if src.is_empty() || src == "." { rest.to_string() } else { format!("{src}/{rest}") };
                    if !cand.is_empty() {
                        return Some(cand);
                    }
                }
            } else if abs == dest {
                return Some(src.to_string());
            } else if let Some(rest) = abs.strip_prefix(&format!("{dest}/")) {
                // a directory copied to a path of its own (`COPY app /srv/app`)
                return Some(if src.is_empty() || src == "." { rest.to_string() } else { format!("{src}/{rest}") });
            }
        }
    }
    // Not copied: the path as written, relative to the context.
    Some(path.trim_start_matches("./").to_string()).filter(|p| !p.starts_with('/'))
}

/// Extras the Dockerfile installs: `uv sync --extra X`/`--all-extras`,
/// `poetry install -E X`, `pip install .[x,y]`.
fn extras(f: &Facts, d: &mut Draft, runs: &[String]) {
    let all: Vec<String> =
        f.pyproject.as_deref().and_then(read_pyproject).map(|p| p.optional.keys().cloned().collect()).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for r in runs {
        let w: Vec<&str> = r.split_whitespace().collect();
        for (i, x) in w.iter().enumerate() {
            let next = w.get(i + 1).map(|s| s.trim_matches(['"', '\''])).unwrap_or("");
            match *x {
                "--all-extras" => out.extend(all.iter().cloned()),
                "--extra" | "-E" | "--extras" => out.extend(next.split([',', ' ']).filter(|e| !e.is_empty()).map(normalize)),
                _ => {
                    if let Some(e) = x.strip_prefix("--extra=").or_else(|| x.strip_prefix("--extras=")) {
                        out.extend(e.split(',').map(normalize));
                    }
                    let t = x.trim_matches(['"', '\'']);
                    if let Some((path, inner)) = t.split_once('[').and_then(|(p, r)| Some((p, r.strip_suffix(']')?))) {
                        if is_project(f, path) {
                            out.extend(inner.split(',').map(normalize));
                        }
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    if !out.is_empty() {
        d.why("extras", format!("{} installs them", f.dockerfile_name()));
        d.extras = out;
    }
}

/// Dependency groups the Dockerfile's installer installs: `uv sync
/// --group X`/`--all-groups`, `poetry install --with X`, `pdm install -G X`,
/// `pip install --group X`. Only with a pyproject (the groups live there).
fn groups(f: &Facts, d: &mut Draft, runs: &[String]) {
    if !matches!(d.deps, Deps::Pyproject { .. }) {
        return;
    }
    let all: Vec<String> = f.pyproject.as_deref().and_then(read_pyproject).map(|p| p.groups.keys().cloned().collect()).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for r in runs {
        let w: Vec<&str> = r.split_whitespace().collect();
        // Each installer command of the line on its own (`&&` chains).
        let tool = |i: usize| {
            let start = w[..i].iter().rposition(|x| ["&&", "||", ";", "|"].contains(x)).map(|p| p + 1).unwrap_or(0);
            let cmd = w[start..i].join(" ");
            if cmd.contains("uv sync") || cmd.contains("uv pip install") || cmd.contains("pip install") {
                Some("uv")
            } else if cmd.contains("poetry install") {
                Some("poetry")
            } else if cmd.contains("pdm install") || cmd.contains("pdm sync") {
                Some("pdm")
            } else {
                None
            }
        };
        for (i, x) in w.iter().enumerate() {
            let next = w.get(i + 1).map(|s| s.trim_matches(['"', '\''])).unwrap_or("");
            let names: Vec<String> = match (tool(i), *x) {
                (Some("uv"), "--all-groups") => all.clone(),
                (Some("uv"), "--group") | (Some("poetry"), "--with") | (Some("pdm"), "-G" | "--group") => {
                    next.split(',').filter(|g| !g.is_empty()).map(normalize).collect()
                }
                (Some("uv"), _) => x.strip_prefix("--group=").map(|g| vec![normalize(g)]).unwrap_or_default(),
                (Some("poetry"), _) => x.strip_prefix("--with=").map(|g| g.split(',').map(normalize).collect()).unwrap_or_default(),
                _ => vec![],
            };
            out.extend(names);
        }
    }
    // poetry's groups live in [tool.poetry.group]; pdm names extras so too.
    out.retain(|g| !d.extras.contains(g));
    out.sort();
    out.dedup();
    if !out.is_empty() {
        d.why("groups", format!("{} installs them", f.dockerfile_name()));
        d.groups = out;
    }
}

/// Packages the Dockerfile installs on the pip command line that the
/// dependency files do not have (`pip install -r requirements.txt uwsgi`).
fn inline_packages(f: &Facts, d: &mut Draft) {
    let (Some((name, df)), Some(i)) = (&f.dockerfile, f.stage) else { return };
    let known = declared_names(f, d);
    let mut out = Vec::new();
    for s in df.needed_stages(i) {
        for p in &df.stages[s].pip_packages {
            let spec = p.trim_matches(['"', '\'']);
            let pname = normalize(spec.split(['=', '<', '>', '!', '~', '[', ';', ' ']).next().unwrap_or(spec));
            // A known package named with extras (`psycopg[c]`) adds what the
            // extras bring: keep it.
            let known_plain = known.contains(&pname) && !spec.contains('[');
            if pname.is_empty() || TOOLS.contains(&pname.as_str()) || known_plain || spec.contains('/') || spec.starts_with('$') {
                continue;
            }
            if !out.contains(&spec.to_string()) {
                out.push(spec.to_string());
            }
        }
    }
    if !out.is_empty() {
        d.why("python.packages", format!("{name} installs them besides the dependency files"));
        d.packages = out;
    }
}

/// The normalised names the dependency files declare.
pub fn declared_names(f: &Facts, d: &Draft) -> Vec<String> {
    let mut out = Vec::new();
    match &d.deps {
        Deps::Requirements(files) => {
            for r in files {
                collect_requirements(f, r, &mut out, 0);
            }
        }
        Deps::Pyproject { lock } => {
            if let Some(p) = f.pyproject.as_deref().and_then(read_pyproject) {
                for r in p.dependencies.unwrap_or_default().iter().chain(p.optional.values().flatten()) {
                    out.push(normalize(r.split(['=', '<', '>', '!', '~', '[', ';', ' ']).next().unwrap_or(r)));
                }
            }
            if let Some(text) = lock.as_deref().and_then(|l| f.read(l)) {
                for line in text.lines() {
                    if let Some(n) = line.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')) {
                        out.push(normalize(n));
                    }
                }
            }
        }
        Deps::None => {}
    }
    out.sort();
    out.dedup();
    out
}

/// Requirement names of a file and the files it includes (`-r`).
fn collect_requirements(f: &Facts, rel: &str, out: &mut Vec<String>, depth: usize) {
    let Some(text) = f.read(rel) else { return };
    if depth > 5 {
        return;
    }
    let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    for line in requirements::logical_lines(&text) {
        if let Some(inc) = line.strip_prefix("-r ").or_else(|| line.strip_prefix("--requirement ")).or_else(|| line.strip_prefix("-r")) {
            if let Some(p) = crate::plan::join_path(dir, inc.trim()) {
                collect_requirements(f, &p, out, depth + 1);
            }
            continue;
        }
        if line.starts_with('-') {
            continue;
        }
        let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).unwrap_or(line.len());
        let name = normalize(&line[..end]);
        // `psycopg[c]` means the C build
        if name == "psycopg" && line[end..].starts_with("[c") {
            out.push("psycopg-c".into());
        }
        out.push(name);
    }
}

/// OS packages of native builds, and the Dockerfile's own OS packages
/// (its build stages' as build packages, the service stage's as runtime
/// packages), minus package-manager plumbing.
fn natives(f: &Facts, d: &mut Draft) {
    let mut names = declared_names(f, d);
    for p in &d.packages {
        let spec = p.to_ascii_lowercase();
        let n = normalize(spec.split(['=', '<', '>', '!', '~', '[', ';', ' ']).next().unwrap_or(&spec));
        if n == "psycopg" && spec.contains("[c") {
            names.push("psycopg-c".into());
        }
        names.push(n);
    }
    let trixie = d.debian == "trixie";
    let mut native = Vec::new();
    for (n, build, rt_bookworm, rt_trixie) in NATIVE {
        if names.iter().any(|x| x == n) {
            native.push(*n);
            Draft::add_packages(&mut d.build_packages, COMPILERS);
            Draft::add_packages(&mut d.build_packages, build);
            Draft::add_packages(&mut d.system_packages, if trixie { rt_trixie } else { rt_bookworm });
        }
    }
    // psycopg 3 without a binary or C build loads libpq at run time.
    if names.iter().any(|x| x == "psycopg") && !names.iter().any(|x| x == "psycopg-binary" || x == "psycopg-c") {
        Draft::add_packages(&mut d.system_packages, &["libpq5"]);
    }
    if !native.is_empty() {
        d.why("build-packages", format!("{} build from source: compilers and headers in the builder only", native.join(", ")));
    }
    if let (Some((name, df)), Some(i)) = (&f.dockerfile, f.stage) {
        let keep = keep_apt;
        let service = &df.stages[i];
        let (names, unknown) = distro::translate(service.os_family, &service.apt_packages);
        if service.os_family != OsFamily::Debian {
            let tool = if service.os_family == OsFamily::Alpine { "apk (Alpine)" } else { "dnf (Fedora)" };
            let unknown = if unknown.is_empty() {
                String::new()
            } else {
                format!("; no Debian name known for {}: add it if the app needs it", unknown.join(", "))
            };
            d.note(format!("{name} installs with {tool}: its packages are written as Debian's here (the base is Debian's){unknown}"));
        }
        let runtime: Vec<String> = names.iter().filter(keep).map(|p| bookworm_name(p, trixie)).collect();
        let (dev, rt): (Vec<String>, Vec<String>) =
            runtime.into_iter().partition(|p| p.ends_with("-dev") || COMPILERS.contains(&p.as_str()) || p == "pkg-config" || p == "gcc");
        if !dev.is_empty() {
            d.note(format!(
                "{name} installs {} in the image: headers and compilers go to build-packages here (the libraries the venv links reach the image without them)",
                dev.join(", ")
            ));
        }
        let before = d.system_packages.len();
        Draft::add_packages(&mut d.system_packages, &rt.iter().map(String::as_str).collect::<Vec<_>>());
        Draft::add_packages(&mut d.build_packages, &dev.iter().map(String::as_str).collect::<Vec<_>>());
        for s in df.needed_stages(i).into_iter().filter(|&s| s != i && !df.stages[s].is_node()) {
            let (names, _) = distro::translate(df.stages[s].os_family, &df.stages[s].apt_packages);
            let build: Vec<String> = names.iter().filter(keep).map(|p| bookworm_name(p, trixie)).collect();
            Draft::add_packages(&mut d.build_packages, &build.iter().map(String::as_str).collect::<Vec<_>>());
        }
        if d.system_packages.len() > before {
            d.why("system.packages", format!("{name} installs them in the image"));
        }
    }
    // Anything compiled needs a compiler even when the table did not know it.
    if d.build_packages.iter().any(|p| p.ends_with("-dev")) {
        Draft::add_packages(&mut d.build_packages, COMPILERS);
    }
    d.build_packages.retain(|p| !d.system_packages.contains(p) || p.ends_with("-dev") || COMPILERS.contains(&p.as_str()));
}

/// Debian 12 names of trixie's t64 transition packages (libcurl4t64 →
/// libcurl4), when the base is bookworm.
fn bookworm_name(p: &str, trixie: bool) -> String {
    match p.strip_suffix("t64") {
        Some(base) if !trixie => base.to_string(),
        _ => p.to_string(),
    }
}

/// A Dockerfile's runtime apt package init carries over: not a tool, not a
/// pinned version or a variable, not a versioned repository's package.
fn keep_apt(p: &&String) -> bool {
    !NOISE.contains(&p.as_str()) && !p.contains('=') && !p.contains('$') && !p.ends_with("-14")
}

/// After every other guess: the image's apt packages init left out, so
/// the user can put back the one a script or healthcheck uses.
pub fn dropped_packages_note(f: &Facts, d: &mut Draft) {
    let (Some((name, df)), Some(i)) = (&f.dockerfile, f.stage) else { return };
    let (names, _) = distro::translate(df.stages[i].os_family, &df.stages[i].apt_packages);
    let dropped: Vec<&str> = names
        .iter()
        .filter(|p| !keep_apt(p) && !p.contains('$') && !d.system_packages.contains(p))
        .map(String::as_str)
        .filter(|p| !["python3", "python3-pip", "python3-venv", "ca-certificates"].contains(p))
        .collect();
    if !dropped.is_empty() {
        d.note(format!(
            "{name} installs {} in the image; left out as tools or pinned versions: add them to [system] packages if a script, healthcheck or backup uses them",
            dropped.join(" ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(major_minor("3.11.7"), Some("3.11".into()));
        assert_eq!(major_minor("3.12-slim-bookworm"), Some("3.12".into()));
        assert_eq!(major_minor("slim"), None);
        assert_eq!(requires_python("[project]\nrequires-python = \">=3.10,<3.13\"\n"), Some("3.11".into()));
        assert_eq!(requires_python("requires-python = \">=3.12\"\n"), Some("3.12".into()));
        assert_eq!(bookworm_name("libcurl4t64", false), "libcurl4");
        assert_eq!(bookworm_name("libcurl4t64", true), "libcurl4t64");
    }
}
