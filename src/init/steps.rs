//! Build-time work: a Node asset build the Dockerfile does in a stage of
//! its own (its inputs are that stage's COPY sources, its outputs what the
//! service stage copies out of it), Django's collectstatic and compress,
//! message catalogs; plus the test target and the R/GPU hints.

use super::dockerfile::Stage;
use super::source::Facts;
use super::{Draft, StepDraft, TestDraft};

pub fn detect(f: &Facts, d: &mut Draft) {
    placed(f, d);
    data_dirs(f, d);
    node(f, d);
    django_static(f, d);
    catalogs(f, d);
    tests(f, d);
    d.r = f.top.iter().any(|(n, dir)| !dir && (n.ends_with(".R") || n.ends_with(".r"))) || f.has("DESCRIPTION") || f.has("renv.lock");
    let reqs = f.read("requirements.txt").unwrap_or_default().to_lowercase();
    d.gpu = ["torch", "tensorflow", "jax"].iter().any(|g| reqs.lines().any(|l| l.trim_start().starts_with(g)));
    leftovers(f, d);
}

/// What init did not carry over from the Dockerfile, said in notes: files
/// copied from other images, RUN lines that are not installs or the build
/// work above, and a start script that waits for a database.
fn leftovers(f: &Facts, d: &mut Draft) {
    let (Some((name, df)), Some(i)) = (&f.dockerfile, f.stage) else { return };
    let s = &df.stages[i];
    for c in &s.copies {
        if let Some(from) = &c.from {
            let stage = df
                .stages
                .iter()
                .enumerate()
                .position(|(j, st)| j.to_string() == *from || st.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(from)));
            match stage {
                None => d.note(format!("{name} copies {} from the image {from}; the spec leaves that out", c.sources.join(" "))),
                // A stage init does not translate (not Python's, not a
                // Node or bun build): its files are left out too.
                Some(j) => {
                    let root = df.root_stage(j);
                    let base = root.base.trim_start_matches("docker.io/").trim_start_matches("library/");
                    let known = ["python", "node", "oven/bun"].iter().any(|k| base.starts_with(k));
                    if !known {
                        d.note(format!(
                            "{name} copies {} from stage {from} (FROM {}); the spec leaves that out",
                            c.sources.join(" "),
                            root.base
                        ));
                    }
                }
            }
        }
    }
    let known = [
        "apt-get",
        "apt ",
        "apk ",
        "pip ",
        "pip3 ",
        "uv ",
        "poetry ",
        "pdm ",
        "useradd",
        "groupadd",
        "adduser",
        "usermod",
        "chmod",
        "chown",
        "mkdir",
        "collectstatic",
        "compile",
        "rm -",
        "ln -s",
        "seq ",
        "yarn ",
        "npm ",
    ];
    for r in &s.runs {
        let c = r.command.trim();
        if known.iter().any(|k| c.contains(k)) || c.starts_with('.') {
            continue;
        }
        let short: String = c.chars().take(80).collect();
        d.note(format!("{name}:{}: `RUN {short}` is not carried over; add a [[step]] if the image needs it", r.line));
    }
    let script = d.entrypoint.iter().chain(&d.cmd).flatten().find(|w| w.ends_with(".sh")).cloned();
    if let Some(sc) = script {
        let rel = sc.strip_prefix(&format!("{}/", d.workdir.trim_end_matches('/'))).unwrap_or(&sc).trim_start_matches("./").to_string();
        let text = f.read(&rel).unwrap_or_default();
        if ["until psql", "pg_isready", "wait-for", "while ! nc", "</dev/tcp/"].iter().any(|w| text.contains(w)) {
            d.note(format!("{sc} waits for a database before it starts the server"));
        }
    }
}

