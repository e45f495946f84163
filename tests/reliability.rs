//! Load and failure: many builds at once through one engine, and a
//! frontend killed mid-build (see common/).

mod common;

use std::sync::Mutex;

use common::*;

/// These tests kill frontend processes; never overlap them with builds of
/// other tests in this binary.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn ten_different_builds_in_parallel_are_all_correct() {
    if !engine() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let projects: Vec<Project> = (0..10)
        .map(|i| {
            let p = Project::from_example("hello");
            // Different specs and different files per build: a mix-up
            // between builds shows as a wrong greeting or message.
            let spec = std::fs::read_to_string(p.dir.join("strata.toml")).unwrap().replace("hello from strata", &format!("hello {i}"));
            p.write("strata.toml", &spec);
            p.write("data/message.txt", &format!("message {i} {}\n", nonce()));
            p
        })
        .collect();
    let results: Vec<Build> = std::thread::scope(|s| {
        let handles: Vec<_> = projects.iter().map(|p| s.spawn(move || p.build(&[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (p, b)) in projects.iter().zip(results).enumerate() {
        assert!(b.ok, "build {i} failed:\n{}", b.log);
        let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(out.starts_with(&format!("hello {i} (uid 1000)")) && out.contains(&format!("message {i} ")), "build {i} got: {out}");
    }
}

#[test]
fn killed_frontends_leave_the_engine_healthy() {
    if !engine() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The frontend lives only until it returns the LLB (tens of ms), so kill
    // every strata frontend process in a tight loop while builds start.
    let projects: Vec<Project> = (0..4)
        .map(|i| {
            let p = Project::from_example("hello");
            p.write("data/message.txt", &format!("killed {i} {}\n", nonce()));
            p
        })
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<Build> = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let mut kills = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if std::process::Command::new("pkill")
                    .args(["-9", "-f", "^/strata frontend"])
                    .status()
                    .map(|st| st.success())
                    .unwrap_or(false)
                {
                    kills += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            kills
        });
        let handles: Vec<_> = projects.iter().map(|p| s.spawn(move || p.build(&["--no-cache"]))).collect();
        let results = handles.into_iter().map(|h| h.join().unwrap()).collect();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(killer.join().unwrap() > 0, "no frontend was killed");
        results
    });
    let failed = results.iter().filter(|b| !b.ok).count();
    assert!(failed > 0, "killing frontends must fail their builds");
    for b in results.iter().filter(|b| !b.ok) {
        assert!(b.log.contains("exit code") || b.log.contains("137") || b.log.contains("killed") || b.log.contains("EOF"), "{}", b.log);
    }
    // The engine still answers and every project then builds correctly.
    assert!(docker().args(["info"]).output().unwrap().status.success());
    for (i, p) in projects.iter().enumerate() {
        p.build(&[]).assert_ok();
        let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("killed {i} ")), "project {i}");
    }
}
