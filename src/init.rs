//! `strata init`: look at a project and write a commented strata.toml that
//! builds. Only what can be seen for sure is turned on; the rest (node or
//! Rust build steps, a GPU variant) is written as commented-out sections,
//! because a base image without npm or cargo would fail the build.

use std::path::Path;

/// Top-level names never copied into the image by default.
const SKIP: &[&str] = &[
    "strata.toml",
    "Dockerfile",
    "Containerfile",
    "README.md",
    "README.rst",
    "README",
    "LICENSE",
    "docs",
    "tests",
    "test",
    "data",
    "wheels",
    "cran",
    "node_modules",
    "target",
    "venv",
    "__pycache__",
    "requirements.txt",
    "requirements-dev.txt",
    "pyproject.toml",
    "uv.lock",
    "package.json",
    "package-lock.json",
    "Cargo.toml",
    "Cargo.lock",
    "DESCRIPTION",
    "renv.lock",
    "r",
];

pub struct Found {
    pub python_version: Option<String>,
    pub requirements: bool,
    pub dev_requirements_pytest: bool,
    pub uv_lock: bool,
    pub wheels: bool,
    pub package_json: bool,
    pub cargo: bool,
    pub r: bool,
    pub gpu: bool,
    pub entrypoint: Option<Vec<String>>,
    pub copy: Vec<String>,
    pub tests: bool,
}

pub fn inspect(dir: &Path) -> std::io::Result<Found> {
    let has = |n: &str| dir.join(n).exists();
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
    let mut names: Vec<(String, bool)> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| (e.file_name().to_string_lossy().to_string(), e.path().is_dir())).collect();
    names.sort();
    let reqs = read("requirements.txt").to_lowercase();
    let dev = read("requirements-dev.txt").to_lowercase();
    let python_version =
        read(".python-version").lines().next().map(|l| l.trim().split('.').take(2).collect::<Vec<_>>().join(".")).filter(|v| !v.is_empty());
    let script = ["app.py", "main.py", "server.py"].into_iter().find(|s| has(s));
    let entrypoint = if let Some(script) = script {
        Some(vec!["python".into(), script.into()])
    } else {
        names
            .iter()
            .find(|(n, d)| *d && !n.starts_with('.') && dir.join(n).join("__main__.py").exists())
            .map(|(n, _)| vec!["python".into(), "-m".into(), n.clone()])
    };
    let r = names.iter().any(|(n, d)| !d && (n.ends_with(".R") || n.ends_with(".r"))) || has("DESCRIPTION") || has("renv.lock");
    // Names the project's .dockerignore leaves out are not sent, so not
    // copied either (top-level names only; patterns stay with BuildKit).
    let ignored = crate::context::parse_dockerignore(&read(".dockerignore"));
    let copy = names
        .iter()
        .filter(|(n, _)| {
            !n.starts_with('.')
                && !SKIP.contains(&n.as_str())
                && !n.starts_with("requirements")
                && !n.starts_with("Dockerfile")
                && !n.ends_with(".md")
        })
        .filter(|(n, _)| !ignored.iter().any(|p| p == n))
        .map(|(n, d)| if *d { format!("{n}/") } else { n.clone() })
        .collect();
    Ok(Found {
        python_version,
        requirements: has("requirements.txt"),
        dev_requirements_pytest: dev.contains("pytest"),
        uv_lock: has("pyproject.toml") && has("uv.lock"),
        wheels: dir.join("wheels").is_dir(),
        package_json: has("package.json"),
        cargo: has("Cargo.toml"),
        r,
        gpu: ["torch", "tensorflow", "jax"].iter().any(|g| reqs.lines().any(|l| l.trim_start().starts_with(g))),
        entrypoint,
        copy,
        tests: dir.join("tests").is_dir(),
    })
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ")
}