/// Files the Dockerfile copies somewhere else than their context path
/// under the app (`COPY docker/entry.sh /app/run.sh`): strata's app copies
/// keep context paths, so a step puts them where the image expects them
/// (with the Dockerfile's `chmod +x`).
fn placed(f: &Facts, d: &mut Draft) {
    let Some(s) = f.stage() else { return };
    let root = d.dest.clone().unwrap_or_else(|| d.workdir.clone());
    let root = root.trim_end_matches('/');
    let deps = |p: &str| p.contains("requirements") || p.ends_with("pyproject.toml") || p.ends_with(".lock") || p.contains("package");
    let runs: Vec<String> = f.runs().iter().map(|r| r.command.clone()).collect();
    let mut cmds = Vec::new();
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for c in s.copies.iter().filter(|c| c.from.is_none() && c.sources.iter().all(|x| !x.contains("://"))) {
        for src in &c.sources {
            let src = src.trim_start_matches("./").trim_end_matches('/');
            if src.is_empty() || src == "." || src.contains(['*', '$']) || deps(src) || f.dir.join(src).is_dir() || !f.has(src) {
                continue;
            }
            let name = src.rsplit('/').next().unwrap_or(src);
            let dest = if c.dest.ends_with('/')
                || c.sources.len() > 1
                || d.venv.as_deref().is_some_and(|v| c.dest.starts_with(v)) && !c.dest.ends_with(name)
            {
                format!("{}/{name}", c.dest.trim_end_matches('/'))
            } else {
                c.dest.clone()
            };
            let natural = format!("{root}/{src}");
            let under_app = dest.starts_with(&format!("{root}/")) || d.venv.as_deref().is_some_and(|v| dest.starts_with(&format!("{v}/")));
            // elsewhere (`COPY docker-entrypoint.sh /`): only what the start
            // command runs
            let started = d.entrypoint.iter().chain(&d.cmd).flatten().any(|w| *w == dest);
            if dest == natural || !under_app && !started {
                continue;
            }
            let dir = dest.rsplit_once('/').map(|(p, _)| p).filter(|p| !p.is_empty()).unwrap_or("/");
            let mut cmd = format!("mkdir -p {dir} && cp {src} {dest}");
            let file = dest.rsplit('/').next().unwrap_or(&dest);
            if runs
                .iter()
                .any(|r| r.contains("chmod") && r.contains("+x") && (r.contains(dest.as_str()) || r.contains(&format!("/{file}"))))
            {
                cmd.push_str(&format!(" && chmod +x {dest}"));
            }
            cmds.push(cmd);
            inputs.push(src.to_string());
            outputs.push(dest);
        }
    }
    if cmds.is_empty() {
        return;
    }
    d.steps.push(StepDraft {
        name: "place".into(),
        run: cmds.join(" && "),
        inputs,
        outputs,
        caches: vec![],
        env: vec![],
        after: vec![],
        packages: vec![],
        why: format!("{}: files it copies to other places than their context path", f.dockerfile_name()),
    });
}

/// Directories the service stage makes outside the app (`RUN mkdir
/// /datastore`, `mkdir -p /etc/NAME` for a config the start script
/// writes) and its `VOLUME`s, where the service keeps its data: the
/// Dockerfile runs as root, strata's image as its user, so a step makes
/// them and the image gets them owned by that user (a named volume takes
/// the owner of the image's directory).
fn data_dirs(f: &Facts, d: &mut Draft) {
    let root = d.dest.clone().unwrap_or_else(|| d.workdir.clone());
    let root = root.trim_end_matches('/').to_string();
    let system = [
        "/tmp",
        "/usr",
        "/root",
        "/var/cache",
        "/var/lib/apt",
        "/var/log",
        "/proc",
        "/dev",
        "/run",
        "/bin",
        "/lib",
        "/sbin",
        "/opt/venv",
        "/etc/apt",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/pki",
        "/etc/profile.d",
        "/etc/sudoers.d",
        "/etc/security",
        "/etc/systemd",
        "/etc/cron.d",
        "/etc/ld.so.conf.d",
        "/etc/default",
    ];
    let Some(s) = f.stage() else { return };
    let mut candidates: Vec<String> = s.volumes.clone();
    for r in &s.runs {
        for part in r.command.split(['&', '|', ';']) {
            let w: Vec<&str> = part.split_whitespace().collect();
            if w.first() != Some(&"mkdir") {
                continue;
            }
            candidates.extend(w[1..].iter().map(|a| a.trim_matches(['"', '\'']).to_string()));
        }
    }
    let mut dirs: Vec<String> = Vec::new();
    for a in candidates.iter().filter(|a| a.starts_with('/') && !a.contains('$')) {
        let a = a.trim_end_matches('/');
        let inside = |p: &str| a == p || a.starts_with(&format!("{p}/"));
        // `/etc` itself, or a directory right under `/` that every image has
        let bare = a == "/etc" || a == "/var" || a == "/opt" || a == "/srv" || a == "/home" || a == "/mnt";
        let skip = a.is_empty() || bare || inside(&root) || system.iter().any(|s| inside(s)) || d.venv.as_deref().is_some_and(inside);
        if !skip && !dirs.iter().any(|x| x == a) {
            dirs.push(a.to_string());
        }
    }
    if dirs.is_empty() {
        return;
    }
    d.steps.push(StepDraft {
        name: "dirs".into(),
        run: format!("mkdir -p {}", dirs.join(" ")),
        inputs: vec![],
        outputs: dirs,
        caches: vec![],
        env: vec![],
        after: vec![],
        packages: vec![],
        why: format!("{}: directories it makes outside the app, the image user's here", f.dockerfile_name()),
    });
}

