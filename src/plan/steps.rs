//! Custom `[[step]]`s: their order (`after`), the copies of their inputs
//! and of the outputs of the steps they come after, and the command.

use std::collections::BTreeMap;

use crate::spec::{Spec, Step};

use super::caches::caches_for;
use super::paths::{abs_in, copy_paths, trim_dir};
use super::{ContextFilter, FileSource, Mount, Op, Run};

/// Steps in an order where every step comes after the steps it names in
/// `after`, spec order otherwise (Kahn's algorithm, smallest index first).
/// Cycles were rejected by the reader.
pub(super) fn order_steps<'a>(steps: &[&'a Step]) -> Vec<&'a Step> {
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.name.value.as_str(), i)).collect();
    let mut waiting: Vec<usize> = vec![0; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for a in &s.after {
            if let Some(&j) = index.get(a.value.as_str()) {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut out = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        out.push(steps[i]);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    out
}

/// For a step after others: the outputs of the dependencies it does not
/// start from (`skip` = 1 when the first is its base).
pub(super) fn after_copies(s: &Step, spec: &Spec, results: &BTreeMap<String, usize>, workdir: &str, skip: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for a in s.after.iter().skip(skip) {
        let Some(&idx) = results.get(&a.value) else { continue };
        let dep = spec.steps.iter().find(|d| d.name.value == a.value);
        let outs: Vec<String> = match dep {
            Some(d) if !d.outputs.is_empty() => d.outputs.iter().map(|o| abs_in(workdir, &o.value)).collect(),
            _ => vec![workdir.to_string()],
        };
        for o in outs {
            ops.push(Op::Copy {
                epoch: false,
                name: format!("step {}: from {} {}", s.name.value, a.value, o),
                from: FileSource::Stage(idx),
                src: o.clone(),
                dest: o,
                owner: None,
                span: a.span.clone(),
            });
        }
    }
    ops
}

/// Copies a step's inputs into the workdir and runs it.
pub(super) fn step_ops(
    s: &Step,
    spec: &Spec,
    image: &str,
    workdir: &str,
    context: &mut ContextFilter,
    extra_env: Vec<(String, String)>,
) -> Vec<Op> {
    let mut ops = Vec::new();
    for i in &s.inputs {
        context.include.push(trim_dir(&i.value));
        let (src, dest) = copy_paths(&i.value, workdir);
        ops.push(Op::Copy {
            epoch: false,
            name: format!("step {}: input {}", s.name.value, i.value),
            from: FileSource::Context,
            src,
            dest,
            owner: None,
            span: i.span.clone(),
        });
    }
    if s.inputs.is_empty() {
        ops.push(Op::Mkdir {
            name: format!("step {}: workdir", s.name.value),
            path: workdir.to_string(),
            owner: None,
            span: s.name.span.clone(),
        });
    }
    let (mut mounts, mut env) = caches_for(&s.caches, spec, image);
    env.extend(extra_env);
    env.extend(s.env.iter().cloned());
    for id in &s.secrets {
        mounts.push(Mount::Secret { id: id.value.clone() });
    }
    for (i, id) in s.ssh.iter().enumerate() {
        mounts.push(Mount::Ssh { id: id.value.clone(), index: i });
    }
    ops.push(Op::Run(Run {
        name: format!("step {}: {}", s.name.value, one_line(&s.run.value)),
        script: s.run.value.clone(),
        cwd: workdir.to_string(),
        env,
        mounts,
        network: s.network,
        step: Some(s.name.value.clone()),
        span: s.run.span.clone(),
    }));
    ops
}

pub(super) fn one_line(s: &str) -> String {
    let first = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if first.chars().count() > 60 || s.trim().lines().count() > 1 {
        format!("{}…", first.chars().take(60).collect::<String>())
    } else {
        first.to_string()
    }
}
