//! Python: the installer in a tool venv of the builder, the app's venv,
//! dependency layer groups, the full install, the test target's dev
//! dependencies.

use std::collections::BTreeMap;

use crate::spec::{Installer, Python, Spec, TestSpec};

use super::caches::cache_mounts;
use super::paths::list_span;
use super::shell::{shell_quote, words};
use super::{run, FileSource, Mount, Op, DEPS_MOUNT, UV_HOME, WHEELS_MOUNT};

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
    Mount::Source { target: WHEELS_MOUNT.into(), from: FileSource::Named(context.to_string()) }
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
                format!("set -e; python3 -c {}", shell_quote(&uv_from_wheel_script())),
                wheels,
                vec![],
                py.installer.span.clone(),
            )
        }
        Installer::Uv => {
            let mut mounts = cache_mounts("pip", spec, image).0;
            let flags = source_flags(py, &mut mounts, true);
            let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
            run(
                "python: install uv (builder only)".into(),
                format!("set -e; python3 -m venv {UV_HOME}; {UV_HOME}/bin/python -m pip install -q {} uv", quoted.join(" ")),
                mounts,
                pip_env(),
                py.installer.span.clone(),
            )
        }
    }
}

/// Python (stdlib only) that copies `uv` out of the wheelhouse's uv wheel
/// for this machine to `UV_HOME/bin/uv`, choosing as pip would: the
/// architecture, glibc (manylinux) or musl (musllinux), the newest version.
pub(super) fn uv_from_wheel_script() -> String {
    format!(
        r#"import glob, os, platform, re, shutil, struct, sys, zipfile
m = platform.machine().lower()
if struct.calcsize("P") == 4 and m in ("x86_64", "amd64", "i386", "i686"):
    m = "i686"
m = {{"amd64": "x86_64", "arm64": "aarch64"}}.get(m, m)
libc = "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
def key(w):
    v = re.match(r"uv-([0-9.]+)-", os.path.basename(w))
    return (libc in w, tuple(int(x) for x in v.group(1).split(".") if x) if v else ())
wheels = sorted((w for w in glob.glob("{WHEELS_MOUNT}/uv-*.whl") if "_" + m in w), key=key, reverse=True)
if not wheels:
    sys.exit("strata: no uv wheel for " + m + " in the wheelhouse")
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
pub(super) fn venv_create(py: &Python) -> Op {
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
    let env = vec![("UV_PYTHON_DOWNLOADS".to_string(), "never".to_string())];
    run(format!("python: create venv {}", py.venv), script, vec![], env, py.span.clone())
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

pub(super) fn installer_env(py: &Python, spec: &Spec, image: &str, mounts: &mut Vec<Mount>) -> Vec<(String, String)> {
    let (cache, mut env) = match py.installer.value {
        Installer::Pip => ("pip", pip_env()),
        Installer::Uv => {
            ("uv", vec![("UV_LINK_MODE".to_string(), "copy".to_string()), ("UV_PYTHON_DOWNLOADS".to_string(), "never".to_string())])
        }
    };
    // With SOURCE_DATE_EPOCH set, py_compile writes hash-based .pyc files
    // instead of ones stamped with the install time: the same pins give the
    // same bytes, whether installed at once or in layers.
    env.push(("SOURCE_DATE_EPOCH".to_string(), "0".to_string()));
    let (cm, ce) = cache_mounts(cache, spec, image);
    mounts.extend(cm);
    env.extend(ce);
    env
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

/// PEP 503 normalised name.
pub(super) fn normalize(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        let c = if c == '_' || c == '.' { '-' } else { c };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

pub(super) fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Splits the requirement files' pins into layer groups. Only plain
/// requirement files qualify (no `-r`/`-c`/`-e`; those install in one
/// layer); a lock install is one layer too.
pub fn layer_groups(py: &Python, files: &BTreeMap<String, Vec<u8>>) -> Vec<Group> {
    if py.requirements.is_empty() || matches!(&py.layers, Some(l) if l.is_empty()) {
        return vec![];
    }
    let mut options = Vec::new();
    let mut pins: Vec<(String, String)> = Vec::new();
    for r in &py.requirements {
        let Some(data) = files.get(&r.value) else { return vec![] };
        for raw in String::from_utf8_lossy(data).lines() {
            let line = match raw.find(" #") {
                Some(i) => &raw[..i],
                None => raw,
            }
            .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('-') {
                let flag = line.split([' ', '=']).next().unwrap_or("");
                if matches!(flag, "-r" | "--requirement" | "-c" | "--constraint" | "-e" | "--editable") {
                    return vec![];
                }
                options.push(line.to_string());
                continue;
            }
            let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).unwrap_or(line.len());
            pins.push((normalize(&line[..end]), line.to_string()));
        }
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
    let mut mounts = vec![Mount::Generated { target: DEPS_MOUNT.into(), files: vec![("group.txt".into(), g.text.clone())] }];
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let env = installer_env(py, spec, image, &mut mounts);
    let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
    run(
        g.label.clone(),
        words(&[
            format!("set -e; {}{} --no-deps", installer_cmd(py), compile_flag(py)),
            quoted.join(" "),
            format!("-r {DEPS_MOUNT}/group.txt{}", venv_cleanup(py)),
        ]),
        mounts,
        env,
        py.span.clone(),
    )
}

/// The full install (on top of the group layers, if any): the requirement
/// files or the lock, with dependencies.
pub(super) fn install(py: &Python, spec: &Spec, image: &str, after_groups: bool) -> Op {
    let venv = shell_quote(&py.venv);
    let mut files: Vec<String> = py.requirements.iter().map(|r| r.value.clone()).collect();
    files.extend(py.pyproject.iter().chain(&py.lock).map(|f| f.value.clone()));
    let mut mounts = vec![Mount::Files { target: DEPS_MOUNT.into(), from: FileSource::Context, paths: files }];
    let flags = source_flags(py, &mut mounts, py.installer.value == Installer::Pip);
    let quoted: Vec<String> = flags.iter().map(|a| shell_quote(a)).collect();
    let env = installer_env(py, spec, image, &mut mounts);
    let script = match (&py.pyproject, &py.lock) {
        (Some(p), Some(_)) => {
            let dir = match p.value.rsplit_once('/') {
                Some((d, _)) => format!("{DEPS_MOUNT}/{d}"),
                None => DEPS_MOUNT.to_string(),
            };
            words(&[
                format!(
                    "set -e; cd {}; UV_PROJECT_ENVIRONMENT={venv} {UV_HOME}/bin/uv sync -q --frozen --no-install-project --no-dev{}",
                    shell_quote(&dir),
                    compile_flag(py)
                ),
                quoted.join(" ") + &venv_cleanup(py),
            ])
        }
        _ => {
            let reqs: Vec<String> =
                py.requirements.iter().map(|r| format!("-r {}", shell_quote(&format!("{DEPS_MOUNT}/{}", r.value)))).collect();
            words(&[format!("set -e; {}{}", installer_cmd(py), compile_flag(py)), quoted.join(" "), reqs.join(" ") + &venv_cleanup(py)])
        }
    };
    let installer = if py.installer.value == Installer::Uv { "uv" } else { "pip" };
    let what = match &py.lock {
        Some(l) => format!("sync {}", l.value),
        None => format!("install -r {}", py.requirements.iter().map(|r| r.value.as_str()).collect::<Vec<_>>().join(" -r ")),
    };
    let rest = if after_groups { " (the rest)" } else { "" };
    let span = match (py.requirements.first(), py.requirements.last()) {
        (Some(a), Some(b)) => a.span.start..b.span.end,
        _ => py.span.clone(),
    };
    run(format!("python: {installer} {what}{rest}"), script, mounts, env, span)
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
    out
}
