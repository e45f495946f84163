//! `strata dockerfile`: the plan written as a Dockerfile for BuildKit's
//! built-in frontend, so leaving strata costs nothing.
//!
//! It renders the linear plan (no MergeOp: a Dockerfile has `COPY --link`
//! only for copies, not for the dependency-layer diffs), so the image has
//! the same file tree as the strata build on the classic store, with the
//! same stages, order, cache mounts (ids included, so the two share caches),
//! secrets and ssh. Each plan op becomes one instruction:
//!
//! - `Run` → `RUN` with `--mount` flags and the script as a quoted heredoc
//!   (no Dockerfile variable expansion, the shell sees exactly our script);
//!   its env is exported at the top of the script, because `ENV` would leak
//!   into the image config. Every op of ours runs as root, so stages from an
//!   image start with `USER root`.
//! - files strata generates (a layer group's pins) → a `FROM scratch` stage
//!   written with `COPY <<heredoc`, bind-mounted like our mkfile state.
//! - `Copy` → `COPY` (same FileOp flags in both frontends: contents of a
//!   directory, wildcards, parents created with the owner).
//! - `Mkdir` → `RUN mkdir -p && chown` (the FileOp chowns an existing dir too).
//! - the target's `ConfigPatch` → `ENV`/`USER`/`WORKDIR`/`ENTRYPOINT`/...
//!
//! What a Dockerfile cannot say is written as a comment in the header: the
//! named contexts to pass, and that the `.dockerignore` patterns belong in
//! `<Dockerfile>.dockerignore`. `[app] exclude` becomes `COPY --exclude` on
//! the app copies, so it hides nothing from steps and tests (as in strata).

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::plan::{shell_quote, ConfigPatch, FileSource, Mount, Op, Owner, Pinned, Plan, Sharing, StageBase};
use crate::spec::Network;

/// The ejected files: the Dockerfile and, when the context has excludes,
/// the lines of its `<name>.dockerignore`.
pub struct Ejected {
    pub dockerfile: String,
    pub dockerignore: Vec<String>,
}

