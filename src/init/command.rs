//! How the service starts: the command (the Dockerfile's, compose's,
//! Procfile's, a server config's, or what the code shows), its port, the
//! environment, user and workdir, the healthcheck, and what the image
//! copies.

use super::dockerfile::Stage;
use super::python::declared_names;
use super::source::{Facts, NOT_CODE};
use super::{Deps, Draft};

pub fn detect(f: &Facts, d: &mut Draft) {
    workdir(f, d);
    venv(f, d);
    command(f, d);
    venv_in_workdir(f, d);
    servers(f, d);
    port(f, d);
    env(f, d);
    user(f, d);
    healthcheck(f, d);
    copies(f, d);
    if let Some((file, cmd)) = &f.release {
        let run = if cmd.contains(['|', '&', ';', '<', '>', '$', '\'', '"', '`']) {
            format!("sh -c {}", crate::plan::shell_quote(cmd))
        } else {
            cmd.clone()
        };
        d.note(format!(
            "{file} runs `{cmd}` before each deploy; the image does not: run it once with `docker run IMAGE {run}` (or a compose service) before the server starts"
        ));
    }
    if let Some(c) = &f.compose {
        for (svc, image) in &c.others {
            let kind = ["postgres", "mysql", "mariadb", "redis", "mongo", "rabbitmq", "elasticsearch", "memcached"]
                .into_iter()
                .find(|k| image.contains(k));
            if let Some(k) = kind {
                d.note(format!("{} runs `{svc}` ({image}) beside the app: a {k} the image does not contain", c.file));
            }
        }
    }
}

/// Where the app lives: where the Dockerfile's COPYs put the context's
/// root (`COPY . /code`, `COPY ./backend/app /app/backend/app` → /app), the
/// workdir being its last WORKDIR when that is inside; else /app.
fn workdir(f: &Facts, d: &mut Draft) {
    let Some(s) = f.stage() else { return };
    let mut roots: Vec<String> = Vec::new();
    for c in s.copies.iter().filter(|c| c.from.is_none() && c.dest.starts_with('/')) {
        for src in &c.sources {
            let src = src.trim_start_matches("./").trim_end_matches('/');
            let dest = c.dest.trim_end_matches('/');
            let root = if src.is_empty() || src == "." {
                Some(dest.to_string())
            } else if c.dest.ends_with('/') && !f.dir.join(src).is_dir() {
                // a file into a directory: dest/ is the file's directory
                let dir = src.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                if dir.is_empty() {
                    Some(dest.to_string())
                } else {
                    dest.strip_suffix(&format!("/{dir}")).map(String::from)
                }
            } else {
                dest.strip_suffix(&format!("/{src}")).map(String::from).or_else(|| (dest == format!("/{src}")).then(String::new))
            };
            if let Some(r) = root {
                roots.push(if r.is_empty() { "/".into() } else { r });
            }
        }
    }
    // the root most copies agree on
    roots.sort();
    let root = roots.chunk_by(|a, b| a == b).max_by_key(|g| g.len()).map(|g| g[0].clone());
    let last = s.workdir.clone().filter(|w| !w.is_empty() && w != "/");
    let (wd, dest) = match (root.filter(|r| r != "/"), last) {
        (Some(r), Some(w)) if w.starts_with(&format!("{}/", r.trim_end_matches('/'))) => (w, Some(r)),
        (Some(r), _) => (r, None),
        (None, Some(w)) => (w, None),
        (None, None) => return,
    };
    d.workdir = wd;
    d.why("workdir", format!("{}: where it puts the app", f.dockerfile_name()));
    if let Some(r) = dest {
        d.why("dest", format!("{}: the context's root lands at {r}", f.dockerfile_name()));
        d.dest = Some(r);
    }
}

/// Tool runners the image does not have: the venv's scripts are on PATH.
fn strip_runner(argv: &[String]) -> Vec<String> {
    let mut a: Vec<String> = argv.to_vec();
    loop {
        match a.as_slice() {
            [r, run, ..] if matches!((r.as_str(), run.as_str()), ("uv" | "poetry" | "pdm" | "pipenv" | "hatch", "run")) => {
                a.drain(..2);
                while a.first().is_some_and(|x| x.starts_with("--")) {
                    a.remove(0);
                }
            }
            _ => break,
        }
    }
    // `fastapi dev` is the reloading development server.
    if a.first().map(String::as_str) == Some("fastapi") && a.get(1).map(String::as_str) == Some("dev") {
        a[1] = "run".into();
    }
    a.retain(|x| x != "--reload");
    a
}

