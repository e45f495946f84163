#!/usr/bin/env python3
"""Bench: what a spec costs strata to answer, by its shape and size.

Generated specs (10 ... 4096 independent steps, `after` chains, steps with
many inputs, many app copies, wide and chained `[args]`, many variants) and
hostile ones that must be rejected (an `[args]` doubling bomb, one step over
the step limit, a spec over the size limit) are given to

  llb    `strata llb`: the frontend's pipeline (read, expand, plan, lower,
         encode) on one process, without the gateway round trips
  check  `strata check`: read, plan and every lint

Each run's wall time and peak resident memory (the process's own, from
wait4) are printed against the spec's size. Targets: every spec answered
(accepted or rejected) in <= 2 s with <= 64 MB peak memory; the script
exits 1 when a row misses them.

    python3 bench/cost.py [--json out.json] [--quick]

It needs GNU time (Debian's `time` package) and the release binary (target/x86_64-unknown-linux-gnu/release/strata,
built by scripts/frontend-image.sh, or STRATA_BIN); no engine is needed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME_TARGET_S = 2.0
MEM_TARGET_MB = 64.0

HEAD = 'version = 1\n[image]\nbase = "strata-test/python:3.11"\n'


def steps(n):
    return HEAD + "".join(
        f'[[step]]\nname = "s{i}"\nrun = "echo {i} > /out/s{i}"\noutputs = ["/out/s{i}"]\n' for i in range(n)
    )


def chain(n):
    out = [HEAD]
    for i in range(n):
        after = f'after = ["s{i - 1}"]\n' if i else ""
        out.append(f'[[step]]\nname = "s{i}"\nrun = "echo {i} >> /out/s{i}"\n{after}outputs = ["/out/s{i}"]\n')
    return "".join(out)


def inputs(n):
    # one step reading n files, another n steps each reading ten
    ins = ", ".join(f'"src/f{i}.py"' for i in range(n))
    spec = HEAD + f'[[step]]\nname = "wide"\nrun = "cat src/*"\ninputs = [{ins}]\noutputs = ["/out/wide"]\n'
    return spec


def copies(n):
    cp = ", ".join(f'"pkg{i}"' for i in range(n))
    return HEAD + f'[app]\ncopy = [{cp}]\n'


def args_wide(n):
    return "version = 1\n[args]\n" + "".join(f'A{i} = "v{i}"\n' for i in range(n)) + (
        '[image]\nbase = "strata-test/python:3.11"\n[image.env]\n'
        + "".join(f'E{i} = "${{A{i}}}"\n' for i in range(n))
    )


def args_chain(n):
    # each arg is the previous one plus a character: linear growth
    body = 'A0 = "x"\n' + "".join(f'A{i} = "${{A{i - 1}}}y"\n' for i in range(1, n))
    return "version = 1\n[args]\n" + body + f'[image]\nbase = "strata-test/python:3.11"\n[image.env]\nLAST = "${{A{n - 1}}}"\n'


def variants(n):
    return HEAD + '[python]\nrequirements = ["requirements.txt"]\n' + "".join(
        f'[variants.v{i}]\nenv = {{ V = "{i}" }}\n[variants.v{i}.python]\nrequirements = ["extra{i}.txt"]\n' for i in range(n)
    )


def args_bomb(n):
    # A{i} = A{i-1} twice: 2^n characters if nothing stopped it
    body = 'A0 = "xx"\n' + "".join(f'A{i} = "${{A{i - 1}}}${{A{i - 1}}}"\n' for i in range(1, n))
    return "version = 1\n[args]\n" + body + f'[image]\nbase = "strata-test/python:3.11"\n[image.env]\nX = "${{A{n - 1}}}"\n'


def oversize(_n):
    # just over the 1 MiB spec limit, in one comment-heavy file
    return HEAD + ("# " + "x" * 1022 + "\n") * 1025


SHAPES = [
    ("steps", steps, [10, 100, 1000, 4096], True),
    ("after chain", chain, [10, 100, 1000, 4096], True),
    ("step inputs", inputs, [10, 1000, 4096], True),
    ("app copies", copies, [10, 100], True),
    ("wide args", args_wide, [10, 1000, 4096], True),
    ("args chain", args_chain, [10, 1000, 2000], True),
    ("variants", variants, [8, 64], True),
    ("steps over limit", steps, [4097], False),
    ("args chain > 4 MiB", args_chain, [4096], False),
    ("args bomb", args_bomb, [40], False),
    ("spec over 1 MiB", oversize, [1], False),
]


def binary():
    b = os.environ.get("STRATA_BIN") or ROOT / "target/x86_64-unknown-linux-gnu/release/strata"
    if not Path(b).exists():
        sys.exit(f"no strata binary at {b}: run scripts/frontend-image.sh or set STRATA_BIN")
    return str(b)


def measure(cmd, cwd):
    """Wall time and peak RSS of one run. The peak comes from GNU time, a
    small parent: Linux keeps a process's high-water mark across fork and
    exec, so a child forked from this Python would report Python's own."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%M"] + cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
        kb = int(tf.read().strip().splitlines()[-1])
    return dt, kb / 1024.0, p.returncode, p.stderr.decode(errors="replace")


