//! Cache presets (npm, cargo, go): the mounts persist across builds and stay
//! out of the image.

use super::common::*;

/// The npm, cargo and go presets: each mount is where the tool looks, the
/// env points the tool there whatever the image's HOME/GOPATH, the content
/// survives into the next run of the step, and none of it reaches the image.
/// (No node, cargo or go toolchain image is reachable here: busybox stands
/// in for the tools; what is under test is strata's mounts.)
#[test]
fn npm_cargo_go_cache_presets_persist_and_stay_out_of_the_image() {
    gate!();
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