fn shell_runner(script: &str) -> String {
    let mut s = script.to_string();
    for r in ["uv run ", "poetry run ", "pdm run ", "pipenv run "] {
        s = s.replace(r, "");
    }
    s.replace("fastapi dev ", "fastapi run ")
}

fn command(f: &Facts, d: &mut Draft) {
    if let Some(s) = f.stage() {
        if let Some(argv) = s.start_argv().filter(|a| !a.is_empty()) {
            let argv = match argv.as_slice() {
                [sh, c, script] if (sh == "/bin/sh" || sh == "sh" || sh == "bash" || sh == "/bin/bash") && c == "-c" => {
                    vec![sh.clone(), c.clone(), shell_runner(script)]
                }
                _ => strip_runner(&argv),
            };
            d.why("cmd", format!("{}: CMD/ENTRYPOINT of stage {}", f.dockerfile_name(), s.name.as_deref().unwrap_or("(last)")));
            set_command(d, s, argv);
            return;
        }
    }
    if let Some(cmd) = f.compose.as_ref().and_then(|c| c.command.clone()) {
        d.why("cmd", format!("{}: the service's command", f.compose.as_ref().map(|c| c.file.as_str()).unwrap_or("compose")));
        d.cmd = Some(cmd.iter().map(|c| shell_runner(c)).collect());
        return;
    }
    if let Some(web) = &f.procfile_web {
        d.why("cmd", "Procfile: the web process");
        d.cmd = Some(vec!["sh".into(), "-c".into(), shell_runner(web)]);
        // A Procfile's process binds $PORT, as on Heroku (gunicorn
        // binds 0.0.0.0:$PORT when PORT is set, also when a script it
        // runs starts it).
        if !d.env.iter().any(|(k, _)| k == "PORT") {
            d.env.push(("PORT".into(), "8000".into()));
        }
        return;
    }
    if let Some(ini) = ["uwsgi.ini", "etc/uwsgi.ini", "deploy/uwsgi.ini", "docker/uwsgi.ini"].into_iter().find(|p| f.has(p)) {
        d.why("cmd", format!("{ini}: the uwsgi config"));
        d.cmd = Some(vec!["uwsgi".into(), "--ini".into(), ini.into()]);
        need_server(f, d, "uwsgi");
        return;
    }
    if let Some(cmd) = django(f, d) {
        d.cmd = Some(cmd);
        return;
    }
    if let Some(cmd) = readme_command(f) {
        d.why("cmd", "README: how it says to run the service");
        for server in ["uvicorn", "gunicorn"] {
            if cmd.first().map(String::as_str) == Some(server) {
                need_server(f, d, server);
            }
        }
        d.cmd = Some(cmd);
        return;
    }
    if let Some((module, var, kind)) = app_object(f) {
        let target = format!("{module}:{var}");
        match kind {
            "fastapi" => {
                d.why("cmd", format!("{}: a FastAPI app object", module.replace('.', "/")));
                d.cmd = Some(vec!["uvicorn".into(), target, "--host".into(), "0.0.0.0".into(), "--port".into(), "8000".into()]);
                need_server(f, d, "uvicorn");
            }
            _ => {
                d.why("cmd", format!("{}: a Flask app", module.replace('.', "/")));
                d.cmd = Some(vec!["gunicorn".into(), "--bind".into(), "0.0.0.0:8000".into(), target]);
                need_server(f, d, "gunicorn");
            }
        }
        return;
    }
    if let Some(script) = project_script(f) {
        d.why("cmd", format!("pyproject.toml: the `{script}` script, named after the project"));
        d.cmd = Some(vec![script]);
        return;
    }
    if let Some(pkg) =
        f.top.iter().find(|(n, dir)| *dir && !n.starts_with('.') && f.has(&format!("{n}/__main__.py"))).map(|(n, _)| n.clone())
    {
        d.why("cmd", format!("{pkg}/__main__.py"));
        d.cmd = Some(vec!["python".into(), "-m".into(), pkg]);
        return;
    }
    if let Some(script) = ["app.py", "main.py", "server.py"].into_iter().find(|s| f.has(s)) {
        d.why("cmd", format!("{script} at the top"));
        d.cmd = Some(vec!["python".into(), script.into()]);
        return;
    }
    d.note("found no start command: set [image] cmd");
}

