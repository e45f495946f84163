//! OS packages (apt, apk, dnf) and the runtime user.

use crate::diag::Span;
use crate::spec::{Manager, Spec};

use super::caches::{cache_id, cache_mounts, sanitize_id};
use super::shell::shell_quote;
use super::{offline_run, run, FileSource, Mount, Op, Pinned, PinnedFile, Sharing};

const fn tini(arch: &'static str, version: &'static str, url: &'static str, sha256: &'static str) -> PinnedFile {
    PinnedFile { arch, version, url, sha256 }
}

/// tini for `init = true` on apt-based images: Debian's package, from a
/// fixed URL of the archive's pool, checked by sha256. 0.19.0-1 (bookworm,
/// libc6 >= 2.14) where Debian built it, the trixie rebuild elsewhere.
pub const TINI: Pinned = Pinned {
    name: "tini",
    filename: "tini.deb",
    files: &[
        tini(
            "amd64",
            "0.19.0-1",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1_amd64.deb",
            "de5c1090fdb767c6c826b23e1248f4644546697ac4a5bc50b3823901881d4607",
        ),
        tini(
            "arm64",
            "0.19.0-1",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1_arm64.deb",
            "f433248723d58edeb91a3bd357aef0170b1dbab2417421407983b23503ce5a4f",
        ),
        tini(
            "arm/v7",
            "0.19.0-1",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1_armhf.deb",
            "c13155caabe760e93d17cfe7ef0c0d2d7cb9cdf8f8972e70e2201827aab2f303",
        ),
        tini(
            "arm/v6",
            "0.19.0-1+b3",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1+b3_armel.deb",
            "42bdfed5ae19b67436a9a598e8c7c38467d9bc044118704db5fa898778af925b",
        ),
        tini(
            "arm/v5",
            "0.19.0-1+b3",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1+b3_armel.deb",
            "42bdfed5ae19b67436a9a598e8c7c38467d9bc044118704db5fa898778af925b",
        ),
        tini(
            "386",
            "0.19.0-1",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1_i386.deb",
            "45317007691c9680838ec046b363d6408b662b507bfb86e2162369a35c894c47",
        ),
        tini(
            "ppc64le",
            "0.19.0-1+b3",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1+b3_ppc64el.deb",
            "27a987915c4d3ae093a53bd9504cb6f128a50ae91060944603746605aa8d6f6f",
        ),
        tini(
            "s390x",
            "0.19.0-1+b3",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1+b3_s390x.deb",
            "d78c527efb016e0f920eaa213ed523f5d619a6d202ff5db3e60531eee9851bb4",
        ),
        tini(
            "mips64le",
            "0.19.0-1+b3",
            "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1+b3_mips64el.deb",
            "5e7a580c52c3f512598f13e7d51ca0715902afffdf571b65a44cdc2fcf9a7d0d",
        ),
    ],
    unknown_arch_url: "https://deb.debian.org/debian/pool/main/t/tini/tini_0.19.0-1_{arch}.deb",
};

/// Where the pinned tini package is mounted for its install: a directory
/// every apt image has, so the engine makes no mount point in the runtime
/// image (BuildKit 0.8, in Docker 20.10, leaves the ones it makes).
const TINI_MOUNT: &str = "/mnt";

/// Installs the pinned tini package with dpkg (its one dependency, libc6,
/// is in every apt-based image): no package index, no network.
pub(super) fn install_pinned_tini(span: Span) -> Op {
    offline_run(
        format!("system: tini {} (pinned, sha256-checked)", TINI.files[0].version),
        format!("set -e; dpkg -i {TINI_MOUNT}/{}", TINI.filename),
        vec![Mount::Source { target: TINI_MOUNT.into(), from: FileSource::Pinned(&TINI), writable: false }],
        span,
    )
}

/// Where the builder writes the OS packages the venv's native code links,
/// and where the runtime's install mounts that list (a directory apt
/// images have, as for tini).
pub const LINKED_OUT: &str = "/opt/strata-linked";
pub const LINKED_MOUNT: &str = "/mnt";

