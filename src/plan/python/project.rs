//! What the planner reads from a project's pyproject.toml and uv.lock: the
//! dependencies to install before the project (when there is no lock), the
//! readme the build backend needs, and the local packages of a uv lock
//! (the project, workspace members, path dependencies), which are built
//! as wheels after the dependencies instead of being part of them.
//!
//! Both files come from the build context; anything unreadable gives
//! `None` and the planner falls back to installing the project with its
//! dependencies in one step.

use std::collections::{BTreeMap, BTreeSet};

use toml::de::{DeTable, DeValue};

use super::requirements::normalize;

/// The `[project]` facts of a pyproject.toml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PyProject {
    pub name: Option<String>,
    /// `[project] dependencies`, or None when they are `dynamic` (the build
    /// backend computes them) or there is no `[project]` table.
    pub dependencies: Option<Vec<String>>,
    pub optional: BTreeMap<String, Vec<String>>,
    /// `[dependency-groups]` (PEP 735): a group's requirements and the
    /// groups it includes, by normalized name.
    pub groups: BTreeMap<String, Vec<GroupItem>>,
    /// `[project] readme` when it names a file.
    pub readme: Option<String>,
    /// A package to build, as uv decides: a `[build-system]` table, unless
    /// `tool.uv.package = false` or poetry's `package-mode = false`.
    pub is_package: bool,
}

/// An entry of a dependency group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupItem {
    Requirement(String),
    Include(String),
}

fn table<'a>(t: &'a DeTable<'a>, key: &str) -> Option<&'a DeTable<'a>> {
    match t.get(key).map(|v| v.get_ref()) {
        Some(DeValue::Table(t)) => Some(t),
        _ => None,
    }
}

fn string(v: &DeValue) -> Option<String> {
    match v {
        DeValue::String(s) => Some(s.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&DeValue>) -> Option<Vec<String>> {
    match v? {
        DeValue::Array(a) => a.iter().map(|x| string(x.get_ref())).collect(),
        _ => None,
    }
}

pub fn read_pyproject(text: &str) -> Option<PyProject> {
    let doc = DeTable::parse(text).ok()?;
    let doc = doc.get_ref();
    let tool = table(doc, "tool");
    let flag = |tool_name: &str, key: &str| match tool.and_then(|t| table(t, tool_name)).and_then(|t| t.get(key)).map(|v| v.get_ref()) {
        Some(DeValue::Boolean(b)) => Some(*b),
        _ => None,
    };
    let is_package = flag("uv", "package").unwrap_or(table(doc, "build-system").is_some()) && flag("poetry", "package-mode") != Some(false);
    let poetry_name = tool.and_then(|t| table(t, "poetry")).and_then(|p| p.get("name")).and_then(|n| string(n.get_ref()));
    let mut groups = BTreeMap::new();
    if let Some(g) = table(doc, "dependency-groups") {
        for (k, v) in g.iter() {
            let DeValue::Array(items) = v.get_ref() else { continue };
            let items = items
                .iter()
                .filter_map(|i| match i.get_ref() {
                    DeValue::String(r) => Some(GroupItem::Requirement(r.to_string())),
                    DeValue::Table(t) => {
                        t.get("include-group").and_then(|n| string(n.get_ref())).map(|n| GroupItem::Include(normalize(&n)))
                    }
                    _ => None,
                })
                .collect();
            groups.insert(normalize(k.get_ref()), items);
        }
    }
    let Some(project) = table(doc, "project") else {
        return Some(PyProject { is_package, name: poetry_name, groups, ..Default::default() });
    };
    let dynamic = strings(project.get("dynamic").map(|v| v.get_ref())).unwrap_or_default();
    let dependencies = if dynamic.iter().any(|d| d == "dependencies") {
        None
    } else {
        Some(strings(project.get("dependencies").map(|v| v.get_ref())).unwrap_or_default())
    };
    let mut optional = BTreeMap::new();
    if let Some(o) = table(project, "optional-dependencies") {
        for (k, v) in o.iter() {
            optional.insert(normalize(k.get_ref()), strings(Some(v.get_ref())).unwrap_or_default());
        }
    }
    let readme = match project.get("readme").map(|v| v.get_ref()) {
        Some(DeValue::String(s)) => Some(s.to_string()),
        Some(DeValue::Table(t)) => t.get("file").and_then(|f| string(f.get_ref())),
        _ => None,
    };
    let name = project.get("name").and_then(|n| string(n.get_ref())).or(poetry_name);
    Some(PyProject { name, dependencies, optional, groups, readme, is_package })
}

impl PyProject {
    /// The requirement lines to install before the project: its
    /// dependencies and those of the chosen extras (a self-reference like
    /// `app[extra]` is left to the project install).
    pub fn requirement_lines(&self, extras: &[String], groups: &[String]) -> Option<Vec<String>> {
        let mut out = self.dependencies.clone()?;
        for e in extras {
            out.extend(self.optional.get(&normalize(e)).cloned().unwrap_or_default());
        }
        out.extend(self.group_requirements(groups));
        let me = self.name.as_deref().map(normalize);
        out.retain(|r| {
            let end = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).unwrap_or(r.len());
            Some(normalize(&r[..end])) != me
        });
        Some(out)
    }

    /// The requirements of the named dependency groups, includes followed
    /// (each group once, so a cycle ends).
    pub fn group_requirements(&self, groups: &[String]) -> Vec<String> {
        let mut todo: Vec<String> = groups.iter().rev().map(|g| normalize(g)).collect();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        while let Some(g) = todo.pop() {
            if !seen.insert(g.clone()) {
                continue;
            }
            for item in self.groups.get(&g).into_iter().flatten() {
                match item {
                    GroupItem::Requirement(r) => out.push(r.clone()),
                    GroupItem::Include(i) => todo.push(i.clone()),
                }
            }
        }
        out
    }
}

/// A package of a uv.lock that is built from the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPackage {
    pub name: String,
    /// Relative to the lock's directory (`.` for the project).
    pub path: String,
}

