#!/usr/bin/env bash
# "Old-engine lane": Debian 12's own docker.io 20.10 (embedded BuildKit v0.8)
# running side by side with the main engine of scripts/engine.sh, so strata's
# frontend can be tried against an old gateway API.
#
#   scripts/old-engine.sh [up]   install if needed, start if not answering (idempotent)
#   scripts/old-engine.sh down   stop it (and remove its bridge / NAT rules)
#   scripts/old-engine.sh status versions / pids; exit 1 if not answering
#   scripts/old-engine.sh env    prints `export DOCKER_HOST=...` lines: eval "$(scripts/old-engine.sh env)"
#
# Nothing is shared with the main engine:
#   binaries   Debian 12 docker.io 20.10 + containerd 1.6 (+ tini for docker-init)
#              .debs, fetched with a private apt config (apt-old) and unpacked with
#              dpkg-deb -x into /opt/strata-old/root; runc is the system's /usr/sbin/runc
#   containerd own config/root/state/socket: /run/strata-old/containerd.sock,
#              /var/lib/strata-old/containerd, /run/strata-old/containerd
#   dockerd    -H unix:///run/strata-old/docker.sock, data-root /var/lib/strata-old/docker,
#              exec-root /run/strata-old/exec, pidfile /run/strata-old/dockerd.pid,
#              config /etc/docker/daemon-old.json, cgroup parent /strata-old
#   network    its own bridge strata-old0 (172.31.250.1/24), --iptables=false; this
#              script adds one MASQUERADE rule and two FORWARD rules for that subnet
#              only (STRATA_OLD_NAT=0: no rules, RUN steps then have no internet)
#   logs       /var/log/strata-engine/old-containerd.log, old-dockerd.log
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

OLD_PREFIX=/opt/strata-old/root
OLD_RUN=/run/strata-old
OLD_LIB=/var/lib/strata-old
OLD_SOCK=$OLD_RUN/docker.sock
OLD_JSON=/etc/docker/daemon-old.json
CTRD_SOCK=$OLD_RUN/containerd.sock
CTRD_STATE=$OLD_RUN/containerd
CTRD_ROOT=$OLD_LIB/containerd
CTRD_PID=$OLD_RUN/containerd.pid
DOCKERD_PID=$OLD_RUN/dockerd.pid
DATA_ROOT=$OLD_LIB/docker
EXEC_ROOT=$OLD_RUN/exec
BRIDGE=strata-old0
BRIDGE_ADDR=172.31.250.1/24
BRIDGE_NET=172.31.250.0/24
OLD_PKGS=(docker.io containerd tini)
# A recent client talks to the 20.10 daemon fine (API 1.41); buildx comes with it.
DOCKER=$STRATA_PREFIX/usr/bin/docker
[[ -x $DOCKER ]] || DOCKER=$OLD_PREFIX/usr/bin/docker

old_answers() { timeout 10 "$DOCKER" -H "unix://$OLD_SOCK" info >/dev/null 2>&1; }

install_old() {
    local marker=$OLD_PREFIX/.installed
    if [[ -s $marker && -x $OLD_PREFIX/usr/sbin/dockerd && -x $OLD_PREFIX/usr/bin/containerd ]]; then
        return
    fi
    strata_unpack_debs old bookworm "$STRATA_CACHE/debs-old" "$OLD_PREFIX" "${OLD_PKGS[@]}"
    "$OLD_PREFIX/usr/sbin/dockerd" --version | grep -q ' 20\.10\.' ||
        log "WARNING: expected dockerd 20.10.x, got: $("$OLD_PREFIX/usr/sbin/dockerd" --version)"
}

check_deps() {
    # dockerd 20.10 links libdevmapper and libsystemd (both on a Debian 12 base system).
    strata_apt_install_system runc iptables libdevmapper1.02.1
    local b missing
    for b in "$OLD_PREFIX"/usr/sbin/dockerd "$OLD_PREFIX"/usr/bin/containerd; do
        missing=$(ldd "$b" 2>&1 | grep -E 'not found' || true)
        [[ -z $missing ]] || die "$b cannot run here: $missing"
    done
}


write_configs() {
    mkdir -p "$OLD_RUN" "$STRATA_LOG" "$CTRD_STATE" "$CTRD_ROOT" "$DATA_ROOT" "$EXEC_ROOT" /etc/docker
    cat >"$OLD_RUN/containerd.toml" <<EOF
version = 2
root = "$CTRD_ROOT"
state = "$CTRD_STATE"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$OLD_LIB/containerd-opt"
EOF
    # Options given as dockerd flags must not appear here too (dockerd refuses conflicts).
    # deprecated-key-path: 20.10 would otherwise create /etc/docker/key.json (no flag for it).
    cat >"$OLD_JSON" <<EOF
{
  "features": { "buildkit": true },
  "mtu": $(strata_host_mtu),
  "cgroup-parent": "/strata-old",
  "deprecated-key-path": "$OLD_LIB/key.json"
}
EOF
}

# Own bridge, so the default "bridge" network exists (BuildKit's RUN steps need
# it) without touching docker0 or the main engine's iptables chains.
setup_network() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
        ip link set "$BRIDGE" mtu "$(strata_host_mtu)"
    fi
    ip link set "$BRIDGE" up
    [[ ${STRATA_OLD_NAT:-1} == 1 ]] || return 0
    echo 1 >/proc/sys/net/ipv4/ip_forward
    iptables -t nat -C POSTROUTING -s "$BRIDGE_NET" ! -o "$BRIDGE" -j MASQUERADE 2>/dev/null ||
        iptables -t nat -I POSTROUTING -s "$BRIDGE_NET" ! -o "$BRIDGE" -j MASQUERADE
    iptables -C FORWARD -i "$BRIDGE" -j ACCEPT 2>/dev/null ||
        iptables -I FORWARD -i "$BRIDGE" -j ACCEPT
    iptables -C FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null ||
        iptables -I FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
}