def context(d, n):
    """The files the generated specs name."""
    for sub in ["src", "pkgs"]:
        (Path(d) / sub).mkdir(exist_ok=True)
    for i in range(max(n, 64)):
        for f in [f"src/f{i}.py", f"pkg{i}", f"extra{i}.txt"]:
            p = Path(d) / f
            if not p.exists():
                p.write_text(f"# {i}\n")
    (Path(d) / "requirements.txt").write_text("six==1.16.0\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true", help="the smallest and largest size of each shape")
    a = ap.parse_args()
    strata = binary()
    if not Path("/usr/bin/time").exists():
        sys.exit("bench/cost.py needs GNU time: apt-get install time")
    rows = []
    with tempfile.TemporaryDirectory(prefix="strata-cost-") as d:
        print(f"{'shape':<18}{'n':>6}{'spec KB':>9}  {'command':<6}{'answer':>8}{'time s':>9}{'peak MB':>9}  ok")
        for shape, gen, sizes, accepted in SHAPES:
            if a.quick and len(sizes) > 2:
                sizes = [sizes[0], sizes[-1]]
            for n in sizes:
                src = gen(n)
                context(d, n)
                spec = Path(d) / "strata.toml"
                spec.write_text(src)
                for name, cmd in [("llb", [strata, "llb", "--platform", "linux/amd64"]), ("check", [strata, "check"])]:
                    dt, mb, rc, err = measure(cmd, d)
                    # check exits 1 on lint warnings: what matters is the answer
                    answer = "error" if ("error:" in err or (rc != 0 and name == "llb")) else "ok"
                    right = (answer == "ok") == accepted
                    within = dt <= TIME_TARGET_S and mb <= MEM_TARGET_MB
                    rows.append(
                        dict(shape=shape, n=n, spec_bytes=len(src), command=name, answer=answer, seconds=round(dt, 4),
                             peak_mb=round(mb, 1), expected="accepted" if accepted else "rejected", within_targets=within,
                             first_error=next((l for l in err.splitlines() if "error" in l), "")[:160])
                    )
                    flag = "yes" if right and within else "NO"
                    print(f"{shape:<18}{n:>6}{len(src) / 1024:>9.1f}  {name:<6}{answer:>8}{dt:>9.3f}{mb:>9.1f}  {flag}")
                    if not right:
                        print(f"    expected {'accepted' if accepted else 'rejected'}: {err.strip()[:300]}")
    worst_t = max(r["seconds"] for r in rows)
    worst_m = max(r["peak_mb"] for r in rows)
    print(f"\nworst: {worst_t:.3f} s, {worst_m:.1f} MB (targets {TIME_TARGET_S} s, {MEM_TARGET_MB:.0f} MB)")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(rows=rows, worst_seconds=worst_t, worst_peak_mb=worst_m), indent=1))
    bad = [r for r in rows if not r["within_targets"] or (r["answer"] == "ok") != (r["expected"] == "accepted")]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
