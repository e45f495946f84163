#!/usr/bin/env bash
# Offline inputs the examples' e2e builds use, made on the host from the
# registries this machine reaches: wheelhouses (pip download) and a
# CRAN-style repo of a stand-in R package. Cached; cheap when fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/wheelhouse.sh examples/python-web
bash scripts/wheelhouse.sh examples/tf-service
bash scripts/wheelhouse.sh examples/media-server
bash scripts/wheelhouse.sh examples/analytics examples/analytics/requirements.txt examples/analytics/requirements-dev.txt uv==0.13.9
bash scripts/cran-repo.sh examples/analytics
