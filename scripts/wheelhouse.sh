#!/usr/bin/env bash
# Downloads the wheels an example needs into <dir>/wheels on the host, so the
# build installs offline from a named build context
# (`--build-context wheels=<dir>/wheels`). Cached: re-runs only when the
# requirements file is newer than the wheelhouse stamp.
# usage: scripts/wheelhouse.sh DIR [REQUIREMENTS-FILE|PACKAGE==VERSION...]
#        (default DIR/requirements.txt)
set -euo pipefail
dir=${1:?usage: wheelhouse.sh DIR [REQUIREMENTS...]}
shift
reqs=("$@")
[ ${#reqs[@]} -gt 0 ] || reqs=("$dir/requirements.txt")
out="$dir/wheels"
stamp="$out/.stamp"
fresh=1
for r in "${reqs[@]}"; do
    if [ -f "$r" ]; then
        [ -f "$stamp" ] && [ "$stamp" -nt "$r" ] || fresh=0
    else
        [ -f "$stamp" ] && grep -qxF "$r" "$stamp" || fresh=0
    fi
done
if [ "$fresh" = 1 ]; then
    exit 0
fi
mkdir -p "$out"
args=()
for r in "${reqs[@]}"; do
    if [ -f "$r" ]; then args+=(-r "$r"); else args+=("$r"); fi
done
# The test base image is Debian 12's CPython 3.11 on x86_64.
python3 -m pip download --quiet --disable-pip-version-check \
    --only-binary=:all: --python-version 3.11 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
    -d "$out" "${args[@]}"
printf '%s\n' "${reqs[@]}" > "$stamp"
echo "wheelhouse $out: $(find "$out" -name '*.whl' | wc -l) wheels"
