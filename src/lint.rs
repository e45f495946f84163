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

    for (name, span) in &spec.arg_spans {
        // Referenced as ${NAME} anywhere, or by an `if`.
        let used = source.contains(&format!("${{{name}}}"))
            || source.contains(&format!("\"{name}\""))
            || source.contains(&format!("\"!{name}\""))
            || name == "SOURCE_DATE_EPOCH";
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
    out.sort_by_key(|w| (w.span.start, w.rule));
    out
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
    fn clean_spec_has_no_warnings() {
        let src = "version = 1\n[args]\nBASE = \"python:3.12\"\n[image]\nbase = \"${BASE}\"\n[app]\ncopy = [\"src/\"]\n";
        let spec = crate::spec::load(src, &BTreeMap::new()).unwrap();
        assert_eq!(check(&spec, src, &[]), vec![]);
    }
}