/// The Dockerfile's command, as ENTRYPOINT + CMD when it has both.
fn set_command(d: &mut Draft, s: &Stage, argv: Vec<String>) {
    match (&s.entrypoint, &s.cmd) {
        (Some(ep), Some(_)) if !s.argv(ep).is_empty() => {
            let n = s.argv(ep).len().min(argv.len());
            d.entrypoint = Some(argv[..n].to_vec());
            d.cmd = Some(argv[n..].to_vec()).filter(|c| !c.is_empty());
        }
        (Some(ep), None) if !s.argv(ep).is_empty() => d.entrypoint = Some(argv),
        _ => d.cmd = Some(argv),
    }
}

/// The venv the Dockerfile makes, when the start command uses it by path
/// (`/opt/httpbin/bin/gunicorn`): the same place keeps those paths right.
fn venv(f: &Facts, d: &mut Draft) {
    let Some(s) = f.stage() else { return };
    let Some(v) = dockerfile_venv(f) else { return };
    if v == d.workdir.trim_end_matches('/') {
        return; // see venv_in_workdir
    }
    let used = s.start_argv().unwrap_or_default().iter().any(|a| a.contains(&v))
        || f.dockerfile
            .as_ref()
            .is_some_and(|(_, df)| df.stages.iter().any(|st| st.copies.iter().any(|c| c.dest.starts_with(&v) && c.from.is_none())));
    if used {
        d.why("venv", format!("{}: its venv, which the start command uses by path", f.dockerfile_name()));
        d.venv = Some(v);
    }
}

/// Where the Dockerfile's venv is in the service image: made by `python
/// -m venv DIR`/`virtualenv DIR` or named by `VIRTUAL_ENV`, followed
/// through a `COPY --from=builder DIR /elsewhere`.
fn dockerfile_venv(f: &Facts) -> Option<String> {
    let s = f.stage()?;
    let mut found: Option<String> = s.env_var("VIRTUAL_ENV").map(String::from);
    for r in f.runs() {
        let w: Vec<&str> = r.command.split_whitespace().collect();
        for (i, x) in w.iter().enumerate() {
            if *x == "venv" && i > 0 && w[i - 1] == "-m" || *x == "virtualenv" {
                if let Some(p) = w[i + 1..].iter().find(|a| a.starts_with('/')) {
                    found = Some(p.trim_end_matches('/').to_string());
                }
            }
        }
    }
    let v = found?;
    let moved = s
        .copies
        .iter()
        .find(|c| c.from.is_some() && c.sources.len() == 1 && c.sources[0].trim_end_matches('/') == v)
        .map(|c| c.dest.trim_end_matches('/').to_string());
    Some(moved.unwrap_or(v)).filter(|v| v != "/opt/venv" && !v.contains('$') && !v.is_empty())
}

/// The Dockerfile's venv is the app's directory (`COPY --from=builder
/// /app/venv /app`, started as `/app/bin/radicale`): strata keeps the
/// venv apart from the app's files, so the start command's paths into it
/// become strata's venv's.
fn venv_in_workdir(f: &Facts, d: &mut Draft) {
    let Some(v) = dockerfile_venv(f) else { return };
    if v != d.workdir.trim_end_matches('/') || d.venv.is_some() {
        return;
    }
    let prefix = format!("{v}/bin/");
    let mut changed = false;
    for argv in [&mut d.entrypoint, &mut d.cmd].into_iter().flatten() {
        for a in argv.iter_mut() {
            if let Some(rest) = a.strip_prefix(&prefix) {
                *a = format!("/opt/venv/bin/{rest}");
                changed = true;
            }
        }
    }
    if changed {
        d.note(format!("{}'s venv is the app directory {v}; here it is /opt/venv, and the start command names it", f.dockerfile_name()));
    }
}

