#!/usr/bin/env bash
# Everything a build through `# syntax=strata:dev` needs on this machine,
# idempotent: the engine (reused when running), the local base images, the
# offline fixtures (wheelhouses, CRAN-style repo) and the frontend image
# built from this checkout. Shared by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh up
bash scripts/compose.sh
bash scripts/base-images.sh
bash scripts/fixtures.sh
bash scripts/frontend-image.sh
