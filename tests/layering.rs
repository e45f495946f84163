//! The crate's layers point forward only: a module may import modules of a
//! lower layer, never one of its own layer or above (ARCHITECTURE.md lists
//! the layers and each one's invariant). And the layers below `llb` know
//! no protobuf or gRPC crate.

use std::path::Path;

/// Module → layer. A new module must be placed here.
const LAYERS: &[(&str, u32)] = &[
    // leaves: plain data and text formats
    ("diag", 0),
    ("timefmt", 0),
    ("context", 0),
    ("platform", 0),
    ("reference", 0),
    // the format
    ("spec", 1),
    // what to build, from the spec alone
    ("plan", 2),
    ("deps", 3),
    ("lint", 2),
    // the plan's outputs: LLB, image config, a Dockerfile
    ("llb", 3),
    ("image", 3),
    ("eject", 3),
    ("sbom", 3),
    // one request, resolved the same way for the CLI and the frontend
    ("request", 4),
    ("init", 4),
    // the two front ends
    ("frontend", 5),
    ("cli", 6),
];

/// Crates only `llb` and what sits above it may use.
const ENGINE_CRATES: &[&str] = &["bollard_buildkit_proto", "prost", "tonic", "tokio", "hyper_util", "tower"];

fn layer(m: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l)
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn imports_point_forward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    all.sort();
    let mut bad = Vec::new();
    for f in &all {
        let rel = f.strip_prefix(&src).unwrap();
        let module = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer(&module) else {
            bad.push(format!("{}: module `{module}` has no layer in tests/layering.rs", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + 7..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if name == module || name.is_empty() {
                    continue;
                }
                match layer(&name) {
                    Some(l) if l < own => {}
                    Some(l) => bad.push(format!("{}:{}: `{module}` (layer {own}) imports `{name}` (layer {l})", rel.display(), n + 1)),
                    None => bad.push(format!("{}:{}: unknown module `{name}`", rel.display(), n + 1)),
                }
            }
            if own < 3 || module == "image" || module == "eject" || module == "sbom" || module == "request" || module == "init" {
                for c in ENGINE_CRATES {
                    if code.contains(&format!("{c}::")) {
                        bad.push(format!("{}:{}: `{module}` uses `{c}`; only llb, frontend and cli may", rel.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
