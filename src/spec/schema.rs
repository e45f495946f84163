//! The key table: every section and key of strata.toml v1, its type and
//! what it means, in one place.
//!
//! This is the one source of truth for three things that must not drift:
//! the keys the reader accepts (`read.rs` checks unknown keys against
//! [`names`] of these tables), the JSON Schema shipped for editors
//! (`strata schema`, `schema/strata.schema.json`) and the key reference
//! (`strata schema --format markdown`, `docs/reference.md`). Tests regenerate
//! both files and fail when the committed copies differ.
//!
//! The schema describes types and closed value sets; semantic checks that
//! need the whole spec (paths leaving the context, step cycles, a lock file
//! with pip) stay in the reader, which is stricter than the schema.

use serde_json::{json, Map, Value};

use super::CACHE_PRESETS;

/// What a key's value may be.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// `version = 1`.
    Version,
    /// A string; integers and booleans are accepted (`PORT = 8000`).
    Str,
    /// A name (steps): lowercase letters, digits, `-`, `_`.
    Name,
    /// A string that must be an absolute path (or come from `${ARG}`).
    AbsPath,
    /// A Go duration, as Docker's healthcheck options take: "30s", "1m30s".
    Duration,
    /// `true`/`false`, or a string (`"${WITH_INIT}"`, 1/yes/on, 0/no/off).
    Bool,
    Int,
    /// A file mode: `0o755` or `"0755"`.
    Mode,
    /// An array of strings.
    StrList,
    /// A string (run by `/bin/sh -c`) or an array of strings (exec form).
    Command,
    /// An inline table of strings: `{ KEY = "value" }`.
    StrMap,
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// An arg name or its negation: `"WITH_R"`, `"!WITH_R"`.
    If,
    /// A list of package-name lists: `[["torch"], ["numpy", "scipy"]]`.
    Groups,
    /// `true`, `false` or a list of ssh ids.
    Ssh,
    /// A table with these keys.
    Table(&'static [Key]),
    /// An array of tables (`[[step]]`) with these keys.
    TableArray(&'static [Key]),
    /// `[caches.NAME]`: tables named by the user, with these keys.
    NamedTables(&'static [Key]),
    /// `[args]`: NAME = "default".
    Args,
    /// `[variants.NAME]`: any `[image]` key, plus `system` and `python` tables.
    Variants,
}

#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// One line, shown by editors on hover and in docs/reference.md.
    pub doc: &'static str,
}

const fn k(name: &'static str, ty: Ty, doc: &'static str) -> Key {
    Key { name, ty, required: false, doc }
}

const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Key {
    Key { name, ty, required: true, doc }
}

pub const MANAGERS: &[&str] = &["apt", "apk", "dnf"];
pub const INSTALLERS: &[&str] = &["pip", "uv"];
pub const SHARING: &[&str] = &["shared", "locked", "private"];
pub const STAGES: &[&str] = &["build", "runtime"];
pub const NETWORKS: &[&str] = &["default", "none", "host"];

pub const HEALTHCHECK: &[Key] = &[
    req("cmd", Ty::Command, "the check command; exit 0 means healthy"),
    k("interval", Ty::Duration, "time between checks, e.g. \"30s\""),
    k("timeout", Ty::Duration, "time one check may take, e.g. \"5s\""),
    k("retries", Ty::Int, "consecutive failures before the container is unhealthy"),
];

pub const IMAGE: &[Key] = &[
    req("base", Ty::Str, "the runtime base image, e.g. \"python:3.12-slim\""),
    k("builder", Ty::Str, "the image the builder stage starts from (default: base)"),
    k(
        "deps-image",
        Ty::Str,
        "a repository (no tag) holding deps images by digest: a runtime build starts from REPO:deps-<digest> when it exists, and no OS package or dependency install runs",
    ),
    k("workdir", Ty::AbsPath, "working directory of the image and of steps (default /app)"),
    k(
        "user",
        Ty::Str,
        "NAME, NAME:UID or NAME:UID:GID the image runs as; created if missing (default \"app\", uid 1000; \"root\" only when written)",
    ),
    k("entrypoint", Ty::Command, "the image entrypoint"),
    k("cmd", Ty::Command, "the image command"),
    k("env", Ty::StrMap, "environment of the image (steps get their own `env`)"),
    k("expose", Ty::StrList, "ports: \"8000\" or \"8000/udp\""),
    k("labels", Ty::StrMap, "OCI labels of the image"),
    k("init", Ty::Bool, "run tini as PID 1 (reaps zombies, forwards signals)"),
    k("healthcheck", Ty::Table(HEALTHCHECK), "the image healthcheck"),
    k("stopsignal", Ty::Str, "signal that stops the container, e.g. \"SIGINT\""),
    k("platforms", Ty::StrList, "platforms built by default when --platform is not given, e.g. [\"linux/amd64\", \"linux/arm64\"]"),
];

pub const SYSTEM: &[Key] = &[
    k("packages", Ty::StrList, "OS packages of the runtime image"),
    k("build-packages", Ty::StrList, "OS packages of the builder stage only (compilers, -dev headers)"),
    k("manager", Ty::Enum(MANAGERS), "the package manager of the base image (default apt)"),
    k("layers", Ty::Groups, "groups of `packages` installed as their own layers, so a change elsewhere keeps them"),
];

pub const PYTHON: &[Key] = &[
    k("requirements", Ty::StrList, "requirements files (context paths); the install's cache key is their content"),
    k("packages", Ty::StrList, "requirement specifiers installed with the dependencies, e.g. [\"uwsgi\", \"psycopg-c==3.2.3\"]"),
    k("pyproject", Ty::Str, "pyproject.toml: its dependencies are installed (from `lock` when given) and the project itself as a package"),
    k("lock", Ty::Str, "uv.lock (`uv sync --frozen`), poetry.lock or pdm.lock (exported to pinned requirements in the builder)"),
    k("extras", Ty::StrList, "optional-dependency extras of the project to install"),
    k("groups", Ty::StrList, "dependency groups to install besides the main dependencies (PEP 735 `[dependency-groups]`, poetry and pdm groups)"),
    k(
        "project",
        Ty::Bool,
        "install the project as a package (a wheel, non-editable) in a layer of its own (default: when pyproject.toml has a [build-system], as uv decides)",
    ),
    k(
        "editable",
        Ty::Bool,
        "install the project editable, pointing at the app's copy in the image (for apps that read files next to their package); default false: a wheel",
    ),
    k("package", Ty::Str, "the uv workspace member to install (uv `--package`); default: the workspace root's project"),
    k("installer", Ty::Enum(INSTALLERS), "uv (default) or pip; lives in the builder only"),
    k("uv-version", Ty::Str, "the uv release strata installs in the builder (default: the one this strata pins, see `strata --version`)"),
    k("venv", Ty::AbsPath, "where the virtualenv lives (default /opt/venv)"),
    k("index-url", Ty::Str, "the package index URL (pip/uv --index-url)"),
    k("extra-index-urls", Ty::StrList, "further package indexes"),
    k(
        "wheels",
        Ty::Str,
        "offline install from this named build context (--build-context NAME=DIR), falling back to that directory of the context",
    ),
    k("keep-pip", Ty::Bool, "keep pip/setuptools/wheel in the runtime venv (default false)"),
    k("compile", Ty::Bool, "byte-compile the venv at install time (default true)"),
    k("system-site-packages", Ty::Bool, "the venv sees the base image's site-packages (TensorFlow/CUDA base images)"),
    k(
        "prune-tests",
        Ty::Bool,
        "delete the test suites libraries ship inside their packages (numpy/_core/tests…) from the runtime venv (default true)",
    ),
    k("layers", Ty::Groups, "groups of requirements installed as their own layers (default: heavy packages like torch get their own)"),
];

pub const R: &[Key] = &[
    k("if", Ty::If, "an arg name (or \"!NAME\"); the R stage exists only when it is truthy"),
    k("packages", Ty::StrList, "OS packages for R (default [\"r-base-core\"])"),
    k("cran", Ty::StrList, "CRAN packages installed with install.packages"),
    k("repos", Ty::StrList, "CRAN repository URLs, or \"context:NAME\" for a named build context holding a CRAN-style repo"),
];

pub const APP: &[Key] = &[
    k("copy", Ty::StrList, "context paths copied into the image in this order, each its own layer"),
    k(
        "exclude",
        Ty::StrList,
        "patterns left out of the app copies (on top of .dockerignore and `**/.git`); steps and tests still see those paths",
    ),
    k("dest", Ty::AbsPath, "where the app goes (default: workdir)"),
    k("chown", Ty::Str, "owner of the copied files (default: the image user)"),
];

pub const STEP: &[Key] = &[
    req("name", Ty::Name, "unique step name: lowercase letters, digits, - and _"),
    req("run", Ty::Str, "the command, run by /bin/sh -c in the stage's workdir"),
    k("stage", Ty::Enum(STAGES), "build (default: in the builder, outputs copied over) or runtime (in the image)"),
    k("inputs", Ty::StrList, "the only context paths the step sees; its cache key is their content"),
    k("outputs", Ty::StrList, "paths (relative to workdir, or absolute) copied into the runtime image"),
    k("caches", Ty::StrList, "cache mounts: presets or [caches.NAME] names"),
    k("secrets", Ty::StrList, "secret ids (--secret id=ID), mounted at /run/secrets/ID for this step only"),
    k("ssh", Ty::Ssh, "forward the ssh agent (true) or these --ssh ids"),
    k("network", Ty::Enum(NETWORKS), "default, none or host"),
    k("env", Ty::StrMap, "environment of this step"),
    k("after", Ty::StrList, "steps whose outputs this step needs"),
    k(
        "packages",
        Ty::StrList,
        "OS packages of this build step alone: it runs on the builder image plus these (no build packages, no venv), in parallel with the dependency install",
    ),
    k("if", Ty::If, "an arg name (or \"!NAME\"); the step exists only when it is truthy"),
];

pub const CACHE: &[Key] = &[
    req("target", Ty::AbsPath, "where the cache is mounted (presets have their own)"),
    k("sharing", Ty::Enum(SHARING), "shared (default), locked or private"),
    k("id", Ty::Str, "cache id (default: namespaced from the cache name)"),
    k("mode", Ty::Mode, "mode of the cache directory, e.g. 0o755"),
    k("uid", Ty::Int, "owner uid of the cache directory"),
    k("gid", Ty::Int, "owner gid of the cache directory"),
];

pub const TEST: &[Key] = &[
    req("run", Ty::Str, "the test command; a failure fails `--target test`"),
    k("requirements", Ty::StrList, "extra (dev) requirements files"),
    k("inputs", Ty::StrList, "context paths the tests need, e.g. [\"tests/\"]"),
    k("caches", Ty::StrList, "cache mounts for the test run"),
];

pub const TOP: &[Key] = &[
    req("version", Ty::Version, "format version; this strata reads 1"),
    k("args", Ty::Args, "build args with defaults; --build-arg overrides; ${NAME} expands in string values"),
    req("image", Ty::Table(IMAGE), "the runtime image and its OCI config"),
    k("system", Ty::Table(SYSTEM), "OS packages (apt lists and archives live in cache mounts)"),
    k("python", Ty::Table(PYTHON), "Python dependencies, installed in the builder into a venv"),
    k("r", Ty::Table(R), "optional R stage"),
    k("app", Ty::Table(APP), "the application code"),
    k("step", Ty::TableArray(STEP), "custom commands ([[step]])"),
    k("caches", Ty::NamedTables(CACHE), "named cache mounts ([caches.NAME])"),
    k("variants", Ty::Variants, "other final images from the same spec, chosen with --target NAME"),
    k("test", Ty::Table(TEST), "the `test` target: app + dev deps, runs the tests"),
];

/// The key names of a table, for the reader's unknown-key check.
pub fn names(keys: &[Key]) -> Vec<&'static str> {
    keys.iter().map(|k| k.name).collect()
}

