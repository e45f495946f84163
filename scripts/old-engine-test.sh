#!/usr/bin/env bash
# Builds strata's examples through the old-engine lane (Debian 12 docker.io
# 20.10, BuildKit v0.8; scripts/old-engine.sh) with `# syntax=strata:dev`
# and checks the results.
#
#   scripts/old-engine-test.sh         hello: image, config, layers, build-arg, spec error
#   scripts/old-engine-test.sh --all   also python-web (named context) and media-server
#                                      (secret, cache mount, network=none step, apt from deb.debian.org)
#
# Needs the main engine's images strata:dev (or $STRATA_IMAGE) and
# strata-test/busybox:latest (+ strata-test/python:3.11 for --all): run after
# scripts/test.sh, or scripts/base-images.sh + scripts/frontend-image.sh.
# They are copied into the old daemon with `docker save | docker load`:
# BuildKit v0.8 in dockerd 20.10 resolves `# syntax=strata:dev` from the
# daemon's own image store, so no registry is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

[[ $(id -u) == 0 ]] || die "must run as root"
all=0
case ${1:-} in
    --all) all=1 ;;
    "") ;;
    *) die "usage: $0 [--all]" ;;
esac

bash scripts/old-engine.sh up >/dev/null

DOCKER=$STRATA_PREFIX/usr/bin/docker
OLD_HOST=unix:///run/strata-old/docker.sock
frontend=${STRATA_IMAGE:-strata:dev}
main() { "$DOCKER" -H "unix://$STRATA_DOCKER_SOCK" "$@"; }
old() { "$DOCKER" -H "$OLD_HOST" "$@"; }

