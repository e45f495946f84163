#!/usr/bin/env bash
# uv vs pip on a dependency edit with a warm cache mount: build once per
# installer (warms the cache mounts), then edit requirements.txt (a comment:
# the install step must re-run) and rebuild. Prints, per installer, the mean
# wall time of the rebuild and of the install step alone (from BuildKit's
# progress), and the ratios pip/uv. Real engine, # syntax=strata:dev.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
. "$root/scripts/env.sh"
bash "$root/scripts/wheelhouse.sh" "$here" "$here/requirements.txt" uv==0.13.9 >/dev/null
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/strata.toml" "$here/requirements.txt" "$here/wheels" "$work/"
build() {
    docker buildx build --progress=plain -f "$work/strata.toml" --build-arg INSTALLER="$1" \
        --build-context wheels="$work/wheels" "$work" 2>"$work/log" >/dev/null
}
# Seconds of the install vertex ("python: pip install …" / "uv install …").
step_time() {
    python3 - "$work/log" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
ids = {m.group(1) for m in re.finditer(r"^#(\d+) python: (pip|uv) install", log, re.M)}
times = [float(m.group(2)) for m in re.finditer(r"^#(\d+) DONE ([\d.]+)s", log, re.M) if m.group(1) in ids]
print(max(times) if times else 0)
PY
}
now() { date +%s.%N; }
declare -A wall step
for inst in pip uv; do
    build "$inst"   # warm: installer caches and every other layer
    wall[$inst]=0; step[$inst]=0
    for i in $(seq "$runs"); do
        echo "# edit $inst $i $(now)" >> "$work/requirements.txt"
        t0=$(now); build "$inst"; t1=$(now)
        wall[$inst]=$(python3 -c "print(${wall[$inst]} + $t1 - $t0)")
        step[$inst]=$(python3 -c "print(${step[$inst]} + $(step_time))")
    done
done
avg() { python3 -c "print(round($1 / $runs, 2))"; }
echo "dependency-edit rebuild with a warm cache, $(grep -c . "$here/requirements.txt") pins (+deps), mean of $runs:"
printf '  %-4s rebuild %6ss   install step %6ss\n' pip "$(avg "${wall[pip]}")" "$(avg "${step[pip]}")" uv "$(avg "${wall[uv]}")" "$(avg "${step[uv]}")"
echo "  pip/uv: rebuild $(python3 -c "print(round(${wall[pip]} / ${wall[uv]}, 2))")x, install step $(python3 -c "print(round(${step[pip]} / max(${step[uv]}, 0.01), 2))")x"
