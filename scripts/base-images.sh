#!/usr/bin/env bash
# Build the local base images strata's tests use, without Docker Hub:
#
#   strata-test/busybox:latest       busybox-static (Debian 12) rootfs, linux/amd64
#   strata-test/busybox-amd64:latest same image as strata-test/busybox:latest (for ${TARGETARCH})
#   strata-test/busybox-386:latest   the same for linux/386
#   strata-test/busybox-multi:latest index of the two above (linux/amd64 + linux/386)
#   strata-test/python:3.11          Debian 12 minbase + python3 (3.11), venv, pip, ca-certificates
#                                    (+ the host's extra CAs, see add_host_cas)
#   strata-test/python:3.13          the same from Debian 13 (python 3.13), only with STRATA_PY313=1
#   strata-test/dnf:latest           the python image + Debian's dnf and rpm, with a local rpm
#                                    repository (strata-hello, strata-extra, strata-build)
#
# Idempotent: an image whose tag already exists is skipped. The python rootfs
# tarball (debootstrap takes minutes) is cached at
# /var/cache/strata-engine/debian-python.tar and reused; delete it to rebuild.
# Starts the engine first (scripts/engine.sh up, a no-op when it is running).
#
#   scripts/base-images.sh            build what is missing
#   STRATA_REBUILD=1 scripts/base-images.sh   rebuild all tags (the tarball cache is kept)
#   STRATA_PY313=1 scripts/base-images.sh     also strata-test/python:3.13
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
# shellcheck source=scripts/env.sh
. "$here/env.sh"

[[ $(id -u) == 0 ]] || die "must run as root"
bash "$here/engine.sh" up >/dev/null

# Serialise concurrent runs (the image checks below are not atomic).
mkdir -p "$STRATA_CACHE"
exec 8>"$STRATA_CACHE/base-images.lock"
flock -w 900 8 || die "timed out waiting for $STRATA_CACHE/base-images.lock"

PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
WORK=$STRATA_CACHE/work
mkdir -p "$WORK"

have_image() {
    [[ ${STRATA_REBUILD:-0} != 1 ]] && docker image inspect "$1" >/dev/null 2>&1
}

