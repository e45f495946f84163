//! Spec lints: things that build but are probably wrong. Shared by
//! `strata check` (offline, exit code 1 on warnings) and
//! `docker buildx build --call check`.

use crate::diag::Span;
use crate::spec::{Spec, User};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static str,
    pub description: &'static str,
    pub detail: String,
    pub span: Span,
}

/// Packages that only building needs.
const BUILD_TOOLS: &[&str] = &[
    "gcc",
    "g++",
    "clang",
    "make",
    "cmake",
    "build-essential",
    "pkg-config",
    "pkgconf",
    "autoconf",
    "automake",
    "libtool",
    "cargo",
    "rustc",
];

pub fn check(spec: &Spec, source: &str, dockerignore: &[String]) -> Vec<Warning> {
    let mut out = Vec::new();

    let referenced = referenced_names(source);
    for (name, span) in &spec.arg_spans {
        // Referenced as ${NAME} anywhere, or by an `if`.
        let used = referenced.contains(name.as_str()) || name == "SOURCE_DATE_EPOCH";
        if !used {
            out.push(Warning {
                rule: "UnusedArg",
                description: "An arg is declared but never used",
                detail: format!("arg `{name}` is declared in [args] but no `${{{name}}}` or `if` uses it"),
                span: span.clone(),
            });
        }
    }

    // A package in both lists is right when the build needs it too: the
    // builder starts from the base image, not from the runtime's packages.
    // What is wrong is a compiler or headers in the runtime image.
    for p in &spec.system.packages {
        let v = p.value.as_str();
        let build_tool = v.ends_with("-dev") || v.ends_with("-devel") || BUILD_TOOLS.contains(&v);
        if build_tool {
            out.push(Warning {
                rule: "BuildToolInRuntime",
                description: "A compiler or -dev package is installed in the runtime image",
                detail: format!(
                    "\"{v}\" is a build tool or headers: list it in `build-packages` (the builder compiles there) and keep only the library it builds against in `packages` (e.g. libpq5 for libpq-dev)"
                ),
                span: p.span.clone(),
            });
        }
    }

    if spec.image.user.value == User::Root {
        out.push(Warning {
            rule: "RootUser",
            description: "The image runs as root",
            detail: "`user = \"root\"`: the container runs as root; prefer the default non-root user".into(),
            span: spec.image.user.span.clone(),
        });
    }

    // `.git` never reaches the app (plan::APP_EXCLUDE); the rest of an
    // unfiltered context (tests, docs, build files) does, in one layer.
    let copies_everything = spec.app.copy.iter().find(|c| c.value == ".");
    if let Some(c) = copies_everything {
        if dockerignore.is_empty() && spec.app.exclude.is_empty() {
            out.push(Warning {
                rule: "WholeContextCopy",
                description: "Copying the whole context with nothing excluded",
                detail: "`copy = [\".\"]` puts tests, docs and build files in the image, in one layer that any edit rebuilds; list the app's paths, or add `[app] exclude` / .dockerignore".into(),
                span: c.span.clone(),
            });
        }
    }

    for r in std::iter::once(&spec.image.base).chain(spec.image.builder.iter()) {
        let name = r.value.split('@').next().unwrap_or("");
        let last = name.rsplit('/').next().unwrap_or("");
        let pinned = r.value.contains('@') || last.split_once(':').is_some_and(|(_, tag)| tag != "latest");
        if !pinned {
            out.push(Warning {
                rule: "UnpinnedBaseTag",
                description: "The base image is not pinned",
                detail: format!("\"{}\" uses no tag or `latest`; pin a version (or a digest) so rebuilds are reproducible", r.value),
                span: r.span.clone(),
            });
        }
    }
    // Build-arg values and the image's env end up in the image config and
    // the provenance; a secret belongs in `[[step]] secrets`.
    // (Spans of env keys are looked up only for a name that looks secret:
    // a scan of the source per key would be quadratic.)
    let mut named: Vec<(&str, Option<Span>, &str)> = spec.arg_spans.iter().map(|(n, s)| (n.as_str(), Some(s.clone()), "[args]")).collect();
    for (k, _) in &spec.image.env {
        named.push((k, None, "[image] env"));
    }
    for step in &spec.steps {
        for (k, _) in &step.env {
            named.push((k, None, "a [[step]] env"));
        }
    }
    for (name, span, place) in named {
        if looks_secret(name) {
            let span = span.unwrap_or_else(|| key_span(source, name));
            out.push(Warning {
                rule: "SecretInArg",
                description: "A secret is passed as a build arg or env",
                detail: format!(
                    "`{name}` in {place} looks like a secret: its value is recorded in the image config or the build's provenance; pass it as `[[step]] secrets = [\"{}\"]` (`--secret id=…`) instead",
                    name.to_ascii_lowercase()
                ),
                span,
            });
        }
    }
    out.sort_by_key(|w| (w.span.start, w.rule));
    out
}

/// Names like `*_TOKEN`, `*PASSWORD*`, `*SECRET*`, `*_API_KEY` (but not a
/// path to one: `*_FILE`, `*_PATH`).
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    if n.ends_with("_FILE") || n.ends_with("_PATH") || n.ends_with("_DIR") {
        return false;
    }
    n == "TOKEN"
        || n.ends_with("_TOKEN")
        || n.contains("PASSWORD")
        || n.contains("PASSWD")
        || n.contains("SECRET")
        || n.ends_with("API_KEY")
        || n.ends_with("APIKEY")
        || n.ends_with("PRIVATE_KEY")
        || n.ends_with("ACCESS_KEY")
}