/// Names of steps, caches and variants.
pub const NAME_PATTERN: &str = "^[a-z0-9_-]{1,64}$";
/// `${NAME}` somewhere in a string: its value is only known at build time.
const ARG_PATTERN: &str = "\\$\\{";
const TRUTHY: &[&str] = &["1", "0", "true", "false", "yes", "no", "on", "off", "TRUE", "FALSE", "True", "False", ""];

/// The JSON Schema (draft-07, what taplo and Even Better TOML read).
pub fn json_schema() -> Value {
    let mut root = table_schema(TOP, true);
    let root_obj = root.as_object_mut().expect("object");
    let mut head = Map::new();
    head.insert("$schema".into(), json!("http://json-schema.org/draft-07/schema#"));
    head.insert("title".into(), json!("strata.toml"));
    head.insert(
        "description".into(),
        json!("strata.toml v1: a declarative BuildKit build spec. Generated by `strata schema` from src/spec/schema.rs; do not edit."),
    );
    head.extend(std::mem::take(root_obj));
    Value::Object(head)
}

fn str_like() -> Value {
    json!({ "type": ["string", "integer", "boolean"] })
}

fn arg_string() -> Value {
    json!({ "type": "string", "pattern": ARG_PATTERN })
}

fn ty_schema(ty: Ty) -> Value {
    match ty {
        Ty::Version => json!({ "const": 1 }),
        Ty::Str => str_like(),
        Ty::Name => json!({ "type": "string", "pattern": NAME_PATTERN }),
        Ty::AbsPath => json!({ "type": "string", "pattern": format!("^/|{ARG_PATTERN}") }),
        Ty::Duration => {
            json!({ "type": "string", "pattern": format!("^(0|([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$|{ARG_PATTERN}") })
        }
        Ty::Bool => json!({ "anyOf": [{ "type": "boolean" }, { "enum": TRUTHY }, arg_string()] }),
        Ty::Int => json!({ "type": "integer", "minimum": 0 }),
        Ty::Mode => json!({ "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string", "pattern": "^(0o)?[0-7]+$" }] }),
        Ty::StrList => json!({ "type": "array", "items": str_like() }),
        Ty::Command => json!({ "anyOf": [{ "type": "string" }, { "type": "array", "items": str_like() }] }),
        Ty::StrMap => json!({ "type": "object", "additionalProperties": str_like() }),
        Ty::Enum(values) => json!({ "anyOf": [{ "enum": values }, arg_string()] }),
        Ty::If => json!({ "type": "string", "pattern": "^!?\\s*[A-Za-z0-9_]+\\s*$" }),
        Ty::Groups => json!({ "type": "array", "items": { "type": "array", "items": str_like() } }),
        Ty::Ssh => json!({ "anyOf": [{ "type": "boolean" }, { "type": "array", "items": str_like() }] }),
        Ty::Table(keys) => table_schema(keys, true),
        Ty::TableArray(keys) => json!({ "type": "array", "items": table_schema(keys, true) }),
        Ty::NamedTables(keys) => {
            // Presets need no `target`: they carry their own.
            let presets: Map<String, Value> = CACHE_PRESETS.iter().map(|p| (p.to_string(), table_schema(keys, false))).collect();
            json!({
                "type": "object",
                "propertyNames": { "pattern": NAME_PATTERN },
                "properties": presets,
                "patternProperties": { "^x-": {} },
                "additionalProperties": table_schema(keys, true),
            })
        }
        Ty::Args => json!({
            "type": "object",
            "propertyNames": { "pattern": "^([A-Za-z0-9_]+|x-.*)$" },
            "patternProperties": { "^x-": {} },
            "additionalProperties": str_like(),
        }),
        Ty::Variants => {
            let mut variant = table_schema(IMAGE, false);
            let props = variant["properties"].as_object_mut().expect("properties");
            props.insert("system".into(), with_doc(table_schema(SYSTEM, false), "extra OS packages are appended; other keys replace"));
            props.insert("python".into(), with_doc(table_schema(PYTHON, false), "extra requirements are appended; other keys replace"));
            json!({
                "type": "object",
                "propertyNames": { "pattern": NAME_PATTERN, "not": { "enum": super::read::RESERVED_TARGETS } },
                "patternProperties": { "^x-": {} },
                "additionalProperties": variant,
            })
        }
    }
}

