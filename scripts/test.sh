#!/usr/bin/env bash
# Runs every test: sets up the engine and base images (idempotent, reuses a
# running engine), builds the frontend image from this checkout, then
# `cargo test` (unit tests + e2e through real BuildKit).
set -euo pipefail
cd "$(dirname "$0")/.."
# Gates first: they take seconds and fail fast.
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
bash scripts/setup.sh
. scripts/env.sh
# e2e tests fail (not skip) without an engine when CI=true.
cargo test --locked

# Old-engine lane: Debian 12's Docker 20.10 (BuildKit v0.8, no MergeOp)
# side by side with the main engine builds the examples through the same
# frontend image (the linear chain).
bash scripts/old-engine-test.sh --all
bash scripts/old-engine.sh down
