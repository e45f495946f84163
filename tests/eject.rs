//! `strata dockerfile`: the ejected Dockerfile, built by the engine's
//! built-in Dockerfile frontend, gives the same image as the strata build:
//! the same file tree (path, type, mode, owner, size, content, link target)
//! and the same config (env, user, workdir, entrypoint, cmd, ports,
//! healthcheck, stop signal). Timestamps are not compared, nor are the logs
//! apt and dpkg write with the time of the run in them.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use common::*;
use sha2::{Digest, Sha256};

const PY: &str = "BASE=strata-test/python:3.11";

/// path → "type mode uid:gid size sha256 link"
fn tree(tag: &str) -> BTreeMap<String, String> {
    let out = docker().args(["create", tag, "true"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let export = docker().args(["export", &id]).output().unwrap();
    let _ = docker().args(["rm", "-f", &id]).output();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(&export.stdout[..]);
    for entry in archive.entries().unwrap() {
        let mut e = entry.unwrap();
        let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        if volatile(&path) {
            continue;
        }
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = format!("{:?}", h.entry_type());
        let desc = format!(
            "{kind} {:o} {}:{} {} {:x} {link}",
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            h.gid().unwrap(),
            data.len(),
            Sha256::digest(&data)
        );
        files.insert(path, desc);
    }
    files
}

/// Files whose content is the time of the run (or the container's own).
fn volatile(path: &str) -> bool {
    path.starts_with("var/log/")
        || path == "var/cache/ldconfig/aux-cache"
        || matches!(path, ".dockerenv" | "etc/hostname" | "etc/hosts" | "etc/resolv.conf")
}

fn config(tag: &str) -> String {
    let out = docker()
        .args(["image", "inspect", "--format", "{{json .Config.Env}} {{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}} {{json .Config.Healthcheck}} {{.Config.StopSignal}}", tag])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `strata_only`: extra flags for the strata build alone (step names differ
/// from the ejected stage names).
fn same_image_both_ways(example: &str, args: &[&str], strata_only: &[&str], files: &[(&str, &str)]) {
    let p = Project::from_example(example);
    for (path, text) in files {
        p.write(path, text);
    }
    let b = p.build(&[args, strata_only].concat()).assert_ok();
    assert!(b.log.contains("strata:dev"), "the first build goes through the strata frontend:\n{}", b.log);
    let strata_tree = tree(&p.tag);
    let strata_config = config(&p.tag);

    let mut eject = std::process::Command::new(env!("CARGO_BIN_EXE_strata"));
    eject.current_dir(&p.dir).args(["dockerfile", "-f", "strata.toml", "-o", "Dockerfile.ejected"]);
    for pair in args.windows(2).filter(|w| w[0] == "--build-arg") {
        eject.args(["--build-arg", pair[1]]);
    }
    let out = eject.output().unwrap();
    assert!(out.status.success(), "strata dockerfile: {}", String::from_utf8_lossy(&out.stderr));
    let dockerfile = std::fs::read_to_string(p.dir.join("Dockerfile.ejected")).unwrap();
    assert!(!dockerfile.contains("syntax="), "must use the built-in frontend:\n{dockerfile}");

    let b = p.build_file("Dockerfile.ejected", args).assert_ok();
    assert!(!b.log.contains("strata:dev"), "the ejected build must not go through strata:\n{}", b.log);
    let docker_tree = tree(&p.tag);
    assert!(strata_tree.len() > 100, "suspiciously small tree: {} entries", strata_tree.len());
    let mut diffs = Vec::new();
    for (path, want) in &strata_tree {
        match docker_tree.get(path) {
            Some(got) if got == want => {}
            Some(got) => diffs.push(format!("~ {path}: strata {want} | dockerfile {got}")),
            None => diffs.push(format!("- {path} (only in the strata image)")),
        }
    }
    for path in docker_tree.keys().filter(|p| !strata_tree.contains_key(*p)) {
        diffs.push(format!("+ {path} (only in the Dockerfile image)"));
    }
    assert!(diffs.is_empty(), "{example}: {} differences:\n{}\n--- Dockerfile:\n{dockerfile}", diffs.len(), diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n"));
    assert_eq!(config(&p.tag), strata_config, "{example}: image config differs\n--- Dockerfile:\n{dockerfile}");
}

#[test]
fn hello_ejects_to_the_same_image() {
    if !engine() {
        return;
    }
    same_image_both_ways("hello", &[], &[], &[]);
}

#[test]
fn python_web_ejects_to_the_same_image() {
    if !engine() {
        return;
    }
    same_image_both_ways("python-web", &["--build-arg", PY], &[], &[]);
}

/// Build packages, a native build step with a secret, init, healthcheck.
#[test]
fn media_server_ejects_to_the_same_image() {
    if !engine() {
        return;
    }
    let args = ["--build-arg", PY, "--secret", "id=license_key,src=license.txt"];
    // Secret values are not in cache keys: without the filter the strata
    // build could reuse the step from another test's secret.
    same_image_both_ways("media-server", &args, &["--no-cache-filter", "license"], &[("license.txt", "eject-license")]);
}