/// The image's env that a build step should see too (settings modules).
fn step_env(d: &Draft) -> Vec<(String, String)> {
    d.env.iter().filter(|(k, _)| k != "PYTHONUNBUFFERED").cloned().collect()
}

/// A `FROM node` stage whose output the service copies: its RUNs become a
/// build step (Node from Debian in the builder).
fn node(f: &Facts, d: &mut Draft) {
    let (Some((name, df)), Some(i)) = (&f.dockerfile, f.stage) else { return };
    let service = &df.stages[i];
    for (ni, ns) in df.stages.iter().enumerate() {
        if !ns.is_node() {
            continue;
        }
        let stage_names: Vec<String> = vec![ni.to_string(), ns.name.clone().unwrap_or_default()];
        let from_node = |c: &&super::dockerfile::Copy| {
            c.from.as_ref().is_some_and(|fr| stage_names.iter().any(|n| !n.is_empty() && n.eq_ignore_ascii_case(fr)))
        };
        // The service's own copies out of the Node stage, or a Python
        // build stage's that land inside the app (`COPY --from=js
        // /src/js/ ./pkg/js` in a builder whose app dir the service takes).
        let wd = d.workdir.trim_end_matches('/').to_string();
        let mut outs: Vec<&super::dockerfile::Copy> = service.copies.iter().filter(from_node).collect();
        if outs.is_empty() {
            outs = df
                .needed_stages(i)
                .into_iter()
                .filter(|&s| s != i && s != ni)
                .flat_map(|s| df.stages[s].copies.iter())
                .filter(from_node)
                .filter(|c| c.dest.starts_with(&format!("{wd}/")))
                .collect();
        }
        if outs.is_empty() {
            continue;
        }
        let nwd = ns.workdir.clone().unwrap_or_else(|| "/".into());
        // The Node project's root in the context: a directory whose
        // contents the stage copies into its WORKDIR.
        let root = ns
            .copies
            .iter()
            .filter(|c| c.from.is_none() && c.dest.trim_end_matches('/') == nwd.trim_end_matches('/'))
            .flat_map(|c| c.sources.iter())
            .map(|s| s.trim_start_matches("./").trim_end_matches('/'))
            .find(|s| !s.is_empty() && *s != "." && f.dir.join(s).is_dir())
            .map(String::from);
        let inputs: Vec<String> = ns
            .copies
            .iter()
            .filter(|c| c.from.is_none())
            .flat_map(|c| c.sources.iter())
            .map(|s| s.trim_start_matches("./").to_string())
            .map(|s| if s.is_empty() || s == "." { ".".to_string() } else { s })
            .filter(|s| s == "." || f.has(s.trim_end_matches('/')))
            .collect();
        // Each output goes where the Dockerfile copies it: a step output
        // lands at its own path, so one built elsewhere is copied there.
        let mut outputs = Vec::new();
        let mut moves = Vec::new();
        for c in &outs {
            for src in &c.sources {
                let rel = src.strip_prefix(&format!("{}/", nwd.trim_end_matches('/'))).unwrap_or(src.trim_start_matches('/'));
                let rel = rel.trim_end_matches('/');
                let built = match &root {
                    Some(r) => format!("{r}/{rel}"),
                    None => rel.to_string(),
                };
                let dest = c.dest.trim_end_matches('/');
                let dest = if c.dest.ends_with('/') && c.sources.len() > 1 {
                    format!("{dest}/{}", rel.rsplit('/').next().unwrap_or(rel))
                } else {
                    dest.to_string()
                };
                if dest == format!("{wd}/{built}") {
                    outputs.push(built);
                } else {
                    let from = format!("{wd}/{built}");
                    moves.push(format!(
                        "if [ -d {from} ]; then mkdir -p {dest} && cp -a {from}/. {dest}/; else mkdir -p $(dirname {dest}) && cp -a {from} {dest}; fi"
                    ));
                    outputs.push(dest);
                }
            }
        }
        // The stage's own package installs (`apk add make`) become the
        // step's Debian packages; the rest of its RUNs run as written.
        let os_words = ["apk ", "apt-get ", "apt ", "dnf ", "yum "];
        let mut cmds: Vec<String> = Vec::new();
        for r in &ns.runs {
            let kept: Vec<&str> =
                r.command.split("&&").map(str::trim).filter(|c| !c.is_empty() && !os_words.iter().any(|w| c.starts_with(w))).collect();
            if !kept.is_empty() {
                cmds.push(kept.join(" && "));
            }
        }
        let (mut step_packages, _) = super::distro::translate(ns.os_family, &ns.apt_packages);
        step_packages.retain(|p| !p.contains('=') && !["ca-certificates", "curl", "wget", "gnupg", "git"].contains(&p.as_str()));
        for p in ["nodejs", "npm"].into_iter().rev() {
            if !step_packages.iter().any(|x| x == p) {
                step_packages.insert(0, p.to_string());
            }
        }
        if cmds.iter().any(|c| c.contains("yarn")) {
            cmds.insert(0, "command -v yarn >/dev/null || npm install -g --silent yarn@1".into());
        }
        // Debian has no bun; npm has it (its binary is an npm package too).
        if ns.base.starts_with("oven/bun") || cmds.iter().any(|c| c.split_whitespace().any(|w| w == "bun" || w == "bunx")) {
            let major =
                ns.base.split(':').nth(1).and_then(|t| t.split(['.', '-']).next()).filter(|m| m.parse::<u32>().is_ok()).unwrap_or("1");
            cmds.insert(0, format!("command -v bun >/dev/null || npm install -g --silent bun@{major}"));
        }
        let mut run = cmds.iter().map(|c| c.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join(" && ");
        if let Some(r) = &root {
            run = format!("cd {r} && {run}");
        }
        for m in moves {
            run = format!("{run} && {m}");
        }
        // Debian 12's Node is 18: webpack 4 builds made for Node <= 16 need
        // OpenSSL's legacy provider.
        let old_node = ["node:10", "node:12", "node:14", "node:16"].iter().any(|n| ns.base.starts_with(n));
        let env = if old_node { vec![("NODE_OPTIONS".to_string(), "--openssl-legacy-provider".to_string())] } else { vec![] };
        // Node on the step's own branch, as the Dockerfile's own stage: off
        // the Python install's path and out of the builder.
        d.steps.push(StepDraft {
            name: "assets".into(),
            run,
            inputs,
            outputs,
            caches: vec!["npm".into()],
            env,
            after: vec![],
            packages: step_packages,
            why: format!("{name}: stage {} (FROM {}) builds assets the image copies", ns.name.as_deref().unwrap_or("?"), ns.base),
        });
        d.note(format!("the Node build runs with Debian's nodejs/npm on its own branch; {name} used {}", ns.base));
        return;
    }
}

/// Django's `collectstatic` (and django-compressor's offline `compress`)
/// at build time, into STATIC_ROOT, when the Dockerfile runs it or the
/// settings declare a STATIC_ROOT.
fn django_static(f: &Facts, d: &mut Draft) {
    if !f.has("manage.py") {
        return;
    }
    let runs: Vec<String> = f.runs().iter().map(|r| r.command.clone()).collect();
    // The Dockerfile's whole RUN (it may prepare: `mkdir data && ...`).
    let from_docker: Vec<String> =
        runs.iter().filter(|r| r.contains("collectstatic")).map(|c| c.trim().replace("./manage.py", "python manage.py")).collect();
    let Some((root, settings_file)) = static_root(f) else {
        if !from_docker.is_empty() {
            d.note("the Dockerfile runs collectstatic but init could not find STATIC_ROOT: add a build step with its outputs");
        }
        return;
    };
    let mut run = if from_docker.is_empty() { "python manage.py collectstatic --noinput".to_string() } else { from_docker.join(" && ") };
    if !run.contains("--noinput") && !run.contains("--no-input") {
        run = run.replace("collectstatic", "collectstatic --noinput");
    }
    // A manage.py that names no settings module (the project reads it
    // from a .env): the settings that hold STATIC_ROOT, in the image too,
    // or neither collectstatic nor the server finds Django's settings.
    let manage = f.read("manage.py").unwrap_or_default();
    let named = manage.contains("DJANGO_SETTINGS_MODULE")
        || d.env.iter().any(|(k, _)| k == "DJANGO_SETTINGS_MODULE")
        || run.contains("DJANGO_SETTINGS_MODULE")
        || run.contains("--settings");
    let module = settings_file
        .strip_suffix(".py")
        .map(|m| m.replace('/', "."))
        .filter(|m| m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'));
    if let (false, Some(module)) = (named, module) {
        d.note(format!(
            "manage.py names no settings module: DJANGO_SETTINGS_MODULE={module} (where STATIC_ROOT is) in the image and the static step; `docker run -e DJANGO_SETTINGS_MODULE=…` picks another"
        ));
        d.env.push(("DJANGO_SETTINGS_MODULE".into(), module));
    }
    let mut env = step_env(d);
    if !run.contains("SECRET_KEY=") && !env.iter().any(|(k, _)| k.contains("SECRET_KEY")) {
        env.push(("SECRET_KEY".into(), "collectstatic-only".into()));
        env.push(("DJANGO_SECRET_KEY".into(), "collectstatic-only".into()));
    }
    let after: Vec<String> = d.steps.iter().filter(|s| s.name == "assets").map(|s| s.name.clone()).collect();
    d.steps.push(StepDraft {
        name: "static".into(),
        run,
        inputs: vec![".".into()],
        outputs: vec![root.clone()],
        caches: vec![],
        env,
        after,
        packages: vec![],
        why: format!("Django: collectstatic into STATIC_ROOT ({root}, from {settings_file})"),
    });
}

/// STATIC_ROOT relative to the project root, evaluated from the settings
/// for the usual forms: `BASE_DIR / "x"`, `os.path.join(BASE_DIR, "x")`,
/// with BASE_DIR from `Path(__file__).resolve().parent.parent` or nested
/// `os.path.dirname(...)`.
pub fn static_root(f: &Facts) -> Option<(String, String)> {
    for (path, text) in &f.py_files {
        if !text.contains("STATIC_ROOT") {
            continue;
        }
        let dir = path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        let mut vars: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('#') || line.starts_with(char::is_whitespace) {
                continue;
            }
            let Some((name, expr)) = l.split_once('=') else { continue };
            let name = name.trim();
            if !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') || name.is_empty() {
                continue;
            }
            if let Some(v) = eval_path(expr.trim(), &dir, &vars) {
                if name == "STATIC_ROOT" {
                    return Some((v, path.clone()));
                }
                vars.push((name.to_string(), v));
            }
        }
    }
    None
}