/// The user a root start script drops to (`gosu NAME`, `su-exec NAME`),
/// when the Dockerfile creates it with a uid (`adduser -u 9898 NAME`) and
/// the script also runs without root (it checks `id -u` or `$EUID`, as
/// the official images' entrypoints do): the image can run as that user
/// from the start, and the script takes its non-root path.
fn dropped_to(f: &Facts, d: &Draft) -> Option<(String, String)> {
    let st = f.stage()?;
    let script = d.entrypoint.iter().chain(&d.cmd).flatten().find(|w| w.ends_with(".sh"))?;
    let path = super::python::context_path(st, script).or_else(|| Some(script.trim_start_matches("./").to_string()))?;
    let text = f.read(&path).or_else(|| f.read(script.trim_start_matches('/')))?;
    let non_root = text.contains("EUID") || text.contains("id -u)") || text.contains("id -u`");
    if !non_root {
        return None;
    }
    let name = text.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "gosu" || *x == "su-exec")?;
        w.get(i + 1).map(|n| n.trim_matches(['"', '\''])).filter(|n| !n.starts_with(['$', '-']) && !n.is_empty()).map(String::from)
    })?;
    let uid = created_uid(f, &name)?;
    uid.bytes().all(|b| b.is_ascii_digit()).then_some((name, uid))
}

/// The uid a `useradd`/`adduser` of the service's stages gives `name`
/// (`-u UID`, `--uid UID`).
fn created_uid(f: &Facts, name: &str) -> Option<String> {
    f.runs().iter().find_map(|r| {
        let w: Vec<&str> = r.command.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "useradd" || *x == "adduser")?;
        let rest = &w[i..];
        if !rest.contains(&name) {
            return None;
        }
        rest.windows(2).find(|p| p[0] == "--uid" || p[0] == "-u").map(|p| p[1].to_string())
    })
}

/// Servers the start command (or the script it runs) names are
/// dependencies: from an extra of the project that has them, else added.
fn servers(f: &Facts, d: &mut Draft) {
    let argv: Vec<String> = d.entrypoint.iter().chain(&d.cmd).flatten().cloned().collect();
    let mut text = argv.join(" ");
    for a in &argv {
        let rel = a.strip_prefix(&format!("{}/", d.workdir.trim_end_matches('/'))).unwrap_or(a).trim_start_matches("./");
        let script = f.read(rel).or_else(|| {
            // a placed file: its source
            let parent = a.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            f.stage()?
                .copies
                .iter()
                .find(|c| c.dest.trim_end_matches('/') == a || c.dest.trim_end_matches('/') == parent)
                .and_then(|c| f.read(c.sources.first()?))
        });
        if let Some(t) = script {
            text.push('\n');
            text.push_str(&t);
        }
    }
    let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == '/').collect();
    let optional = f.pyproject.as_deref().and_then(crate::plan::python::project::read_pyproject).map(|p| p.optional).unwrap_or_default();
    for server in ["gunicorn", "uvicorn", "uwsgi", "gevent"] {
        if !words.contains(&server) {
            continue;
        }
        if declared_names(f, d).iter().any(|n| n == server) && !optional.values().flatten().any(|r| r.starts_with(server)) {
            continue;
        }
        let extra = optional.iter().find(|(_, reqs)| reqs.iter().any(|r| r.trim().starts_with(server))).map(|(e, _)| e.clone());
        match extra {
            Some(e) if !d.extras.contains(&e) => {
                d.why("extras", format!("the start command runs {server}, which the `{e}` extra brings"));
                d.extras.push(e);
            }
            Some(_) => {}
            None => need_server(f, d, server),
        }
    }
}

/// Adds a server package the dependency files lack.
fn need_server(f: &Facts, d: &mut Draft, pkg: &str) {
    if !declared_names(f, d).iter().any(|n| n == pkg) && !d.packages.iter().any(|p| p.starts_with(pkg)) {
        d.packages.push(pkg.to_string());
        d.note(format!("added `{pkg}` to [python] packages: the start command needs it and the dependencies do not list it"));
    }
}