fn with_doc(mut v: Value, doc: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("description".into(), json!(doc));
    }
    v
}

/// A closed table: listed keys, `x-` extensions, nothing else.
fn table_schema(keys: &[Key], with_required: bool) -> Value {
    let props: Map<String, Value> = keys.iter().map(|k| (k.name.to_string(), with_doc(ty_schema(k.ty), k.doc))).collect();
    let required: Vec<&str> = keys.iter().filter(|k| k.required && with_required).map(|k| k.name).collect();
    let mut t = json!({
        "type": "object",
        "properties": props,
        "patternProperties": { "^x-": {} },
        "additionalProperties": false,
    });
    if !required.is_empty() {
        t["required"] = json!(required);
    }
    t
}

/// docs/reference.md: every key, its type and meaning.
pub fn markdown() -> String {
    let mut out = String::from(
        "# strata.toml key reference\n\n\
         Generated by `strata schema --format markdown` from `src/spec/schema.rs`, the same table\n\
         the reader and `schema/strata.schema.json` come from; a test fails when this file is stale.\n\
         Keys starting `x-` are ignored everywhere; any other unknown key is an error.\n\n",
    );
    section(&mut out, "top level", "", TOP);
    for key in TOP {
        match key.ty {
            Ty::Table(keys) => section(&mut out, &format!("[{}]", key.name), key.doc, keys),
            Ty::TableArray(keys) => section(&mut out, &format!("[[{}]]", key.name), key.doc, keys),
            Ty::NamedTables(keys) => {
                let doc = format!(
                    "{} Presets that need no table: {}.",
                    key.doc,
                    CACHE_PRESETS.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
                );
                section(&mut out, &format!("[{}.NAME]", key.name), &doc, keys)
            }
            _ => {}
        }
        if key.name == "image" {
            section(&mut out, "[image.healthcheck]", "the image healthcheck", HEALTHCHECK);
        }
    }
    out.push_str(
        "## [variants.NAME]\n\nAny `[image]` key (`env` and `labels` merge, the rest replace), plus `system` and `python`\n\
         tables: `system.packages`, `system.build-packages` and `python.requirements` are appended to the main\n\
         lists, other keys replace. NAME: lowercase letters, digits, `-`, `_`; not runtime, deps, builder or test.\n",
    );
    out
}