/// A path expression of a settings file, relative to the context root.
fn eval_path(expr: &str, dir: &str, vars: &[(String, String)]) -> Option<String> {
    let e = expr.split(" #").next()?.trim().trim_end_matches(',');
    let lookup = |n: &str| vars.iter().rev().find(|(k, _)| k == n.trim()).map(|(_, v)| v.clone());
    let lit = |s: &str| {
        let s = s.trim();
        (s.len() >= 2 && (s.starts_with('"') && s.ends_with('"') || s.starts_with('\'') && s.ends_with('\'')))
            .then(|| s[1..s.len() - 1].to_string())
    };
    let up = |d: &str, n: usize| -> Option<String> {
        let mut parts: Vec<&str> = d.split('/').filter(|p| !p.is_empty()).collect();
        for _ in 0..n {
            parts.pop()?;
        }
        Some(parts.join("/"))
    };
    let join = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { format!("{a}/{b}") };
    // Path(__file__).resolve().parent.parent / ...
    if e.contains("__file__") {
        let n_parent = e.matches(".parent").count();
        let n_dirname = e.matches("dirname(").count();
        if n_parent > 0 {
            // .parent of the file is its dir
            return up(dir, n_parent - 1);
        }
        if n_dirname > 0 {
            return up(dir, n_dirname - 1);
        }
        return None;
    }
    if let Some((a, b)) = e.split_once(" / ") {
        let base = lookup(a).or_else(|| eval_path(a, dir, vars))?;
        let mut out = base;
        for part in b.split(" / ") {
            out = join(&out, &lit(part)?);
        }
        return Some(out);
    }
    if let Some(args) = e.strip_prefix("os.path.join(").and_then(|r| r.strip_suffix(')')) {
        let mut parts = args.split(',');
        let base = parts.next()?;
        let mut out = lookup(base).or_else(|| eval_path(base, dir, vars))?;
        for p in parts {
            out = join(&out, &lit(p)?);
        }
        return Some(out);
    }
    if let Some(inner) = e.strip_prefix("os.path.dirname(").and_then(|r| r.strip_suffix(')')) {
        return up(&eval_path(inner, dir, vars)?, 1);
    }
    if let Some(inner) = e.strip_prefix("os.path.abspath(").and_then(|r| r.strip_suffix(')')) {
        return eval_path(inner, dir, vars);
    }
    if let Some(inner) = e.strip_prefix("str(").and_then(|r| r.strip_suffix(')')) {
        return eval_path(inner, dir, vars);
    }
    lookup(e)
}

