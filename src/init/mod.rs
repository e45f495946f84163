//! `strata init`: read a project the way its maintainers described it and
//! write a strata.toml that builds and starts the service.
//!
//! The sources, most trusted first: the project's own Dockerfile (start
//! command, ports, env, user, workdir, OS packages, extra pip packages,
//! build-time work, a Node asset stage), its compose file (the service's
//! target and command), Procfile, server configs (uwsgi.ini,
//! gunicorn.conf.py), lock files (uv, poetry, pdm) and requirement files,
//! pyproject.toml (scripts, extras, workspace members), then what the code
//! shows (Django's manage.py, a FastAPI or Flask app object). Every guess is
//! written next to the key it sets and printed as a note, with what init
//! could not settle (a database the app needs, a secret).
//!
//! Phases: [`Facts::gather`] reads the files; `python`, `command` and
//! `steps` each fill their part of a [`Draft`]; [`render`] writes it.

pub mod dockerfile;

mod command;
mod compose;
mod distro;
mod python;
mod render;
mod source;
mod steps;

use std::path::Path;

pub use render::render;

/// What init decided, ready to render.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Python `X.Y` of the base image.
    pub python_version: String,
    /// Debian release of the base image tag (bookworm, trixie).
    pub debian: String,
    pub deps: Deps,
    pub packages: Vec<String>,
    pub extras: Vec<String>,
    /// Dependency groups the Dockerfile installs (`uv sync --group`).
    pub groups: Vec<String>,
    pub package: Option<String>,
    pub installer: Option<&'static str>,
    /// `[python] venv` when not the default.
    pub venv: Option<String>,
    pub editable: bool,
    pub wheels: bool,
    pub system_packages: Vec<String>,
    pub build_packages: Vec<String>,
    pub workdir: String,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub expose: Vec<String>,
    pub env: Vec<(String, String)>,
    pub healthcheck: Option<Vec<String>>,
    /// The healthcheck's options strata has (`interval`, `timeout`, `retries`).
    pub healthcheck_opts: Vec<(String, String)>,
    pub copy: Vec<String>,
    pub exclude: Vec<String>,
    /// `[app] dest` when the app's root is not the workdir.
    pub dest: Option<String>,
    pub steps: Vec<StepDraft>,
    pub test: Option<TestDraft>,
    pub r: bool,
    pub gpu: bool,
    /// Where each guess came from, keyed by the spec key it sets.
    pub why: Vec<(&'static str, String)>,
    /// What init could not settle, for the user.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Deps {
    #[default]
    None,
    Requirements(Vec<String>),
    Pyproject {
        lock: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct StepDraft {
    pub name: String,
    pub run: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub caches: Vec<String>,
    pub env: Vec<(String, String)>,
    pub after: Vec<String>,
    /// OS packages of the step alone (its own branch).
    pub packages: Vec<String>,
    pub why: String,
}

#[derive(Debug, Clone, Default)]
pub struct TestDraft {
    pub requirements: Vec<String>,
    pub inputs: Vec<String>,
    pub run: String,
}

impl Draft {
    fn why(&mut self, key: &'static str, text: impl Into<String>) {
        self.why.push((key, text.into()));
    }
    fn note(&mut self, text: impl Into<String>) {
        let t = text.into();
        if !self.notes.contains(&t) {
            self.notes.push(t);
        }
    }
    /// Adds OS packages, each once.
    fn add_packages(list: &mut Vec<String>, pkgs: &[&str]) {
        for p in pkgs {
            if !list.iter().any(|x| x == p) {
                list.push(p.to_string());
            }
        }
    }
}

pub use source::Facts;

/// Looks at `dir` and decides the spec.
pub fn inspect(dir: &Path) -> std::io::Result<Draft> {
    let facts = Facts::gather(dir)?;
    let mut d = Draft { workdir: "/app".into(), python_version: "3.12".into(), debian: "bookworm".into(), ..Default::default() };
    python::detect(&facts, &mut d);
    command::detect(&facts, &mut d);
    steps::detect(&facts, &mut d);
    python::dropped_packages_note(&facts, &mut d);
    Ok(d)
}

#[cfg(test)]
mod tests;
