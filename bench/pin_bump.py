#!/usr/bin/env python3
"""Bench: bytes of image layers that change when one small pin (six) is
bumped in a requirements file next to a big package (numpy, the largest
wheel in the offline wheelhouse), strata vs a hand-optimized Dockerfile.

Changed bytes = compressed size of the layers whose digest is new after the
bump, which is what a registry push uploads (and every node re-pulls).

    python3 bench/pin_bump.py
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("benchrun", os.path.join(HERE, "run.py"))
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)

PROJECT = os.path.join(HERE, "pinbump")
TOOLS = {"optimized": "Dockerfile.optimized", "strata": "strata.toml"}


def build(tool, work):
    cmd = ["docker", "buildx", "build", "-q", "--provenance=false", "-f", TOOLS[tool], "-t", f"strata-pinbump/{tool}", "--build-context", "wheels=./wheels", "."]
    p = subprocess.run(cmd, cwd=work, env=run.ENV, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{tool} failed:\n{p.stderr[-3000:]}")


def main():
    wheels = os.path.join(PROJECT, "wheels")
    # strata installs with uv (its default): the wheelhouse holds its pinned uv
    subprocess.run(["bash", os.path.join(run.ROOT, "scripts/wheelhouse.sh"), PROJECT, os.path.join(PROJECT, "requirements.txt"), run.uv_pin()], check=True, env=run.ENV)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "-d", wheels, "six==1.17.0"], check=True, env=run.ENV)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tool in TOOLS:
            work = os.path.join(tmp, tool)
            shutil.copytree(PROJECT, work)
            build(tool, work)
            before = {d for d, _ in run.manifest_layers(f"strata-pinbump/{tool}")}
            path = os.path.join(work, "requirements.txt")
            text = open(path).read().replace("six==1.16.0", "six==1.17.0")
            open(path, "w").write(text)
            build(tool, work)
            out = subprocess.run(["docker", "run", "--rm", f"strata-pinbump/{tool}"], env=run.ENV, capture_output=True, text=True).stdout.strip()
            assert out == "2.1.3 1.17.0", f"{tool}: {out}"
            after = run.manifest_layers(f"strata-pinbump/{tool}")
            res[tool] = (sum(s for d, s in after if d not in before), sum(s for _, s in after))
    for tool, (changed, total) in res.items():
        print(f"{tool:10} changed {run.human(changed):>8} of {run.human(total):>8}")
    print(f"strata / hand-optimized changed bytes: {res['strata'][0] / res['optimized'][0] * 100:.2f} %")


if __name__ == "__main__":
    main()