# busybox_image TAG DEB_ARCH DOCKER_PLATFORM
busybox_image() {
    local tag=$1 arch=$2 platform=$3
    if have_image "$tag"; then log "$tag: exists"; return; fi
    local conf dir
    conf=$(strata_apt_config bookworm bookworm amd64,i386)
    dir=$WORK/busybox-$arch
    rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/rootfs"
    (cd "$dir/debs" && APT_CONFIG=$conf apt-get -qq download "busybox-static:$arch" >&2)
    dpkg-deb -x "$dir"/debs/*.deb "$dir/rootfs"
    local r=$dir/rootfs bb f
    rm -rf "${r:?}/usr/share"   # docs and man pages only
    bb=""
    for f in bin/busybox usr/bin/busybox; do [[ -x $r/$f ]] && bb=$f && break; done
    [[ -n $bb ]] || die "busybox binary not found in busybox-static:$arch"
    # What `busybox --install -s` would do, done from the host: one symlink per
    # applet at its usual path (--list-full gives e.g. bin/sh, usr/bin/awk).
    # The i386 binary runs here too (kernel has IA32 emulation).
    local applet
    while read -r applet; do
        [[ -e $r/$applet || -L $r/$applet ]] && continue
        mkdir -p "$r/$(dirname "$applet")"
        ln -s "/$bb" "$r/$applet"
    done < <("$r/$bb" --list-full)
    [[ -L $r/bin/sh || -e $r/bin/sh ]] || die "no /bin/sh applet"
    mkdir -p "$r/etc" "$r/tmp" "$r/root" "$r/var/tmp"
    chmod 1777 "$r/tmp" "$r/var/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
    tar -C "$r" --numeric-owner -c . |
        docker import --platform "$platform" --change "$PATH_ENV" --change 'CMD ["sh"]' - "$tag" >/dev/null
    rm -rf "$dir"
    log "$tag: imported ($platform)"
}

# HTTPS from this machine goes through an intercepting proxy whose CA the host
# has appended to /etc/ssl/certs/ca-certificates.crt. Copy every host CA that
# the rootfs bundle lacks into the rootfs' /usr/local/share/ca-certificates, so
# pip/curl/cargo inside containers trust it too (and keep trusting it after an
# `apt-get install ca-certificates` in a build).
add_host_cas() {
    local r=$1 host=/etc/ssl/certs/ca-certificates.crt n
    [[ -r $host && -r $r/etc/ssl/certs/ca-certificates.crt ]] || return 0
    mkdir -p "$r/usr/local/share/ca-certificates"
    n=$(awk -v out="$r/usr/local/share/ca-certificates" '
        /BEGIN CERTIFICATE/ { b = ""; inb = 1 }
        inb { b = b $0 "\n" }
        /END CERTIFICATE/ {
            inb = 0
            if (NR == FNR) { seen[b] = 1; next }
            if (!(b in seen)) { f = out "/strata-host-" (++n) ".crt"; printf "%s", b > f; close(f) }
        }
        END { print n + 0 }' "$r/etc/ssl/certs/ca-certificates.crt" "$host")
    if ((n > 0)); then
        chroot "$r" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in $r"
        log "added $n host CA certificate(s) to the rootfs trust store"
    fi
}

# A Debian rootfs (SUITE: bookworm, python 3.11, or trixie, 3.13) with python3;
# cached as a tarball because debootstrap is slow.
python_tarball() {
    local suite=$1 tarball=$STRATA_CACHE/debian-python.tar
    [[ $suite == bookworm ]] || tarball=$STRATA_CACHE/debian-python-$suite.tar
    if [[ -s $tarball ]]; then echo "$tarball"; return; fi
    strata_apt_install_system debootstrap
    local r=$WORK/python-rootfs-$suite
    rm -rf "$r"
    log "debootstrap $suite (minbase + python3) into $r; takes a few minutes"
    debootstrap --variant=minbase --components=main \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$suite" "$r" "$(strata_debian_uri)" >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 30 "$WORK/debootstrap.log" >&2
        die "debootstrap failed (full log: $WORK/debootstrap.log)"
    }
    # apt inside containers must work against Debian's mirror (it is reachable).
    echo "deb $(strata_debian_uri) $suite main" >"$r/etc/apt/sources.list"
    add_host_cas "$r"
    # Keep the image small and free of host-specific files.
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
        "$r"/var/log/* "$r"/tmp/* "$r"/etc/hostname "$r"/etc/resolv.conf
    mkdir -p "$r/var/lib/apt/lists/partial"
    tar -C "$r" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$r"
    echo "$tarball"
}

# python_image TAG SUITE
python_image() {
    local tag=$1 suite=$2
    if have_image "$tag"; then log "$tag: exists"; return; fi
    local tarball
    tarball=$(python_tarball "$suite")
    docker import --platform linux/amd64 --change "$PATH_ENV" --change 'CMD ["python3"]' \
        "$tarball" "$tag" >/dev/null
    docker run --rm "$tag" python3 -m venv /tmp/v >/dev/null || die "$tag: python3 -m venv failed"
    log "$tag: imported ($(docker run --rm "$tag" python3 --version))"
}

# dnf from Debian 12 (dnf 4, as Fedora/RHEL 8-9 ship) on the python image, and
# a file:// rpm repository of three tiny noarch packages built with rpmbuild:
# real dnf installs without a Fedora mirror (none is reachable here).
dnf_image() {
    local tag=strata-test/dnf:latest dir
    if have_image "$tag"; then log "$tag: exists"; return; fi
    dir=$(mktemp -d)
    cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM strata-test/python:3.11
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends dnf rpm createrepo-c file >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
RUN <<'SCRIPT'
set -e
for name in strata-hello strata-extra strata-build; do
  mkdir -p /tmp/rpm/SPECS
  cat > /tmp/rpm/SPECS/$name.spec <<SPEC
Name: $name
Version: 1.0
Release: 1
Summary: strata test package $name
License: MIT
BuildArch: noarch
AutoReqProv: no
%description
strata test package $name
%install
mkdir -p %{buildroot}/usr/share/$name
echo $name > %{buildroot}/usr/share/$name/installed
%files
/usr/share/$name/installed
SPEC
  rpmbuild --quiet --define "_topdir /tmp/rpm" -bb /tmp/rpm/SPECS/$name.spec
done
mkdir -p /srv/rpm-repo && cp /tmp/rpm/RPMS/noarch/*.rpm /srv/rpm-repo/ && createrepo_c -q /srv/rpm-repo && rm -rf /tmp/rpm
mkdir -p /etc/yum.repos.d /etc/dnf/vars
printf '[strata-local]\nname=strata local\nbaseurl=file:///srv/rpm-repo\ngpgcheck=0\nenabled=1\n' > /etc/yum.repos.d/strata-local.repo
# Debian is no rpm distribution: dnf cannot guess $releasever.
echo 12 > /etc/dnf/vars/releasever
SCRIPT
DOCKERFILE
    docker buildx build -q --provenance=false -t "$tag" "$dir" >/dev/null
    rm -rf "$dir"
    docker run --rm "$tag" dnf -q repoquery --available strata-hello >/dev/null || die "$tag: dnf cannot read its repository"
    log "$tag: built"
}

# Per-arch tags plus a two-platform index, so multi-platform builds can use
# `FROM strata-test/busybox-${TARGETARCH}` or `FROM strata-test/busybox-multi`.
busybox_multi() {
    local tag=strata-test/busybox-multi:latest dir
    if have_image "$tag"; then log "$tag: exists"; return; fi
    # Only the containerd image store can hold a multi-platform image.
    if ! docker info 2>/dev/null | grep -q 'io.containerd.snapshotter'; then
        log "$tag: skipped (classic store cannot hold multi-platform images)"
        return
    fi
    dir=$(mktemp -d)
    # shellcheck disable=SC2016 # ${TARGETARCH} is for the Dockerfile
    printf 'ARG TARGETARCH\nFROM strata-test/busybox-${TARGETARCH}:latest\n' >"$dir/Dockerfile"
    docker buildx build -q --provenance=false --platform linux/amd64,linux/386 --load -t "$tag" "$dir" >/dev/null
    rm -rf "$dir"
    log "$tag: built (linux/amd64 + linux/386)"
}

busybox_image strata-test/busybox:latest amd64 linux/amd64
have_image strata-test/busybox-amd64:latest || docker tag strata-test/busybox:latest strata-test/busybox-amd64:latest
busybox_image strata-test/busybox-386:latest i386 linux/386
busybox_multi
python_image strata-test/python:3.11 bookworm
# Opt-in (not used by the tests): Debian 13's python 3.13, for trying real
# projects that need a newer Python than 3.11.
[[ ${STRATA_PY313:-0} == 1 ]] && python_image strata-test/python:3.13 trixie
dnf_image
docker image ls 'strata-test/*'
