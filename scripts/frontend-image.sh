#!/usr/bin/env bash
# Builds the frontend image `strata:dev` (or $STRATA_IMAGE): FROM scratch
# with one static binary, so BuildKit pulls and starts almost nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

image=${STRATA_IMAGE:-strata:dev}
target=x86_64-unknown-linux-gnu
# Static glibc binary: the image has no libc to link against.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" --bin strata

ctx=target/frontend-image
rm -rf "$ctx" && mkdir -p "$ctx"
cp "target/$target/release/strata" "$ctx/strata"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY strata /strata
# Without these caps buildx refuses --build-context for a custom frontend.
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
LABEL moby.buildkit.frontend.network.none="true"
ENTRYPOINT ["/strata", "frontend"]
DOCKERFILE
docker build -q -t "$image" "$ctx" >/dev/null
echo "built $image ($(stat -c %s "$ctx/strata") bytes binary)"