/// Whether the builder has more than the runtime's base (build packages,
/// a builder image of its own) on an apt image with a venv: then the venv
/// may link libraries the runtime lacks, and strata looks.
pub fn scans_links(spec: &Spec) -> bool {
    let own_builder = spec.image.builder.as_ref().is_some_and(|b| b.value != spec.image.base.value);
    spec.python.is_some() && spec.system.manager == Manager::Apt && (!spec.system.build_packages.is_empty() || own_builder)
}

/// In the builder, after the install: the Debian packages that own the
/// shared libraries the venv's native code links (`ldd` over its `.so`
/// files and `bin/`), libraries inside the venv left out. A package built
/// from source against a `-dev` package (psycopg2 on libpq, uwsgi on
/// libpython) needs the matching runtime library, which the runtime image,
/// a branch of its own, may lack.
pub(super) fn scan_linked(venv: &str, span: Span) -> Op {
    let v = shell_quote(venv);
    let script = format!(
        "set -e; mkdir -p {LINKED_OUT}; \
         {{ find {v} -type f \\( -name '*.so' -o -name '*.so.*' \\) -exec ldd {{}} + 2>/dev/null; \
         find {v}/bin -type f -exec ldd {{}} + 2>/dev/null; true; }} \
         | sed -n 's|^.* => \\(/[^ ]*\\) (0x.*$|\\1|p' | sort -u \
         | while read -r lib; do case \"$lib\" in {v}/*) ;; *) dpkg -S \"$(readlink -f \"$lib\")\" 2>/dev/null || true ;; esac; done \
         | grep -v '^diversion' | sed -n 's|^\\([^:, ]*\\)[:,].*|\\1|p' | sort -u > {LINKED_OUT}/packages; \
         cat {LINKED_OUT}/packages"
    );
    offline_run("python: the OS libraries the venv links (builder only)".into(), script, vec![], span)
}

/// In the runtime: installs those of the scanned packages it lacks. The
/// list is mounted, so the step's cache key is the list's content: a
/// dependency bump that links the same libraries keeps the layer. When
/// nothing is missing (the spec lists the libraries, or the base has
/// them), it installs nothing and needs no network.
pub(super) fn install_linked(spec: &Spec, image: &str, scan: usize, span: Span) -> Op {
    let list = format!("{LINKED_MOUNT}{LINKED_OUT}/packages");
    let script = format!(
        "set -e; need=; for p in $(cat {list}); do dpkg -s \"$p\" >/dev/null 2>&1 || need=\"$need $p\"; done; \
         if [ -n \"$need\" ]; then echo \"strata: installing$need, which the venv's native code links\"; {}; fi",
        apt_install("$need")
    );
    let mut mounts = package_caches(cache_mounts("apt", spec, image).0, "runtime");
    mounts.push(Mount::Files {
        target: LINKED_MOUNT.into(),
        from: FileSource::Stage(scan),
        paths: vec![LINKED_OUT.trim_start_matches('/').to_string()],
    });
    run("system: the OS libraries the venv links".into(), script, mounts, apt_env(), span)
}

/// apt's install of `list` (names, or a shell variable holding them).
/// docker-clean (in Debian/Ubuntu images) deletes downloaded .debs; the
/// archives live in a cache mount, keep them.
fn apt_install(list: &str) -> String {
    format!(
        "rm -f /etc/apt/apt.conf.d/docker-clean; apt-get update -qq; \
         apt-get install -y -qq --no-install-recommends -o APT::Keep-Downloaded-Packages=true {list}"
    )
}

fn apt_env() -> Vec<(String, String)> {
    vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())]
}

pub(super) fn tini_path(m: Manager) -> &'static str {
    match m {
        Manager::Apk => "/sbin/tini",
        Manager::Apt | Manager::Dnf => "/usr/bin/tini",
    }
}

