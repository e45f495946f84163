#!/usr/bin/env bash
# uv vs pip on a dependency edit with a warm cache mount: build once per
# installer (warms the cache mounts), then edit requirements.txt (a comment:
# the install step must re-run) and time the rebuild. Prints seconds and the
# ratio pip/uv. Runs through the real engine with # syntax=strata:dev.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
. "$root/scripts/env.sh"
bash "$root/scripts/wheelhouse.sh" "$here" "$here/requirements.txt" uv==0.13.9 >/dev/null
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/strata.toml" "$here/requirements.txt" "$here/wheels" "$work/"
build() { docker buildx build -q -f "$work/strata.toml" --build-arg INSTALLER="$1" --build-context wheels="$work/wheels" "$work" >/dev/null; }
now() { date +%s.%N; }
declare -A total
for inst in pip uv; do
    build "$inst"   # warm: installer caches and every other layer
    total[$inst]=0
    for i in $(seq "$runs"); do
        echo "# edit $inst $i $(now)" >> "$work/requirements.txt"
        t0=$(now); build "$inst"; t1=$(now)
        total[$inst]=$(python3 -c "print(${total[$inst]} + $t1 - $t0)")
    done
done
pip_avg=$(python3 -c "print(round(${total[pip]} / $runs, 2))")
uv_avg=$(python3 -c "print(round(${total[uv]} / $runs, 2))")
echo "dependency-edit rebuild, warm cache, $(grep -c . "$here/requirements.txt") pins (+deps), mean of $runs:"
echo "  pip: ${pip_avg}s"
echo "  uv:  ${uv_avg}s"
echo "  pip/uv: $(python3 -c "print(round($pip_avg / $uv_avg, 2))")x"
