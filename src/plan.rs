//! The build plan: what to build, in which order, with which mounts.
//!
//! A `Plan` is derived from a `Spec` alone (no engine, no protobuf), so
//! `strata plan` can print it and tests can check the layer order. The
//! ordering rules of the contract live here:
//!
//! * base → OS packages → user → dependency install → app code, so an app
//!   edit re-runs nothing above it;
//! * dependency files reach the install step as a read-only mount of just
//!   those files, so its cache key is their content and nothing else;
//! * package-manager caches are cache mounts, never layers;
//! * build-only work happens in the `builder` stage; the runtime stage takes
//!   only the finished venv from it.

use crate::spec::{Installer, Manager, Span, Spec, User};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// Index into `stages` of the image to return.
    pub target: usize,
    /// What the `context` local must send: nothing outside these patterns
    /// leaves the client.
    pub context: ContextFilter,
    pub config: ConfigPatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextFilter {
    pub include: Vec<String>,
    /// `.dockerignore` patterns followed by `[app] exclude`.
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub from: StageBase,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageBase {
    /// An image reference as written (normalised at lowering).
    Image(String),
    /// Another stage's result, by index: its ops are shared, not repeated.
    Stage(usize),
}

/// Where a copy or file mount takes its files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// The build context (`local://context`), filtered by `Plan::context`.
    Context,
    /// A named build context (`--build-context NAME=…`); when the client
    /// passes none, the directory of that name in the main context.
    Named(String),
    /// The result of an earlier stage.
    Stage(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A shell command (`/bin/sh -c`) as root unless `user` says otherwise.
    Run { name: String, script: String, env: Vec<(String, String)>, mounts: Vec<Mount>, span: Span },
    /// Copies `src` (relative to the source root) to absolute `dest`.
    Copy { name: String, from: FileSource, src: String, dest: String, owner: Option<(u32, u32)>, span: Span },
    Mkdir { name: String, path: String, owner: Option<(u32, u32)>, span: Span },
}

impl Op {
    pub fn name(&self) -> &str {
        match self {
            Op::Run { name, .. } | Op::Copy { name, .. } | Op::Mkdir { name, .. } => name,
        }
    }
    pub fn span(&self) -> &Span {
        match self {
            Op::Run { span, .. } | Op::Copy { span, .. } | Op::Mkdir { span, .. } => span,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Cache { target: String, id: String, sharing: Sharing },
    /// Read-only mount of selected files; the op's cache key depends on the
    /// content of exactly these files.
    Files { target: String, from: FileSource, paths: Vec<String> },
    /// Read-only mount of a whole source (a named wheel context, say).
    Source { target: String, from: FileSource },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Locked,
    Private,
}

/// Image config the spec sets on top of the base image's config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigPatch {
    pub env: Vec<(String, String)>,
    /// Prepended to the base image's PATH.
    pub path_prepend: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub expose: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub healthcheck: Option<crate::spec::Healthcheck>,
    pub stopsignal: Option<String>,
}

/// Where requirement files are mounted in the install step.
pub const DEPS_MOUNT: &str = "/tmp/strata/deps";
/// Where a wheelhouse is mounted for offline installs.
pub const WHEELS_MOUNT: &str = "/tmp/strata/wheels";

/// Identifies a cache namespace so unrelated caches never share an id. The
/// apt caches include the base image: lists of different distributions must
/// not mix.
fn cache_id(kind: &str, scope: &str) -> String {
    if scope.is_empty() {
        format!("strata-{kind}")
    } else {
        format!("strata-{kind}-{scope}")
    }
}

pub fn build(spec: &Spec, dockerignore: &[String]) -> Plan {
    let image = &spec.image;
    let base = image.base.value.clone();
    let builder_ref = image.builder.as_ref().map(|b| b.value.clone()).unwrap_or_else(|| base.clone());
    let mut stages: Vec<Stage> = Vec::new();
    let mut context = ContextFilter { include: vec![], exclude: dockerignore.to_vec() };
    context.exclude.extend(spec.app.exclude.iter().map(|e| e.value.clone()));

    // --- OS layer of the runtime image: shared with the builder when both
    // start from the same image, so it is built once.
    let runtime_os = stages.len();
    let mut os_ops = Vec::new();
    if !spec.system.packages.is_empty() {
        let pkgs: Vec<&str> = spec.system.packages.iter().map(|p| p.value.as_str()).collect();
        os_ops.push(install_packages(spec.system.manager, &pkgs, &base, list_span(&spec.system.packages)));
    }
    stages.push(Stage { name: "os".into(), from: StageBase::Image(base.clone()), ops: os_ops });

    // --- builder: build packages and the Python venv.
    let python = spec.python.as_ref();
    let needs_builder = python.is_some();
    let mut builder_idx = None;
    if needs_builder {
        let from = if builder_ref == base { StageBase::Stage(runtime_os) } else { StageBase::Image(builder_ref.clone()) };
        let mut ops = Vec::new();
        if !spec.system.build_packages.is_empty() {
            let mut pkgs: Vec<&str> = spec.system.build_packages.iter().map(|p| p.value.as_str()).collect();
            if builder_ref != base {
                // A separate builder image lacks the runtime packages; the
                // build may need them (headers link against them).
                pkgs.extend(spec.system.packages.iter().map(|p| p.value.as_str()));
            }
            ops.push(install_packages(spec.system.manager, &pkgs, &builder_ref, list_span(&spec.system.build_packages)));
        }
        if let Some(py) = python {
            for r in &py.requirements {
                context.include.push(trim_dir(&r.value));
            }
            ops.push(python_install(py));
        }
        builder_idx = Some(stages.len());
        stages.push(Stage { name: "builder".into(), from, ops });
    }

    // --- runtime image.
    let mut ops = Vec::new();
    let workdir = image.workdir.value.clone();
    let user = &image.user.value;
    let owner = match user {
        User::Root => None,
        User::Named { uid, gid, .. } => Some((*uid, *gid)),
    };
    if let User::Named { name, uid, gid } = user {
        ops.push(Op::Run {
            name: format!("user: create {name} ({uid}:{gid})"),
            script: create_user_script(name, *uid, *gid),
            env: vec![],
            mounts: vec![],
            span: image.user.span.clone(),
        });
    }
    ops.push(Op::Mkdir { name: format!("workdir: {workdir}"), path: workdir.clone(), owner, span: image.workdir.span.clone() });
    let mut config = ConfigPatch {
        env: image.env.clone(),
        path_prepend: vec![],
        // Numeric, so Kubernetes' runAsNonRoot can verify it without
        // reading /etc/passwd.
        user: match user {
            User::Root => "root".to_string(),
            User::Named { uid, gid, .. } => format!("{uid}:{gid}"),
        },
        workdir: workdir.clone(),
        entrypoint: image.entrypoint.clone(),
        cmd: image.cmd.clone(),
        expose: image.expose.iter().map(|p| p.value.clone()).collect(),
        labels: image.labels.clone(),
        healthcheck: image.healthcheck.clone(),
        stopsignal: image.stopsignal.clone(),
    };
    if let (Some(py), Some(b)) = (python, builder_idx) {
        ops.push(Op::Copy {
            name: format!("python: venv {}", py.venv),
            from: FileSource::Stage(b),
            src: py.venv.clone(),
            dest: py.venv.clone(),
            owner: None,
            span: py.span.clone(),
        });
        config.path_prepend.push(format!("{}/bin", py.venv));
        config.env.insert(0, ("VIRTUAL_ENV".into(), py.venv.clone()));
    }
    let app_owner = match spec.app.chown.as_ref().map(|c| &c.value) {
        Some(User::Root) => None,
        Some(User::Named { uid, gid, .. }) => Some((*uid, *gid)),
        None => owner,
    };
    let dest_root = spec.app.dest.clone().unwrap_or_else(|| workdir.clone());
    for entry in &spec.app.copy {
        context.include.push(trim_dir(&entry.value));
        let (src, dest) = copy_paths(&entry.value, &dest_root);
        ops.push(Op::Copy {
            name: format!("app: copy {}", entry.value),
            from: FileSource::Context,
            src,
            dest,
            owner: app_owner,
            span: entry.span.clone(),
        });
    }
    let target = stages.len();
    stages.push(Stage { name: "runtime".into(), from: StageBase::Stage(runtime_os), ops });
    context.include.sort();
    context.include.dedup();
    Plan { stages, target, context, config }
}

/// From the first to the last item of a list: where a failing install
/// points in the spec.
fn list_span(items: &[crate::spec::Sp<String>]) -> Span {
    match (items.first(), items.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => 0..0,
    }
}

fn trim_dir(p: &str) -> String {
    p.trim_end_matches('/').to_string()
}

/// Source and destination of one `[app] copy` entry: the path keeps its
/// context-relative location under `dest_root`.
fn copy_paths(entry: &str, dest_root: &str) -> (String, String) {
    let root = dest_root.trim_end_matches('/');
    if entry == "." {
        return ("/".into(), format!("{root}/"));
    }
    let rel = entry.trim_end_matches('/');
    if rel.contains(['*', '?', '[']) {
        // A wildcard copies the matches into their parent directory.
        let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let dest = if parent.is_empty() { format!("{root}/") } else { format!("{root}/{parent}/") };
        return (format!("/{rel}"), dest);
    }
    (format!("/{rel}"), format!("{root}/{rel}"))
}

fn install_packages(manager: Manager, pkgs: &[&str], image: &str, span: Span) -> Op {
    match manager {
        Manager::Apt | Manager::Apk | Manager::Dnf => {
            // Package names were validated to be plain names, so joining them
            // into the script cannot inject shell syntax.
            let list = pkgs.join(" ");
            let script = format!(
                "set -e; rm -f /etc/apt/apt.conf.d/docker-clean; \
                 apt-get update -qq; \
                 apt-get install -y -qq --no-install-recommends -o APT::Keep-Downloaded-Packages=true {list}"
            );
            let scope = sanitize_id(image);
            Op::Run {
                name: format!("system: apt-get install {list}"),
                script,
                env: vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())],
                mounts: vec![
                    Mount::Cache { target: "/var/cache/apt".into(), id: cache_id("apt-cache", &scope), sharing: Sharing::Locked },
                    Mount::Cache { target: "/var/lib/apt".into(), id: cache_id("apt-lists", &scope), sharing: Sharing::Locked },
                ],
                span,
            }
        }
    }
}

