//! Writes a [`Draft`] as a commented strata.toml: every guessed key says
//! where it came from, and what init could not settle is at the top.

use std::fmt::Write;

use super::{Deps, Draft};

/// A TOML string of what init read: `${` is escaped (`$${`), since
/// strata expands `${NAME}` as a build arg.
fn q(s: &str) -> String {
    let s = s.replace("${", "$${");
    serde_json::to_string(&s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| q(i)).collect::<Vec<_>>().join(", ")
}

fn table(items: &[(String, String)]) -> String {
    let body: Vec<String> = items
        .iter()
        .map(|(k, v)| {
            let key = if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') { k.clone() } else { q(k) };
            format!("{key} = {}", q(v))
        })
        .collect();
    format!("{{ {} }}", body.join(", "))
}

impl Draft {
    fn said(&self, key: &str) -> String {
        let w: Vec<&str> = self.why.iter().filter(|(k, _)| *k == key).map(|(_, v)| v.as_str()).collect();
        if w.is_empty() {
            String::new()
        } else {
            format!("   # {}", w.join("; "))
        }
    }
}

pub fn render(d: &Draft) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# syntax=strata:dev");
    let _ = writeln!(s, "# Written by `strata init`: check it, then `docker buildx build -f strata.toml .`");
    let _ = writeln!(s, "# The format: docs/format.md of strata; `strata check` lints this file.");
    for n in &d.notes {
        let _ = writeln!(s, "# NOTE: {n}");
    }
    let _ = writeln!(s, "version = 1\n\n[args]");
    let base = format!("python:{}-slim-{}", d.python_version, d.debian);
    let _ = writeln!(s, "BASE = {}{}", q(&base), d.said("BASE"));
    // One requirements file: an arg, so CI can swap in another.
    let single_req = match &d.deps {
        Deps::Requirements(r) if r.len() == 1 => Some(r[0].clone()),
        _ => None,
    };
    if let Some(r) = &single_req {
        let _ = writeln!(s, "REQUIREMENTS = {}   # swap in another file with --build-arg", q(r));
    }
    if d.r {
        let _ = writeln!(s, "WITH_R = \"false\"                    # --build-arg WITH_R=true adds the R stage");
    }

    let _ = writeln!(s, "\n[image]\nbase = \"${{BASE}}\"");
    let _ = writeln!(s, "workdir = {}{}", q(&d.workdir), d.said("workdir"));
    match &d.user {
        Some(u) => {
            let _ = writeln!(s, "user = {}{}", q(u), d.said("user"));
        }
        None => {
            let _ = writeln!(s, "# user = \"app\"                        # the default: non-root, uid/gid 1000");
        }
    }
    if let Some(ep) = &d.entrypoint {
        let _ = writeln!(s, "entrypoint = [{}]{}", list(ep), d.said("cmd"));
    }
    match &d.cmd {
        Some(c) => {
            let why = if d.entrypoint.is_some() { String::new() } else { d.said("cmd") };
            let _ = writeln!(s, "cmd = [{}]{why}", list(c));
        }
        None if d.entrypoint.is_none() => {
            let _ = writeln!(s, "# cmd = [\"python\", \"-m\", \"yourapp\"]");
        }
        None => {}
    }
    if !d.env.is_empty() {
        let _ = writeln!(s, "env = {}", table(&d.env));
    }
    if !d.expose.is_empty() {
        let _ = writeln!(s, "expose = [{}]{}", list(&d.expose), d.said("expose"));
    }
    if let Some(h) = &d.healthcheck {
        let opts: String = d
            .healthcheck_opts
            .iter()
            .map(|(k, v)| if k == "retries" { format!(", {k} = {v}") } else { format!(", {k} = {}", q(v)) })
            .collect();
        let _ = writeln!(s, "healthcheck = {{ cmd = [{}]{opts} }}{}", list(h), d.said("healthcheck"));
    }

    if !d.system_packages.is_empty() || !d.build_packages.is_empty() {
        let _ = writeln!(s, "\n[system]");
        if !d.system_packages.is_empty() {
            let _ = writeln!(s, "packages = [{}]{}", list(&d.system_packages), d.said("system.packages"));
        }
        if !d.build_packages.is_empty() {
            let _ = writeln!(s, "build-packages = [{}]{}", list(&d.build_packages), d.said("build-packages"));
        }
    }

    let python = !matches!(d.deps, Deps::None) || !d.packages.is_empty();
    if python {
        let _ = writeln!(s, "\n[python]");
        if let Some(i) = d.installer {
            let _ = writeln!(s, "installer = {}", q(i));
        }
        match &d.deps {
            Deps::Requirements(r) if single_req.is_some() => {
                let _ = writeln!(s, "requirements = [\"${{REQUIREMENTS}}\"]{}", d.said("requirements"));
                let _ = r;
            }
            Deps::Requirements(r) => {
                let _ = writeln!(s, "requirements = [{}]{}", list(r), d.said("requirements"));
            }
            Deps::Pyproject { lock } => {
                let _ = writeln!(s, "pyproject = \"pyproject.toml\"{}", if lock.is_none() { d.said("pyproject") } else { String::new() });
                if let Some(l) = lock {
                    let _ = writeln!(s, "lock = {}{}", q(l), d.said("lock"));
                }
            }
            Deps::None => {}
        }
        if let Some(v) = &d.venv {
            let _ = writeln!(s, "venv = {}{}", q(v), d.said("venv"));
        }
        if d.editable {
            let _ = writeln!(s, "editable = true{}", d.said("editable"));
        }
        if let Some(p) = &d.package {
            let _ = writeln!(s, "package = {}{}", q(p), d.said("package"));
        }
        if !d.extras.is_empty() {
            let _ = writeln!(s, "extras = [{}]{}", list(&d.extras), d.said("extras"));
        }
        if !d.groups.is_empty() {
            let _ = writeln!(s, "groups = [{}]{}", list(&d.groups), d.said("groups"));
        }
        if !d.packages.is_empty() {
            let _ = writeln!(s, "packages = [{}]{}", list(&d.packages), d.said("python.packages"));
        }
        if d.wheels {
            let _ = writeln!(s, "wheels = \"wheels\"                     # offline: --build-context wheels=./wheels");
        }
        if d.gpu {
            let _ = writeln!(s, "# Heavy ML packages get layers of their own automatically; see `layers`.");
        }
    }
    if d.r {
        let _ = writeln!(s, "\n[r]\nif = \"WITH_R\"\npackages = [\"r-base-core\"]\n# cran = [\"data.table\"]");
    }

    let _ = writeln!(s, "\n[app]\ncopy = [{}]{}", list(&d.copy), d.said("copy"));
    if !d.exclude.is_empty() {
        let _ = writeln!(s, "exclude = [{}]", list(&d.exclude));
    }
    if let Some(dest) = &d.dest {
        let _ = writeln!(s, "dest = {}{}", q(dest), d.said("dest"));
    }

    for st in &d.steps {
        let _ = writeln!(s, "\n# {}", st.why);
        let _ = writeln!(s, "[[step]]\nname = {}\nrun = {}", q(&st.name), q(&st.run));
        if !st.inputs.is_empty() {
            let _ = writeln!(s, "inputs = [{}]", list(&st.inputs));
        }
        if !st.outputs.is_empty() {
            let _ = writeln!(s, "outputs = [{}]", list(&st.outputs));
        }
        if !st.packages.is_empty() {
            let _ = writeln!(s, "packages = [{}]", list(&st.packages));
        }
        if !st.caches.is_empty() {
            let _ = writeln!(s, "caches = [{}]", list(&st.caches));
        }
        if !st.env.is_empty() {
            let _ = writeln!(s, "env = {}", table(&st.env));
        }
        if !st.after.is_empty() {
            let _ = writeln!(s, "after = [{}]", list(&st.after));
        }
    }

    if d.gpu {
        let _ = writeln!(
            s,
            "\n# A GPU image next to this one (`--target gpu`):\n# [variants.gpu]\n# base = \"nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04\"\n# env = {{ NVIDIA_VISIBLE_DEVICES = \"all\" }}"
        );
    }
    if let Some(t) = &d.test {
        let _ = writeln!(s, "\n[test]                                 # docker buildx build --target test .");
        let _ = writeln!(s, "requirements = [{}]\ninputs = [{}]\nrun = {}", list(&t.requirements), list(&t.inputs), q(&t.run));
    }
    s
}
