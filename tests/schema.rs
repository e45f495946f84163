//! The JSON Schema and the key reference are generated from the reader's key
//! table (src/spec/schema.rs). Here: the committed copies are current, every
//! example validates against the schema, and every bad-spec case that is a
//! type/shape error (wrong type, unknown key, missing key, value outside a
//! closed set) is rejected by the schema as well as by the reader.
//! `STRATA_BLESS=1 cargo test --test schema` rewrites the generated files.

use std::path::{Path, PathBuf};

use serde_json::Value;
use toml::de::{DeTable, DeValue};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schema/strata.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft7::new(&schema).expect("the shipped schema is a valid draft-07 schema")
}

/// TOML → JSON the way taplo feeds a document to the schema.
fn to_json(v: &DeValue<'_>) -> Value {
    match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let body = digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
            i64::from_str_radix(body, i.radix()).map(Value::from).unwrap_or(Value::Null)
        }
        DeValue::Float(f) => {
            f.as_str().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|x| to_json(x.get_ref())).collect()),
        DeValue::Table(t) => table_json(t),
    }
}

fn table_json(t: &DeTable<'_>) -> Value {
    Value::Object(t.iter().map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref()))).collect())
}

fn doc_json(source: &str) -> Option<Value> {
    DeTable::parse(source).ok().map(|d| table_json(d.get_ref()))
}

fn check_generated(path: &str, want: String) {
    let file = root().join(path);
    if std::env::var("STRATA_BLESS").is_ok() {
        std::fs::write(&file, &want).unwrap();
        return;
    }
    let got = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(got == want, "{path} is stale: run `STRATA_BLESS=1 cargo test --test schema` (or `strata schema`) and commit it");
}

#[test]
fn committed_schema_and_reference_are_generated_from_the_key_table() {
    let json = serde_json::to_string_pretty(&strata::spec::schema::json_schema()).unwrap() + "\n";
    check_generated("schema/strata.schema.json", json);
    check_generated("docs/reference.md", strata::spec::schema::markdown());
}

#[test]
fn cli_prints_the_committed_schema() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata")).arg("schema").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read(root().join("schema/strata.schema.json")).unwrap();
    assert_eq!(out.stdout, committed);
}

fn examples() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(root().join("examples")).unwrap().map(|e| e.unwrap().path().join("strata.toml")).filter(|p| p.exists()).collect();
    out.sort();
    assert!(out.len() >= 6, "expected the six examples, found {}", out.len());
    out
}

#[test]
fn every_example_validates_and_points_editors_at_the_schema() {
    let v = validator();
    for ex in examples() {
        let source = std::fs::read_to_string(&ex).unwrap();
        let doc = doc_json(&source).unwrap();
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{} fails the schema:\n{}", ex.display(), errors.join("\n"));
        // `# syntax=` must stay line 1 (BuildKit reads directives only there);
        // taplo reads `#:schema` from the leading comments.
        let mut lines = source.lines();
        assert!(lines.next().unwrap().starts_with("# syntax="), "{}", ex.display());
        assert_eq!(lines.next(), Some("#:schema ../../schema/strata.schema.json"), "{}", ex.display());
    }
}

/// Reader messages that mean "wrong shape", which a schema can express.
const SHAPE_ERRORS: &[&str] = &[
    "must be a table",
    "must be an array",
    "must be a string",
    "must be true or false",
    "must be an integer",
    "must be a mode",
    "must be an absolute path",
    "unknown key",
    "missing required key",
    "missing [image] section",
    "unsupported version",
    "unknown package manager",
    "unknown installer",
    "unknown sharing",
    "unknown network",
    "unknown stage",
    "invalid arg name",
    "invalid step name",
    "is a built-in target",
    "is not a duration",
];

#[test]
fn bad_specs_with_shape_errors_fail_the_schema_too() {
    let v = validator();
    let dir = root().join("tests/bad-specs");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    cases.sort();
    let mut checked = 0;
    let mut accepted = Vec::new();
    for case in &cases {
        let err = std::fs::read_to_string(case.with_extension("err")).unwrap();
        if !SHAPE_ERRORS.iter().any(|m| err.contains(m)) {
            continue;
        }
        let source = std::fs::read_to_string(case).unwrap();
        let Some(doc) = doc_json(&source) else { continue }; // not TOML at all: no schema involved
        checked += 1;
        if v.is_valid(&doc) {
            accepted.push(format!("{}: {}", name(case), err.trim()));
        }
    }
    assert!(checked >= 25, "only {checked} shape-error cases found; the classification has drifted from the corpus");
    assert!(accepted.is_empty(), "the schema accepts specs the reader rejects:\n{}", accepted.join("\n"));
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn schema_rejects_what_an_editor_should_flag() {
    let v = validator();
    let ok = "version = 1\n[image]\nbase = \"python:3.12-slim\"\ninit = \"${WITH_INIT}\"\nhealthcheck = { cmd = \"true\", interval = \"1m30s\", timeout = \"500ms\" }\n[args]\nx-note = [1]\n[caches.hf]\n[caches.models]\ntarget = \"/models\"\n[caches.x-later]\nsharing = \"nope\"\n[variants.x-gpu]\nbase = [1]\n";
    assert!(v.is_valid(&doc_json(ok).unwrap()), "{:?}", v.iter_errors(&doc_json(ok).unwrap()).map(|e| e.to_string()).collect::<Vec<_>>());
    for bad in [
        // a custom cache needs a target; only presets carry their own
        "version = 1\n[image]\nbase = \"x\"\n[caches.models]\nsharing = \"locked\"\n",
        "version = 1\n[image]\nbase = \"x\"\n[[step]]\nname = \"a\"\nrun = \"true\"\nnetwork = \"bridge\"\n",
        "version = 1\n[image]\nbase = \"x\"\n[variants.gpu]\npython = { requirements = \"r.txt\" }\n",
    ] {
        assert!(!v.is_valid(&doc_json(bad).unwrap()), "schema accepts:\n{bad}");
        assert!(strata::spec::load(bad, &Default::default()).is_err(), "reader accepts:\n{bad}");
    }
}
