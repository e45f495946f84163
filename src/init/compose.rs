//! The compose service built from this directory: its Dockerfile and
//! target, command, published ports, and the other services it needs
//! (databases init cannot provide).

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// The compose file, context-relative.
    pub file: String,
    /// The Dockerfile, context-relative.
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    pub command: Option<Vec<String>>,
    /// Container-side ports.
    pub ports: Vec<String>,
    /// Other services of the file and their images (databases, caches).
    pub others: Vec<(String, String)>,
}

const FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker/docker-compose.yml",
    "docker/docker-compose.yaml",
    "docker/compose.yml",
    "docker/compose.yaml",
];

pub fn find(dir: &Path) -> Option<Service> {
    for f in FILES {
        let p = dir.join(f);
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.len() > 512 * 1024 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        if let Some(s) = parse(&text, f) {
            return Some(s);
        }
    }
    None
}

fn str_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        _ => None,
    }
}

/// The service whose build context is the project directory (the compose
/// file's directory, or its parent for a file in `docker/`).
pub fn parse(text: &str, file: &str) -> Option<Service> {
    let docs = YamlLoader::load_from_str(text).ok()?;
    let doc = docs.first()?;
    let services = doc["services"].as_hash()?;
    let base = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut all: Vec<(String, &Yaml)> = services.iter().filter_map(|(k, v)| Some((str_of(k)?, v))).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut chosen: Option<Service> = None;
    for (name, svc) in &all {
        let build = &svc["build"];
        let (context, dockerfile, target) = match build {
            Yaml::String(c) => (c.clone(), None, None),
            Yaml::Hash(_) => {
                (str_of(&build["context"]).unwrap_or_else(|| ".".into()), str_of(&build["dockerfile"]), str_of(&build["target"]))
            }
            _ => continue,
        };
        let ctx = crate::plan::join_path(base, &context);
        if ctx.as_deref() != Some("") {
            continue;
        }
        let dockerfile =
            dockerfile.map(|d| crate::plan::join_path(&context, &d).and_then(|p| crate::plan::join_path(base, &p)).unwrap_or(d));
        let command = match &svc["command"] {
            Yaml::String(s) => Some(vec!["sh".to_string(), "-c".to_string(), s.clone()]),
            Yaml::Array(a) => a.iter().map(str_of).collect(),
            _ => None,
        };
        let ports = svc["ports"]
            .as_vec()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| match p {
                        Yaml::Hash(_) => str_of(&p["target"]),
                        other => str_of(other).map(|s| s.rsplit(':').next().unwrap_or(&s).split('/').next().unwrap_or("").to_string()),
                    })
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .collect()
            })
            .unwrap_or_default();
        let s = Service { name: name.clone(), file: file.to_string(), dockerfile, target, command, ports, others: vec![] };
        // Prefer a service named like a web app when several build here.
        let better = chosen.as_ref().is_none_or(|c| !is_web(&c.name) && is_web(name));
        if better {
            chosen = Some(s);
        }
    }
    let mut s = chosen?;
    s.others = all.iter().filter(|(n, _)| *n != s.name).filter_map(|(n, v)| Some((n.clone(), str_of(&v["image"])?))).collect();
    Some(s)
}

fn is_web(name: &str) -> bool {
    ["web", "app", "api", "backend", "server"].iter().any(|w| name.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_built_here() {
        let text = "services:\n  db:\n    image: postgres:16\n  web:\n    build:\n      context: ..\n      dockerfile: docker/Dockerfile\n      target: production\n    command: bash -c 'uwsgi /opt/app/uwsgi.ini'\n    ports:\n      - \"8000:8000\"\n      - target: 9191\n  worker:\n    build: ./worker\n";
        let s = parse(text, "docker/docker-compose.yml").unwrap();
        assert_eq!(s.name, "web");
        assert_eq!(s.dockerfile.as_deref(), Some("docker/Dockerfile"));
        assert_eq!(s.target.as_deref(), Some("production"));
        assert_eq!(s.command.unwrap(), ["sh", "-c", "bash -c 'uwsgi /opt/app/uwsgi.ini'"]);
        assert_eq!(s.ports, ["8000", "9191"]);
        assert_eq!(s.others, [("db".to_string(), "postgres:16".to_string())]);
        assert_eq!(parse("not: [yaml", "compose.yml"), None);
        assert_eq!(parse("services:\n  x:\n    image: redis\n", "compose.yml"), None);
    }
}
