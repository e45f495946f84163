//! Load and faults: many builds at once, killed frontends, the engine killed
//! mid-install, a full disk, concurrent builds sharing caches, a cancelled
//! build.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use super::common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn lock() -> std::sync::MutexGuard<'static, ()> {
    engine2_lock()
}

/// A build running in the background, its log collected as it comes.
struct Background {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Background {
    fn start(p: &Project, host: Option<&str>, extra: &[&str]) -> Background {
        let mut c = p.build_command(host, "strata.toml", extra);
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("docker buildx build");
        let log = Arc::new(Mutex::new(String::new()));
        let (err, log2) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Background { child, log }
    }

    /// Waits until the log shows `needle` (or fails after `secs`).
    fn wait_for(&self, needle: &str, secs: u64) {
        let t0 = Instant::now();
        while !self.log.lock().unwrap().contains(needle) {
            assert!(t0.elapsed() < Duration::from_secs(secs), "no `{needle}` in:\n{}", self.log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn finish(mut self) -> Build {
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let log = self.log.lock().unwrap().clone();
        Build { ok: status.success(), log, steps: None }
    }
}

fn python_project(name: &str, spec: &str, files: &[(&str, &str)]) -> Project {
    let p = Project::empty(&name.replace(' ', "-"));
    p.write("strata.toml", &format!("# syntax=strata:dev\n# {name}\nversion = 1\n{spec}"));
    for (f, t) in files {
        p.write(f, t);
    }
    p
}

/// Kills (-9) the strata frontends engine2 runs (by their cgroup), never
/// those of the main engine, whose builds other tests run meanwhile.
/// Returns how many it killed.
fn kill_engine2_frontends() -> usize {
    let mut killed = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !cmd.starts_with(b"/strata\0frontend") {
            continue;
        }
        if !std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default().contains("strata-engine2") {
            continue;
        }
        if std::process::Command::new("kill").args(["-9", &pid]).status().map(|s| s.success()).unwrap_or(false) {
            killed += 1;
        }
    }
    killed
}

/// dockerd and containerd killed (-9) while the dependency install waits
/// on the index; restarted, the rebuild takes the layers finished before
/// the crash from the cache, and no half-written image was tagged.
#[test]
fn engine_killed_mid_install_then_the_rebuild_keeps_earlier_layers() {
    gate!(Primary);
    let Some(host) = engine2() else { return };
    let _g = lock();
    let idx = Index::start(&[("pypi", repo().join("tests/fixtures/layers/wheels"))]);
    let p = python_project(
        "crash",
        &format!("[image]\nbase = \"strata-test/python:3.11\"\n[python]\ninstaller = \"pip\"\nrequirements = [\"requirements.txt\"]\nindex-url = \"{}/pypi/simple\"\n[app]\ncopy = [\"app.py\"]\n", idx.base),
        &[("requirements.txt", &format!("six==1.16.0\n# run {}\n", nonce())), ("app.py", "import six\nprint(six.__version__)\n")],
    );
    let _ = docker_on(&host).args(["image", "rm", "-f", &p.tag]).output();
    idx.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    let bg = Background::start(&p, Some(&host), &[]);
    // the install has asked the (stalled) index for six
    let t0 = Instant::now();
    while !idx.requests().iter().any(|r| r.contains("six")) {
        assert!(t0.elapsed() < Duration::from_secs(180), "the install never reached the index:\n{}", bg.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    let restart = std::process::Command::new("bash").arg(repo().join("scripts/engine2.sh")).arg("restart").output().unwrap();
    assert!(restart.status.success(), "{}", String::from_utf8_lossy(&restart.stderr));
    idx.stall.store(false, std::sync::atomic::Ordering::SeqCst);
    let b = bg.finish();
    assert!(!b.ok, "the build survived the engine's death?\n{}", b.log);
    assert!(!docker_on(&host).args(["image", "inspect", &p.tag]).output().unwrap().status.success(), "a half-written image was tagged");
    let b = p.build_at(Some(&host), "strata.toml", &[]).assert_ok();
    for done in ["python: pip tool venv", "python: create venv"] {
        assert!(b.cached(done), "`{done}` finished before the crash and must be CACHED:\n{}", b.log);
    }
    assert!(!b.cached("python: pip install"), "{}", b.log);
    let out = docker_on(&host).args(["run", "--rm", "--entrypoint", "python", &p.tag, "/app/app.py"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0");
}

/// The frontend killed while it waits on the engine (resolving a base
/// image whose registry never answers): the build fails with a message
/// that says the frontend went away, and the next build works. (Once the
/// frontend has returned the LLB it is gone, tens of ms after the start:
/// the engine runs the steps.)
#[test]
fn frontend_killed_mid_solve_fails_clearly_and_the_next_build_works() {
    gate!(Primary);
    let Some(host) = engine2() else { return };
    let _g = lock();
    // a "registry" that accepts connections and never answers
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    let p = python_project("frontend-kill", &format!("[image]\nbase = \"127.0.0.1:{port}/never:{}\"\n", nonce()), &[]);
    let bg = Background::start(&p, Some(&host), &[]);
    bg.wait_for("[strata] resolve image config", 120);
    std::thread::sleep(Duration::from_secs(1));
    // strata frontends of engine2 only (by its cgroup), not the main
    // engine's, which other tests use
    assert!(kill_engine2_frontends() > 0, "no engine2 frontend running:\n{}", bg.log.lock().unwrap());
    let b = bg.finish();
    assert!(!b.ok, "the build outlived its frontend:\n{}", b.log);
    let last = b.log.lines().rev().find(|l| l.contains("ERROR") || l.contains("error")).unwrap_or("").to_string();
    assert!(
        ["frontend", "exit code", "137", "killed", "EOF", "closed"].iter().any(|w| last.contains(w)),
        "the error does not say the frontend went away: {last}\n{}",
        b.log
    );
    p.write("strata.toml", "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\n");
    p.build_at(Some(&host), "strata.toml", &[]).assert_ok();
}

/// A step that fills the disk fails naming the step; the engine keeps
/// serving, gets its space back, and builds again.
#[test]
fn a_step_that_fills_the_disk_fails_naming_it_and_the_engine_keeps_serving() {
    gate!(Primary);
    let Some(host) = engine2() else { return };
    let _g = lock();
    let n = nonce();
    let p = python_project(
        "fill",
        &format!("[image]\nbase = \"strata-test/busybox:latest\"\nuser = \"root\"\n[[step]]\nname = \"fill-disk\"\nrun = \"echo {n}; dd if=/dev/zero of=/fill bs=1M\"\noutputs = [\"/fill\"]\n"),
        &[],
    );
    let b = p.build_at(Some(&host), "strata.toml", &[]).assert_failed();
    assert!(b.log.contains("No space left on device"), "{}", b.log);
    assert!(b.log.contains("step fill-disk:"), "the failure names the step:\n{}", b.log);
    assert!(docker_on(&host).args(["info"]).output().unwrap().status.success(), "engine2 stopped answering");
    // The engine releases the failed step's snapshot on its own, shortly.
    let free = || {
        let out = std::process::Command::new("df").args(["--output=avail", "-B1M", "/var/lib/strata-engine2"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap_or("0").trim().parse::<u64>().unwrap_or(0)
    };
    let t0 = Instant::now();
    while free() < 1024 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(free() >= 1024, "the failed step's data was not released: {} MB free", free());
    let ok = python_project("after-fill", &format!("[image]\nbase = \"strata-test/busybox:latest\"\n[[step]]\nname = \"small\"\nrun = \"echo {n} > /small\"\noutputs = [\"/small\"]\n"), &[]);
    ok.build_at(Some(&host), "strata.toml", &[]).assert_ok();
}

/// Ten different specs at once, sharing the pip and uv cache mounts (and
/// apt's, locked): each image equals, file for file, the same spec built
/// alone without the cache.
#[test]
fn ten_concurrent_builds_sharing_package_caches_equal_sequential_ones() {
    gate!(Primary);
    let wheels = repo().join("tests/fixtures/layers/wheels");
    let n = nonce();
    let projects: Vec<Project> = (0..10)
        .map(|i| {
            let installer = if i % 2 == 0 { "uv" } else { "pip" };
            let apt = if i < 3 { format!("[system]\npackages = [\"{}\"]\n", ["less", "procps", "file"][i]) } else { String::new() };
            let p = python_project(
                &format!("concurrent {i}"),
                &format!("[image]\nbase = \"strata-test/python:3.11\"\n{apt}[python]\ninstaller = \"{installer}\"\nrequirements = [\"requirements.txt\"]\nwheels = \"wheels\"\n[app]\ncopy = [\"app.py\"]\n"),
                &[
                    ("requirements.txt", if i % 3 == 0 { "six==1.16.0\nnumpy==2.1.3\n" } else { "six==1.16.0\n" }),
                    ("app.py", &format!("print('build {i} {n}')\n")),
                ],
            );
            copy_dir(&wheels, &p.dir.join("wheels"));
            p
        })
        .collect();
    let results: Vec<Build> = std::thread::scope(|s| {
        let hs: Vec<_> = projects.iter().map(|p| s.spawn(move || p.build(&[]))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, b) in results.iter().enumerate() {
        assert!(b.ok, "concurrent build {i} failed:\n{}", b.log);
    }
    let concurrent: Vec<_> = projects.iter().map(|p| file_tree(&p.tag)).collect();
    for (i, p) in projects.iter().enumerate() {
        p.build(&["--no-cache"]).assert_ok();
        let alone = file_tree(&p.tag);
        let diff = tree_diff(&concurrent[i], &alone);
        assert!(diff.is_empty(), "build {i}: the concurrent image differs from the one built alone:\n{}", diff.join("\n"));
        assert_eq!(p.run("python", &["/app/app.py"]), format!("build {i} {n}"));
    }
}

/// A build interrupted by its client (Ctrl-C) in the middle of a step
/// leaves nothing that breaks the next one.
#[test]
fn a_cancelled_build_leaves_nothing_that_breaks_the_next() {
    gate!(Primary);
    let n = nonce();
    let p = python_project(
        "cancel",
        &format!("[args]\nSLEEP = \"60\"\n[image]\nbase = \"strata-test/busybox:latest\"\n[[step]]\nname = \"slow\"\nrun = \"echo {n}; sleep ${{SLEEP}}; echo done > /out\"\noutputs = [\"/out\"]\n"),
        &[],
    );
    let bg = Background::start(&p, None, &[]);
    bg.wait_for("step slow:", 120);
    std::thread::sleep(Duration::from_secs(1));
    let _ = std::process::Command::new("kill").args(["-INT", &bg.child.id().to_string()]).status();
    let b = bg.finish();
    assert!(!b.ok, "the interrupted build succeeded?\n{}", b.log);
    p.build(&["--build-arg", "SLEEP=0"]).assert_ok();
    assert_eq!(p.run("cat", &["/out"]), "done");
}

#[test]
fn ten_different_builds_in_parallel_are_all_correct() {
    gate!(Primary);
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
    gate!(Primary);
    // engine2's frontends only: the main engine's serve other tests
    let Some(host) = engine2() else { return };
    let _g = lock();
    // The frontend lives only until it returns the LLB (tens of ms), so kill
    // every engine2 strata frontend in a tight loop while builds start.
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
                kills += kill_engine2_frontends();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            kills
        });
        let handles: Vec<_> = projects.iter().map(|p| s.spawn(|| p.build_at(Some(&host), "strata.toml", &["--no-cache"]))).collect();
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
    assert!(docker_on(&host).args(["info"]).output().unwrap().status.success());
    for (i, p) in projects.iter().enumerate() {
        p.build_at(Some(&host), "strata.toml", &[]).assert_ok();
        let out = docker_on(&host).args(["run", "--rm", &p.tag]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("killed {i} ")), "project {i}");
    }
}