/// `pybabel compile -d DIR` (or a `flask translate compile` command that
/// runs it): the compiled catalogs are build output.
fn catalogs(f: &Facts, d: &mut Draft) {
    let runs: Vec<String> = f.runs().iter().map(|r| r.command.clone()).collect();
    let Some(cmd) = runs.iter().find(|r| r.contains("pybabel compile") || r.contains("translate compile")) else { return };
    let text: String = std::iter::once(cmd.clone()).chain(f.py_files.iter().map(|(_, t)| t.clone())).collect::<Vec<_>>().join("\n");
    let dir = text
        .split("pybabel compile -d")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        // the path as written, up to its quote (`'app/translations'):`)
        .map(|s| s.trim_start_matches(['"', '\'']).chars().take_while(|c| c.is_alphanumeric() || "/._-".contains(*c)).collect::<String>());
    // a path in the image (`-d /app/pkg/translations`): through the COPY
    // that put it there
    let dir = dir.and_then(|d| if f.dir.join(&d).is_dir() { Some(d) } else { f.stage().and_then(|s| super::python::context_path(s, &d)) });
    let Some(dir) = dir.filter(|d| f.dir.join(d).is_dir()) else {
        d.note(format!("`RUN {cmd}` compiles message catalogs, but init did not find where: add a [[step]] with the catalogs as outputs"));
        return;
    };
    let run = cmd.split("&&").map(str::trim).find(|c| c.contains("compile")).unwrap_or(cmd).to_string();
    let mut env = step_env(d);
    if let Some(s) = f.stage() {
        add_flask_app(s, &mut env);
    }
    d.steps.push(StepDraft {
        name: "catalogs".into(),
        run,
        inputs: vec![".".into()],
        outputs: vec![dir.clone()],
        caches: vec![],
        env,
        after: vec![],
        packages: vec![],
        why: format!("{}: compiles the message catalogs in {dir}", f.dockerfile_name()),
    });
}