/// Where `key = ` is written (env tables carry no spans); the start of the
/// file when it cannot be found.
/// Every name the source references as `${NAME}`, `"NAME"` or `"!NAME"`
/// (an `if`), in one pass.
fn referenced_names(source: &str) -> std::collections::HashSet<&str> {
    let b = source.as_bytes();
    let ident = |from: usize| from + b[from..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
    let mut out = std::collections::HashSet::new();
    for (i, &c) in b.iter().enumerate() {
        if c == b'$' && b.get(i + 1) == Some(&b'{') {
            let end = ident(i + 2);
            if end > i + 2 && b.get(end) == Some(&b'}') {
                out.insert(&source[i + 2..end]);
            }
        } else if c == b'"' {
            let start = if b.get(i + 1) == Some(&b'!') { i + 2 } else { i + 1 };
            let end = ident(start);
            if end > start && b.get(end) == Some(&b'"') {
                out.insert(&source[start..end]);
            }
        }
    }
    out
}

fn key_span(source: &str, key: &str) -> Span {
    let mut from = 0;
    while let Some(i) = source[from..].find(key) {
        let at = from + i;
        let before = source[..at].chars().next_back();
        let after = source[at + key.len()..].trim_start_matches([' ', '\t', '"']);
        if before.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_') && after.starts_with('=') {
            return at..at + key.len();
        }
        from = at + key.len();
    }
    0..0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn finds_each_rule() {
        let src = "version = 1\n[args]\nUNUSED = \"1\"\n[image]\nbase = \"busybox\"\nuser = \"root\"\n[system]\npackages = [\"curl\", \"libpq-dev\", \"gcc\"]\nbuild-packages = [\"curl\"]\n[app]\ncopy = [\".\"]\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        let rules: Vec<&str> = check(&spec, src, &[]).iter().map(|w| w.rule).collect();
        assert_eq!(rules, ["UnusedArg", "UnpinnedBaseTag", "RootUser", "BuildToolInRuntime", "BuildToolInRuntime", "WholeContextCopy"]);
        assert!(check(&spec, src, &["tests/".into()]).iter().all(|w| w.rule != "WholeContextCopy"));
    }

    /// A package the build needs and the runtime too (a -dev package pulls
    /// its library; a CLI used at build and run time) is listed in both:
    /// the builder does not have the runtime's packages, so that is right.
    #[test]
    fn a_package_in_both_lists_is_not_a_warning() {
        let src = "version = 1\n[image]\nbase = \"python:3.12\"\n[system]\npackages = [\"libpq5\", \"curl\"]\nbuild-packages = [\"libpq-dev\", \"curl\"]\n[app]\ncopy = [\"src/\"]\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        assert_eq!(check(&spec, src, &[]), vec![]);
    }

    #[test]
    fn args_used_by_expansion_or_if_are_not_unused() {
        let src = "version = 1\n[args]\nA = \"1\"\nB_2 = \"\"\nC = \"\"\nD = \"\"\nAB = \"\"\n[image]\nbase = \"busybox:1\"\nuser = \"u\"\nenv = { X = \"${A}-x\" }\n[[step]]\nname = \"s\"\nif = \"!B_2\"\nrun = \"echo ${C}\"\noutputs = [\"/o\"]\n[[step]]\nname = \"t\"\nif = \"D\"\nrun = \"true\"\noutputs = [\"/p\"]\n";
        let spec = crate::spec::load(src, &Default::default()).unwrap();
        let unused: Vec<String> = check(&spec, src, &[]).into_iter().filter(|w| w.rule == "UnusedArg").map(|w| w.detail).collect();
        assert_eq!(unused.len(), 1, "{unused:?}");
        assert!(unused[0].contains("`AB`"), "{unused:?}");
    }

    #[test]
    fn secrets_in_args_and_env() {
        let src = "version = 1\n[args]\nGITHUB_TOKEN = \"\"\nPIP_INDEX = \"x\"\n[image]\nbase = \"busybox:1\"\nenv = { DB_PASSWORD = \"${GITHUB_TOKEN}\", DB_PASSWORD_FILE = \"/run/secrets/db\", PIP_INDEX = \"${PIP_INDEX}\" }\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        let all = check(&spec, src, &[]);
        let w: Vec<&Warning> = all.iter().filter(|w| w.rule == "SecretInArg").collect();
        assert_eq!(w.len(), 2, "{w:#?}");
        assert_eq!(&src[w[0].span.clone()], "GITHUB_TOKEN");
        assert_eq!(&src[w[1].span.clone()], "DB_PASSWORD");
        assert!(w[0].detail.contains("secrets = [\"github_token\"]"), "{}", w[0].detail);
        for (n, secret) in [
            ("API_KEY", true),
            ("AWS_SECRET_ACCESS_KEY", true),
            ("TOKENIZERS_PARALLELISM", false),
            ("KEYBOARD", false),
            ("SSL_CERT_FILE", false),
        ] {
            assert_eq!(looks_secret(n), secret, "{n}");
        }
    }

    #[test]
    fn clean_spec_has_no_warnings() {
        let src = "version = 1\n[args]\nBASE = \"python:3.12\"\n[image]\nbase = \"${BASE}\"\n[app]\ncopy = [\"src/\"]\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        assert_eq!(check(&spec, src, &[]), vec![]);
    }
}