work=$(mktemp -d /tmp/strata-old-test.XXXXXX)
tags=()
cleanup() {
    ((${#tags[@]})) && old image rm -f "${tags[@]}" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

fail() { log "FAIL: $*"; exit 1; }
eq() { [[ $1 == "$2" ]] || fail "$3: expected [$2], got [$1]"; }

# Copy an image from the main engine into the old one (always for the
# frontend, which changes with every build of this checkout).
copy_image() {
    local ref=$1 always=${2:-0}
    main image inspect "$ref" >/dev/null 2>&1 ||
        die "$ref is missing in the main engine (run scripts/base-images.sh / scripts/frontend-image.sh)"
    if [[ $always == 1 ]] || ! old image inspect "$ref" >/dev/null 2>&1; then
        main save "$ref" | old load -q >/dev/null
    fi
}

# build NAME DIR LOG [buildx args...]: `docker buildx build` against the old engine.
build() {
    local name=$1 dir=$2 logf=$3
    shift 3
    local t0=$SECONDS rc=0
    (cd "$dir" && DOCKER_HOST=$OLD_HOST timeout 900 "$DOCKER" buildx build --progress=plain "$@" .) >"$logf" 2>&1 || rc=$?
    log "$name: buildx exit $rc in $((SECONDS - t0)) s"
    return $rc
}

# project NAME: a copy of examples/NAME with the syntax line pointing at $frontend.
project() {
    local d=$work/$1
    cp -r "examples/$1" "$d"
    sed -i "1s|^# syntax=.*|# syntax=$frontend|" "$d/strata.toml"
    echo "$d"
}

copy_image "$frontend" 1
copy_image strata-test/busybox:latest
log "old engine: $(old version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

# --- hello: the image and its config
d=$(project hello)
tag=strata-old-test/hello:latest
tags+=("$tag")
build hello "$d" "$work/hello.log" -f strata.toml -t "$tag" || { tail -n 40 "$work/hello.log" >&2; fail "hello did not build"; }
eq "$(old run --rm "$tag")" "hello from strata (uid 1000) in /app: it works" "hello output"
eq "$(old run --rm --entrypoint sh "$tag" -c 'cd /app && find . -type f | sort' | tr '\n' ' ')" "./data/message.txt ./hello.sh " "hello files"
eq "$(old run --rm --entrypoint sh "$tag" -c 'stat -c %u:%g /app /app/hello.sh' | tr '\n' ' ')" "1000:1000 1000:1000 " "hello ownership"
eq "$(old image inspect -f '{{.Config.User}}' "$tag")" "1000:1000" "hello user"
eq "$(old image inspect -f '{{json .Config.Entrypoint}}' "$tag")" '["sh","/app/hello.sh"]' "hello entrypoint"
eq "$(old image inspect -f '{{.Config.WorkingDir}}' "$tag")" "/app" "hello workdir"
eq "$(old image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$tag")" "hello" "hello label"
# base + user + workdir + one layer per copy entry (no MergeOp on v0.8: plain chain)
eq "$(old image inspect -f '{{len .RootFS.Layers}}' "$tag")" "5" "hello layers"

# --- build args reach the frontend
build hello-arg "$d" "$work/hello-arg.log" -f strata.toml -t "$tag" --build-arg "GREETING=hi there" ||
    { tail -n 40 "$work/hello-arg.log" >&2; fail "hello with --build-arg did not build"; }
eq "$(old run --rm "$tag")" "hi there (uid 1000) in /app: it works" "hello --build-arg"

# --- spec errors come back as the frontend's message. (BuildKit v0.8 behind
# dockerd 20.10 drops the errdefs.Source detail, for Dockerfiles too: no
# framed `>>>` lines here, unlike the main lane.)
printf '# syntax=%s\nversion = 1\n[image]\nbase = "strata-test/busybox:latest"\nentrypont = ["sh"]\n' "$frontend" >"$d/bad.toml"
if build bad-spec "$d" "$work/bad.log" -f bad.toml; then fail "bad.toml built"; fi
# shellcheck disable=SC2016 # backquotes are part of the message
grep -qF 'bad.toml:5:1: unknown key `entrypont` in [image]; did you mean `entrypoint`?' "$work/bad.log" ||
    { cat "$work/bad.log" >&2; fail "spec error message missing"; }

if ((all)); then
    copy_image strata-test/python:3.11
    # --- python-web: named build context (wheels), apt, venv builder stage
    d=$(project python-web)
    tag=strata-old-test/python-web:latest
    tags+=("$tag")
    build python-web "$d" "$work/web.log" -f strata.toml -t "$tag" --build-context wheels=./wheels ||
        { tail -n 40 "$work/web.log" >&2; fail "python-web did not build"; }
    eq "$(old run --rm --entrypoint python "$tag" -c 'import flask, sys; print(sys.prefix)')" "/opt/venv" "python-web venv"
    eq "$(old run --rm --entrypoint id "$tag" -u)" "1000" "python-web uid"

    # --- media-server: secret, cache mount, network=none step, compilers only in the builder
    d=$(project media-server)
    tag=strata-old-test/media-server:latest
    tags+=("$tag")
    secret="strata-old-license-$$-$RANDOM"
    echo "$secret" >"$d/license.txt"
    # shellcheck disable=SC2054 # the comma belongs to --secret's value
    args=(-f strata.toml -t "$tag" --build-arg BASE=strata-test/python:3.11 --secret id=license_key,src=license.txt)
    [[ -d $d/wheels ]] && args+=(--build-context wheels=./wheels)
    build media-server "$d" "$work/media.log" "${args[@]}" ||
        { tail -n 40 "$work/media.log" >&2; fail "media-server did not build"; }
    ! grep -qF "$secret" "$work/media.log" || fail "the secret reached the build log"
    eq "$(old run --rm --entrypoint sh "$tag" -c 'ls /srv/native; command -v gcc cc make || echo none' | tr '\n' ' ')" "libthumb.so none " "media-server native step"
    eq "$(old image inspect -f '{{json .Config.Entrypoint}}' "$tag")" '["/usr/bin/tini","--","python","server.py"]' "media-server entrypoint"
    old save -o "$work/media.tar" "$tag"
    ! grep -aqF "$secret" "$work/media.tar" || fail "secret found in the exported image"
fi

log "old-engine lane: OK ($(old version --format 'Docker {{.Server.Version}}'), frontend $frontend)"