fn add_flask_app(s: &Stage, env: &mut Vec<(String, String)>) {
    if let Some(v) = s.env_var("FLASK_APP") {
        if !env.iter().any(|(k, _)| k == "FLASK_APP") {
            env.push(("FLASK_APP".into(), v.to_string()));
        }
    }
}

fn tests(f: &Facts, d: &mut Draft) {
    let dev =
        ["requirements-dev.txt", "requirements/dev.txt", "requirements.dev.txt", "requirements-test.txt"].into_iter().find(|r| f.has(r));
    let (Some(dev), true) = (dev, f.dir.join("tests").is_dir()) else { return };
    if !f.read(dev).unwrap_or_default().to_lowercase().contains("pytest") {
        return;
    }
    d.test = Some(TestDraft {
        requirements: vec![dev.to_string()],
        inputs: vec!["tests/".into()],
        run: "python -m pytest -q -p no:cacheprovider tests".into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_root_forms() {
        let v = |e: &str| eval_path(e, "proj/settings", &[("BASE_DIR".into(), "".into()), ("PROJECT_DIR".into(), "proj".into())]);
        assert_eq!(eval_path("Path(__file__).resolve().parent.parent", "hc", &[]), Some("".into()));
        assert_eq!(eval_path("os.path.dirname(os.path.dirname(os.path.abspath(__file__)))", "proj/settings", &[]), Some("proj".into()));
        assert_eq!(v("BASE_DIR / \"static-collected\""), Some("static-collected".into()));
        assert_eq!(v("os.path.join(PROJECT_DIR, \"collect_static\")"), Some("proj/collect_static".into()));
        assert_eq!(v("os.path.join(BASE_DIR, 'static')"), Some("static".into()));
        assert_eq!(v("env('STATIC_ROOT')"), None);
        assert_eq!(v("os.path.dirname(PROJECT_DIR)"), Some("".into()));
    }
}