teardown_network() {
    while iptables -t nat -D POSTROUTING -s "$BRIDGE_NET" ! -o "$BRIDGE" -j MASQUERADE 2>/dev/null; do :; done
    while iptables -D FORWARD -i "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
    while iptables -D FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null; do :; done
    ! ip link show "$BRIDGE" >/dev/null 2>&1 || ip link del "$BRIDGE"
}

# The old binaries first: containerd 1.6 must find its own containerd-shim-runc-v2.
old_path() { echo "$OLD_PREFIX/usr/bin:$OLD_PREFIX/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; }

start_containerd() {
    if strata_pid_alive "$CTRD_PID" containerd "$OLD_RUN/containerd.toml"; then
        log "old containerd already running (pid $(<"$CTRD_PID"))"
        return
    fi
    rm -f "$CTRD_PID" "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
    printf '\n==== containerd start %s ====\n' "$(date -Is)" >>"$STRATA_LOG/old-containerd.log"
    PATH=$(old_path) setsid "$OLD_PREFIX/usr/bin/containerd" --config "$OLD_RUN/containerd.toml" \
        </dev/null >>"$STRATA_LOG/old-containerd.log" 2>&1 9>&- &
    echo $! >"$CTRD_PID"
    local _
    for _ in $(seq 1 60); do
        "$OLD_PREFIX/usr/bin/ctr" --address "$CTRD_SOCK" version >/dev/null 2>&1 && return
        strata_pid_alive "$CTRD_PID" containerd "$OLD_RUN/containerd.toml" || break
        sleep 0.5
    done
    tail -n 40 "$STRATA_LOG/old-containerd.log" >&2
    die "old containerd did not come up"
}

start_dockerd() {
    local pid=""
    if strata_pid_alive "$DOCKERD_PID" dockerd "$OLD_JSON"; then
        pid=$(<"$DOCKERD_PID")
        log "old dockerd already running (pid $pid), waiting for it"
    else
        # dockerd refuses to start while its pid file names a running process
        # (a stale file whose pid was reused by something else).
        rm -f "$DOCKERD_PID" "$OLD_SOCK"
        printf '\n==== dockerd start %s ====\n' "$(date -Is)" >>"$STRATA_LOG/old-dockerd.log"
        # dockerd writes --pidfile itself (writing it here would make it refuse to start).
        PATH=$(old_path) setsid "$OLD_PREFIX/usr/sbin/dockerd" \
            --config-file "$OLD_JSON" \
            -H "unix://$OLD_SOCK" \
            --containerd "$CTRD_SOCK" \
            --data-root "$DATA_ROOT" \
            --exec-root "$EXEC_ROOT" \
            --pidfile "$DOCKERD_PID" \
            --bridge "$BRIDGE" --iptables=false --ip-masq=false \
            --storage-driver overlay2 \
            </dev/null >>"$STRATA_LOG/old-dockerd.log" 2>&1 9>&- &
        pid=$!
    fi
    local _
    for _ in $(seq 1 60); do
        old_answers && return
        [[ -d /proc/$pid ]] || break
        sleep 1
    done
    log "--- last lines of $STRATA_LOG/old-dockerd.log"
    tail -n 60 "$STRATA_LOG/old-dockerd.log" >&2
    log "--- last lines of $STRATA_LOG/old-containerd.log"
    tail -n 20 "$STRATA_LOG/old-containerd.log" >&2
    die "old dockerd did not answer on $OLD_SOCK within 60 s"
}

print_status() {
    if old_answers; then
        echo "old engine: running on unix://$OLD_SOCK"
        "$DOCKER" -H "unix://$OLD_SOCK" version --format 'server: Docker Engine {{.Server.Version}} (API {{.Server.APIVersion}}), containerd {{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}}, runc {{range .Server.Components}}{{if eq .Name "runc"}}{{.Version}}{{end}}{{end}}'
        echo "client: $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null) ($DOCKER)"
    else
        echo "old engine: not answering on unix://$OLD_SOCK"
    fi
    local f ok=0
    for f in "$CTRD_PID:containerd" "$DOCKERD_PID:dockerd"; do
        if strata_pid_alive "${f%%:*}" "${f##*:}" "$([[ ${f##*:} == containerd ]] && echo "$OLD_RUN/containerd.toml" || echo "$OLD_JSON")"; then
            echo "old ${f##*:}: pid $(<"${f%%:*}")"
        fi
    done
    old_answers || ok=1
    return $ok
}


cmd_up() {
    if old_answers; then
        print_status
        return
    fi
    install_old
    check_deps
    write_configs
    setup_network
    start_containerd
    start_dockerd
    print_status
}

cmd_down() {
    strata_stop_pid "$DOCKERD_PID" dockerd "old dockerd" "$OLD_JSON"
    strata_stop_pid "$CTRD_PID" containerd "old containerd" "$OLD_RUN/containerd.toml"
    teardown_network
    log "old engine stopped"
}


case ${1:-up} in
    up) [[ $(id -u) == 0 ]] || die "must run as root"; strata_lock "$OLD_RUN"; cmd_up ;;
    down) [[ $(id -u) == 0 ]] || die "must run as root"; strata_lock "$OLD_RUN"; cmd_down ;;
    status) print_status ;;
    env)
        echo "export DOCKER_HOST=unix://$OLD_SOCK"
        echo "export PATH=$STRATA_PREFIX/usr/bin:\$PATH"
        ;;
    *) die "usage: $0 [up|down|status|env]" ;;
esac
