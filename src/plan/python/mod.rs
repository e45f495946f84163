//! Python: the installer in a tool venv of the builder, the app's venv,
//! lock exports (poetry, pdm), dependency layer groups, the full install,
//! the project built as a wheel and installed on its own, the test
//! target's dev dependencies.
//!
//! Every mount target sits directly in `/tmp` (which images have), so the
//! mount points BuildKit creates and removes leave no directory behind in
//! a layer.

pub mod project;
pub mod requirements;
pub mod uv;

use std::collections::BTreeMap;

use crate::spec::{Installer, LockKind, Python, Spec, TestSpec};

use super::caches::cache_mounts;
use super::paths::list_span;
use super::shell::{shell_quote, words};
use super::{offline_run, run, FileSource, Mount, Op};
use project::{read_pyproject, read_uv_lock};
use requirements::normalize;

/// Where dependency files (requirements, pyproject.toml, locks) are mounted.
pub const DEPS_MOUNT: &str = "/tmp/strata-deps";
/// Where a wheelhouse is mounted for offline installs.
pub const WHEELS_MOUNT: &str = "/tmp/strata-wheels";
/// Where files strata writes (layer groups, `packages`) are mounted.
pub const GEN_MOUNT: &str = "/tmp/strata-gen";
/// Where the app's files are mounted to build the project's wheels.
pub const SRC_MOUNT: &str = "/tmp/strata-src";
/// Where a lock export is mounted for the install.
pub const EXPORT_MOUNT: &str = "/tmp/strata-export";
/// Where the project's wheels and the installer are mounted in the runtime
/// (at their paths in the builder, so the two share it): `/mnt`, which the
/// image has, as tini's mount does. BuildKit 0.8 leaves the mount points it
/// makes in the layer; inside `/mnt` they are in a tmpfs and go with it.
pub const PROJECT_MOUNT: &str = "/mnt";
pub const TOOL_MOUNT: &str = "/mnt";
/// Where the pinned uv wheel is mounted to be unpacked (builder only).
pub const UV_WHEEL_MOUNT: &str = "/tmp/strata-uv-wheel";
/// The uv tool venv in the builder (never copied to the runtime).
pub const UV_HOME: &str = "/opt/strata-uv";
/// The lock export tools (poetry, pdm) and their output, builder only.
pub const EXPORT_TOOL: &str = "/opt/strata-export-tool";
pub const EXPORT_OUT: &str = "/opt/strata-export";
/// The project's wheels, built in the builder.
pub const PROJECT_OUT: &str = "/opt/strata-project";

/// Build tools strata installs, pinned: they change only with strata (and
/// count in `strata.deps.digest`), so a cold build next month installs the
/// same tools.
pub const UV_VERSION: &str = "0.13.9";
pub const POETRY_VERSION: &str = "2.5.1";
pub const POETRY_EXPORT_VERSION: &str = "1.10.1";
pub const PDM_VERSION: &str = "2.29.4";

/// The uv release a build installs: the spec's `uv-version`, else strata's.
pub fn uv_version(py: &Python) -> &str {
    py.uv_version.as_deref().unwrap_or(UV_VERSION)
}

/// Installer flags for where packages come from: a wheelhouse (offline)
/// or indexes. `pip`: the command is pip's, which ignores a plain-http index
/// unless its host is trusted; naming an http:// index in the spec is that
/// trust (uv takes http indexes as they are).
pub(super) fn source_flags(py: &Python, mounts: &mut Vec<Mount>, pip: bool) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(w) = &py.wheels {
        args.push("--no-index".into());
        args.push(format!("--find-links={WHEELS_MOUNT}"));
        mounts.push(wheels_mount(&w.value));
    } else {
        if let Some(i) = &py.index_url {
            args.push(format!("--index-url={i}"));
        }
        for e in &py.extra_index_urls {
            args.push(format!("--extra-index-url={e}"));
        }
        if pip {
            let mut hosts: Vec<&str> = py.index_url.iter().chain(&py.extra_index_urls).filter_map(|u| http_host(u)).collect();
            hosts.dedup();
            args.extend(hosts.iter().map(|h| format!("--trusted-host={h}")));
        }
    }
    args
}

/// The wheelhouse (a named build context) at `WHEELS_MOUNT`, read-only.
pub(super) fn wheels_mount(context: &str) -> Mount {
    Mount::Source { target: WHEELS_MOUNT.into(), from: FileSource::Named(context.to_string()), writable: false }
}

/// `host[:port]` of an `http://` URL (userinfo dropped), else None.
pub(super) fn http_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let netloc = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = netloc.rsplit_once('@').map(|(_, h)| h).unwrap_or(netloc);
    (!host.is_empty()).then_some(host)
}

pub(super) const PIP_ENV: [(&str, &str); 2] = [("PIP_DISABLE_PIP_VERSION_CHECK", "1"), ("PIP_ROOT_USER_ACTION", "ignore")];

pub(super) fn pip_env() -> Vec<(String, String)> {
    PIP_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// pip's tool venv in the builder: installs go into the app's venv with
/// `pip --python`, so that venv never contains pip.
pub const PIP_HOME: &str = "/opt/strata-pip";

/// Where `tool_install` puts the installer.
pub(super) fn tool_home(py: &Python) -> &'static str {
    match py.installer.value {
        Installer::Pip => PIP_HOME,
        Installer::Uv => UV_HOME,
    }
}

