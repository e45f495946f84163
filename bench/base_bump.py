#!/usr/bin/env python3
"""Bench: bytes a push uploads after a base-image bump (a new digest of the
same tag, e.g. a security patch), strata vs a hand-optimized Dockerfile.

The project is bench/pinbump (numpy + six from an offline wheelhouse, a
small app). Both tools build it on base v1 on the main engine. The base is
then bumped (one new layer) and each tool builds it again twice:

- same engine: the engine that built v1, its cache warm;
- fresh runner: the second engine (scripts/engine2.sh), its build cache
  pruned first, as a CI runner that starts empty.

Changed bytes = compressed size of the layers whose digest v1 did not have:
what a registry push uploads and every node pulls again. Target (issue #18):
strata <= the base's new layers + 1 % of the image.

    python3 bench/base_bump.py
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("benchrun", os.path.join(HERE, "run.py"))
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)

PROJECT = os.path.join(HERE, "pinbump")
TOOLS = {"optimized": "Dockerfile.optimized", "strata": "strata.toml"}
BASE = "strata-bench/bump-base:latest"


ENGINE2 = run.ENGINE2
sh = run.sh_on
env_for = run.env_for


def make_base(tag_value, host=None):
    sh(f"printf 'FROM strata-test/python:3.11\\nRUN echo {tag_value} > /etc/base-bump\\n' | docker build -q -t {BASE} -", host)


def build(tool, work, host=None):
    cmd = ["docker", "buildx", "build", "-q", "--provenance=false", "-f", TOOLS[tool], "-t", f"strata-bench/bump-{tool}", "--build-context", "wheels=./wheels", "."]
    p = subprocess.run(cmd, cwd=work, env=env_for(host), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{tool} failed:\n{p.stderr[-3000:]}")


def layers(tag, host=None):
    return run.manifest_layers(tag, host)


def main():
    run.engine2_up()
    # strata installs with uv (its default): the wheelhouse holds its pinned uv
    subprocess.run(["bash", os.path.join(run.ROOT, "scripts/wheelhouse.sh"), PROJECT, os.path.join(PROJECT, "requirements.txt"), run.uv_pin()], check=True, env=run.ENV)
    nonce = time.time_ns()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tool, spec_file in TOOLS.items():
            work = os.path.join(tmp, tool)
            shutil.copytree(PROJECT, work)
            path = os.path.join(work, spec_file)
            text = open(path).read().replace("strata-test/python:3.11", BASE)
            open(path, "w").write(text)
            make_base(f"{nonce}-1")
            base1 = layers(BASE)
            build(tool, work)
            v1 = layers(f"strata-bench/bump-{tool}")
            make_base(f"{nonce}-2")
            base_new = [l for l in layers(BASE) if l not in base1]
            build(tool, work)
            same = layers(f"strata-bench/bump-{tool}")
            sh("docker builder prune -af >/dev/null", ENGINE2)
            make_base(f"{nonce}-2", ENGINE2)
            build(tool, work, ENGINE2)
            fresh = layers(f"strata-bench/bump-{tool}", ENGINE2)
            have = {d for d, _ in v1}
            total = sum(s for _, s in v1)
            changed = lambda after: sum(s for d, s in after if d not in have)
            rows.append((tool, changed(same), changed(fresh), sum(s for _, s in base_new), total))
            if os.environ.get("VERBOSE"):
                for name, after in (("same", same), ("fresh", fresh)):
                    print(tool, name, [(i, s) for i, (d, s) in enumerate(after) if d not in have], "of", len(after))
    print("bytes a push uploads after a base bump (the base's new layer included)\n")
    print(f"{'tool':10} | {'same engine':>11} | {'fresh runner':>12} | {'base new':>8} | {'image':>8}")
    for tool, same, fresh, base_new, total in rows:
        print(f"{tool:10} | {run.human(same):>11} | {run.human(fresh):>12} | {run.human(base_new):>8} | {run.human(total):>8}")
    s = next(r for r in rows if r[0] == "strata")
    limit = s[3] + s[4] // 100
    ok = s[1] <= limit and s[2] <= limit
    print(f"\ntarget strata <= base's new layers + 1 % of the image ({run.human(limit)}): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
