#!/usr/bin/env python3
"""Bench: strata vs a naive and a hand-optimized Dockerfile, same engine,
same run.

A realistic Python service is built three ways: bench/service/Dockerfile.naive,
Dockerfile.optimized (deps split, pip cache mount, multi-stage venv,
.dockerignore, non-root) and strata.toml. It has Flask, requests, pydantic
and numpy from an offline wheelhouse, ~30 modules, templates and a large
data dir that no image should contain.

For each scenario (cold, no change, code edit, template edit, dependency
edit) the script prints the wall time, the steps executed and CACHED, the
context bytes sent and the final image size, with the ratios strata /
hand-optimized and strata / naive.

    python3 bench/run.py [--rounds N] [--data-mb MB] [--json out.json]

It needs the engine, base images and strata:dev (scripts/test.sh or
scripts/demo.sh set them up).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVICE = os.path.join(HERE, "service")
ENV = dict(os.environ, PATH="/opt/strata-engine/root/usr/bin:" + os.environ.get("PATH", ""))

TOOLS = {
    "naive": ("Dockerfile.naive", False),
    "optimized": ("Dockerfile.optimized", True),
    "strata": ("strata.toml", True),
}
# The base image all three Dockerfiles/specs start FROM.
BASE = "strata-test/python:3.11"
SCENARIOS = ["cold", "no change", "code edit", "template edit", "dependency edit"]
INTERNAL = re.compile(
    r"^(\[internal\]|\[strata\]|resolve image config|docker-image://|load |exporting|naming|writing|unpacking|context|files: |merge |\[(?:\w+ )?\d+/\d+\] FROM|base: |\[auth\]|building with)"
)


def sh(*args, **kw):
    return subprocess.run(args, env=ENV, check=True, capture_output=True, text=True, **kw)


def make_project(dest, data_mb):
    shutil.copytree(SERVICE, dest, ignore=shutil.ignore_patterns("wheels"))
    shutil.copytree(os.path.join(SERVICE, "wheels"), os.path.join(dest, "wheels"))
    pkg = os.path.join(dest, "service")
    os.makedirs(pkg)
    open(os.path.join(pkg, "__init__.py"), "w").write('"""bench service"""\n')
    for i in range(30):
        open(os.path.join(pkg, f"mod_{i:02d}.py"), "w").write(
            f'"""module {i}"""\nimport numpy as np\nfrom pydantic import BaseModel\n\n\n'
            f"class Item{i}(BaseModel):\n    name: str\n    score: float = {i}.0\n\n\n"
            f"def compute_{i}(xs):\n    return float(np.mean(np.asarray(xs, dtype=float) * {i + 1}))\n"
        )
    open(os.path.join(pkg, "__main__.py"), "w").write(
        "from flask import Flask, render_template\nimport requests  # noqa: F401\n"
        "from service.mod_07 import compute_7\n\n"
        "app = Flask(__name__, template_folder='/app/templates')\n\n\n"
        "@app.get('/')\ndef index():\n    return render_template('index.html', value=compute_7([1, 2, 3]))\n\n\n"
        "if __name__ == '__main__':\n    app.run(host='0.0.0.0', port=8000)\n"
    )
    tdir = os.path.join(dest, "templates")
    os.makedirs(tdir)
    for name in ["index.html", "base.html", "item.html"]:
        open(os.path.join(tdir, name), "w").write(f"<!doctype html><title>{name}</title><p>{{{{ value }}}}</p>\n")
    data = os.path.join(dest, "data")
    os.makedirs(data)
    with open(os.path.join(data, "training.bin"), "wb") as f:
        for _ in range(data_mb):
            f.write(os.urandom(1 << 20))


FRONTEND_MS = []
UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}


def parse(log):
    names, cached, done = {}, set(), set()
    sent = 0.0
    for line in log.splitlines():
        m = re.match(r"^#(\d+) (.*)$", line)
        if not m:
            continue
        vid, text = m.groups()
        if text == "CACHED":
            cached.add(vid)
        elif text.startswith("DONE"):
            done.add(vid)
        elif vid not in names and not text.startswith(("ERROR", "0.", "1.", "2.", "3.")) and not re.match(r"^\d+\.\d+ ", text):
            names[vid] = text
        t = re.match(r"^transferring (\S+): ([\d.]+)([kKMG]?B)(?: [\d.]+s)? done", text)
        if t and t.group(1) != "dockerfile":
            sent += float(t.group(2)) * UNITS[t.group(3)]
    steps = {v: n for v, n in names.items() if not INTERNAL.match(n)}
    executed = sum(1 for v in steps if v in done and v not in cached)
    return executed, sum(1 for v in steps if v in cached), sent


def build(tool, work):
    spec, wheels_ctx = TOOLS[tool]
    args = ["docker", "buildx", "build", "--progress=plain", "--provenance=false", "-f", spec, "-t", f"strata-bench/{tool}"]
    if wheels_ctx:
        args += ["--build-context", "wheels=./wheels"]
    return args + ["."]


def edit(work, scenario, n):
    if scenario == "code edit":
        path, line = "service/mod_07.py", f"\nEDIT_{n} = {n}\n"
    elif scenario == "template edit":
        path, line = "templates/index.html", f"<!-- edit {n} -->\n"
    elif scenario == "dependency edit":
        path, line = "requirements.txt", f"# edit {n}\n"
    else:
        return
    with open(os.path.join(work, path), "a") as f:
        f.write(line)


DAEMON_LOG = "/var/log/strata-engine/dockerd.log"


def frontend_times():
    """`strata: frontend done in X ms` lines the frontend wrote to stderr
    (which BuildKit sends to the daemon's log)."""
    try:
        text = open(DAEMON_LOG, errors="replace").read()
        return [float(m) for m in re.findall(r"strata: frontend done in (\d+\.\d) ms", text)]
    except OSError:
        return []


# The second engine (scripts/engine2.sh): "another machine" for benches.
ENGINE2 = "unix:///run/strata-engine2/docker.sock"


def env_for(host):
    """ENV with DOCKER_HOST set to `host`, or unset for the main engine."""
    e = dict(ENV)
    if host:
        e["DOCKER_HOST"] = host
    else:
        e.pop("DOCKER_HOST", None)
    return e


def sh_on(script, host=None):
    """Runs a shell script against an engine; exits with its stderr on failure."""
    p = subprocess.run(["sh", "-c", script], env=env_for(host), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{script}: {p.stderr[-3000:]}")
    return p.stdout


def engine2_up(*scripts):
    """Starts engine2 (and other engine scripts, e.g. registry.sh) and copies
    strata:dev and the base image to it."""
    for script in ("engine2.sh",) + scripts:
        subprocess.run(["bash", os.path.join(ROOT, "scripts", script), "up"], check=True, env=ENV, capture_output=True)
    for img in ["strata:dev", "strata-test/python:3.11"]:
        sh_on(f"docker save {img} | DOCKER_HOST={ENGINE2} docker load -q")


def uv_pin():
    """`uv==VERSION` of the uv strata installs (plan::python::UV_VERSION)."""
    src = open(os.path.join(ROOT, "src/plan/python/mod.rs")).read()
    return "uv==" + src.split('pub const UV_VERSION: &str = "')[1].split('"')[0]


def manifest_layers(tag, host=None):
    """(digest, size) of the image's layers as a registry stores them
    (compressed blobs): what a push uploads when the digest is new."""
    import tarfile

    with tempfile.NamedTemporaryFile(suffix=".tar") as f:
        subprocess.run(["docker", "save", "-o", f.name, tag], env=env_for(host), check=True)
        with tarfile.open(f.name) as t:
            blob = lambda d: json.load(t.extractfile("blobs/sha256/" + d.split(":")[1]))
            desc = json.load(t.extractfile("index.json"))["manifests"][0]
            m = blob(desc["digest"])
            while "manifests" in m:
                m = blob(next(x for x in m["manifests"] if x.get("platform", {}).get("architecture") != "unknown")["digest"])
            return [(l["digest"], l["size"]) for l in m["layers"]]


def pin_bump(tool, work):
    """Bump a small pin (six) next to a big package (numpy): bytes of
    layers that changed, i.e. that a push would upload."""
    before = {d for d, _ in manifest_layers(f"strata-bench/{tool}")}
    path = os.path.join(work, "requirements.txt")
    text = open(path).read().replace("six==1.16.0", "six==1.17.0")
    open(path, "w").write(text)
    p = subprocess.run(build(tool, work), cwd=work, env=ENV, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{tool} / pin bump failed:\n{p.stderr[-3000:]}")
    after = manifest_layers(f"strata-bench/{tool}")
    return sum(size for d, size in after if d not in before), sum(size for _, size in after)


def run_tool(tool, work, rounds):
    out = {}
    for scenario in SCENARIOS:
        times, info = [], None
        for r in range(rounds):
            edit(work, scenario, f"{time.time_ns()}-{r}")
            cmd = build(tool, work)
            if scenario == "cold":
                cmd.insert(3, "--no-cache")
            before = len(frontend_times())
            t0 = time.monotonic()
            p = subprocess.run(cmd, cwd=work, env=ENV, capture_output=True, text=True)
            dt = time.monotonic() - t0
            if tool == "strata" and scenario == "no change":
                FRONTEND_MS.extend(frontend_times()[before:])
            if p.returncode != 0:
                sys.exit(f"{tool} / {scenario} failed:\n{p.stderr[-3000:]}")
            times.append(dt)
            info = parse(p.stderr)
        out[scenario] = {"seconds": statistics.median(times), "executed": info[0], "cached": info[1], "sent_bytes": info[2]}
    size = int(sh("docker", "image", "inspect", "--format", "{{.Size}}", f"strata-bench/{tool}").stdout.strip())
    out["pin bump"] = dict(zip(("changed_bytes", "total_bytes"), pin_bump(tool, work)))
    return out, size


def human(n):
    for unit in ["B", "kB", "MB", "GB"]:
        if n < 1000:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}TB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--data-mb", type=int, default=64)
    ap.add_argument("--json")
    a = ap.parse_args()
    subprocess.run(["bash", os.path.join(ROOT, "scripts/wheelhouse.sh"), SERVICE, os.path.join(SERVICE, "requirements.txt"), "uv==0.13.9"], check=True, env=ENV)
    # the bumped pin of the pin-bump scenario, resolved on its own
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "-d", os.path.join(SERVICE, "wheels"), "six==1.17.0"], check=True, env=ENV)
    engine = sh("docker", "version", "--format", "{{.Server.Version}}").stdout.strip()
    store = "containerd" if "io.containerd.snapshotter" in sh("docker", "info", "--format", "{{json .DriverStatus}}").stdout else "classic"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tool in TOOLS:
            work = os.path.join(tmp, tool)
            make_project(work, a.data_mb)
            results[tool] = run_tool(tool, work, a.rounds)
    print(f"engine: Docker {engine}, {store} image store; median of {a.rounds} round(s)\n")
    hdr = f"{'scenario':16} | " + " | ".join(f"{t:>28}" for t in TOOLS) + " | strata/opt | strata/naive"
    print(hdr)
    print("-" * len(hdr))
    for s in SCENARIOS:
        cells = []
        for t in TOOLS:
            r = results[t][0][s]
            cells.append(f"{r['seconds']:6.2f}s {r['executed']:>2} run {r['cached']:>2} cached {human(r['sent_bytes']):>7}")
        st, op, nv = (results[t][0][s]["seconds"] for t in ("strata", "optimized", "naive"))
        print(f"{s:16} | " + " | ".join(f"{c:>28}" for c in cells) + f" | {st / op:9.2f}x | {st / nv:10.2f}x")
    sizes = {t: results[t][1] for t in TOOLS}
    print(f"{'image size':16} | " + " | ".join(f"{human(sizes[t]):>28}" for t in TOOLS) + f" | {sizes['strata'] / sizes['optimized']:9.2f}x | {sizes['strata'] / sizes['naive']:10.2f}x")
    # All three start FROM the same base: what each adds on top of it is
    # what the build controls (and what a pull moves when the base is there).
    base_bytes = int(sh("docker", "image", "inspect", "--format", "{{.Size}}", BASE).stdout.strip())
    added = {t: sizes[t] - base_bytes for t in TOOLS}
    print(f"{'on top of base':16} | " + " | ".join(f"{human(added[t]):>28}" for t in TOOLS) + f" | {added['strata'] / added['optimized']:9.2f}x | {added['strata'] / added['naive']:10.2f}x")
    print(f"  (base {BASE}: {human(base_bytes)}; python3 bench/size_floor.py strata-bench/strata strata-bench/optimized {BASE} shows what is left to cut)")
    pb = {t: results[t][0]["pin bump"] for t in TOOLS}
    print(
        f"{'pin bump: bytes':16} | "
        + " | ".join(f"{human(pb[t]['changed_bytes']) + ' of ' + human(pb[t]['total_bytes']):>28}" for t in TOOLS)
        + f" | {pb['strata']['changed_bytes'] / pb['optimized']['changed_bytes']:9.3f}x | {pb['strata']['changed_bytes'] / pb['naive']['changed_bytes']:10.3f}x"
    )
    print("  (pin bump: compressed bytes of the layers whose digest changed after six 1.16 -> 1.17 next to numpy, i.e. what a push uploads)")
    fe_size = int(sh("docker", "image", "inspect", "--format", "{{.Size}}", "strata:dev").stdout.strip())
    fe_ms = statistics.median(FRONTEND_MS) if FRONTEND_MS else float("nan")
    print(f"\nfrontend image strata:dev: {human(fe_size)}; frontend run time on a fully cached build: {fe_ms:.1f} ms (median)")
    if a.json:
        json.dump({"engine": engine, "store": store, "rounds": a.rounds, "base_bytes": base_bytes, "results": {t: {"scenarios": results[t][0], "image_bytes": results[t][1]} for t in TOOLS}}, open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