/// Whether the tool venvs need the builder's packages: only when those
/// bring what `python3 -m venv` or pip needs (python3-venv, python3-pip,
/// py3-pip, …), i.e. the builder image alone cannot make a venv. Otherwise
/// the installer and the lock export tool are built on the builder image
/// alone, in parallel with the build packages' install.
pub(super) fn tools_need_build_packages(spec: &Spec) -> bool {
    spec.system.build_packages.iter().any(|p| p.value.contains("venv") || p.value.contains("pip"))
}

/// The installer, in a tool venv of the builder (never in the runtime).
pub(super) fn tool_install(py: &Python, spec: &Spec, image: &str) -> Op {
    match py.installer.value {
        Installer::Pip => run(
            "python: pip tool venv (builder only)".into(),
            format!("set -e; python3 -m venv {PIP_HOME}"),
            vec![],
            pip_env(),
            py.installer.span.clone(),
        ),
        // With a wheelhouse, uv's static binary is taken straight out of its
        // wheel (a zip): no venv, no pip run, ~3 s less on a cold build.
        Installer::Uv if py.wheels.is_some() => {
            let wheels = py.wheels.iter().map(|w| wheels_mount(&w.value)).collect();
            run(
                "python: install uv from the wheelhouse (builder only)".into(),
                format!("set -e; python3 -c {}", shell_quote(&uv_from_wheel_script(uv_version(py)))),
                wheels,
                vec![],
                py.installer.span.clone(),
            )
        }
        // From PyPI (the default index) at strata's version: the pinned
        // wheel, fetched by the engine and checked, unpacked without pip.
        Installer::Uv if py.index_url.is_none() && uv_version(py) == UV_VERSION => {
            let table = if spec.system.manager == crate::spec::Manager::Apk { &uv::UV_MUSL } else { &uv::UV_GLIBC };
            offline_run(
                format!("python: uv {UV_VERSION} (pinned wheel, sha256-checked; builder only)"),
                format!("set -e; python3 -c {}", shell_quote(&uv::unpack_script(&format!("{UV_WHEEL_MOUNT}/{}", table.filename)))),
                vec![Mount::Source { target: UV_WHEEL_MOUNT.into(), from: FileSource::Pinned(table), writable: false }],
                py.installer.span.clone(),
            )
        }
        Installer::Uv => {
            let mut mounts = cache_mounts("pip", spec, image).0;
            let flags = source_flags(py, &mut mounts, true);
            let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
            run(
                "python: install uv (builder only)".into(),
                format!(
                    "set -e; python3 -m venv {UV_HOME}; {UV_HOME}/bin/python -m pip install -q {} uv=={}",
                    quoted.join(" "),
                    uv_version(py)
                ),
                mounts,
                pip_env(),
                py.installer.span.clone(),
            )
        }
    }
}

/// Python (stdlib only) that copies `uv` out of the wheelhouse's uv wheel
/// for this machine to `UV_HOME/bin/uv`, choosing as pip would: the
/// architecture, glibc (manylinux) or musl (musllinux); strata's pinned
/// version when the wheelhouse has it, else the newest.
pub(super) fn uv_from_wheel_script(version: &str) -> String {
    format!(
        r#"import glob, os, platform, re, shutil, struct, sys, zipfile
m = platform.machine().lower()
if struct.calcsize("P") == 4 and m in ("x86_64", "amd64", "i386", "i686"):
    m = "i686"
m = {{"amd64": "x86_64", "arm64": "aarch64"}}.get(m, m)
libc = "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
def key(w):
    v = re.match(r"uv-([0-9.]+)-", os.path.basename(w))
    version = v.group(1) if v else ""
    return (version == "{version}", libc in w, tuple(int(x) for x in version.split(".") if x))
wheels = sorted((w for w in glob.glob("{WHEELS_MOUNT}/uv-*.whl") if "_" + m in w), key=key, reverse=True)
if not wheels:
    sys.exit("strata: the wheelhouse has no uv wheel for " + m + ": add uv=={version} to it, or set [python] installer = \"pip\"")
os.makedirs("{UV_HOME}/bin", exist_ok=True)
with zipfile.ZipFile(wheels[0]) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/uv"))
    with z.open(name) as src, open("{UV_HOME}/bin/uv", "wb") as dst:
        shutil.copyfileobj(src, dst)
os.chmod("{UV_HOME}/bin/uv", 0o755)
"#
    )
}

/// The app's venv, empty (with pip only for `keep-pip = true`).
/// `uv venv` writes its interpreter cache: it gets the uv cache mount, as
/// the installs do, so nothing of it lands in the venv's layer.
pub(super) fn venv_create(py: &Python, spec: &Spec, image: &str) -> Op {
    let venv = shell_quote(&py.venv);
    let ssp = if py.system_site_packages { " --system-site-packages" } else { "" };
    let script = match py.installer.value {
        Installer::Pip => {
            let pip = if py.keep_pip { "" } else { " --without-pip" };
            format!("set -e; python3 -m venv{pip}{ssp} {venv}")
        }
        Installer::Uv => {
            let seed = if py.keep_pip { " --seed" } else { "" };
            format!("set -e; {UV_HOME}/bin/uv venv -q{seed}{ssp} --python python3 {venv}")
        }
    };
    // The venv's parents too (/opt): making the venv dated them.
    let parents = format!(
        "; python3 -c {} {venv}",
        shell_quote("import os,sys;p=os.path.dirname(sys.argv[1].rstrip('/'))\nwhile p not in ('/', ''):\n    os.utime(p,ns=(0,0),follow_symlinks=False);p=os.path.dirname(p)")
    );
    let script = script + &normalize_mtimes(py) + &parents;
    let (mounts, mut env) = match py.installer.value {
        Installer::Pip => (vec![], vec![]),
        Installer::Uv => cache_mounts("uv", spec, image),
    };
    env.splice(0..0, uv_env());
    run(format!("python: create venv {}", py.venv), script, mounts, env, py.span.clone())
}

