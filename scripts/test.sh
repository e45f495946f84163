#!/usr/bin/env bash
# Runs every test: sets up the engine and base images (idempotent, reuses a
# running engine), builds the frontend image from this checkout, then
# `cargo test` (unit tests + e2e through real BuildKit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh up
bash scripts/base-images.sh
bash scripts/fixtures.sh
bash scripts/frontend-image.sh
. scripts/env.sh
# e2e tests fail (not skip) without an engine when CI=true.
cargo test --locked