/// The package manager's caches of one install `role` (`runtime`,
/// `builder`, `step-NAME`): the preset ids get the role, so the runtime's,
/// the builder's and each step's installs, which run in parallel, do not
/// wait for each other's `sharing=locked` cache (Django's cold build: the
/// runtime's libpq5 and a step's nodejs waited 30 s behind the builder's
/// compilers). Each role keeps its own lists and downloads, warm for the
/// next build of that role; a `[caches.apt]` table's own id is kept.
fn package_caches(mounts: Vec<Mount>, role: &str) -> Vec<Mount> {
    mounts
        .into_iter()
        .map(|m| match m {
            Mount::Cache { target, id, sharing, owner, mode } if id.starts_with("strata-") => {
                Mount::Cache { target, id: format!("{id}-{role}"), sharing, owner, mode }
            }
            other => other,
        })
        .collect()
}

pub(super) fn install_packages(spec: &Spec, pkgs: &[&str], image: &str, role: &str, span: Span) -> Op {
    // Package names were validated to be plain names, so joining them into
    // the script cannot inject shell syntax.
    let list = pkgs.join(" ");
    let (script, mounts, env, tool) = match spec.system.manager {
        Manager::Apt => (format!("set -e; {}", apt_install(&list)), cache_mounts("apt", spec, image).0, apt_env(), "apt-get"),
        Manager::Apk => (
            format!("set -e; apk add --cache-dir /var/cache/apk {list}"),
            vec![Mount::Cache {
                target: "/var/cache/apk".into(),
                id: cache_id("apk", &sanitize_id(image)),
                sharing: Sharing::Locked,
                owner: None,
                mode: None,
            }],
            vec![],
            "apk",
        ),
        Manager::Dnf => (
            format!("set -e; dnf install -y -q --setopt=keepcache=1 --setopt=install_weak_deps=False {list}"),
            vec![Mount::Cache {
                target: "/var/cache/dnf".into(),
                id: cache_id("dnf", &sanitize_id(image)),
                sharing: Sharing::Locked,
                owner: None,
                mode: None,
            }],
            vec![],
            "dnf",
        ),
    };
    run(format!("system: {tool} install {list}"), script, package_caches(mounts, role), env, span)
}

/// Creates the runtime user without relying on useradd/adduser, which
/// minimal and busybox images lack: append to /etc/passwd and /etc/group
/// unless the user already exists.
pub(super) fn create_user_script(name: &str, uid: u32, gid: u32, workdir: &str) -> String {
    // What it writes gets mtime 0, so the layer is the same bytes when it
    // re-runs on a new base (a base bump); what exists is left alone. /etc
    // itself: the engine makes mount points for /etc/hosts and resolv.conf
    // in every command, which dates it. The workdir: each missing part is
    // created with mtime 0, root's as Docker's WORKDIR makes them (and as
    // a merged app layer recreates them), and the workdir itself is the
    // user's even when the base has it.
    let mut parts = Vec::new();
    let mut at = String::new();
    for c in workdir.split('/').filter(|c| !c.is_empty()) {
        at = format!("{at}/{c}");
        parts.push(shell_quote(&at));
    }
    let workdir_part = match parts.last() {
        Some(dir) => format!(
            "for d in {}; do [ -d \"$d\" ] || {{ mkdir \"$d\"; touch -t $t \"$d\"; }}; done; chown {uid}:{gid} {dir}; ",
            parts.join(" ")
        ),
        None => String::new(),
    };
    format!(
        "set -e; t=197001010000.00; \
         grep -q '^{name}:' /etc/group || {{ echo '{name}:x:{gid}:' >> /etc/group; touch -t $t /etc/group; }}; \
         grep -q '^{name}:' /etc/passwd || {{ echo '{name}:x:{uid}:{gid}::/home/{name}:/bin/sh' >> /etc/passwd; touch -t $t /etc/passwd; }}; \
         [ -d /home/{name} ] || {{ mkdir -p /home/{name}; touch -t $t /home /home/{name}; }}; chown {uid}:{gid} /home/{name}; \
         {workdir_part}touch -t $t /etc"
    )
}