/// Python (stdlib only) that sets the mtime of every entry below argv[1]
/// whose mtime is not 0 to 0, without following symlinks. Entries already
/// at 0 are not touched, so a layer's diff holds only what it changed.
const NORMALIZE_MTIMES: &str = "import os,sys;[os.utime(p,ns=(0,0),follow_symlinks=False) for r,ds,fs in os.walk(sys.argv[1]) for p in [r]+[os.path.join(r,x) for x in ds+fs] if os.lstat(p).st_mtime_ns]";

/// Appended to every command that writes the venv: what it wrote gets
/// mtime 0. An install re-run on a new base (a base bump) then writes the
/// same bytes with the same times, so its layer keeps its digest and
/// nothing of the venv is pushed again. The .pyc files are hash-based
/// (`SOURCE_DATE_EPOCH` is set for the install), so they do not go stale.
pub(super) fn normalize_mtimes(py: &Python) -> String {
    format!("; python3 -c {} {}", shell_quote(NORMALIZE_MTIMES), shell_quote(&py.venv))
}

/// The install command for the app's venv: `pip --python` from the tool
/// venv, or `uv pip install --python`.
pub(super) fn installer_cmd(py: &Python) -> String {
    let venv = shell_quote(&py.venv);
    match py.installer.value {
        Installer::Pip => format!("{PIP_HOME}/bin/python -m pip --python {venv}/bin/python install"),
        Installer::Uv => format!("{UV_HOME}/bin/uv pip install -q --python {venv}/bin/python"),
    }
}

/// `SOURCE_DATE_EPOCH` for installs: 1980-01-01, the earliest time a zip
/// can hold. A build backend that builds a wheel during the install (an
/// sdist, an editable project) stamps its entries with it, and hatchling
/// fails on anything earlier ("ZIP does not support timestamps before
/// 1980"); what the install writes gets mtime 0 afterwards anyway.
const INSTALL_EPOCH: &str = "315532800";

pub(super) fn installer_env(py: &Python, spec: &Spec, image: &str, mounts: &mut Vec<Mount>) -> Vec<(String, String)> {
    let (cache, mut env) = match py.installer.value {
        Installer::Pip => ("pip", pip_env()),
        Installer::Uv => ("uv", uv_env()),
    };
    // With SOURCE_DATE_EPOCH set, py_compile writes hash-based .pyc files
    // instead of ones stamped with the install time: the same pins give the
    // same bytes, whether installed at once or in layers.
    env.push(("SOURCE_DATE_EPOCH".to_string(), INSTALL_EPOCH.to_string()));
    let (cm, ce) = cache_mounts(cache, spec, image);
    mounts.extend(cm);
    env.extend(ce);
    env
}

