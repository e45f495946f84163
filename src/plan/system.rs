//! OS packages (apt, apk, dnf) and the runtime user.

use crate::diag::Span;
use crate::spec::{Manager, Spec};

use super::caches::{cache_id, cache_mounts, sanitize_id};
use super::{run, Mount, Op, Sharing};

pub(super) fn tini_path(m: Manager) -> &'static str {
    match m {
        Manager::Apk => "/sbin/tini",
        Manager::Apt | Manager::Dnf => "/usr/bin/tini",
    }
}

pub(super) fn install_packages(spec: &Spec, pkgs: &[&str], image: &str, span: Span) -> Op {
    // Package names were validated to be plain names, so joining them into
    // the script cannot inject shell syntax.
    let list = pkgs.join(" ");
    let (script, mounts, env, tool) = match spec.system.manager {
        Manager::Apt => (
            // docker-clean (in Debian/Ubuntu images) deletes downloaded
            // .debs; the archives live in a cache mount, keep them.
            format!(
                "set -e; rm -f /etc/apt/apt.conf.d/docker-clean; apt-get update -qq; \
                 apt-get install -y -qq --no-install-recommends -o APT::Keep-Downloaded-Packages=true {list}"
            ),
            cache_mounts("apt", spec, image).0,
            vec![("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())],
            "apt-get",
        ),
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
    run(format!("system: {tool} install {list}"), script, mounts, env, span)
}

/// Creates the runtime user without relying on useradd/adduser, which
/// minimal and busybox images lack: append to /etc/passwd and /etc/group
/// unless the user already exists.
pub(super) fn create_user_script(name: &str, uid: u32, gid: u32) -> String {
    // What it writes gets mtime 0, so the layer is the same bytes when it
    // re-runs on a new base (a base bump); what exists is left alone. /etc
    // itself: the engine makes mount points for /etc/hosts and resolv.conf
    // in every command, which dates it.
    format!(
        "set -e; t=197001010000.00; \
         grep -q '^{name}:' /etc/group || {{ echo '{name}:x:{gid}:' >> /etc/group; touch -t $t /etc/group; }}; \
         grep -q '^{name}:' /etc/passwd || {{ echo '{name}:x:{uid}:{gid}::/home/{name}:/bin/sh' >> /etc/passwd; touch -t $t /etc/passwd; }}; \
         [ -d /home/{name} ] || {{ mkdir -p /home/{name}; touch -t $t /home /home/{name}; }}; chown {uid}:{gid} /home/{name}; \
         touch -t $t /etc"
    )
}
