//! `strata llb` output solved by the engine through BuildKit's Control API,
//! as buildctl would, giving the frontend's file tree.

use super::common::*;
use prost::Message;
use std::collections::HashMap;

fn solve_cli_llb(p: &Project, strata_args: &[&str], tag: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(&p.dir)
        .args(["llb", "-f", "strata.toml"])
        .args(strata_args)
        .output()
        .unwrap();
    assert!(out.status.success(), "strata llb: {}", String::from_utf8_lossy(&out.stderr));
    let def = bollard_buildkit_proto::pb::Definition::decode(&out.stdout[..]).expect("strata llb writes a pb.Definition");
    // The local names `strata llb` documents: the context and the spec's dir.
    let locals: HashMap<String, std::path::PathBuf> =
        [("context".to_string(), p.dir.clone()), ("dockerfile".to_string(), p.dir.clone())].into();
    let attrs: HashMap<String, String> = [("name".to_string(), tag.to_string())].into();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let resp = rt.block_on(super::llbsolve::solve(def, locals, attrs)).unwrap_or_else(|e| panic!("solve: {e}"));
    assert!(resp.contains_key("containerimage.digest"), "{resp:?}");
}

fn same_tree_as_the_frontend(example: &str, build_args: &[&str]) {
    let p = Project::from_example(example);
    let mut args = Vec::new();
    for a in build_args {
        args.extend(["--build-arg", a]);
    }
    p.build(&args).assert_ok();
    let frontend = file_tree(&p.tag);

    let tag = format!("strata-e2e/llb-{example}-{}:latest", nonce());
    solve_cli_llb(&p, &args, &tag);
    let solved = file_tree(&tag);
    let config =
        docker().args(["image", "inspect", "--format", "{{json .Config.User}} {{json .Config.Entrypoint}}", &tag]).output().unwrap();
    let _ = docker().args(["image", "rm", "-f", &tag]).output();
    assert!(frontend.len() > 100, "suspiciously small tree: {} entries", frontend.len());
    let diffs = tree_diff(&frontend, &solved);
    assert!(
        diffs.is_empty(),
        "{example}: {} differences (~ frontend | strata llb, - only frontend, + only llb):\n{}",
        diffs.len(),
        diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(String::from_utf8_lossy(&config.stdout).trim(), "\"\" null", "an LLB solve carries no image config");
}

#[test]
fn hello_llb_solved_by_the_engine() {
    gate!(Primary);
    same_tree_as_the_frontend("hello", &[]);
}

/// A venv from an offline wheelhouse: `strata llb` has no named contexts,
/// so `wheels` comes from the context's wheels/ dir (the documented fallback).
#[test]
fn python_web_llb_solved_by_the_engine() {
    gate!(Primary);
    same_tree_as_the_frontend("python-web", &["BASE=strata-test/python:3.11"]);
}
