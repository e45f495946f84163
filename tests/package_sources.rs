//! Where packages come from: `[python] index-url` / `extra-index-urls`
//! (pip and uv against a real index over HTTP), the `apk` and `dnf`
//! managers, and the npm/cargo/go cache presets.

mod common;

use common::*;

/// Both installers fetch from the indexes the spec names: six from the
/// primary, itsdangerous from the extra index only. pip needs the http host
/// trusted (strata passes --trusted-host for http:// indexes it is given).
#[test]
fn index_url_and_extra_index_urls_with_pip_and_uv() {
    if !engine() {
        return;
    }
    for installer in ["pip", "uv"] {
        // primary: six (and uv, for uv's tool venv); extra: the flask set.
        let index = Index::start(&[("primary", repo().join("tests/fixtures/layers/wheels")), ("extra", repo().join("examples/python-web/wheels"))]);
        let p = Project::from_dir("tests/fixtures/indexes");
        let args = [
            "--build-arg".to_string(),
            format!("INSTALLER={installer}"),
            "--build-arg".to_string(),
            format!("INDEX={}/primary/simple", index.base),
            "--build-arg".to_string(),
            format!("EXTRA={}/extra/simple", index.base),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let b = p.build(&args).assert_ok();
        let asked = index.requests();
        assert!(asked.iter().any(|r| r.starts_with("/primary/simple/six")), "{installer}: primary index not asked for six: {asked:?}\n{}", b.log);
        assert!(asked.iter().any(|r| r.starts_with("/extra/simple/itsdangerous")), "{installer}: extra index not asked: {asked:?}");
        assert!(asked.iter().any(|r| r.starts_with("/extra/files/itsdangerous-2.2.0")), "{installer}: itsdangerous not downloaded from the extra index: {asked:?}");
        let out = docker().args(["run", "--rm", &p.tag]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0 2.2.0", "{installer}: {}", String::from_utf8_lossy(&out.stderr));
        // the installer stays in the builder
        assert_eq!(p.run("sh", &["-c", "ls /opt/venv/bin | grep -c -e '^pip' -e '^uv' || true"]), "0", "{installer}");
    }
}

/// The npm, cargo and go presets: each mount is where the tool looks, the
/// env points the tool there whatever the image's HOME/GOPATH, the content
/// survives into the next run of the step, and none of it reaches the image.
/// (No node, cargo or go toolchain image is reachable here: busybox stands
/// in for the tools; what is under test is strata's mounts.)
#[test]
fn npm_cargo_go_cache_presets_persist_and_stay_out_of_the_image() {
    if !engine() {
        return;
    }
    let p = Project::from_example("hello");
    let dirs = "/root/.npm /usr/local/cargo/registry /usr/local/cargo/git /root/.cargo/registry /root/.cargo/git /root/go/pkg/mod /root/.cache/go-build";
    let run = format!(
        "set -e; for d in {dirs}; do grep -q \\\" $d \\\" /proc/mounts || {{ echo \\\"not a mount: $d\\\"; exit 3; }}; n=$(cat $d/strata-runs 2>/dev/null || echo 0); echo $((n+1)) > $d/strata-runs; done; \
         cat /root/.npm/strata-runs > runs.txt; echo $npm_config_cache $GOMODCACHE $GOCACHE > env.txt"
    );
    p.write(
        "presets.toml",
        &format!(
            "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"strata-test/busybox:latest\"\n[[step]]\nname = \"tools\"\nrun = \"{run}\"\ncaches = [\"npm\", \"cargo\", \"go\"]\ninputs = [\"input.txt\"]\noutputs = [\"runs.txt\", \"env.txt\"]\n"
        ),
    );
    p.write("input.txt", &format!("{}\n", nonce()));
    p.build_file("presets.toml", &[]).assert_ok();
    let first: u64 = p.run("cat", &["/app/runs.txt"]).parse().unwrap();
    assert_eq!(p.run("cat", &["/app/env.txt"]), "/root/.npm /root/go/pkg/mod /root/.cache/go-build");
    // editing the step's input re-runs it, on the same caches
    p.write("input.txt", &format!("{}\n", nonce()));
    let b = p.build_file("presets.toml", &[]).assert_ok();
    assert!(!b.cached("step tools: set -e"), "{}", b.log);
    let second: u64 = p.run("cat", &["/app/runs.txt"]).parse().unwrap();
    assert_eq!(second, first + 1, "the npm cache did not keep its content between runs");
    assert_eq!(p.run("sh", &["-c", "ls -d /root/.npm /usr/local/cargo /root/.cargo /root/go /root/.cache 2>/dev/null | wc -l"]), "0");
}

/// A stand-in package manager (no Alpine or Fedora repository is reachable
/// from here): it refuses to run unless it gets the flags strata passes and
/// its cache dir is a mount, "downloads" each package into the cache once
/// and "installs" it as /usr/share/fake-pm/NAME. What is under test is
/// strata's part: the commands, the cache mounts, build vs runtime branches,
/// nothing of the cache in a layer, and the rebuild order.
const FAKE_PM: &str = r#"#!/bin/sh
set -e
tool=$(basename "$0")
case $tool in
  apk) cache=/var/cache/apk; want=add; flag=--cache-dir ;;
  dnf) cache=/var/cache/dnf; want=install; flag=--setopt=keepcache=1 ;;