/// The local packages of a uv.lock and who depends on whom.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UvLock {
    /// Buildable local packages (editable, directory or path sources that
    /// are not files), by name.
    pub locals: BTreeMap<String, LocalPackage>,
    /// The project at the lock's directory, when it is a package.
    pub root: Option<String>,
    deps: BTreeMap<String, Vec<String>>,
}

pub fn read_uv_lock(text: &str) -> Option<UvLock> {
    let doc = DeTable::parse(text).ok()?;
    let doc = doc.get_ref();
    let mut lock = UvLock::default();
    let Some(DeValue::Array(packages)) = doc.get("package").map(|v| v.get_ref()) else { return Some(lock) };
    for p in packages.iter() {
        let DeValue::Table(p) = p.get_ref() else { continue };
        let Some(name) = p.get("name").and_then(|n| string(n.get_ref())).map(|n| normalize(&n)) else { continue };
        let mut deps = Vec::new();
        for key in ["dependencies"] {
            if let Some(DeValue::Array(a)) = p.get(key).map(|v| v.get_ref()) {
                for d in a.iter() {
                    if let DeValue::Table(d) = d.get_ref() {
                        if let Some(n) = d.get("name").and_then(|n| string(n.get_ref())) {
                            deps.push(normalize(&n));
                        }
                    }
                }
            }
        }
        if let Some(DeValue::Table(opt)) = p.get("optional-dependencies").map(|v| v.get_ref()) {
            for (_, list) in opt.iter() {
                if let DeValue::Array(a) = list.get_ref() {
                    for d in a.iter() {
                        if let DeValue::Table(d) = d.get_ref() {
                            if let Some(n) = d.get("name").and_then(|n| string(n.get_ref())) {
                                deps.push(normalize(&n));
                            }
                        }
                    }
                }
            }
        }
        lock.deps.insert(name.clone(), deps);
        let Some(source) = table(p, "source") else { continue };
        let local = ["editable", "directory", "path"].iter().find_map(|k| source.get(*k).and_then(|v| string(v.get_ref())));
        let Some(path) = local else { continue };
        // A local wheel or sdist file is installed as it is, not built.
        if path.ends_with(".whl") || path.ends_with(".tar.gz") || path.ends_with(".zip") {
            continue;
        }
        let path = path.trim_end_matches('/').to_string();
        let path = if path.is_empty() { ".".to_string() } else { path };
        if path == "." {
            lock.root = Some(name.clone());
        }
        lock.locals.insert(name.clone(), LocalPackage { name, path });
    }
    Some(lock)
}

