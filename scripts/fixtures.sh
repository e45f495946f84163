#!/usr/bin/env bash
# Offline inputs the examples' e2e builds use, made on the host from the
# registries this machine reaches: wheelhouses (pip download) and a
# CRAN-style repo of a stand-in R package. Cached; cheap when fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
# uv is the default installer: a wheelhouse carries the pinned uv wheel.
uv=uv==$(sed -n 's/^pub const UV_VERSION: &str = "\(.*\)";/\1/p' src/plan/python/mod.rs)
bash scripts/wheelhouse.sh examples/python-web examples/python-web/requirements.txt "$uv"
bash scripts/wheelhouse.sh examples/tf-service examples/tf-service/requirements.txt "$uv"
bash scripts/wheelhouse.sh examples/media-server examples/media-server/requirements.txt "$uv"
bash scripts/wheelhouse.sh examples/analytics examples/analytics/requirements.txt examples/analytics/requirements-dev.txt "$uv"
bash scripts/cran-repo.sh examples/analytics
bash scripts/wheelhouse.sh tests/fixtures/layers numpy==2.1.3 six==1.16.0 "$uv"
# the bumped pin of the layers e2e test (resolved on its own)
[ -f tests/fixtures/layers/wheels/six-1.17.0-py2.py3-none-any.whl ] ||
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d tests/fixtures/layers/wheels six==1.17.0
bash scripts/wheelhouse.sh tests/fixtures/uvlock tabulate==0.9.0 "$uv"