/// Django: migrate, then gunicorn on the project's WSGI module.
fn django(f: &Facts, d: &mut Draft) -> Option<Vec<String>> {
    let manage = f.read("manage.py")?;
    let settings = manage.split("DJANGO_SETTINGS_MODULE").nth(1)?.split(['"', '\'']).nth(2)?.to_string();
    let project = settings.split('.').next()?.to_string();
    let wsgi = if f.has(&format!("{project}/wsgi.py")) { format!("{project}.wsgi") } else { return None };
    d.why("cmd", format!("manage.py: Django project `{project}` (migrate, then gunicorn on {wsgi})"));
    need_server(f, d, "gunicorn");
    d.note("the start command runs `manage.py migrate` first (a fresh SQLite database otherwise has no tables)");
    Some(vec!["sh".into(), "-c".into(), format!("python manage.py migrate --noinput && exec gunicorn {wsgi} --bind 0.0.0.0:8000")])
}

/// A server command line in the README (`uvicorn pkg.main:app`), made to
/// listen on all interfaces.
fn readme_command(f: &Facts) -> Option<Vec<String>> {
    let text = ["README.md", "README.rst", "README"].iter().find_map(|r| f.read(r))?;
    for line in text.lines() {
        let l = line.trim().trim_start_matches("$ ").trim_start_matches('`').trim_end_matches('`').trim();
        let w: Vec<String> = l.split_whitespace().map(String::from).collect();
        let Some(first) = w.first() else { continue };
        let target_ok = w.get(1).is_some_and(|t| t.contains(':') && !t.starts_with('-') && !t.contains('/'));
        match first.as_str() {
            "uvicorn" if target_ok => {
                let mut c = w.clone();
                if !l.contains("--host") {
                    c.extend(["--host".into(), "0.0.0.0".into()]);
                }
                if !l.contains("--port") {
                    c.extend(["--port".into(), "8000".into()]);
                }
                c.retain(|x| x != "--reload");
                return Some(c);
            }
            "gunicorn" if w.iter().any(|x| x.contains(':') && !x.starts_with('-')) => {
                let mut c = w.clone();
                if !l.contains("-b ") && !l.contains("--bind") {
                    c.splice(1..1, ["--bind".to_string(), "0.0.0.0:8000".to_string()]);
                }
                return Some(c);
            }
            _ => {}
        }
    }
    None
}

/// A module-level FastAPI or Flask app object: (module, variable, kind).
fn app_object(f: &Facts) -> Option<(String, String, &'static str)> {
    let mut best: Option<(usize, String, String, &'static str)> = None;
    for (path, text) in &f.py_files {
        for line in text.lines() {
            let l = line.trim_end();
            if l.starts_with(char::is_whitespace) {
                continue;
            }
            let imports =
                |m: &str| text.lines().any(|x| x.starts_with(&format!("from {m} import")) || x.starts_with(&format!("import {m}")));
            // `app = FastAPI(...)`, or `app = get_app()` in a module that
            // imports the framework.
            let factory = l.starts_with("app = ") && l.ends_with("()") && !l.contains('.');
            let kind = if l.contains("= FastAPI(") || (factory && imports("fastapi")) {
                "fastapi"
            } else if l.contains("= Flask(") || (factory && imports("flask")) {
                "flask"
            } else {
                continue;
            };
            let var = l.split('=').next().unwrap_or("").split(':').next().unwrap_or("").trim();
            if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let module = path.trim_end_matches(".py").trim_start_matches("src/").replace('/', ".");
            let module = module.strip_suffix(".__init__").unwrap_or(&module).to_string();
            // The shallowest module wins (app/main.py over app/sub/x.py).
            let depth = module.matches('.').count();
            if best.as_ref().is_none_or(|b| depth < b.0) {
                best = Some((depth, module, var.to_string(), kind));
            }
        }
    }
    best.map(|(_, m, v, k)| (m, v, k))
}

/// A `[project.scripts]` entry named after the project (a server, unlike
/// helpers such as `hello`).
fn project_script(f: &Facts) -> Option<String> {
    let pp = f.pyproject.as_deref()?;
    let name = crate::plan::python::project::read_pyproject(pp)?.name?;
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    let mut in_scripts = false;
    for line in pp.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_scripts = t == "[project.scripts]" || t == "[tool.poetry.scripts]";
            continue;
        }
        if in_scripts {
            let key = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if !key.is_empty() && norm(key) == norm(&name) {
                return Some(key.to_string());
            }
        }
    }
    None
}

