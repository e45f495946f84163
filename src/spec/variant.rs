//! `[variants.NAME]`: another final image from the same spec.
//!
//! A variant is merged over the main sections at the TOML-tree level, before
//! typing, so every key keeps its own span and the normal reader validates
//! the result. Rules (what GPU/CPU variants need): scalars replace, `env`
//! and `labels` merge (the variant wins), `system.packages`,
//! `system.build-packages` and `python.requirements` are extra entries
//! appended to the main lists.

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::schema;
use crate::diag::{did_you_mean, Diagnostic};

const APPENDED: &[(&str, &str)] = &[("system", "packages"), ("system", "build-packages"), ("python", "requirements")];

pub fn merge(doc: &mut DeTable<'_>, name: &str) -> Result<(), Diagnostic> {
    let variant = {
        let names: Vec<String> = match doc.get("variants").map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => t.iter().map(|(k, _)| k.get_ref().to_string()).collect(),
            _ => vec![],
        };
        let found = match doc.get("variants").map(|v| v.get_ref()) {
            Some(DeValue::Table(t)) => t.get(name).cloned(),
            _ => None,
        };
        match found {
            Some(v) => v,
            None => {
                let known: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = match did_you_mean(name, &known) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None if known.is_empty() => "this spec has no [variants]".to_string(),
                    None => format!("variants: {}", known.join(", ")),
                };
                return Err(Diagnostic::new(0..0, format!("unknown variant `{name}`; {hint}")));
            }
        }
    };
    let span = variant.span();
    let DeValue::Table(vt) = variant.into_inner() else {
        return Err(Diagnostic::new(span, format!("`variants.{name}` must be a table")));
    };
    let image_keys = schema::names(schema::IMAGE);
    let mut accepted: Vec<&str> = image_keys.clone();
    accepted.extend(["system", "python"]);
    for (k, v) in vt.into_iter() {
        let key = k.get_ref().to_string();
        if key.starts_with("x-") {
            continue;
        }
        match key.as_str() {
            "system" | "python" => {
                let DeValue::Table(sub) = v.get_ref() else {
                    return Err(Diagnostic::new(v.span(), format!("`variants.{name}.{key}` must be a table")));
                };
                for (sk, sv) in sub.iter() {
                    let append = APPENDED.contains(&(key.as_str(), sk.get_ref().as_ref()));
                    set(doc, &key, sk.clone(), sv.clone(), if append { Mode::Append } else { Mode::Replace })?;
                }
            }
            "env" | "labels" => set(doc, "image", k, v, Mode::MergeTable)?,
            k2 if image_keys.contains(&k2) => set(doc, "image", k, v, Mode::Replace)?,
            _ => {
                let hint = match did_you_mean(&key, &accepted) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("accepted: {}", accepted.join(", ")),
                };
                return Err(Diagnostic::new(k.span(), format!("unknown key `{key}` in [variants.{name}]; {hint}")));
            }
        }
    }
    Ok(())
}

enum Mode {
    Replace,
    Append,
    MergeTable,
}

fn set<'i>(
    doc: &mut DeTable<'i>,
    section: &str,
    key: Spanned<std::borrow::Cow<'i, str>>,
    value: Spanned<DeValue<'i>>,
    mode: Mode,
) -> Result<(), Diagnostic> {
    if doc.get(section).is_none() {
        doc.insert(
            Spanned::new(value.span(), std::borrow::Cow::Owned(section.to_string())),
            Spanned::new(value.span(), DeValue::Table(DeTable::new())),
        );
    }
    let Some(sec) = doc.get_mut(section) else { return Ok(()) };
    let sec_span = sec.span();
    let DeValue::Table(t) = sec.get_mut() else {
        return Err(Diagnostic::new(sec_span, format!("`{section}` must be a table")));
    };
    let existing = t.get_mut(key.get_ref().as_ref());
    match (mode, existing) {
        (Mode::Append, Some(old)) => {
            let (DeValue::Array(a), DeValue::Array(b)) = (old.get_mut(), value.get_ref()) else {
                return Err(Diagnostic::new(value.span(), format!("`{}` must be an array", key.get_ref())));
            };
            let merged: DeArray<'i> = a.iter().cloned().chain(b.iter().cloned()).collect();
            *a = merged;
        }
        (Mode::MergeTable, Some(old)) => {
            let (DeValue::Table(a), DeValue::Table(b)) = (old.get_mut(), value.get_ref()) else {
                return Err(Diagnostic::new(value.span(), format!("`{}` must be a table", key.get_ref())));
            };
            for (bk, bv) in b.iter() {
                a.insert(bk.clone(), bv.clone());
            }
        }
        (_, Some(old)) => *old = value,
        (_, None) => {
            t.insert(key, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::spec::read::load_target;

    const SPEC: &str = r#"version = 1
[image]
base = "python:3.12-slim"
env = { MODE = "cpu", KEEP = "1" }
labels = { team = "ml" }
[system]
packages = ["libgomp1"]
[python]
requirements = ["requirements.txt"]
installer = "pip"
[variants.gpu]
base = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
env = { MODE = "gpu" }
labels = { accel = "cuda" }
system = { packages = ["libcudnn9"] }
python = { requirements = ["requirements-gpu.txt"], installer = "uv" }
"#;

    fn values<T: Clone>(v: &[crate::spec::Sp<T>]) -> Vec<T> {
        v.iter().map(|s| s.value.clone()).collect()
    }

    /// The contract's GPU variant: scalars replace, env/labels merge with
    /// the variant winning, package and requirement lists are appended.
    #[test]
    fn variant_replaces_scalars_merges_tables_appends_lists() {
        let main = load_target(SPEC, &BTreeMap::new(), None).unwrap();
        let gpu = load_target(SPEC, &BTreeMap::new(), Some("gpu")).unwrap();
        assert_eq!(main.image.base.value, "python:3.12-slim");
        assert_eq!(gpu.image.base.value, "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04");
        let env: BTreeMap<_, _> = gpu.image.env.iter().cloned().collect();
        assert_eq!(env["MODE"], "gpu");
        assert_eq!(env["KEEP"], "1");
        let labels: BTreeMap<_, _> = gpu.image.labels.iter().cloned().collect();
        assert_eq!((labels["team"].as_str(), labels["accel"].as_str()), ("ml", "cuda"));
        assert_eq!(values(&gpu.system.packages), ["libgomp1", "libcudnn9"]);
        let py = gpu.python.as_ref().unwrap();
        assert_eq!(values(&py.requirements), ["requirements.txt", "requirements-gpu.txt"]);
        assert_eq!(format!("{:?}", py.installer.value), "Uv");
        assert_eq!(values(&main.python.as_ref().unwrap().requirements), ["requirements.txt"]);
    }

    #[test]
    fn unknown_variant_and_key_are_errors() {
        let e = load_target(SPEC, &BTreeMap::new(), Some("gpuu")).unwrap_err();
        assert_eq!(e.message, "unknown variant `gpuu`; did you mean `gpu`?");
        let bad = SPEC.replace("env = { MODE = \"gpu\" }", "envv = { MODE = \"gpu\" }");
        let e = load_target(&bad, &BTreeMap::new(), Some("gpu")).unwrap_err();
        assert!(e.message.starts_with("unknown key `envv` in [variants.gpu]; did you mean `env`?"), "{}", e.message);
    }
}