impl UvLock {
    /// The local packages `from` (a package name, or the root project when
    /// None) needs, itself included, in name order.
    pub fn needed_locals(&self, from: Option<&str>) -> Vec<&LocalPackage> {
        let start = match from {
            Some(p) => normalize(p),
            None => match &self.root {
                Some(r) => r.clone(),
                None => return vec![],
            },
        };
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            todo.extend(self.deps.get(&n).into_iter().flatten().cloned());
        }
        seen.iter().filter_map(|n| self.locals.get(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyproject_dependencies_extras_and_readme() {
        let p = read_pyproject(
            "[project]\nname = \"Http_Bin\"\nreadme = \"README.md\"\ndependencies = [\"flask >= 2.2\", 'greenlet < 3.0; python_version<\"3.12\"']\n[project.optional-dependencies]\nmainapp = [\"gunicorn\", \"http-bin[test]\"]\ntest = [\"pytest\"]\n",
        )
        .unwrap();
        assert_eq!(p.readme.as_deref(), Some("README.md"));
        assert_eq!(
            p.requirement_lines(&["mainapp".into()], &[]).unwrap(),
            ["flask >= 2.2", "greenlet < 3.0; python_version<\"3.12\"", "gunicorn"]
        );
        let dynamic = read_pyproject("[project]\nname = \"x\"\ndynamic = [\"dependencies\"]\n").unwrap();
        assert_eq!(dynamic.requirement_lines(&[], &[]), None);
        assert_eq!(read_pyproject("[tool.poetry]\nname = \"x\"\n").unwrap().dependencies, None);
        assert_eq!(read_pyproject("not toml ["), None);
        assert!(!p.is_package, "no [build-system]");
        assert!(read_pyproject("[project]\nname = \"x\"\n[build-system]\nrequires = []\n").unwrap().is_package);
        assert!(!read_pyproject("[build-system]\nrequires = []\n[tool.uv]\npackage = false\n").unwrap().is_package);
        assert!(!read_pyproject("[build-system]\nrequires = []\n[tool.poetry]\npackage-mode = false\n").unwrap().is_package);
        assert!(read_pyproject("[project]\nname = \"x\"\n[tool.uv]\npackage = true\n").unwrap().is_package);
    }

    /// PEP 735 groups: requirements and includes, a cycle followed once,
    /// names normalized; a group of a pyproject without `[project]` too.
    #[test]
    fn dependency_groups_with_includes() {
        let text = "[project]\nname = \"x\"\ndependencies = [\"flask\"]\n[dependency-groups]\nPostgres = [\"psycopg[c]>=3\", {include-group = \"base\"}]\nbase = [\"six\", {include-group = \"postgres\"}]\ndev = [\"pytest\"]\n";
        let p = read_pyproject(text).unwrap();
        assert_eq!(p.requirement_lines(&[], &["postgres".into()]).unwrap(), ["flask", "psycopg[c]>=3", "six"]);
        assert_eq!(p.group_requirements(&["dev".into(), "base".into()]), ["pytest", "six", "psycopg[c]>=3"]);
        assert_eq!(p.group_requirements(&["missing".into()]), Vec::<String>::new());
        let bare = read_pyproject("[dependency-groups]\nweb = [\"gunicorn\"]\n").unwrap();
        assert_eq!(bare.group_requirements(&["web".into()]), ["gunicorn"]);
    }

    #[test]
    fn uv_lock_locals_and_reachability() {
        let lock = read_uv_lock(
            r#"version = 1
[manifest]
members = ["app", "lib"]

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "backend" }
dependencies = [{ name = "fastapi" }, { name = "lib" }]

[[package]]
name = "lib"
version = "0.1.0"
source = { directory = "../shared/lib/" }
dependencies = [{ name = "six" }]

[[package]]
name = "tool"
version = "0.1.0"
source = { editable = "tools" }

[[package]]
name = "vendored"
version = "1.0"
source = { path = "wheels/vendored-1.0-py3-none-any.whl" }

[[package]]
name = "fastapi"
version = "0.1"
source = { registry = "https://pypi.org/simple" }
"#,
        )
        .unwrap();
        assert_eq!(lock.root, None);
        let names: Vec<(&str, &str)> = lock.needed_locals(Some("app")).iter().map(|l| (l.name.as_str(), l.path.as_str())).collect();
        assert_eq!(names, [("app", "backend"), ("lib", "../shared/lib")]);
        assert_eq!(lock.locals.len(), 3, "the wheel file is not built");
        assert!(lock.needed_locals(None).is_empty());
        let single = read_uv_lock("[[package]]\nname = \"Hello_World\"\nsource = { editable = \".\" }\n").unwrap();
        assert_eq!(single.root.as_deref(), Some("hello-world"));
        assert_eq!(single.needed_locals(None)[0].path, ".");
    }
}