/// The port: EXPOSE, compose's published port, the command's own flags, a
/// uwsgi config, the server's default.
fn port(f: &Facts, d: &mut Draft) {
    if let Some(s) = f.stage() {
        if !s.expose.is_empty() {
            d.expose = s.expose.clone();
            d.why("expose", format!("{}: EXPOSE", f.dockerfile_name()));
            return;
        }
    }
    if let Some(p) = f.compose.as_ref().and_then(|c| c.ports.first()) {
        d.expose = vec![p.clone()];
        d.why("expose", "compose: the published port");
        return;
    }
    let words: Vec<String> =
        d.entrypoint.iter().chain(&d.cmd).flatten().flat_map(|w| w.split_whitespace().map(String::from).collect::<Vec<_>>()).collect();
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        let value = match w.as_str() {
            "-b" | "--bind" | "--port" | "-p" | "--http" | "--http-socket" | "--hosts" | "--listen" => next,
            _ => ["--bind=", "--port=", "--hosts=", "--listen=", "-b"].iter().find_map(|p| w.strip_prefix(p)).unwrap_or(""),
        };
        let port = value.rsplit(':').next().unwrap_or("");
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            found = Some(port.to_string());
            break;
        }
    }
    if found.is_none() {
        if let Some(ini) = words.iter().find(|w| w.ends_with(".ini")).and_then(|p| f.read(p.trim_start_matches(&format!("{}/", d.workdir))))
        {
            found = ini.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                matches!(k.trim(), "http-socket" | "http").then(|| v.trim().rsplit(':').next().unwrap_or("").to_string())
            });
        }
    }
    let port = found.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match port {
        Some(p) => {
            d.expose = vec![p];
            d.why("expose", "the start command's port");
        }
        None if d.cmd.is_some() => {
            d.expose = vec!["8000".into()];
            d.why("expose", "the server's usual port (8000)");
        }
        None => {}
    }
}

/// The Dockerfile's ENV, without what belongs to its own tooling (PATH,
/// venv, pip/poetry/uv settings): strata sets those itself.
fn env(f: &Facts, d: &mut Draft) {
    let mut env = vec![("PYTHONUNBUFFERED".to_string(), "1".to_string())];
    if let Some(s) = f.stage() {
        for (k, v) in &s.env {
            let tooling = ["PATH", "VIRTUAL_ENV", "PYTHON_VERSION", "PYTHON_SHA256", "GPG_KEY", "LANG", "DEBIAN_FRONTEND", "HOME"]
                .contains(&k.as_str())
                || ["PIP_", "POETRY_", "UV_", "PDM_", "PYSETUP", "VENV_", "PYTHONDONTWRITEBYTECODE"].iter().any(|p| k.starts_with(p));
            if tooling || v.contains('$') {
                continue;
            }
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in std::mem::take(&mut d.env) {
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
    }
    d.env = env;
    env_example(f, d);
}

/// A `.env.example` names the settings the app reads from the environment:
/// the image does not have them (secrets, paths), so say to pass them.
fn env_example(f: &Facts, d: &mut Draft) {
    for name in [".env.example", ".env.sample", "env.example", ".env.template", ".env.dist"] {
        let path = f.dir.join(name);
        let small = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= 64 * 1024);
        let Some(text) = small.then(|| std::fs::read_to_string(&path).ok()).flatten() else { continue };
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("export ").unwrap_or(l.trim()).split_once('=').map(|(k, _)| k.trim()))
            .filter(|k| !k.is_empty() && !k.starts_with('#') && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .filter(|k| !d.env.iter().any(|(e, _)| e == k))
            .take(12)
            .collect();
        if !keys.is_empty() {
            d.note(format!(
                "{name} lists settings the app reads from its environment ({}): pass them at run time with `docker run -e` or `--env-file`",
                keys.join(", ")
            ));
        }
        return;
    }
}

/// The Dockerfile's USER (created with its uid), root when the service
/// binds a port below 1024 or the Dockerfile starts as root to drop
/// privileges itself.
fn user(f: &Facts, d: &mut Draft) {
    let low_port = d.expose.iter().any(|p| p.split('/').next().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n < 1024));
    let Some(s) = f.stage() else {
        if low_port {
            d.user = Some("root".into());
            d.why("user", "the service binds a port below 1024");
        }
        return;
    };
    match &s.user {
        Some(u) if u != "root" && u != "0" => {
            let name = u.split(':').next().unwrap_or(u).to_string();
            let uid = created_uid(f, &name);
            if name.bytes().all(|b| b.is_ascii_digit()) {
                return;
            }
            d.user = Some(match uid {
                Some(u) => format!("{name}:{u}"),
                None => name,
            });
            d.why("user", format!("{}: USER", f.dockerfile_name()));
        }
        _ => {
            let drops = f.runs().iter().any(|r| r.command.contains("gosu") || r.command.contains("su-exec"))
                || d.cmd.iter().chain(&d.entrypoint).flatten().any(|w| w.ends_with(".sh"))
                    && f.read(
                        d.cmd
                            .iter()
                            .chain(&d.entrypoint)
                            .flatten()
                            .find(|w| w.ends_with(".sh"))
                            .map(|w| w.trim_start_matches("./"))
                            .unwrap_or(""),
                    )
                    .is_some_and(|t| t.contains("gosu") || t.contains("chown") || t.contains("su-exec"));
            if !low_port && drops {
                if let Some((name, uid)) = dropped_to(f, d) {
                    d.user = Some(format!("{name}:{uid}"));
                    d.why(
                        "user",
                        format!(
                            "{} runs as root and its start script drops to {name} (uid {uid}), and runs without root too: strata's image runs as {name}",
                            f.dockerfile_name()
                        ),
                    );
                    return;
                }
            }
            if low_port || drops {
                d.user = Some("root".into());
                let why = if low_port { "the service binds a port below 1024" } else { "its start script changes owners or users itself" };
                d.why("user", format!("{} runs as root and {why}", f.dockerfile_name()));
            }
        }
    }
}

