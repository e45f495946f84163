#!/usr/bin/env bash
# Install and run a local Docker engine (dockerd + containerd + buildx) for
# strata's integration tests, without Docker Hub or Docker's apt repository.
#
#   scripts/engine.sh [up]    install if needed, start if not answering (idempotent)
#   scripts/engine.sh down    stop the engine this script started
#   scripts/engine.sh status  print versions / store / pids
#
# Env:
#   STRATA_STORE=containerd (default) | classic
#       containerd: containerd image store ("containerd-snapshotter"), data in
#                   /var/lib/containerd (+ /var/lib/docker), config /etc/docker/daemon.json
#       classic:    overlay2 graph driver, data-root /var/lib/docker-classic,
#                   config /etc/docker/daemon-classic.json
#       Switch with: scripts/engine.sh down && STRATA_STORE=classic scripts/engine.sh up
#   STRATA_APT_REFRESH=1   re-fetch the private apt lists before downloading.
#
# What gets installed (all as root):
#   - Debian unstable's docker.io, containerd, docker-cli, docker-buildx and
#     tini-static .debs, fetched with a private apt config (the machine's apt
#     sources are not touched) and unpacked with dpkg-deb -x into
#     /opt/strata-engine/root (nothing is registered with dpkg).
#   - runc and iptables from the machine's own Debian 12 sources (unstable's
#     runc needs a newer libc; dockerd needs iptables for the default bridge).
#   - /usr/local/lib/docker/cli-plugins/docker-buildx -> the unpacked buildx, so
#     `docker buildx` works with any docker CLI and any DOCKER_CONFIG.
# Callers should `. scripts/env.sh` to put the unpacked docker CLI first on PATH.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

[[ $(id -u) == 0 ]] || die "must run as root"

STORE=${STRATA_STORE:-containerd}
case $STORE in
    containerd) DAEMON_JSON=/etc/docker/daemon.json; DATA_ROOT=/var/lib/docker ;;
    classic) DAEMON_JSON=/etc/docker/daemon-classic.json; DATA_ROOT=/var/lib/docker-classic ;;
    *) die "STRATA_STORE must be 'containerd' or 'classic', not '$STORE'" ;;
esac

CTRD_STATE=/run/strata-containerd
CTRD_SOCK=$CTRD_STATE/containerd.sock
CTRD_ROOT=/var/lib/containerd
CTRD_PID=$STRATA_RUN/containerd.pid
DOCKERD_PID=$STRATA_RUN/dockerd.pid
UNSTABLE_PKGS=(docker.io containerd docker-cli docker-buildx tini-static)
BUILDX_LINK=/usr/local/lib/docker/cli-plugins/docker-buildx

# Unpacked binaries first; runc/iptables come from /usr/sbin.
export PATH=$STRATA_PREFIX/usr/bin:$STRATA_PREFIX/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKER=$STRATA_PREFIX/usr/bin/docker

docker_answers() { timeout 10 "$DOCKER" -H "unix://$STRATA_DOCKER_SOCK" info >/dev/null 2>&1; }

# The store of the running daemon: "containerd" or "classic".
running_store() {
    if timeout 10 "$DOCKER" info 2>/dev/null | grep -q 'io.containerd.snapshotter'; then
        echo containerd
    else
        echo classic
    fi
}

