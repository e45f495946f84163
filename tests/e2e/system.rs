//! Package managers other than apt: dnf against a local rpm repository, apk
//! with a stand-in.

use super::common::*;

/// A stand-in apk (no Alpine repository is reachable from here, and Debian
/// ships no apk-tools): it refuses to run unless it gets the flags strata
/// passes and its cache dir is a mount, "downloads" each package into the
/// cache once and "installs" it as /usr/share/fake-apk/NAME. What is under
/// test is strata's part: the command, the cache mount and its persistence,
/// build vs runtime branches, nothing of the cache in a layer, rebuild order.
const FAKE_APK: &str = r#"#!/bin/sh
set -e
[ "$1" = add ] || { echo "apk: expected add, got $1" >&2; exit 2; }
case " $* " in *" --cache-dir /var/cache/apk "*) ;; *) echo "apk: missing --cache-dir" >&2; exit 2 ;; esac
grep -q " /var/cache/apk " /proc/mounts || { echo "apk: /var/cache/apk is not a cache mount" >&2; exit 3; }
shift
mkdir -p /usr/share/fake-apk
for a in "$@"; do
  case $a in -*|/*) continue ;; esac
  if [ -f "/var/cache/apk/$a.apk" ]; then echo "apk: $a from the cache"; else echo "apk: downloading $a"; echo "$a" > "/var/cache/apk/$a.apk"; fi
  echo "$a" > "/usr/share/fake-apk/$a"
done
"#;

fn fake_apk_image() -> &'static str {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("strata-fake-apk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("apk"), FAKE_APK).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM strata-test/busybox:latest\nCOPY --chmod=755 apk /sbin/apk\n").unwrap();
        let out = docker().current_dir(&dir).args(["buildx", "build", "-q", "-t", "strata-test/fake-apk:latest", "."]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_dir_all(&dir);
    });
    "strata-test/fake-apk:latest"
}

/// A spec for a manager test: `pkgs` in the runtime, `build` in the builder,
/// where a step proves it is there; `extra` is appended (more steps).
/// `run_id` (one per test run) makes the step new to the engine, so the first
/// build materialises the builder's install and the step: a later "stays
/// CACHED" check then rests on results of this run, not on cache records an
/// earlier run on the same engine may have lost.
fn manager_spec(base: &str, manager: &str, pkgs: &str, build: &str, marker_dir: &str, extra: &str, run_id: u128) -> String {
    format!(
        "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"{base}\"\n[system]\nmanager = \"{manager}\"\npackages = [{pkgs}]\nbuild-packages = [\"{build}\"]\n\
         [[step]]\nname = \"native\"\nrun = \"test -e {marker_dir}/{build} && echo built-with-{build} > native.txt # run {run_id}\"\noutputs = [\"native.txt\"]\n\
         [app]\ncopy = [\"hello.sh\"]\n{extra}"
    )
}

#[test]
fn apk_manager_end_to_end_with_a_stand_in_apk() {
    gate!(Primary);
    let base = fake_apk_image();
    let p = Project::from_example("hello");
    let run_id = nonce();
    let spec = |pkgs: &str| manager_spec(base, "apk", pkgs, "gcc", "/usr/share/fake-apk", "", run_id);
    p.write("pm.toml", &spec("\"curl\""));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.log.contains("system: apk install curl"), "{}", b.log);
    // runtime package in the image, the build package only in the builder
    assert_eq!(p.run("cat", &["/usr/share/fake-apk/curl"]), "curl");
    assert_eq!(p.run("sh", &["-c", "test -e /usr/share/fake-apk/gcc && echo leaked || echo absent"]), "absent");
    assert_eq!(p.run("cat", &["/app/native.txt"]), "built-with-gcc");
    // the downloads live in the cache mount, not in a layer
    assert_eq!(p.run("sh", &["-c", "ls /var/cache/apk 2>/dev/null | wc -l"]), "0");

    // code edit: both package installs stay cached
    p.write("hello.sh", &format!("echo edited {}\n", nonce()));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.cached("system: apk install curl") && b.cached("system: apk install gcc"), "{}", b.log);

    // package list edit (a name new to this engine, so the install runs):
    // it finds curl in the cache mount an earlier build filled
    let jq = format!("jq{}", nonce());
    p.write("pm.toml", &spec(&format!("\"curl\", \"{jq}\"")));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.log.contains("apk: curl from the cache"), "{}", b.log);
    assert!(b.cached("system: apk install gcc"), "the builder's packages are another branch:\n{}", b.log);
    assert_eq!(p.run("cat", &[&format!("/usr/share/fake-apk/{jq}")]), jq);
}

/// Real dnf (Debian's dnf 4) against a local rpm repository
/// (strata-test/dnf, scripts/base-images.sh).
#[test]
fn dnf_manager_end_to_end_with_a_local_rpm_repository() {
    gate!(Primary);
    let base = "strata-test/dnf:latest";
    let have = docker().args(["image", "inspect", base]).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(have, "{base} missing: run scripts/base-images.sh");
    let p = Project::from_example("hello");
    // A step with the runtime install's dnf cache mounted by its id shows
    // what the install left in it (dnf keeps the repository metadata
    // there). Caches are per install role (-runtime, -builder).
    let meta = "[caches.dnf-cache]\ntarget = \"/var/cache/dnf\"\nid = \"strata-dnf-strata-test_dnf_latest-runtime\"\nsharing = \"locked\"\n\
                [[step]]\nname = \"meta\"\nrun = \"find /var/cache/dnf -name '*.solv' | wc -l > meta.txt\"\ncaches = [\"dnf-cache\"]\noutputs = [\"meta.txt\"]\nafter = [\"native\"]\n";
    let run_id = nonce();
    let spec = |pkgs: &str| manager_spec(base, "dnf", pkgs, "strata-build", "/usr/share", meta, run_id);
    p.write("pm.toml", &spec("\"strata-hello\""));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.log.contains("system: dnf install strata-hello"), "{}", b.log);
    assert_eq!(p.run("cat", &["/usr/share/strata-hello/installed"]), "strata-hello");
    assert_eq!(p.run("sh", &["-c", "test -e /usr/share/strata-build && echo leaked || echo absent"]), "absent");
    assert_eq!(p.run("cat", &["/app/native.txt"]), "built-with-strata-build");
    // dnf's metadata is in the cache mount, and not in any layer
    let solv: u32 = p.run("cat", &["/app/meta.txt"]).parse().unwrap();
    assert!(solv > 0, "the dnf cache mount holds no repository metadata");
    assert_eq!(p.run("sh", &["-c", "find /var/cache/dnf -type f 2>/dev/null | wc -l"]), "0");

    p.write("hello.sh", &format!("echo edited {}\n", nonce()));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.cached("system: dnf install strata-hello") && b.cached("system: dnf install strata-build"), "{}", b.log);

    p.write("pm.toml", &spec("\"strata-hello\", \"strata-extra\""));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    // (whether the new runtime list ran here or in an earlier run of this
    // test on the same engine, its result is in the image)
    assert!(b.cached("system: dnf install strata-build"), "the builder's packages are another branch:\n{}", b.log);
    assert_eq!(p.run("cat", &["/usr/share/strata-extra/installed"]), "strata-extra");
}