pub fn eject(plan: &Plan, target: usize, spec_file: &str) -> Ejected {
    let stages = reachable(plan, target);
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut pinned: Vec<&'static Pinned> = Vec::new();
    for &i in &stages {
        for op in &plan.stages[i].ops {
            for src in op.sources() {
                match src {
                    FileSource::Named(n) => {
                        named.insert(n.clone());
                    }
                    FileSource::Pinned(p) if !pinned.contains(p) => pinned.push(p),
                    _ => {}
                }
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "# Ejected from {spec_file} by `strata dockerfile`: the same stages, layers, cache");
    let _ = writeln!(out, "# mounts and image config, for BuildKit's built-in Dockerfile frontend.");
    let mut flags: Vec<String> = named.iter().map(|n| format!("--build-context {n}=./{n}")).collect();
    flags.push("-f <this file> .".into());
    let _ = writeln!(out, "#   docker buildx build {}", flags.join(" "));
    if !plan.context.exclude.is_empty() {
        let _ = writeln!(out, "# The context's .dockerignore patterns go in <this file>.dockerignore.");
    }
    // A Dockerfile has one checksum per ADD: the file of linux/amd64.
    for p in pinned {
        if let Some(f) = p.file("amd64", "") {
            let _ =
                writeln!(out, "\n# {} {}, pinned by sha256 (the linux/amd64 file; strata picks each platform's own)", p.name, f.version);
            let _ = writeln!(out, "FROM scratch AS {}", pinned_stage(p));
            let _ = writeln!(out, "ADD --checksum=sha256:{} {} /{}", f.sha256, f.url, p.filename);
        }
    }
    let mut gen = 0usize;
    for &i in &stages {
        out.push('\n');
        out.push_str(&stage(plan, i, i == target, &mut gen));
    }
    Ejected { dockerfile: out, dockerignore: plan.context.exclude.clone() }
}

/// Stages the target needs, in plan order (a stage only refers to earlier
/// ones), the target last so it is the Dockerfile's default.
fn reachable(plan: &Plan, target: usize) -> Vec<usize> {
    let mut order: Vec<usize> = plan.reachable(target).into_iter().filter(|&i| i != target).collect();
    order.push(target);
    order
}

/// `[app] exclude` (and `.git`) for one app `COPY`: a Dockerfile has one
/// `.dockerignore` for every use of the context, so the app's own excludes
/// become `COPY --exclude`, whose patterns are relative to the copied path.
/// Patterns rooted elsewhere do not apply to this copy; `**/` ones apply
/// everywhere. (A pattern with a wildcard in a leading directory, such as
/// `*/tests`, is only kept for a copy of the whole context.)
fn app_excludes(plan: &Plan, src: &str) -> Vec<String> {
    let rel = src.trim_matches('/');
    plan.app
        .exclude
        .iter()
        .filter(|e| !plan.context.exclude.contains(e))
        .filter_map(|e| {
            if rel.is_empty() || rel == "." || e.starts_with("**/") {
                Some(e.clone())
            } else {
                e.strip_prefix(&format!("{rel}/")).filter(|r| !r.is_empty()).map(str::to_string)
            }
        })
        .collect()
}

fn source_flag(plan: &Plan, from: &FileSource) -> Option<String> {
    match from {
        FileSource::Context | FileSource::App => None,
        FileSource::Named(n) => Some(n.clone()),
        FileSource::Stage(i) => Some(plan.stages[*i].name.clone()),
        FileSource::Pinned(p) => Some(pinned_stage(p)),
    }
}

fn pinned_stage(p: &Pinned) -> String {
    format!("pinned-{}", p.name)
}

fn stage(plan: &Plan, idx: usize, is_target: bool, gen: &mut usize) -> String {
    let s = &plan.stages[idx];
    let mut pre = String::new();
    let mut out = String::new();
    let _ = writeln!(out, "# {}", s.description);
    let mut cwd: Option<String> = None;
    match &s.from {
        StageBase::Image(r) => {
            let _ = writeln!(out, "FROM {r} AS {}", s.name);
            // strata runs every build op as root, whatever the base's USER.
            let _ = writeln!(out, "USER root");
        }
        StageBase::Stage(b) => {
            let _ = writeln!(out, "FROM {} AS {}", plan.stages[*b].name, s.name);
            cwd = stage_cwd(plan, *b);
        }
    }
    for op in &s.ops {
        match op {
            Op::Run(r) => {
                if cwd.as_deref() != Some(r.cwd.as_str()) {
                    let _ = writeln!(out, "WORKDIR {}", r.cwd);
                    cwd = Some(r.cwd.clone());
                }
                let mut flags: Vec<String> = Vec::new();
                for m in &r.mounts {
                    match m {
                        Mount::Cache { target, id, sharing, owner, mode } => {
                            let sharing = match sharing {
                                Sharing::Shared => "shared",
                                Sharing::Locked => "locked",
                                Sharing::Private => "private",
                            };
                            let mut f = format!("--mount=type=cache,id={id},target={target},sharing={sharing}");
                            if let Some(Owner { uid: u, gid: g }) = owner {
                                let _ = write!(f, ",uid={u},gid={g}");
                            }
                            if let Some(m) = mode {
                                let _ = write!(f, ",mode={m:o}");
                            }
                            flags.push(f);
                        }
                        Mount::Files { target, from, paths } => {
                            let from = source_flag(plan, from).map(|f| format!(",from={f}")).unwrap_or_default();
                            for p in paths {
                                let rel = p.trim_end_matches('/');
                                flags.push(format!("--mount=type=bind{from},source={rel},target={}/{rel}", target.trim_end_matches('/')));
                            }
                        }
                        Mount::Source { target, from, writable } => {
                            let from = source_flag(plan, from).map(|f| format!(",from={f}")).unwrap_or_default();
                            let rw = if *writable { ",rw" } else { "" };
                            flags.push(format!("--mount=type=bind{from},target={target}{rw}"));
                        }
                        Mount::Generated { target, files } => {
                            *gen += 1;
                            let name = format!("strata-generated-{gen}");
                            let _ = writeln!(pre, "# files strata writes for `{}`", r.name);
                            let _ = writeln!(pre, "FROM scratch AS {name}");
                            for (file, text) in files {
                                let tag = delimiter(text);
                                let _ =
                                    writeln!(pre, "COPY <<'{tag}' /{file}\n{}{}{tag}", text, if text.ends_with('\n') { "" } else { "\n" });
                            }
                            pre.push('\n');
                            flags.push(format!("--mount=type=bind,from={name},target={target}"));
                        }
                        Mount::Secret { id } => flags.push(format!("--mount=type=secret,id={id},required=true")),
                        Mount::Tmpfs { target } => flags.push(format!("--mount=type=tmpfs,target={target}")),
                        Mount::Ssh { id, .. } => flags.push(format!("--mount=type=ssh,id={id},required=true")),
                    }
                }
                match r.network {
                    Network::Default => {}
                    Network::None => flags.push("--network=none".into()),
                    Network::Host => flags.push("--network=host".into()),
                }
                let mut script = String::new();
                for (k, v) in &r.env {
                    // `${PATH}` in a plan env value is the image's PATH, which
                    // is what the shell's $PATH is here.
                    let parts: Vec<String> = v.split("${PATH}").map(shell_quote_always).collect();
                    let _ = writeln!(script, "export {k}={}", parts.join("\"$PATH\""));
                }
                script.push_str(&r.script);
                if !script.ends_with('\n') {
                    script.push('\n');
                }
                let tag = delimiter(&script);
                let _ = writeln!(out, "# {}", r.name);
                out.push_str("RUN ");
                for f in &flags {
                    let _ = write!(out, "{f} \\\n    ");
                }
                let _ = write!(out, "<<'{tag}'\n{script}{tag}\n");
            }
            Op::Copy { name, from, src, dest, owner, .. } => {
                let _ = writeln!(out, "# {name}");
                out.push_str("COPY ");
                if let Some(f) = source_flag(plan, from) {
                    let _ = write!(out, "--from={f} ");
                }
                if let Some(Owner { uid: u, gid: g }) = owner {
                    let _ = write!(out, "--chown={u}:{g} ");
                }
                if *from == FileSource::App {
                    for e in app_excludes(plan, src) {
                        // The flag parser strips double quotes; only quote when needed.
                        let plain = !e.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\');
                        let e = if plain { e } else { serde_json::to_string(&e).unwrap_or_default() };
                        let _ = write!(out, "--exclude={e} ");
                    }
                }
                let _ = writeln!(out, "{}", json_args(&[src.clone(), dest.clone()]));
            }
            Op::Mkdir { name, path, owner, .. } => {
                // A root workdir, or a directory of strata's (the user's
                // workdir is made by the user's command).
                let _ = writeln!(out, "# {name}");
                let chown = owner.map(|Owner { uid: u, gid: g }| format!(" && chown {u}:{g} {}", shell_quote(path))).unwrap_or_default();
                let _ = writeln!(out, "RUN mkdir -p {}{chown}", shell_quote(path));
            }
            Op::Merge { name, .. } => {
                // Plans for eject are built without MergeOp; say so rather
                // than write a Dockerfile that silently differs.
                let _ = writeln!(out, "# {name}: needs MergeOp; eject plans are built without it");
            }
        }
    }
    if is_target {
        if let Some(c) = &s.config {
            out.push_str(&config(c));
        }
    }
    pre + &out
}

/// The working directory a stage leaves behind (for `FROM <stage>`).
fn stage_cwd(plan: &Plan, idx: usize) -> Option<String> {
    let s = &plan.stages[idx];
    let last = s.ops.iter().rev().find_map(|op| match op {
        Op::Run(r) => Some(r.cwd.clone()),
        _ => None,
    });
    match (last, &s.from) {
        (Some(c), _) => Some(c),
        (None, StageBase::Stage(b)) => stage_cwd(plan, *b),
        (None, StageBase::Image(_)) => None,
    }
}

fn config(c: &ConfigPatch) -> String {
    let mut out = String::from("# image config\n");
    if !c.path_prepend.is_empty() {
        let _ = writeln!(out, "ENV PATH=\"{}:$PATH\"", c.path_prepend.iter().map(|p| env_escape(p)).collect::<Vec<_>>().join(":"));
    }
    for (k, v) in &c.env {
        let _ = writeln!(out, "ENV {k}=\"{}\"", env_escape(v));
    }
    let _ = writeln!(out, "WORKDIR {}", c.workdir);
    let _ = writeln!(out, "USER {}", c.user);
    let mut entrypoint = c.init.clone().unwrap_or_default();
    entrypoint.extend(c.entrypoint.iter().flatten().cloned());
    if !entrypoint.is_empty() {
        let _ = writeln!(out, "ENTRYPOINT {}", json_args(&entrypoint));
    }
    if let Some(cmd) = &c.cmd {
        let _ = writeln!(out, "CMD {}", json_args(cmd));
    }
    for p in &c.expose {
        let _ = writeln!(out, "EXPOSE {p}");
    }
    for (k, v) in &c.labels {
        let _ = writeln!(out, "LABEL {}=\"{}\"", json_str(k), env_escape(v));
    }
    if let Some(h) = &c.healthcheck {
        let mut flags = String::new();
        for (f, v) in [("interval", &h.interval), ("timeout", &h.timeout)] {
            if let Some(v) = v {
                let _ = write!(flags, "--{f}={v} ");
            }
        }
        if let Some(r) = h.retries {
            let _ = write!(flags, "--retries={r} ");
        }
        let _ = writeln!(out, "HEALTHCHECK {flags}CMD {}", json_args(&h.cmd));
    }
    if let Some(s) = &c.stopsignal {
        let _ = writeln!(out, "STOPSIGNAL {s}");
    }
    out
}

/// A heredoc delimiter that no line of `text` equals.
fn delimiter(text: &str) -> String {
    let mut tag = "STRATA_EOF".to_string();
    let mut n = 0;
    while text.lines().any(|l| l.trim() == tag) {
        n += 1;
        tag = format!("STRATA_EOF_{n}");
    }
    tag
}

fn shell_quote_always(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn json_args(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_default()
}

/// Inside double quotes a Dockerfile expands `$VAR` and treats `\` as an
/// escape: keep values literal.
fn env_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ejected(src: &str) -> Ejected {
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        let plan = crate::plan::build_with(&spec, &[], &crate::plan::PlanEnv { files: BTreeMap::new(), merge: false });
        eject(&plan, plan.target, "strata.toml")
    }

    #[test]
    fn runtime_is_last_and_config_follows_the_spec() {
        let e = ejected(
            "version = 1\n[image]\nbase = \"python:3.12-slim\"\nentrypoint = [\"python\", \"-m\", \"app\"]\ninit = true\nenv = { GREETING = \"a \\\"b\\\" $HOME\" }\n[python]\nrequirements = [\"requirements.txt\"]\n[app]\ncopy = [\"src/\"]\nexclude = [\"**/__pycache__\"]\n",
        );
        let d = &e.dockerfile;
        let last_from = d.rfind("\nFROM ").unwrap();
        assert!(d[last_from..].starts_with("\nFROM os AS runtime") || d[last_from..].contains(" AS runtime\n"), "{d}");
        assert!(d.contains("ENTRYPOINT [\"/usr/bin/tini\",\"--\",\"python\",\"-m\",\"app\"]"), "{d}");
        assert!(d.contains("ENV GREETING=\"a \\\"b\\\" \\$HOME\""), "{d}");
        assert!(d.contains("USER 1000:1000"), "{d}");
        assert!(d.contains("--mount=type=bind,source=requirements.txt,target=/tmp/strata-deps/requirements.txt"), "{d}");
        assert!(d.contains("COPY --from=builder [\"/opt/venv\",\"/opt/venv\"]"), "{d}");
        assert!(d.contains("COPY --chown=1000:1000 --exclude=**/__pycache__ --exclude=**/.git [\"/src\",\"/app/src\"]"), "{d}");
        assert!(e.dockerignore.is_empty());
    }

    #[test]
    fn app_excludes_become_copy_excludes_relative_to_each_copy() {
        let e = ejected(
            "version = 1\n[image]\nbase = \"busybox\"\n[app]\ncopy = [\"src/\", \".\"]\nexclude = [\"src/gen/\", \"tests/\", \"**/__pycache__\"]\n",
        );
        let d = &e.dockerfile;
        assert!(
            d.contains("COPY --chown=1000:1000 --exclude=gen/ --exclude=**/__pycache__ --exclude=**/.git [\"/src\",\"/app/src\"]"),
            "{d}"
        );
        assert!(d.contains("--exclude=src/gen/ --exclude=tests/ --exclude=**/__pycache__ --exclude=**/.git [\"/\",\"/app/\"]"), "{d}");
    }

    #[test]
    fn steps_keep_their_mounts_and_scripts_verbatim() {
        let e = ejected(
            "version = 1\n[image]\nbase = \"busybox\"\n[[step]]\nname = \"fetch\"\nrun = \"echo $TOKEN > /dev/null; cat /run/secrets/token | wc -c > n\"\nsecrets = [\"token\"]\ncaches = [\"hf\"]\nnetwork = \"none\"\noutputs = [\"n\"]\n",
        );
        let d = &e.dockerfile;
        assert!(d.contains("--mount=type=secret,id=token,required=true"), "{d}");
        assert!(d.contains("--network=none"), "{d}");
        assert!(d.contains("echo $TOKEN > /dev/null; cat /run/secrets/token | wc -c > n\nSTRATA_EOF"), "{d}");
        assert!(d.contains("COPY --from=step-fetch"), "{d}");
    }

    #[test]
    fn deterministic() {
        let src = "version = 1\n[image]\nbase = \"busybox\"\n[app]\ncopy = [\"a\"]\n";
        assert_eq!(ejected(src).dockerfile, ejected(src).dockerfile);
    }

    #[test]
    fn heredoc_delimiter_avoids_script_lines() {
        assert_eq!(delimiter("a\nSTRATA_EOF\n"), "STRATA_EOF_1");
        assert_eq!(delimiter("a\n"), "STRATA_EOF");
    }
}