install_engine() {
    local marker=$STRATA_PREFIX/.installed
    if [[ -s $marker && -x $STRATA_PREFIX/usr/sbin/dockerd && -x $STRATA_PREFIX/usr/bin/containerd ]]; then
        :
    else
        strata_unpack_debs unstable unstable "$STRATA_CACHE/debs" "$STRATA_PREFIX" "${UNSTABLE_PKGS[@]}"
        # Unstable moves on; the tests were written against these versions.
        "$STRATA_PREFIX/usr/sbin/dockerd" --version | grep -q ' 28\.5\.' ||
            log "WARNING: expected dockerd 28.5.x, got: $("$STRATA_PREFIX/usr/sbin/dockerd" --version)"
        "$STRATA_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx" version | grep -q ' 0\.29\.' ||
            log "WARNING: expected buildx 0.29.x, got: $("$STRATA_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx" version)"
    fi

    strata_apt_install_system runc iptables

    # Every dynamic library the unpacked daemons need must resolve on this libc.
    local b missing
    for b in "$STRATA_PREFIX"/usr/sbin/dockerd "$STRATA_PREFIX"/usr/bin/containerd "$STRATA_PREFIX"/usr/bin/docker; do
        missing=$(ldd "$b" 2>&1 | grep -E 'not found|version .* not found' || true)
        [[ -z $missing ]] || die "$b cannot run here: $missing"
    done

    mkdir -p "$(dirname "$BUILDX_LINK")"
    ln -sfn "$STRATA_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx" "$BUILDX_LINK"
}


write_configs() {
    mkdir -p "$STRATA_RUN" "$STRATA_LOG" "$CTRD_STATE" "$CTRD_ROOT" /etc/docker "$DATA_ROOT"
    # containerd 2.x: the CRI plugins are not needed by dockerd, and would go looking for CNI.
    cat >"$STRATA_RUN/containerd.toml" <<EOF
version = 3
root = "$CTRD_ROOT"
state = "$CTRD_STATE"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
EOF

    local mtu snap
    mtu=$(strata_host_mtu)
    if [[ $STORE == containerd ]]; then snap=true; else snap=false; fi
    # Everything dockerd is configured with lives in this file (flags would conflict with it).
    # Build-cache GC: BuildKit's default keeps 20 % of the disk free, and on a
    # machine with ~20 % free it evicts cache records in the middle of a test
    # run (a step that was CACHED a build ago runs again). Prune only when the
    # cache passes 40 GB or the disk is nearly full, never below 10 GB.
    cat >"$DAEMON_JSON" <<EOF
{
  "features": { "containerd-snapshotter": $snap },
  "data-root": "$DATA_ROOT",
  "containerd": "$CTRD_SOCK",
  "mtu": $mtu,
  "builder": { "gc": { "enabled": true, "defaultReservedSpace": "10GB", "defaultMaxUsedSpace": "40GB", "defaultMinFreeSpace": "2GB" } }
}
EOF
    if [[ $STORE == classic ]]; then
        sed -i 's/^{$/{\n  "storage-driver": "overlay2",/' "$DAEMON_JSON"
    fi
}

start_containerd() {
    if strata_pid_alive "$CTRD_PID" containerd "$STRATA_RUN/containerd.toml"; then
        log "containerd already running (pid $(<"$CTRD_PID"))"
        return
    fi
    rm -f "$CTRD_PID" "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
    printf '\n==== containerd start %s ====\n' "$(date -Is)" >>"$STRATA_LOG/containerd.log"
    # setsid: detach from the caller's session/process group so the daemon
    # outlives this script (CI runs us from a non-interactive shell).
    # 8>&- 9>&-: the daemons must not inherit (and so hold) our lock files.
    setsid containerd --config "$STRATA_RUN/containerd.toml" \
        </dev/null >>"$STRATA_LOG/containerd.log" 2>&1 8>&- 9>&- &
    echo $! >"$CTRD_PID"
    local _
    for _ in $(seq 1 60); do
        ctr --address "$CTRD_SOCK" version >/dev/null 2>&1 && return
        strata_pid_alive "$CTRD_PID" containerd "$STRATA_RUN/containerd.toml" || break
        sleep 0.5
    done
    tail -n 40 "$STRATA_LOG/containerd.log" >&2
    die "containerd did not come up"
}

