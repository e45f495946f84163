#!/usr/bin/env bash
# Builds a file-based CRAN-style repository from R package sources, for
# tests where CRAN is unreachable: DIR/r/<pkg>/ → DIR/cran/src/contrib/
# (<pkg>_<version>.tar.gz + PACKAGES), usable as `repos = ["context:cran"]`
# with `--build-context cran=DIR/cran`.
# usage: scripts/cran-repo.sh DIR
set -euo pipefail
dir=${1:?usage: cran-repo.sh DIR}
out=$dir/cran/src/contrib
rm -rf "$dir/cran" && mkdir -p "$out"
: > "$out/PACKAGES"
for pkg in "$dir"/r/*/; do
    name=$(basename "$pkg")
    version=$(sed -n 's/^Version: *//p' "$pkg/DESCRIPTION")
    # Fixed mtimes and owners: the same sources give the same tarball.
    tar -C "$dir/r" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "$name" | gzip -n > "$out/${name}_${version}.tar.gz"
    printf 'Package: %s\nVersion: %s\nNeedsCompilation: no\n\n' "$name" "$version" >> "$out/PACKAGES"
done
echo "CRAN-style repo $dir/cran: $(grep -c '^Package:' "$out/PACKAGES") package(s)"