fn healthcheck(f: &Facts, d: &mut Draft) {
    let Some(s) = f.stage() else { return };
    let Some(h) = &s.healthcheck else { return };
    let argv = s.argv(h);
    if argv.is_empty() {
        return;
    }
    if argv.iter().any(|a| a.contains("curl")) {
        Draft::add_packages(&mut d.system_packages, &["curl"]);
    }
    d.healthcheck = Some(argv);
    d.why("healthcheck", format!("{}: HEALTHCHECK", f.dockerfile_name()));
    let mut left = Vec::new();
    for (k, v) in &s.healthcheck_flags {
        let valid = match k.as_str() {
            "interval" | "timeout" => v.ends_with(['s', 'm', 'h']) && v.trim_end_matches(['s', 'm', 'h']).parse::<u64>().is_ok(),
            "retries" => v.parse::<u32>().is_ok(),
            _ => false,
        };
        if valid {
            d.healthcheck_opts.push((k.clone(), v.clone()));
        } else {
            left.push(format!("--{k}={v}"));
        }
    }
    if !left.is_empty() {
        d.note(format!("the HEALTHCHECK's {} are left out: strata's healthcheck has cmd, interval, timeout and retries", left.join(" ")));
    }
}

/// The whole context minus `.dockerignore` (and caches, venvs, VCS): what
/// the Dockerfile's `COPY . .` sends, and what apps read at import (a
/// CHANGELOG, an API spec) is there.
fn copies(f: &Facts, d: &mut Draft) {
    d.copy = vec![".".into()];
    d.exclude = vec!["**/__pycache__".into(), "**/*.pyc".into(), ".venv".into(), "venv".into(), "node_modules".into()];
    for n in ["Dockerfile", "strata.toml"] {
        if f.top.iter().any(|(t, _)| t == n) {
            d.exclude.push(n.into());
        }
    }
    if f.ignore_patterns.is_empty() {
        for n in NOT_CODE.iter().filter(|n| ["tests", "test", "docs"].contains(n)) {
            if f.top.iter().any(|(t, dir)| t == n && *dir) && !d.exclude.iter().any(|e| e == n) {
                d.exclude.push(format!("{n}/"));
            }
        }
    }
    let why = if f.ignore_patterns.is_empty() { "the whole context" } else { "the whole context minus .dockerignore" };
    d.why("copy", why.to_string());
    if matches!(d.deps, Deps::None) {
        d.note("no dependency files found ([python] left out)");
    }
}
