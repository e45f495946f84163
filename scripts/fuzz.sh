#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the spec reader and the
# planner: fuzz/fuzz_targets/spec.rs, for STRATA_FUZZ_SECS seconds (default
# 60). Fails on a panic, on an input that takes over 2 s, or on a single
# allocation over 64 MB; the input is left in fuzz/artifacts/spec/.
# Seeds: every bad spec and example; the dictionary is strata's own keys
# (from `strata schema`) and TOML's syntax. The corpus grows in
# fuzz/corpus/spec (not committed) across runs on one machine.
#
#   scripts/fuzz.sh                       the bounded run scripts/test.sh makes
#   scripts/fuzz.sh -runs=1 -seed=N ...   extra libFuzzer flags go through
#   scripts/fuzz.sh fuzz/artifacts/spec/crash-...   replay one input
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

secs=${STRATA_FUZZ_SECS:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
# cargo-fuzz wants nightly flags; the machine's one (stable) toolchain
# takes them with RUSTC_BOOTSTRAP, so no nightly is needed.
export RUSTC_BOOTSTRAP=1

corpus=fuzz/corpus/spec
mkdir -p "$corpus" fuzz/artifacts/spec
find tests/bad-specs examples -name '*.toml' -not -path '*/wheels/*' | sort | while read -r f; do
    cp "$f" "$corpus/seed-$(sha256sum "$f" | cut -c1-16)"
done
dict=fuzz/target/spec.dict
mkdir -p fuzz/target
{
    cargo run -q --locked -- schema | grep -o '"[a-z][a-z0-9-]*":' | tr -d '":' | sort -u | sed 's/.*/"&"/'
    printf '%s\n' '"["' '"]"' '"[["' '"]]"' '"="' '"{"' '"}"' '"\""' "\"'\"" '"\"\"\""' '","' \
        '"${"' '"$${"' '"\\n"' '"\\\\"' '"\\u0000"' '"../"' '"/"' '"!"' '"0o777"' '"1e999"' '"-1"' '"true"' \
        '"[variants."' '"[[step]]"' '"[caches."' '"[args]"' '"if = "' '"after = ["'
} >"$dict"

if [[ $# -gt 0 && -f ${1:-} ]]; then
    exec cargo fuzz run --fuzz-dir fuzz -s none spec "$@"
fi
log "fuzz: spec reader and planner for ${secs}s"
cargo fuzz run --fuzz-dir fuzz -s none spec "$corpus" -- \
    -max_total_time="$secs" -timeout=2 -malloc_limit_mb=64 -rss_limit_mb=2048 \
    -dict="$dict" -print_final_stats=1 -close_fd_mask=1 "$@"