pub fn render(f: &Found) -> String {
    let base = format!("python:{}-slim", f.python_version.as_deref().unwrap_or("3.12"));
    let mut s = String::from("# syntax=strata:dev\n# Written by `strata init`: check it, then `docker buildx build -f strata.toml .`\n# Reference: the strata.toml v1 contract; `strata check` lints this file.\nversion = 1\n\n[args]\n");
    s.push_str(&format!("BASE = \"{base}\"\n"));
    if f.requirements && !f.uv_lock {
        s.push_str("REQUIREMENTS = \"requirements.txt\"   # swap in another file with --build-arg\n");
    }
    if f.r {
        s.push_str("WITH_R = \"false\"                    # --build-arg WITH_R=true adds the R stage\n");
    }
    s.push_str("\n[image]\nbase = \"${BASE}\"\nworkdir = \"/app\"\n# user = \"app\"                        # the default: non-root, uid/gid 1000\n");
    match &f.entrypoint {
        Some(ep) => s.push_str(&format!("entrypoint = [{}]\n", list(ep))),
        None => s.push_str("# entrypoint = [\"python\", \"-m\", \"yourapp\"]\n"),
    }
    s.push_str("env = { PYTHONUNBUFFERED = \"1\" }\n# expose = [\"8000\"]\n# init = true                          # tini as PID 1\n");
    if f.requirements || f.uv_lock {
        s.push_str("\n[python]\n");
        if f.uv_lock {
            s.push_str("installer = \"uv\"\npyproject = \"pyproject.toml\"\nlock = \"uv.lock\"\n");
        } else {
            s.push_str("requirements = [\"${REQUIREMENTS}\"]\n# installer = \"uv\"                   # faster installs\n");
        }
        if f.wheels {
            s.push_str("wheels = \"wheels\"                     # offline: --build-context wheels=./wheels\n");
        }
        if f.gpu {
            s.push_str("# Heavy ML packages get layers of their own automatically; see `layers`.\n");
        }
    }
    if f.r {
        s.push_str("\n[r]\nif = \"WITH_R\"\npackages = [\"r-base-core\"]\n# cran = [\"data.table\"]\n");
    }
    s.push_str(&format!("\n[app]\ncopy = [{}]\nexclude = [\"**/__pycache__\", \"**/*.pyc\"]\n", list(&f.copy)));
    if f.package_json {
        s.push_str(
            "\n# A node build (needs a builder image with npm, e.g. [image] builder = \"node:20\"):\n# [[step]]\n# name = \"assets\"\n# run = \"npm ci && npm run build\"\n# inputs = [\"package.json\", \"package-lock.json\"]\n# caches = [\"npm\"]\n# outputs = [\"dist\"]\n",
        );
    }
    if f.cargo {
        s.push_str(
            "\n# A Rust build (needs a builder image with cargo, e.g. [image] builder = \"rust:1\"):\n# [[step]]\n# name = \"native\"\n# run = \"cargo build --release\"\n# inputs = [\"Cargo.toml\", \"Cargo.lock\", \"src/\"]\n# caches = [\"cargo\"]\n# outputs = [\"target/release\"]\n",
        );
    }
    if f.gpu {
        s.push_str(
            "\n# A GPU image next to this one (`--target gpu`):\n# [variants.gpu]\n# base = \"nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04\"\n# env = { NVIDIA_VISIBLE_DEVICES = \"all\" }\n",
        );
    }
    if f.tests && f.dev_requirements_pytest {
        s.push_str("\n[test]                                 # docker buildx build --target test .\nrequirements = [\"requirements-dev.txt\"]\ninputs = [\"tests/\"]\nrun = \"python -m pytest -q -p no:cacheprovider tests\"\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_spec_that_parses() {
        let f = Found {
            python_version: Some("3.11".into()),
            requirements: true,
            dev_requirements_pytest: true,
            uv_lock: false,
            wheels: true,
            package_json: true,
            cargo: true,
            r: true,
            gpu: true,
            entrypoint: Some(vec!["python".into(), "-m".into(), "shop".into()]),
            copy: vec!["shop/".into(), "templates/".into()],
            tests: true,
        };
        let src = render(&f);
        let spec = crate::spec::load(&src, &Default::default()).unwrap_or_else(|e| panic!("{e:?}\n{src}"));
        assert_eq!(spec.image.base.value, "python:3.11-slim");
        assert!(spec.r.is_none(), "R off by default");
        assert!(spec.test.is_some());
        assert_eq!(spec.app.copy.len(), 2);
    }
}