/// uv's environment: copy out of the cache mount, never download a
/// Python, and trust the system's CA store as pip and apt do (behind a
/// TLS-intercepting proxy uv's own roots fail with "client error (Connect)").
pub(super) fn uv_env() -> Vec<(String, String)> {
    [("UV_LINK_MODE", "copy"), ("UV_PYTHON_DOWNLOADS", "never"), ("UV_NATIVE_TLS", "1"), ("UV_SYSTEM_CERTS", "1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn compile_flag(py: &Python) -> &'static str {
    match (py.installer.value, py.compile) {
        (Installer::Pip, true) | (Installer::Uv, false) => "",
        (Installer::Pip, false) => " --no-compile",
        (Installer::Uv, true) => " --compile-bytecode",
    }
}

/// A group of pins installed as a layer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub label: String,
    /// The requirement-file lines of this group, plus the files' option
    /// lines (index URLs): the group's cache key is exactly this text.
    pub text: String,
}

/// Package families heavy enough to deserve their own layer when the spec
/// gives no `layers`: the CUDA/torch stack, the other DL frameworks, the
/// scientific stack, big native extensions. What is left (mostly pure
/// Python, where small pins change most) is the last layer.
pub(super) const HEAVY: &[(&str, &[&str])] = &[
    ("torch", &["torch", "torchvision", "torchaudio", "triton", "nvidia-*"]),
    (
        "frameworks",
        &[
            "tensorflow",
            "tensorflow-cpu",
            "tensorflow-gpu",
            "tensorflow-io-gcs-filesystem",
            "keras",
            "jax",
            "jaxlib",
            "onnxruntime",
            "onnxruntime-gpu",
        ],
    ),
    (
        "scientific",
        &["numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "opencv-python", "opencv-python-headless", "numba", "llvmlite"],
    ),
    ("native", &["pydantic-core", "grpcio", "cryptography", "lxml", "pillow", "matplotlib", "tokenizers", "safetensors", "sentencepiece"]),
];

pub(super) fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// The dependency lines strata writes itself: `packages`, and the
/// dependencies of a pyproject.toml without a lock (empty when they are
/// dynamic: the project install resolves them).
pub(super) fn generated_lines(py: &Python, files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    if let (Some(p), None) = (&py.pyproject, &py.lock) {
        let extras: Vec<String> = py.extras.iter().map(|e| e.value.clone()).collect();
        let groups: Vec<String> = py.groups.iter().map(|e| e.value.clone()).collect();
        let text = files.get(&p.value).map(|d| String::from_utf8_lossy(d).to_string()).unwrap_or_default();
        lines.extend(read_pyproject(&text).and_then(|pp| pp.requirement_lines(&extras, &groups)).unwrap_or_default());
    }
    lines.extend(py.packages.iter().map(|p| p.value.trim().to_string()));
    lines
}

/// Whether the project itself is installed: `project` when the spec says,
/// else when it is a package (a uv lock says so for its root or `package`;
/// otherwise a `[build-system]`, as uv decides).
pub(super) fn installs_project(py: &Python, files: &BTreeMap<String, Vec<u8>>) -> bool {
    if let Some(p) = py.project {
        return p;
    }
    let Some(pp) = &py.pyproject else { return false };
    let text = |f: &str| files.get(f).map(|d| String::from_utf8_lossy(d).to_string()).unwrap_or_default();
    if let (Some(LockKind::Uv), Some(l)) = (py.lock_kind, &py.lock) {
        if let Some(lock) = read_uv_lock(&text(&l.value)) {
            return !lock.needed_locals(py.package.as_ref().map(|p| p.value.as_str())).is_empty();
        }
    }
    read_pyproject(&text(&pp.value)).is_some_and(|p| p.is_package)
}

/// A pyproject.toml without a lock whose dependencies are `dynamic`: the
/// project install brings them (there is nothing to install before it).
pub(super) fn dynamic_dependencies(py: &Python, files: &BTreeMap<String, Vec<u8>>) -> bool {
    match (&py.pyproject, &py.lock) {
        (Some(p), None) => {
            let text = files.get(&p.value).map(|d| String::from_utf8_lossy(d).to_string()).unwrap_or_default();
            read_pyproject(&text).is_some_and(|pp| pp.dependencies.is_none())
        }
        _ => false,
    }
}

/// Splits the pins into layer groups: those of the requirement files
/// (logical lines: hashes and markers stay with their pin), of `packages`
/// and of a lock-less pyproject.toml. A file that includes others
/// (`-r`/`-c`), editables or local paths make one install; so do locks.
pub fn layer_groups(py: &Python, files: &BTreeMap<String, Vec<u8>>) -> Vec<Group> {
    if matches!(&py.layers, Some(l) if l.is_empty()) || py.lock.is_some() {
        return vec![];
    }
    let mut options = Vec::new();
    let mut pins: Vec<(String, String)> = Vec::new();
    for r in &py.requirements {
        let Some(data) = files.get(&r.value) else { return vec![] };
        let Some(f) = requirements::parse(&String::from_utf8_lossy(data)) else { return vec![] };
        options.extend(f.options);
        pins.extend(f.reqs.into_iter().map(|r| (r.name, r.line)));
    }
    match requirements::parse(&generated_lines(py, files).join("\n")) {
        Some(f) => pins.extend(f.reqs.into_iter().map(|r| (r.name, r.line))),
        None => return vec![],
    }
    let families: Vec<(String, Vec<String>)> = match &py.layers {
        Some(groups) => groups
            .iter()
            .map(|g| (g.iter().map(|n| n.value.clone()).collect::<Vec<_>>().join(" "), g.iter().map(|n| normalize(&n.value)).collect()))
            .collect(),
        None => HEAVY.iter().map(|(label, names)| (label.to_string(), names.iter().map(|n| n.to_string()).collect())).collect(),
    };
    let mut taken = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (label, names) in families {
        let chosen: Vec<&(String, String)> =
            pins.iter().filter(|(n, _)| !taken.contains(n) && names.iter().any(|p| matches(p, n))).collect();
        taken.extend(chosen.iter().map(|(n, _)| n.clone()));
        let lines: Vec<&str> = chosen.iter().map(|(_, l)| l.as_str()).collect();
        if lines.is_empty() {
            continue;
        }
        let mut text = options.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&lines.join("\n"));
        text.push('\n');
        out.push(Group { label: format!("python: layer {label}"), text });
    }
    out
}

/// One group's pins, without their dependencies (the last install adds
/// whatever is missing), on the empty venv.
pub(super) fn group_install(py: &Python, spec: &Spec, image: &str, g: &Group) -> Op {
    let mut mounts = vec![Mount::Generated { target: GEN_MOUNT.into(), files: vec![("group.txt".into(), g.text.clone())] }];
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let env = installer_env(py, spec, image, &mut mounts);
    let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
    run(
        g.label.clone(),
        words(&[
            format!("set -e; {}{} --no-deps", installer_cmd(py), compile_flag(py)),
            quoted.join(" "),
            format!("-r {GEN_MOUNT}/group.txt{}", venv_cleanup(py)),
        ]),
        mounts,
        env,
        py.span.clone(),
    )
}

/// The pyproject.toml's directory inside a mount (`root` for the top).
fn project_dir(py: &Python, root: &str) -> String {
    match py.pyproject.as_ref().and_then(|p| p.value.rsplit_once('/')) {
        Some((d, _)) => format!("{root}/{d}"),
        None => root.to_string(),
    }
}

/// Context files the dependency install mounts: requirement files, the
/// pyproject.toml and its lock, and (uv) the pyproject.toml of every local
/// package the lock names, which uv reads to know the workspace.
pub(super) fn dependency_files(py: &Python, files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out: Vec<String> = py.requirements.iter().map(|r| r.value.clone()).collect();
    // and the files they include (`-r base.txt`), as read before planning
    let mut i = 0;
    while i < out.len() && out.len() < 256 {
        let text = files.get(&out[i]).map(|d| String::from_utf8_lossy(d).to_string()).unwrap_or_default();
        for inc in requirements::includes(&out[i].clone(), &text).into_iter().flatten() {
            if !out.contains(&inc) {
                out.push(inc);
            }
        }
        i += 1;
    }
    out.extend(py.pyproject.iter().chain(&py.lock).map(|f| f.value.clone()));
    if let (Some(LockKind::Uv), Some(l)) = (py.lock_kind, &py.lock) {
        let dir = l.value.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let text = files.get(&l.value).map(|d| String::from_utf8_lossy(d).to_string()).unwrap_or_default();
        for local in read_uv_lock(&text).map(|u| u.locals.into_values().collect::<Vec<_>>()).unwrap_or_default() {
            if let Some(p) = super::paths::join_rel(dir, &format!("{}/pyproject.toml", local.path)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The export tool of a poetry or pdm lock, in a tool venv of the builder
/// (pinned; cached apart from the export, so a lock edit re-runs only the
/// export).
pub(super) fn export_tool(py: &Python, spec: &Spec, image: &str) -> Option<Op> {
    let (what, pkgs) = match py.lock_kind? {
        LockKind::Uv => return None,
        LockKind::Poetry => ("poetry", format!("poetry=={POETRY_VERSION} poetry-plugin-export=={POETRY_EXPORT_VERSION}")),
        LockKind::Pdm => ("pdm", format!("pdm=={PDM_VERSION}")),
    };
    let mut mounts = cache_mounts("pip", spec, image).0;
    let flags: Vec<String> = source_flags(py, &mut mounts, true).iter().map(|a| shell_quote(a)).collect();
    Some(run(
        format!("python: install {what} to export the lock (builder only)"),
        words(&[format!("set -e; python3 -m venv {EXPORT_TOOL}; {EXPORT_TOOL}/bin/python -m pip install -q"), flags.join(" "), pkgs]),
        mounts,
        pip_env(),
        py.lock.as_ref().map(|l| l.span.clone()).unwrap_or(py.span.clone()),
    ))
}

/// The lock exported to pinned requirements (with hashes and markers) at
/// `EXPORT_OUT/requirements.txt`; its cache key is pyproject.toml + lock.
pub(super) fn export(py: &Python) -> Option<Op> {
    let lock = py.lock.as_ref()?;
    let extras: Vec<&str> = py.extras.iter().map(|e| e.value.as_str()).collect();
    let out = format!("{EXPORT_OUT}/requirements.txt");
    let (tool, cmd, env) = match py.lock_kind? {
        LockKind::Uv => return None,
        LockKind::Poetry => {
            let extras = if extras.is_empty() { String::new() } else { format!(" --extras {}", shell_quote(&extras.join(" "))) };
            let groups: String = py.groups.iter().map(|g| format!(" --with {}", shell_quote(&g.value))).collect();
            (
                "poetry",
                format!("{EXPORT_TOOL}/bin/poetry export --format requirements.txt --output {out}{extras}{groups}"),
                ("POETRY_NO_INTERACTION", "1"),
            )
        }
        LockKind::Pdm => {
            // pdm names extras and dependency groups alike.
            let groups: String = extras
                .iter()
                .copied()
                .chain(py.groups.iter().map(|g| g.value.as_str()))
                .map(|e| format!(" --group {}", shell_quote(e)))
                .collect();
            (
                "pdm",
                format!("{EXPORT_TOOL}/bin/pdm export --format requirements --prod --output {out}{groups}"),
                ("PDM_CHECK_UPDATE", "false"),
            )
        }
    };
    let files = vec![py.pyproject.as_ref()?.value.clone(), lock.value.clone()];
    let env = vec![(env.0.to_string(), env.1.to_string())];
    Some(run(
        format!("python: {tool} export {}", lock.value),
        format!("set -e; mkdir -p {EXPORT_OUT}; cd {}; {cmd}", shell_quote(&project_dir(py, DEPS_MOUNT))),
        vec![Mount::Files { target: DEPS_MOUNT.into(), from: FileSource::Context, paths: files }],
        env,
        lock.span.clone(),
    ))
}

/// The full install (on top of the group layers, if any): the requirement
/// files, `packages`, a lock-less pyproject's dependencies, a lock export,
/// or `uv sync` of a uv.lock, always without the project itself.
pub(super) fn install(
    py: &Python,
    spec: &Spec,
    image: &str,
    after_groups: bool,
    exported: Option<usize>,
    files: &BTreeMap<String, Vec<u8>>,
) -> Op {
    let venv = shell_quote(&py.venv);
    // Only `packages`: no dependency file to mount (an empty file op is
    // an invalid LLB).
    let deps = dependency_files(py, files);
    let mut mounts =
        if deps.is_empty() { vec![] } else { vec![Mount::Files { target: DEPS_MOUNT.into(), from: FileSource::Context, paths: deps }] };
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
    let generated = generated_lines(py, files);
    let env = installer_env(py, spec, image, &mut mounts);
    let mut reqs: Vec<String> =
        py.requirements.iter().map(|r| format!("-r {}", shell_quote(&format!("{DEPS_MOUNT}/{}", r.value)))).collect();
    if let Some(e) = exported {
        let rel = format!("{}/requirements.txt", EXPORT_OUT.trim_start_matches('/'));
        mounts.push(Mount::Files { target: EXPORT_MOUNT.into(), from: FileSource::Stage(e), paths: vec![rel.clone()] });
        reqs.push(format!("-r {EXPORT_MOUNT}/{rel}"));
    }
    if !generated.is_empty() {
        mounts.push(Mount::Generated { target: GEN_MOUNT.into(), files: vec![("requirements.txt".into(), generated.join("\n") + "\n")] });
        reqs.push(format!("-r {GEN_MOUNT}/requirements.txt"));
    }
    // The installer over `reqs`: the whole install, or what a uv sync
    // leaves to it.
    let install_reqs = || words(&[format!("{}{}", installer_cmd(py), compile_flag(py)), quoted.join(" "), reqs.join(" ")]);
    let script = match py.lock_kind {
        Some(LockKind::Uv) => {
            let text =
                py.lock.as_ref().and_then(|l| files.get(&l.value)).map(|d| String::from_utf8_lossy(d).to_string()).unwrap_or_default();
            let mut skip: Vec<String> = read_uv_lock(&text).map(|u| u.locals.into_keys().collect()).unwrap_or_default();
            skip.sort();
            let mut args = vec!["--no-install-project".to_string(), "--no-install-workspace".to_string()];
            args.extend(skip.iter().map(|s| format!("--no-install-package={s}")));
            args.extend(py.package.iter().map(|p| format!("--package={}", p.value)));
            args.extend(py.extras.iter().map(|e| format!("--extra={}", e.value)));
            args.extend(py.groups.iter().map(|g| format!("--group={}", g.value)));
            let args: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
            // `--no-dev` is `--no-group dev`, which would win over asking
            // for the dev group.
            let no_dev = if py.groups.iter().any(|g| normalize(&g.value) == "dev") { "" } else { " --no-dev" };
            // `packages` the lock does not hold (a server the Dockerfile
            // added: `pip install gunicorn`): installed after the sync, in
            // the same layer, since a sync removes what the lock lacks.
            let extra = if reqs.is_empty() { String::new() } else { format!("; {}", install_reqs()) };
            words(&[
                format!(
                    "set -e; cd {}; UV_PROJECT_ENVIRONMENT={venv} {UV_HOME}/bin/uv sync -q --frozen{no_dev}{}",
                    shell_quote(&project_dir(py, DEPS_MOUNT)),
                    compile_flag(py)
                ),
                args.join(" "),
                quoted.join(" "),
            ]) + &extra
                + &venv_cleanup(py)
        }
        _ if reqs.is_empty() => format!("set -e; true{}", venv_cleanup(py)),
        _ => format!("set -e; {}{}", install_reqs(), venv_cleanup(py)),
    };
    let installer = if py.installer.value == Installer::Uv { "uv" } else { "pip" };
    let what = match (&py.lock, &py.pyproject) {
        (Some(l), _) if py.lock_kind == Some(LockKind::Uv) => format!("sync {}", l.value),
        (Some(l), _) => format!("install {} (exported)", l.value),
        (None, Some(p)) => format!("install the dependencies of {}", p.value),
        (None, None) if py.requirements.is_empty() => "install packages".to_string(),
        (None, None) => format!("install -r {}", py.requirements.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join(" -r ")),
    };
    let rest = if after_groups { " (the rest)" } else { "" };
    let span = match (py.requirements.first(), py.requirements.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => py.span.clone(),
    };
    run(format!("python: {installer} {what}{rest}"), script, mounts, env, span)
}

/// The directories of what the project install builds, under `root` (where
/// the app's files are): the project (or the uv workspace member
/// `package`) and, with a uv.lock, the local packages it needs (members,
/// path dependencies).
fn project_dirs(py: &Python, files: &BTreeMap<String, Vec<u8>>, root: &str) -> Vec<String> {
    let root = project_dir(py, root);
    if py.lock_kind == Some(LockKind::Uv) {
        let text = py.lock.as_ref().and_then(|l| files.get(&l.value)).map(|d| String::from_utf8_lossy(d).to_string()).unwrap_or_default();
        if let Some(lock) = read_uv_lock(&text) {
            let locals = lock.needed_locals(py.package.as_ref().map(|p| p.value.as_str()));
            if !locals.is_empty() || py.package.is_some() {
                return locals.iter().map(|l| if l.path == "." { root.clone() } else { format!("{root}/{}", l.path) }).collect();
            }
        }
    }
    vec![root]
}

/// What the project's install ops are called: the uv workspace member
/// `package`, else "the project".
fn project_name(py: &Python) -> String {
    py.package.as_ref().map(|p| p.value.clone()).unwrap_or_else(|| "the project".into())
}

/// Where the project's install ops point in the spec: `pyproject`, else
/// the `[python]` table.
fn project_span(py: &Python) -> crate::spec::Span {
    py.pyproject.as_ref().map(|p| p.span.clone()).unwrap_or(py.span.clone())
}

/// `wheel_builds`' commands, with what they need.
struct WheelBuilds {
    build: Vec<String>,
    mounts: Vec<Mount>,
    env: Vec<(String, String)>,
    /// The index flags, shell-quoted.
    flags: Vec<String>,
}

/// The commands that build the project's wheels from the app's files
/// (mounted at `SRC_MOUNT`) into `out`: the project (or the uv workspace
/// member `package`) and, with a uv.lock, the local packages it needs
/// (members, path dependencies); with the mounts, env and the index flags
/// (quoted) they need.
fn wheel_builds(py: &Python, spec: &Spec, image: &str, files: &BTreeMap<String, Vec<u8>>, out: &str) -> WheelBuilds {
    let mut mounts = vec![Mount::Source { target: SRC_MOUNT.into(), from: FileSource::App, writable: true }];
    let pip = py.installer.value == Installer::Pip;
    let flags = source_flags(py, &mut mounts, pip);
    let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
    let env = installer_env(py, spec, image, &mut mounts);
    let build: Vec<String> = project_dirs(py, files, SRC_MOUNT)
        .iter()
        .map(|d| match py.installer.value {
            Installer::Uv => words(&[format!("{UV_HOME}/bin/uv build -q --wheel --out-dir {out}"), quoted.join(" "), shell_quote(d)]),
            Installer::Pip => {
                words(&[format!("{PIP_HOME}/bin/python -m pip wheel -q --no-deps -w {out}"), quoted.join(" "), shell_quote(d)])
            }
        })
        .collect();
    WheelBuilds { build, mounts, env, flags: quoted }
}

/// The project's wheels, built in the builder from the app's files into
/// `PROJECT_OUT` (see `wheel_builds`). Their dependencies are installed
/// already.
pub(super) fn project_wheels(py: &Python, spec: &Spec, image: &str, files: &BTreeMap<String, Vec<u8>>) -> Op {
    let WheelBuilds { build, mounts, env, .. } = wheel_builds(py, spec, image, files, PROJECT_OUT);
    let name = project_name(py);
    run(
        format!("python: build {name} as a wheel"),
        format!("set -e; mkdir -p {PROJECT_OUT}; {}", build.join("; ")),
        mounts,
        env,
        project_span(py),
    )
}

/// Where `project_build_install` builds the wheels (`wheels/`) and where
/// the build's temporary files go (`tmp/`, `TMPDIR`): a tmpfs, so nothing
/// of them is in the command's diff, which is the image's layer.
pub const BUILT_MOUNT: &str = "/tmp/strata-built";

/// The project's wheels built (see `wheel_builds`) and installed into the
/// builder's venv in one command, for engines with MergeOp: the command's
/// diff is the runtime's project layer, so a code edit runs one command,
/// not a build and an install. Without `with_deps` the venv may be the
/// empty one (the dependencies are in the runtime's venv already).
pub(super) fn project_build_install(py: &Python, spec: &Spec, image: &str, files: &BTreeMap<String, Vec<u8>>, with_deps: bool) -> Op {
    let out = format!("{BUILT_MOUNT}/wheels");
    let WheelBuilds { build, mut mounts, mut env, flags: quoted } = wheel_builds(py, spec, image, files, &out);
    mounts.push(Mount::Tmpfs { target: BUILT_MOUNT.into() });
    env.push(("TMPDIR".into(), format!("{BUILT_MOUNT}/tmp")));
    let deps = if with_deps { "" } else { " --no-deps" };
    // (installer_cmd's uv command is quiet already)
    let quiet = if py.installer.value == Installer::Pip { " -q" } else { "" };
    let install = words(&[format!("{}{quiet}{deps}{}", installer_cmd(py), compile_flag(py)), quoted.join(" "), format!("{out}/*.whl")]);
    let name = project_name(py);
    run(
        format!("python: install {name} into {} (built from the app's files)", py.venv),
        format!("set -e; mkdir -p {BUILT_MOUNT}/tmp; {}; {install}{}", build.join("; "), venv_cleanup(py)),
        mounts,
        env,
        project_span(py),
    )
}

/// Installs the project's wheels into the runtime's venv, as a layer of
/// their own: the installer comes from the builder through a mount, the
/// wheels without their dependencies (installed before, unless they are
/// `dynamic`), so a code edit re-runs only this.
pub(super) fn project_install(py: &Python, wheels: usize, tool: usize, with_deps: bool) -> Op {
    let venv = shell_quote(&py.venv);
    let out = PROJECT_OUT.trim_start_matches('/');
    let mut mounts = vec![Mount::Files { target: PROJECT_MOUNT.into(), from: FileSource::Stage(wheels), paths: vec![out.to_string()] }];
    let wheels_glob = format!("{PROJECT_MOUNT}/{out}/*.whl");
    let deps = if with_deps { "" } else { " --no-deps --no-index" };
    let (script, env) = match py.installer.value {
        Installer::Uv => {
            let uv = format!("{}/bin/uv", UV_HOME.trim_start_matches('/'));
            mounts.push(Mount::Files { target: TOOL_MOUNT.into(), from: FileSource::Stage(tool), paths: vec![uv.clone()] });
            let mut env = uv_env();
            env.push(("SOURCE_DATE_EPOCH".into(), INSTALL_EPOCH.into()));
            (
                format!(
                    "set -e; {TOOL_MOUNT}/{uv} pip install -q --no-cache --python {venv}/bin/python{deps}{} {wheels_glob}",
                    compile_flag(py)
                ),
                env,
            )
        }
        Installer::Pip => {
            let home = PIP_HOME.trim_start_matches('/');
            mounts.push(Mount::Files { target: TOOL_MOUNT.into(), from: FileSource::Stage(tool), paths: vec![home.to_string()] });
            let mut env = pip_env();
            env.push(("SOURCE_DATE_EPOCH".into(), INSTALL_EPOCH.into()));
            (
                format!(
                    "set -e; {venv}/bin/python $(echo {TOOL_MOUNT}/{home}/lib/python3*/site-packages/pip) install -q --no-cache-dir{deps}{} {wheels_glob}",
                    compile_flag(py)
                ),
                env,
            )
        }
    };
    let name = project_name(py);
    run(format!("python: install {name} into {}", py.venv), script + &venv_cleanup(py), mounts, env, project_span(py))
}

/// Installs the project editable into the runtime's venv, on top of the
/// app copies it points at (`root`: where the app's files are): the build
/// backend runs with the installer and its cache mounted, nothing of them
/// stays, and a code edit re-runs only this.
pub(super) fn editable_install(py: &Python, spec: &Spec, image: &str, tool: usize, root: &str, files: &BTreeMap<String, Vec<u8>>) -> Op {
    let venv = shell_quote(&py.venv);
    let dirs = project_dirs(py, files, root.trim_end_matches('/'));
    let targets: Vec<String> = dirs.iter().map(|d| format!("-e {}", shell_quote(d))).collect();
    let dir = dirs.join(" ");
    let mut mounts = Vec::new();
    let pip = py.installer.value == Installer::Pip;
    let flags: Vec<String> = source_flags(py, &mut mounts, pip).iter().map(|a| shell_quote(a)).collect();
    // The installer's cache, with the id of the preset, so the build
    // backend's downloads are shared: under /mnt, mounted after the
    // installer's (whose tmpfs holds its mount point), so nothing stays.
    let cache_dir = "/mnt/strata-installer-cache";
    let (presets, _) = cache_mounts(if pip { "pip" } else { "uv" }, spec, image);
    let cache = match presets.first() {
        Some(Mount::Cache { id, sharing, .. }) => {
            Some(Mount::Cache { target: cache_dir.into(), id: id.clone(), sharing: *sharing, owner: None, mode: None })
        }
        _ => None,
    };
    let (script, mut env) = match py.installer.value {
        Installer::Uv => {
            let uv = format!("{}/bin/uv", UV_HOME.trim_start_matches('/'));
            mounts.push(Mount::Files { target: TOOL_MOUNT.into(), from: FileSource::Stage(tool), paths: vec![uv.clone()] });
            let mut env = uv_env();
            env.push(("UV_CACHE_DIR".into(), cache_dir.into()));
            (
                words(&[
                    format!("set -e; {TOOL_MOUNT}/{uv} pip install -q --python {venv}/bin/python --no-deps{}", compile_flag(py)),
                    flags.join(" "),
                    targets.join(" "),
                ]),
                env,
            )
        }
        Installer::Pip => {
            let home = PIP_HOME.trim_start_matches('/');
            mounts.push(Mount::Files { target: TOOL_MOUNT.into(), from: FileSource::Stage(tool), paths: vec![home.to_string()] });
            let mut env = pip_env();
            env.push(("PIP_CACHE_DIR".into(), cache_dir.into()));
            (
                words(&[
                    format!(
                        "set -e; {venv}/bin/python $(echo {TOOL_MOUNT}/{home}/lib/python3*/site-packages/pip) install -q --no-deps{}",
                        compile_flag(py)
                    ),
                    flags.join(" "),
                    targets.join(" "),
                ]),
                env,
            )
        }
    };
    mounts.extend(cache);
    env.push(("SOURCE_DATE_EPOCH".into(), INSTALL_EPOCH.into()));
    let name = project_name(py);
    run(format!("python: install {name} editable ({dir})"), script + &venv_cleanup(py), mounts, env, project_span(py))
}

pub(super) fn dev_install(py: &Python, t: &TestSpec, spec: &Spec, image: &str) -> Op {
    let mut mounts = vec![Mount::Files {
        target: DEPS_MOUNT.into(),
        from: FileSource::Context,
        paths: t.requirements.iter().map(|r| r.value.clone()).collect(),
    }];
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let mut args: Vec<String> = flags;
    args.extend(t.requirements.iter().flat_map(|r| ["-r".to_string(), format!("{DEPS_MOUNT}/{}", r.value)]));
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let env = installer_env(py, spec, image, &mut mounts);
    run(
        format!("test: install -r {}", t.requirements.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join(" -r ")),
        words(&[format!("set -e; {}", installer_cmd(py)), quoted.join(" ")]),
        mounts,
        env,
        list_span(&t.requirements),
    )
}

/// Appended to the runtime venv's installs; each install cleans up what it
/// installed, so with layers no diff whites out another layer's files.
/// `prune-tests`: the `tests` dirs below a package (never a top-level one).
pub(super) fn venv_cleanup(py: &Python) -> String {
    let venv = shell_quote(&py.venv);
    let mut out = String::new();
    if py.prune_tests {
        out += &format!("; find {venv}/lib -path '*/site-packages/*/tests' -type d -prune -exec rm -rf {{}} +");
    }
    if py.installer.value == Installer::Uv {
        // uv records the mtime of the wheel it installed from (a build
        // context file, so it differs per checkout) in uv_cache.json and
        // hashes that into RECORD; nothing reads it in a runtime venv. Drop
        // both so the same pins give the same venv bytes.
        out += &format!(
            "; for f in {venv}/lib/python*/site-packages/*.dist-info/uv_cache.json; do [ -e \"$f\" ] || continue; rm -f \"$f\"; sed -i '/uv_cache\\.json,/d' \"${{f%/uv_cache.json}}/RECORD\"; done"
        );
    }
    out + &normalize_mtimes(py)
}