start_dockerd() {
    if strata_pid_alive "$DOCKERD_PID" dockerd "$DAEMON_JSON"; then
        log "dockerd already running (pid $(<"$DOCKERD_PID")), waiting for it"
    else
        # No dockerd of ours is alive: a leftover /var/run/docker.pid (e.g. after a
        # reboot with an on-disk /run) would make dockerd refuse to start.
        rm -f "$DOCKERD_PID" /var/run/docker.pid
        printf '\n==== dockerd start %s (store: %s) ====\n' "$(date -Is)" "$STORE" >>"$STRATA_LOG/dockerd.log"
        setsid dockerd --config-file "$DAEMON_JSON" \
            </dev/null >>"$STRATA_LOG/dockerd.log" 2>&1 8>&- 9>&- &
        # Our own pid file (dockerd keeps its default /var/run/docker.pid).
        echo $! >"$DOCKERD_PID"
    fi
    local _
    for _ in $(seq 1 60); do
        docker_answers && return
        strata_pid_alive "$DOCKERD_PID" dockerd "$DAEMON_JSON" || break
        sleep 1
    done
    log "--- last lines of $STRATA_LOG/dockerd.log"
    tail -n 60 "$STRATA_LOG/dockerd.log" >&2
    log "--- last lines of $STRATA_LOG/containerd.log"
    tail -n 20 "$STRATA_LOG/containerd.log" >&2
    die "dockerd did not answer within 60 s"
}

print_status() {
    local ok=0
    if docker_answers; then ok=1; fi
    if ((ok)); then
        echo "engine: running on $STRATA_DOCKER_SOCK (store: $(running_store))"
        echo "server: $("$DOCKER" version --format 'Docker Engine {{.Server.Version}} (API {{.Server.APIVersion}}), containerd {{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}}, runc {{range .Server.Components}}{{if eq .Name "runc"}}{{.Version}}{{end}}{{end}}')"
        echo "client: $("$DOCKER" version --format '{{.Client.Version}}') ($DOCKER)"
        echo "buildx: $("$DOCKER" buildx version 2>&1)"
        "$DOCKER" info 2>/dev/null | grep -E '^ +(Storage Driver|driver-type|Cgroup Version|Docker Root Dir):' | sed 's/^ */store: /'
    else
        echo "engine: not answering on $STRATA_DOCKER_SOCK"
    fi
    local f
    for f in "$CTRD_PID:containerd" "$DOCKERD_PID:dockerd"; do
        if strata_pid_alive "${f%%:*}" "${f##*:}" "$([[ ${f##*:} == containerd ]] && echo "$STRATA_RUN/containerd.toml" || echo "$DAEMON_JSON")"; then
            echo "${f##*:}: pid $(<"${f%%:*}")"
        fi
    done
    ((ok))
}


cmd_up() {
    if docker_answers; then
        local have
        have=$(running_store)
        if [[ -n ${STRATA_STORE:-} && $have != "$STORE" ]]; then
            die "an engine with the $have store is already running; run '$0 down' first to switch to $STORE"
        fi
        # Still make sure buildx is reachable as a CLI plugin.
        [[ -e $BUILDX_LINK || ! -x $STRATA_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx ]] ||
            ln -sfn "$STRATA_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx" "$BUILDX_LINK"
        print_status
        return
    fi
    install_engine
    write_configs
    start_containerd
    start_dockerd
    print_status
}

cmd_down() {
    if [[ ! -s $DOCKERD_PID && ! -s $CTRD_PID ]] && docker_answers; then
        log "an engine answers on $STRATA_DOCKER_SOCK but was not started by this script; leaving it alone"
        return 0
    fi
    strata_stop_pid "$DOCKERD_PID" dockerd dockerd "$DAEMON_JSON"
    strata_stop_pid "$CTRD_PID" containerd containerd "$STRATA_RUN/containerd.toml"
    log "engine stopped"
}


case ${1:-up} in
    up) strata_lock "$STRATA_RUN"; cmd_up ;;
    down) strata_lock "$STRATA_RUN"; cmd_down ;;
    status) print_status ;;
    *) die "usage: $0 [up|down|status]" ;;
esac
