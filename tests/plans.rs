//! The golden plan corpus: every `tests/plans/NAME/strata.toml` (and every
//! example) is planned for each of its targets, with and without MergeOp,
//! and the readable tree plus the LLB digest of each must equal
//! `tests/plans/NAME.plan`. A planner change shows up as a text diff of
//! that file. `STRATA_BLESS=1 cargo test --test plans` rewrites the files
//! (review the diff before committing).

use std::path::{Path, PathBuf};

fn cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (prefix, dir) in [("", root.join("tests/plans")), ("example-", root.join("examples"))] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.join("strata.toml").is_file() {
                out.push((format!("{prefix}{}", p.file_name().unwrap().to_string_lossy()), p));
            }
        }
    }
    out.sort();
    out
}

/// The plan (the default target's, and each variant's), with and without
/// MergeOp, then the LLB digest of every target.
fn render(dir: &Path) -> String {
    let file = dir.join("strata.toml");
    let file = file.to_str().unwrap();
    let req = strata::request::Request { file: file.to_string(), ..Default::default() };
    let first = strata::request::resolve_dir(&req).unwrap_or_else(|e| panic!("{e}"));
    let variants: Vec<String> = first.spec.variants.iter().map(|v| v.value.clone()).collect();
    let mut out = String::new();
    for merge in [false, true] {
        for target in std::iter::once(String::new()).chain(first.target_names()) {
            let req = strata::request::Request { file: file.to_string(), target: target.clone(), merge, ..Default::default() };
            let r = strata::request::resolve_dir(&req).unwrap_or_else(|e| panic!("{target}: {e}"));
            if target.is_empty() || variants.contains(&target) {
                let name = if target.is_empty() { "(default)" } else { &target };
                out.push_str(&format!("=== plan of target {name}, mergeop {merge}\n"));
                out.push_str(&strata::plan::render::detailed(&r.plan, r.stage));
            }
            let platform = strata::platform::parse("linux/amd64").unwrap();
            let inputs = strata::llb::lower::Inputs::offline(platform, Some(("strata.toml", &r.source)), merge);
            let def = strata::llb::lower::lower(&r.plan, &inputs, r.stage).definition;
            let name = if target.is_empty() { "(default)" } else { &target };
            out.push_str(&format!("=== llb of target {name}, mergeop {merge}: {}\n", strata::llb::digest_of(def.def.last().unwrap())));
        }
    }
    out
}

#[test]
fn every_plan_matches_its_blessed_tree() {
    let bless = std::env::var("STRATA_BLESS").is_ok();
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 9, "the corpus lost cases: {all:?}");
    for (name, dir) in &all {
        let got = render(dir);
        let want_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans").join(format!("{name}.plan"));
        match std::fs::read_to_string(&want_file) {
            Ok(want) if want == got => {}
            _ if bless => std::fs::write(&want_file, &got).unwrap(),
            Ok(want) => {
                let first =
                    want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(want.lines().count().min(got.lines().count()));
                failures.push(format!(
                    "{name}: differs from line {}:\n  want: {}\n  got:  {}",
                    first + 1,
                    want.lines().nth(first).unwrap_or("<end>"),
                    got.lines().nth(first).unwrap_or("<end>")
                ));
            }
            Err(_) => failures.push(format!("{name}: no {name}.plan (bless with STRATA_BLESS=1)")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
