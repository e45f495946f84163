//! The plan as text: the tree `strata plan` prints (and the golden plan
//! corpus in tests/plans compares), and the same as JSON.

use super::{FileSource, Mount, Op, Plan, StageBase};

/// What an op's cache key depends on besides the layer below it: the
/// command, the files it reads, where it copies from.
fn key_inputs(p: &Plan, op: &Op) -> Vec<String> {
    let source = |f: &FileSource| source_text(p, f);
    match op {
        Op::Run(r) => {
            let mut k = vec!["command".to_string()];
            for m in &r.mounts {
                match m {
                    Mount::Files { paths, from, .. } => k.extend(paths.iter().map(|x| format!("{}:{x}", source(from)))),
                    Mount::Source { from, .. } => k.push(format!("{} (all of it)", source(from))),
                    Mount::Generated { files, .. } => k.extend(files.iter().map(|(n, _)| format!("generated {n}"))),
                    _ => {}
                }
            }
            k
        }
        Op::Copy { from, src, .. } => vec![format!("{}:{src}", source(from))],
        Op::Mkdir { .. } => vec![],
        Op::Merge { layers, .. } => {
            layers.iter().map(|l| format!("diff {} → {}", p.stages[l.lower].name, p.stages[l.upper].name)).collect()
        }
    }
}

/// Where a copy or a mount reads from, by name.
fn source_text(p: &Plan, f: &FileSource) -> String {
    match f {
        FileSource::Context => "context".to_string(),
        FileSource::App => "context (app)".to_string(),
        FileSource::Named(n) => format!("context {n}"),
        FileSource::Stage(i) => format!("stage {}", p.stages[*i].name),
        FileSource::Pinned(f) => format!("pinned {}", f.filename),
    }
}

fn mount_text(p: &Plan, m: &Mount) -> String {
    match m {
        Mount::Cache { target, id, sharing, .. } => format!("cache {target} (id={id}, {sharing:?})"),
        Mount::Files { target, paths, .. } => format!("files {target} <- {}", paths.join(", ")),
        Mount::Source { target, from, writable } => {
            format!("source {target} <- {}{}", source_text(p, from), if *writable { " (writable, discarded)" } else { "" })
        }
        Mount::Secret { id } => format!("secret /run/secrets/{id}"),
        Mount::Tmpfs { target } => format!("tmpfs {target}"),
        Mount::Generated { target, files } => {
            format!(
                "generated {target} <- {}",
                files.iter().map(|(n, t)| format!("{n} ({})", t.lines().collect::<Vec<_>>().join(", "))).collect::<Vec<_>>().join("; ")
            )
        }
        Mount::Ssh { id, index } => format!("ssh /run/buildkit/ssh_agent.{index} ({id})"),
    }
}

/// A readable tree of stages and their layers.
pub fn tree(p: &Plan, target: usize) -> String {
    render(p, target, false)
}

/// The tree with every op's content as well (commands, env, copy paths,
/// owners, configs): what the golden plan corpus compares.
pub fn detailed(p: &Plan, target: usize) -> String {
    render(p, target, true)
}

fn render(p: &Plan, target: usize, detail: bool) -> String {
    let mut s = String::new();
    for (i, st) in p.stages.iter().enumerate() {
        let from = match &st.from {
            StageBase::Image(r) => format!("image {r}"),
            StageBase::Stage(j) => format!("stage {}", p.stages[*j].name),
        };
        let mark = if i == target { " (target)" } else { "" };
        s.push_str(&format!("stage {}{mark} from {from}\n", st.name));
        for op in &st.ops {
            s.push_str(&format!("  - {}\n", op.name()));
            let key = key_inputs(p, op);
            if !key.is_empty() {
                s.push_str(&format!("      key: layer below + {}\n", key.join(", ")));
            }
            if let Op::Run(r) = op {
                for m in &r.mounts {
                    s.push_str(&format!("      mount {}\n", mount_text(p, m)));
                }
            }
            if detail {
                s.push_str(&op_detail(op));
            }
        }
        if let (true, Some(c)) = (detail, &st.config) {
            s.push_str(&format!("  config {c:?}\n"));
        }
    }
    s.push_str(&format!("context include {:?} exclude {:?}\n", p.context.include, p.context.exclude));
    s.push_str(&format!("context (app) include {:?} exclude {:?}\n", p.app.include, p.app.exclude));
    if detail {
        s.push_str(&format!("workdir {} owner {}\ndependency files {:?}\n", p.workdir.0, owner_text(&p.workdir.1), p.deps_files));
    }
    s
}

/// The same as JSON (`strata plan --format json`).
pub fn json(p: &Plan, target: usize) -> serde_json::Value {
    use serde_json::json;
    let stages: Vec<serde_json::Value> = p
        .stages
        .iter()
        .map(|st| {
            let from = match &st.from {
                StageBase::Image(r) => json!({"image": r}),
                StageBase::Stage(j) => json!({"stage": p.stages[*j].name}),
            };
            let ops: Vec<serde_json::Value> = st
                .ops
                .iter()
                .map(|op| {
                    let kind = match op {
                        Op::Run(_) => "run",
                        Op::Copy { .. } => "copy",
                        Op::Mkdir { .. } => "mkdir",
                        Op::Merge { .. } => "merge",
                    };
                    let mounts: Vec<String> = match op {
                        Op::Run(r) => r.mounts.iter().map(|m| mount_text(p, m)).collect(),
                        _ => vec![],
                    };
                    json!({"kind": kind, "name": op.name(), "key": key_inputs(p, op), "mounts": mounts})
                })
                .collect();
            json!({"name": st.name, "from": from, "target": st.config.is_some(), "description": st.description, "ops": ops})
        })
        .collect();
    json!({
        "target": p.stages[target].name,
        "stages": stages,
        "context": {"include": p.context.include, "exclude": p.context.exclude},
        "app_context": {"include": p.app.include, "exclude": p.app.exclude},
        "dependency_files": p.deps_files,
    })
}

/// Everything in an op that reaches the LLB besides its name and mounts.
fn op_detail(op: &Op) -> String {
    match op {
        Op::Run(r) => {
            let mut s = format!("      cwd {} network {:?} step {:?}\n", r.cwd, r.network, r.step);
            for (k, v) in &r.env {
                s.push_str(&format!("      env {k}={v}\n"));
            }
            for line in r.script.lines() {
                s.push_str(&format!("      | {line}\n"));
            }
            s
        }
        Op::Copy { src, dest, owner, .. } => format!("      {src} -> {dest} owner {}\n", owner_text(owner)),
        Op::Mkdir { path, owner, .. } => format!("      {path} owner {}\n", owner_text(owner)),
        Op::Merge { .. } => String::new(),
    }
}

fn owner_text(o: &Option<super::Owner>) -> String {
    o.map(|o| o.to_string()).unwrap_or_else(|| "(default)".into())
}
