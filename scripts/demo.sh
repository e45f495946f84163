#!/usr/bin/env bash
# The main job on a fresh Debian machine: start the engine, build the base
# images and the frontend image `strata:dev`, then build examples/python-web
# through `# syntax=strata:dev` and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh

cd examples/python-web
docker buildx build -f strata.toml --build-context wheels=./wheels -t strata-example/python-web .
name=strata-demo-$$
docker run -d --rm --name "$name" strata-example/python-web >/dev/null
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
# The base image has no curl; ask the app from inside its container.
docker exec "$name" python -c '
import time, urllib.request
for _ in range(50):
    try:
        print("GET /health ->", urllib.request.urlopen("http://127.0.0.1:8000/health").read().decode().strip())
        break
    except OSError:
        time.sleep(0.2)
else:
    raise SystemExit("the app did not answer")
'
docker image inspect strata-example/python-web --format 'image: user={{.Config.User}} entrypoint={{json .Config.Entrypoint}} layers={{len .RootFS.Layers}}'
