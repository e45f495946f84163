#!/usr/bin/env bash
# Publishes the frontend image as users get it: strata:dev (built by
# scripts/frontend-image.sh from this checkout) pushed to REGISTRY as
# REGISTRY/strata:MAJOR.MINOR and REGISTRY/strata:VERSION (Cargo.toml).
#
#   scripts/publish-frontend.sh [REGISTRY]     default 127.0.0.1:5000 (scripts/registry.sh)
#
# Specs then start with `# syntax=REGISTRY/strata:0.1`; a build that cannot
# edit line 1 passes `--build-arg BUILDKIT_SYNTAX=REGISTRY/strata:0.1`.
# The image is linux/amd64 only: see docs/ci.md for an arm64 builder.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
registry=${1:-127.0.0.1:5000}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
minor=${version%.*}
[[ $registry != 127.0.0.1:5000 ]] || bash scripts/registry.sh up
docker image inspect strata:dev >/dev/null 2>&1 || bash scripts/frontend-image.sh
for tag in "$minor" "$version"; do
    docker tag strata:dev "$registry/strata:$tag"
    docker push -q "$registry/strata:$tag" >/dev/null
    echo "pushed $registry/strata:$tag"
done