fn sanitize_id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

fn python_install(py: &crate::spec::Python) -> Op {
    let venv = &py.venv;
    let mut args = vec!["install".to_string()];
    if !py.compile {
        args.push("--no-compile".into());
    }
    let mut mounts = vec![Mount::Files {
        target: DEPS_MOUNT.into(),
        from: FileSource::Context,
        paths: py.requirements.iter().map(|r| r.value.clone()).collect(),
    }];
    if let Some(w) = &py.wheels {
        args.push("--no-index".into());
        args.push(format!("--find-links={WHEELS_MOUNT}"));
        mounts.push(Mount::Source { target: WHEELS_MOUNT.into(), from: FileSource::Named(w.value.clone()) });
    } else {
        if let Some(i) = &py.index_url {
            args.push(format!("--index-url={i}"));
        }
        for e in &py.extra_index_urls {
            args.push(format!("--extra-index-url={e}"));
        }
    }
    for r in &py.requirements {
        args.push("-r".into());
        args.push(format!("{DEPS_MOUNT}/{}", r.value));
    }
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let mut script = format!("set -e; python3 -m venv {v}; {v}/bin/python -m pip {}", quoted.join(" "), v = shell_quote(venv));
    if !py.keep_pip {
        // pip, setuptools and wheel are build tools: the runtime venv does
        // not need them (the contract's `keep-pip = false` default).
        script.push_str(&format!("; {}/bin/python -m pip uninstall -q -y pip setuptools wheel", shell_quote(venv)));
    }
    mounts.push(Mount::Cache { target: "/root/.cache/pip".into(), id: cache_id("pip", ""), sharing: Sharing::Locked });
    let installer = match py.installer.value {
        Installer::Pip => "pip",
        Installer::Uv => "uv",
    };
    let files: Vec<&str> = py.requirements.iter().map(|r| r.value.as_str()).collect();
    Op::Run {
        name: format!("python: {installer} install -r {}", files.join(" -r ")),
        script,
        env: vec![("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()), ("PIP_ROOT_USER_ACTION".into(), "ignore".into())],
        mounts,
        span: py.span.clone(),
    }
}

/// Creates the runtime user without relying on useradd/adduser, which
/// minimal and busybox images lack: append to /etc/passwd and /etc/group
/// unless the user already exists.
fn create_user_script(name: &str, uid: u32, gid: u32) -> String {
    format!(
        "set -e; \
         grep -q '^{name}:' /etc/group || echo '{name}:x:{gid}:' >> /etc/group; \
         grep -q '^{name}:' /etc/passwd || echo '{name}:x:{uid}:{gid}::/home/{name}:/bin/sh' >> /etc/passwd; \
         mkdir -p /home/{name}; chown {uid}:{gid} /home/{name}"
    )
}

/// Single-quotes a word for /bin/sh.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(src: &str) -> Plan {
        build(&crate::spec::load(src, &BTreeMap::new()).unwrap(), &[])
    }

    const WEB: &str = r#"version = 1
[image]
base = "python:3.11"
entrypoint = ["python", "app.py"]
[system]
packages = ["libpq5"]
build-packages = ["gcc"]
[python]
requirements = ["requirements.txt"]
[app]
copy = ["app.py", "templates/"]
exclude = ["**/__pycache__"]
"#;

    #[test]
    fn runtime_order_is_by_volatility() {
        let p = plan(WEB);
        let rt = &p.stages[p.target];
        let names: Vec<&str> = rt.ops.iter().map(|o| o.name()).collect();
        assert_eq!(
            names,
            ["user: create app (1000:1000)", "workdir: /app", "python: venv /opt/venv", "app: copy app.py", "app: copy templates/"]
        );
        // the runtime starts from the OS stage, which holds the apt layer
        assert_eq!(rt.from, StageBase::Stage(0));
        assert!(p.stages[0].ops[0].name().starts_with("system: apt-get install libpq5"));
    }

    #[test]
    fn builder_shares_os_layer_and_mounts_only_requirements() {
        let p = plan(WEB);
        let b = p.stages.iter().find(|s| s.name == "builder").unwrap();
        assert_eq!(b.from, StageBase::Stage(0));
        let Op::Run { mounts, script, .. } = &b.ops[1] else { panic!() };
        assert!(mounts.contains(&Mount::Files {
            target: DEPS_MOUNT.into(),
            from: FileSource::Context,
            paths: vec!["requirements.txt".into()]
        }));
        assert!(script.contains("-r /tmp/strata/deps/requirements.txt"), "{script}");
        assert!(script.contains("uninstall -q -y pip setuptools wheel"));
    }

    #[test]
    fn only_declared_paths_leave_the_client() {
        let p = plan(WEB);
        assert_eq!(p.context.include, ["app.py", "requirements.txt", "templates"]);
        assert_eq!(p.context.exclude, ["**/__pycache__"]);
    }

    #[test]
    fn copy_destinations() {
        assert_eq!(copy_paths("src/", "/app"), ("/src".into(), "/app/src".into()));
        assert_eq!(copy_paths("a.py", "/app/"), ("/a.py".into(), "/app/a.py".into()));
        assert_eq!(copy_paths(".", "/app"), ("/".into(), "/app/".into()));
        assert_eq!(copy_paths("src/*.py", "/app"), ("/src/*.py".into(), "/app/src/".into()));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--index-url=https://x/y"), "--index-url=https://x/y");
        assert_eq!(shell_quote("a b'c"), "'a b'\\''c'");
    }
}