fn section(out: &mut String, title: &str, doc: &str, keys: &[Key]) {
    out.push_str(&format!("## {title}\n\n"));
    if !doc.is_empty() {
        out.push_str(&format!("{}.\n\n", capitalise(doc)));
    }
    out.push_str("| key | type | meaning |\n|---|---|---|\n");
    for k in keys {
        let req = if k.required { " (required)" } else { "" };
        out.push_str(&format!("| `{}`{req} | {} | {} |\n", k.name, ty_name(k.ty), k.doc.replace('|', "\\|")));
    }
    out.push('\n');
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn ty_name(ty: Ty) -> String {
    match ty {
        Ty::Version => "integer `1`".into(),
        Ty::Str => "string".into(),
        Ty::Name => "name (`a-z 0-9 - _`)".into(),
        Ty::AbsPath => "absolute path".into(),
        Ty::Duration => "duration (`\"30s\"`, `\"1m30s\"`, `\"500ms\"`)".into(),
        Ty::Bool => "boolean".into(),
        Ty::Int => "integer".into(),
        Ty::Mode => "mode (`0o755` or `\"0755\"`)".into(),
        Ty::StrList => "array of strings".into(),
        Ty::Command => "string or array of strings".into(),
        Ty::StrMap => "table of strings".into(),
        Ty::Enum(v) => v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" \\| "),
        Ty::If => "arg name".into(),
        Ty::Groups => "array of arrays of strings".into(),
        Ty::Ssh => "boolean or array of strings".into(),
        Ty::Table(_) => "table".into(),
        Ty::TableArray(_) => "array of tables".into(),
        Ty::NamedTables(_) => "tables".into(),
        Ty::Args => "table of strings".into(),
        Ty::Variants => "tables".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_lists_each_key_once() {
        fn walk(keys: &[Key], path: &str) {
            let mut seen = std::collections::BTreeSet::new();
            for k in keys {
                assert!(seen.insert(k.name), "{path}.{} listed twice", k.name);
                assert!(!k.doc.is_empty(), "{path}.{} has no doc", k.name);
                match k.ty {
                    Ty::Table(sub) | Ty::TableArray(sub) | Ty::NamedTables(sub) => walk(sub, &format!("{path}.{}", k.name)),
                    _ => {}
                }
            }
        }
        walk(TOP, "");
    }

    #[test]
    fn schema_is_deterministic_and_closed() {
        let a = serde_json::to_string(&json_schema()).unwrap();
        assert_eq!(a, serde_json::to_string(&json_schema()).unwrap());
        let s = json_schema();
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(s["required"], json!(["version", "image"]));
        assert_eq!(s["properties"]["image"]["required"], json!(["base"]));
    }
}