esac
[ "$1" = "$want" ] || { echo "$tool: expected $want, got $1" >&2; exit 2; }
case " $* " in *" $flag "*) ;; *) echo "$tool: missing $flag" >&2; exit 2 ;; esac
grep -q " $cache " /proc/mounts || { echo "$tool: $cache is not a cache mount" >&2; exit 3; }
shift
mkdir -p /usr/share/fake-pm
for a in "$@"; do
  case $a in -*|/*) continue ;; esac
  if [ -f "$cache/$a.pkg" ]; then echo "$tool: $a from the cache"; else echo "$tool: downloading $a"; echo "$a" > "$cache/$a.pkg"; fi
  echo "$tool" > "/usr/share/fake-pm/$a"
done
"#;

fn fake_pm_image() -> &'static str {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("strata-fake-pm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pm"), FAKE_PM).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM strata-test/busybox:latest\nCOPY --chmod=755 pm /sbin/apk\nCOPY --chmod=755 pm /usr/bin/dnf\n").unwrap();
        let out = docker().current_dir(&dir).args(["buildx", "build", "-q", "-t", "strata-test/fake-pm:latest", "."]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_dir_all(&dir);
    });
    "strata-test/fake-pm:latest"
}

fn manager_end_to_end(manager: &str) {
    let base = fake_pm_image();
    let p = Project::from_example("hello");
    let spec = |pkgs: &str| {
        format!(
            "# syntax=strata:dev\nversion = 1\n[image]\nbase = \"{base}\"\n[system]\nmanager = \"{manager}\"\npackages = [{pkgs}]\nbuild-packages = [\"gcc\"]\n\
             [[step]]\nname = \"native\"\nrun = \"test -f /usr/share/fake-pm/gcc && echo built-with-gcc > native.txt\"\noutputs = [\"native.txt\"]\n\
             [app]\ncopy = [\"hello.sh\"]\n"
        )
    };
    p.write("pm.toml", &spec("\"curl\""));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.log.contains(&format!("system: {manager} install curl")), "{}", b.log);
    // runtime package in the image, the build package only in the builder
    assert_eq!(p.run("cat", &["/usr/share/fake-pm/curl"]), manager);
    assert_eq!(p.run("sh", &["-c", "test -e /usr/share/fake-pm/gcc && echo leaked || echo absent"]), "absent");
    assert_eq!(p.run("cat", &["/app/native.txt"]), "built-with-gcc");
    // the downloads live in the cache mount, not in a layer
    assert_eq!(p.run("sh", &["-c", &format!("ls /var/cache/{manager} 2>/dev/null | wc -l")]), "0");

    // code edit: both package installs stay cached
    p.write("hello.sh", &format!("echo edited {}\n", nonce()));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.cached(&format!("system: {manager} install curl")) && b.cached(&format!("system: {manager} install gcc")), "{}", b.log);

    // package list edit: the runtime install re-runs and finds curl in the
    // cache mount the first build filled
    p.write("pm.toml", &spec("\"curl\", \"jq\""));
    let b = p.build_file("pm.toml", &[]).assert_ok();
    assert!(b.log.contains(&format!("{manager}: curl from the cache")), "{}", b.log);
    assert_eq!(p.run("cat", &["/usr/share/fake-pm/jq"]), manager);
}

#[test]
fn apk_manager_end_to_end_with_a_stand_in_apk() {
    if !engine() {
        return;
    }
    manager_end_to_end("apk");
}

#[test]
fn dnf_manager_end_to_end_with_a_stand_in_dnf() {
    if !engine() {
        return;
    }
    manager_end_to_end("dnf");
}
