#!/usr/bin/env python3
"""Where an image's bytes go, and how small it could get.

    python3 bench/size_floor.py IMAGE REFERENCE BASE

For IMAGE (strata's build), REFERENCE (the hand-optimized Dockerfile's) and
the BASE both start FROM, it prints the image sizes as the engine reports
them, the bytes each adds on top of the base, the files IMAGE adds broken
down by kind (gzip-compressed, as layers are pushed), and the ratio
IMAGE / REFERENCE that each further cut would give:

- `.so` files stripped of symbols (`strip --strip-unneeded`, needs binutils
  on the host),
- type stubs, C headers, Cython declarations, static libraries dropped,
- `.pyc` files dropped (`compile = false`: slower first imports),
- all of those at once.

It answers "can this image reach N x the reference?" with numbers instead
of guesses: the base both images share is the floor no build can cut.
Needs the engine (scripts/env.sh) and the three images.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib

ENV = dict(os.environ, PATH="/opt/strata-engine/root/usr/bin:" + os.environ.get("PATH", ""))


def size(tag):
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag], env=ENV, check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def files(tag):
    """{path: (bytes)} of the regular files in the image's filesystem."""
    c = subprocess.run(["docker", "create", tag, "true"], env=ENV, check=True, capture_output=True, text=True).stdout.strip()
    try:
        p = subprocess.Popen(["docker", "export", c], env=ENV, stdout=subprocess.PIPE)
        out = {}
        with tarfile.open(fileobj=p.stdout, mode="r|") as t:
            for m in t:
                if m.isreg():
                    out[m.name] = t.extractfile(m).read()
        p.wait()
        return out
    finally:
        subprocess.run(["docker", "rm", c], env=ENV, capture_output=True)


def kind(path):
    name = os.path.basename(path)
    if ".so" in name:
        return ".so"
    if name.endswith((".pyi", ".h", ".pxd", ".a")) or "/include/" in path:
        return "stubs/headers"
    for ext in (".pyc", ".py"):
        if name.endswith(ext):
            return ext
    return "other"


def gz(data):
    return len(zlib.compress(data, 6))


def stripped(data):
    if shutil.which("strip") is None:
        sys.exit("size_floor: `strip` (binutils) is needed for the stripped .so estimate")
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        if subprocess.run(["strip", "--strip-unneeded", f.name], capture_output=True).returncode != 0:
            return data  # not an ELF strip understands: counts as is
        return open(f.name, "rb").read()


def mb(n):
    return f"{n / 1e6:6.1f} MB"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    image, ref, base = sys.argv[1:]
    sizes = {t: size(t) for t in (image, ref, base)}
    base_files = files(base)
    added = {p: d for p, d in files(image).items() if base_files.get(p) != d}

    by_kind, cut = {}, {"strip": 0, "stubs": 0, "pyc": 0}
    for p, d in added.items():
        k, z = kind(p), gz(d)
        by_kind[k] = by_kind.get(k, 0) + z
        if k == ".so":
            cut["strip"] += z - gz(stripped(d))
        elif k == "stubs/headers":
            cut["stubs"] += z
        elif k == ".pyc":
            cut["pyc"] += z
    est = sum(by_kind.values())

    print(f"{'':28}{'image':>10}{'on top of base':>18}")
    for t in (image, ref, base):
        print(f"{t:28}{mb(sizes[t]):>10}{mb(sizes[t] - sizes[base]):>18}")
    img_add, ref_add = sizes[image] - sizes[base], sizes[ref] - sizes[base]
    print(f"\nratio {image} / {ref}: whole image {sizes[image] / sizes[ref]:.3f}x, on top of the base {img_add / ref_add:.3f}x")
    print(f"\nfiles {image} adds to the base, gzip per file (sum {mb(est).strip()}):")
    for k, z in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {k:16}{mb(z)}")
    # Scale the per-file estimate to the real compressed layer bytes.
    scale = img_add / est if est else 1.0
    print(f"\nwhat a further cut would give (whole image / {ref}):")
    for label, c in [
        ("strip .so files", cut["strip"]),
        ("drop stubs/headers/static libs", cut["stubs"]),
        ("drop .pyc (compile = false)", cut["pyc"]),
        ("all three", sum(cut.values())),
        ("no files added at all", est),
    ]:
        after = sizes[image] - c * scale
        print(f"  {label:32}{mb(after)}  {after / sizes[ref]:.3f}x")


if __name__ == "__main__":
    main()
