//! `docker buildx build --call targets|outline|check` (and `describe`).
//!
//! buildx sends `requestid=frontend.<name>` and re-renders the answer from
//! `result.json`, so the JSON must match BuildKit's Go types
//! (frontend/subrequests/{targets,outline,lint}) field for field. Unknown
//! requests must not say "unsupported request frontend.…": buildx would then
//! silently retry with the stock Dockerfile frontend.

use std::collections::HashMap;

use bollard_buildkit_proto::moby::buildkit::v1::frontend as gw;
use serde_json::{json, Value};

use super::FrontendError;
use crate::diag::{line_col, Span};
use crate::plan::{self, Mount, Op};
use crate::spec;

pub struct Input<'a> {
    pub spec: &'a spec::Spec,
    pub plan: &'a plan::Plan,
    pub source: &'a str,
    pub file: &'a str,
    pub dockerignore: &'a [String],
    pub target: &'a str,
}

pub fn answer(req: &str, i: &Input) -> Result<gw::Result, FrontendError> {
    match req {
        "frontend.targets" => Ok(result(targets(i), targets_text(i), None)),
        "frontend.outline" => Ok(result(outline(i), String::new(), None)),
        "frontend.lint" => {
            let warnings = crate::lint::check(i.spec, i.source, i.dockerignore);
            let code = if warnings.is_empty() { "0" } else { "1" };
            Ok(result(lint(i, &warnings), String::new(), Some(code)))
        }
        "frontend.subrequests.describe" => Ok(result(describe(), String::new(), None)),
        other => Err(FrontendError::Other(format!(
            "strata does not answer the call \"{}\"; it answers: targets, outline, check, subrequests.describe",
            other.trim_start_matches("frontend.")
        ))),
    }
}

fn result(json: Value, text: String, status: Option<&str>) -> gw::Result {
    let mut metadata = HashMap::new();
    metadata.insert("result.json".to_string(), serde_json::to_vec_pretty(&json).unwrap_or_default());
    metadata.insert("result.txt".to_string(), text.into_bytes());
    metadata.insert("version".to_string(), b"1.0.0".to_vec());
    if let Some(s) = status {
        metadata.insert("result.statuscode".to_string(), s.as_bytes().to_vec());
    }
    gw::Result { metadata, ..Default::default() }
}

/// A pb.Location as protobuf-go JSON: zero fields are omitted.
fn location(source: &str, span: &Span) -> Value {
    if span.end <= span.start {
        return json!({"sourceIndex": -1});
    }
    let (sl, _) = line_col(source, span.start);
    let (el, _) = line_col(source, span.end - 1);
    json!({"ranges": [{"start": {"line": sl}, "end": {"line": el}}]})
}

fn sources(i: &Input) -> Value {
    json!([base64(i.source.as_bytes())])
}

fn targets(i: &Input) -> Value {
    let mut list: Vec<Value> = Vec::new();
    for (name, desc) in i.plan.targets() {
        let mut t = json!({"name": name, "description": desc});
        if name == "runtime" {
            t["default"] = json!(true);
            t["base"] = json!(i.spec.image.base.value);
            t["location"] = location(i.source, &i.spec.image.base.span);
        }
        list.push(t);
    }
    for v in &i.spec.variants {
        list.push(json!({"name": v.value, "description": format!("variant {}", v.value), "location": location(i.source, &v.span)}));
    }
    json!({"targets": list, "sources": sources(i)})
}

fn targets_text(i: &Input) -> String {
    let mut s = String::from("TARGET\tDESCRIPTION\n");
    for (name, desc) in i.plan.targets() {
        let n = if name == "runtime" { "runtime (default)".to_string() } else { name.to_string() };
        s.push_str(&format!("{n}\t{desc}\n"));
    }
    for v in &i.spec.variants {
        s.push_str(&format!("{}\tvariant {}\n", v.value, v.value));
    }
    s
}

/// Args, secrets, ssh and caches the chosen target uses.
fn outline(i: &Input) -> Value {
    let args: Vec<Value> = i
        .spec
        .args
        .iter()
        .map(|(k, v)| {
            let mut a = json!({"name": k, "value": v});
            if let Some(span) = i.spec.arg_spans.get(k) {
                a["location"] = location(i.source, span);
            }
            a
        })
        .collect();
    let mut secrets: Vec<Value> = Vec::new();
    let mut ssh: Vec<Value> = Vec::new();
    let mut caches: Vec<Value> = Vec::new();
    let target = i.plan.stage_index(if i.spec.variant.is_some() { "runtime" } else { i.target }).unwrap_or(i.plan.target);
    for st in i.plan.reachable(target) {
        for op in &i.plan.stages[st].ops {
            let Op::Run(r) = op else { continue };
            for m in &r.mounts {
                let loc = location(i.source, &r.span);
                match m {
                    Mount::Secret { id } if !secrets.iter().any(|s| s["name"] == *id) => {
                        secrets.push(json!({"name": id, "required": true, "location": loc}))
                    }
                    Mount::Ssh { id, .. } if !ssh.iter().any(|s| s["name"] == *id) => {
                        ssh.push(json!({"name": id, "required": true, "location": loc}))
                    }
                    Mount::Cache { id, .. } if !caches.iter().any(|c| c["ID"] == *id) => caches.push(json!({"ID": id, "location": loc})),
                    _ => {}
                }
            }
        }
    }
    let name = i.spec.variant.clone().unwrap_or_else(|| if i.target.is_empty() { "runtime".into() } else { i.target.to_string() });
    let mut o = json!({"name": name, "args": args, "sources": sources(i)});
    if !secrets.is_empty() {
        o["secrets"] = json!(secrets);
    }
    if !ssh.is_empty() {
        o["ssh"] = json!(ssh);
    }
    if !caches.is_empty() {
        o["cache"] = json!(caches);
    }
    o
}

fn lint(i: &Input, warnings: &[crate::lint::Warning]) -> Value {
    let list: Vec<Value> = warnings
        .iter()
        .map(|w| json!({"ruleName": w.rule, "description": w.description, "detail": w.detail, "location": location(i.source, &w.span)}))
        .collect();
    json!({
        "warnings": if list.is_empty() { Value::Null } else { json!(list) },
        "sources": [{"filename": i.file, "data": base64(i.source.as_bytes()), "language": "TOML"}],
    })
}

fn describe() -> Value {
    let meta = json!([{"name": "result.json", "description": ""}, {"name": "result.txt", "description": ""}]);
    let req = |name: &str, desc: &str, opts: Value| json!({"name": name, "version": "1.0.0", "type": "rpc", "description": desc, "opts": opts, "inputs": null, "metadata": meta, "refs": null});
    json!([
        req(
            "frontend.outline",
            "List all parameters current build target supports",
            json!([{"name": "target", "description": "Target build stage"}])
        ),
        req("frontend.targets", "List all targets current build supports", json!([])),
        req("frontend.lint", "Lint the spec", json!([{"name": "target", "description": "Target build stage"}])),
        req("frontend.subrequests.describe", "List available subrequest types", Value::Null),
    ])
}

/// Standard base64 with padding (Go's `[]byte` JSON encoding).
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_go() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
