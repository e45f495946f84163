#!/usr/bin/env bash
# A second, independent engine: "another machine" for cache, registry and
# deps-image tests, and the engine the fault tests may kill or fill.
# The same Docker 28.5 binaries as scripts/engine.sh (containerd image
# store), nothing else shared:
#
#   containerd  /run/strata-engine2/containerd.sock, root /var/lib/strata-engine2/containerd
#   dockerd     -H unix:///run/strata-engine2/docker.sock, data-root /var/lib/strata-engine2/docker,
#               exec-root /run/strata-engine2/exec, config /etc/docker/daemon-engine2.json
#   disk        /var/lib/strata-engine2 is a loop-mounted ext4 file of $STRATA_ENGINE2_GB GB
#               (default 8): a full disk there never fills the machine's
#   network     its own bridge strata-engine2 (172.31.251.1/24) with one MASQUERADE rule
#   registry    127.0.0.1:5000 is an insecure registry for it (scripts/registry.sh)
#   logs        /var/log/strata-engine/engine2-{containerd,dockerd}.log
#
#   scripts/engine2.sh [up]     start (idempotent)
#   scripts/engine2.sh down     stop; the disk stays
#   scripts/engine2.sh restart  kill -9 dockerd and containerd, then start: a crash
#   scripts/engine2.sh wipe     stop, and drop the disk (empty cache and images)
#   scripts/engine2.sh env      `export DOCKER_HOST=...` lines
#
# STRATA_E2_NAME=classic STRATA_E2_STORE=classic scripts/engine2.sh ... runs
# another instance the same way (paths, bridge and logs by that name) with
# the classic image store (no MergeOp): the e2e suite's classic lane.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

NAME=${STRATA_E2_NAME:-engine2}
STORE=${STRATA_E2_STORE:-containerd}
# The classic lane runs many builds at once: a bigger (sparse) disk.
case $NAME in
    engine2) NET=251; DEFAULT_GB=8 ;;
    classic) NET=252; DEFAULT_GB=24 ;;
    *) die "STRATA_E2_NAME: engine2 or classic" ;;
esac
E2_RUN=/run/strata-$NAME
E2_LIB=/var/lib/strata-$NAME
E2_IMG=/var/lib/strata-$NAME.img
E2_SOCK=$E2_RUN/docker.sock
E2_JSON=/etc/docker/daemon-$NAME.json
CTRD_SOCK=$E2_RUN/containerd.sock
CTRD_PID=$E2_RUN/containerd.pid
DOCKERD_PID=$E2_RUN/dockerd.pid
BRIDGE=strata-$NAME
BRIDGE=${BRIDGE:0:15}
BRIDGE_ADDR=172.31.$NET.1/24
BRIDGE_NET=172.31.$NET.0/24
DOCKER=$STRATA_PREFIX/usr/bin/docker
SIZE_GB=${STRATA_ENGINE2_GB:-$DEFAULT_GB}

answers() { timeout 10 "$DOCKER" -H "unix://$E2_SOCK" info >/dev/null 2>&1; }

mount_disk() {
    mountpoint -q "$E2_LIB" && return
    mkdir -p "$E2_LIB"
    if [[ ! -f $E2_IMG ]]; then
        log "$NAME: a ${SIZE_GB} GB disk at $E2_IMG"
        truncate -s "${SIZE_GB}G" "$E2_IMG"
        mkfs.ext4 -q -F "$E2_IMG"
    fi
    mount -o loop "$E2_IMG" "$E2_LIB"
}

write_configs() {
    mkdir -p "$E2_RUN" "$STRATA_LOG" "$E2_LIB/containerd" "$E2_LIB/docker" "$E2_RUN/exec" /etc/docker
    cat >"$E2_RUN/containerd.toml" <<EOF
version = 2
root = "$E2_LIB/containerd"
state = "$E2_RUN/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
EOF
    cat >"$E2_JSON" <<EOF
{
  "features": { "containerd-snapshotter": $([[ $STORE == containerd ]] && echo true || echo false) },
  "data-root": "$E2_LIB/docker",
  "exec-root": "$E2_RUN/exec",
  "pidfile": "$DOCKERD_PID",
  "containerd": "$CTRD_SOCK",
  "hosts": ["unix://$E2_SOCK"],
  "bridge": "$BRIDGE",
  "iptables": false,
  "ip-masq": false,
  "mtu": $(strata_host_mtu),
  "cgroup-parent": "/strata-$NAME",
  "insecure-registries": ["127.0.0.1:5000", "localhost:5000"],
  "builder": { "gc": { "enabled": true, "defaultReservedSpace": "1GB", "defaultMaxUsedSpace": "$((SIZE_GB * 6 / 10))GB", "defaultMinFreeSpace": "512MB" } }
}
EOF
}

# A bridge of an earlier version of this script (another name, the same
# address) makes replies leave by the wrong interface: the engine's
# containers then time out on the host. Drop it and its rules.
drop_stale_bridges() {
    local dev
    for dev in $(ip -o -4 addr show | awk -v a="$BRIDGE_ADDR" '$4 == a {print $2}' | sort -u); do
        [[ $dev == "$BRIDGE" ]] && continue
        [[ $dev == strata-* ]] || die "$dev holds $BRIDGE_ADDR, which $NAME's bridge $BRIDGE needs"
        log "$NAME: dropping the stale bridge $dev (same address as $BRIDGE)"
        while iptables -D FORWARD -i "$dev" -j ACCEPT 2>/dev/null; do :; done
        while iptables -D FORWARD -o "$dev" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null; do :; done
        while iptables -t nat -D POSTROUTING -s "$BRIDGE_NET" ! -o "$dev" -j MASQUERADE 2>/dev/null; do :; done
        ip link del "$dev"
    done
}

setup_network() {
    drop_stale_bridges
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
        ip link set "$BRIDGE" mtu "$(strata_host_mtu)"
    fi
    ip link set "$BRIDGE" up
    echo 1 >/proc/sys/net/ipv4/ip_forward
    iptables -t nat -C POSTROUTING -s "$BRIDGE_NET" ! -o "$BRIDGE" -j MASQUERADE 2>/dev/null ||
        iptables -t nat -I POSTROUTING -s "$BRIDGE_NET" ! -o "$BRIDGE" -j MASQUERADE
    iptables -C FORWARD -i "$BRIDGE" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$BRIDGE" -j ACCEPT
    iptables -C FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null ||
        iptables -I FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
}

start_containerd() {
    if strata_pid_alive "$CTRD_PID" containerd "$E2_RUN/containerd.toml"; then
        return
    fi
    rm -f "$CTRD_PID" "$CTRD_SOCK" "$CTRD_SOCK.ttrpc"
    printf '\n==== containerd start %s ====\n' "$(date -Is)" >>"$STRATA_LOG/$NAME-containerd.log"
    PATH=$STRATA_PREFIX/usr/bin:$STRATA_PREFIX/usr/sbin:$PATH setsid "$STRATA_PREFIX/usr/bin/containerd" \
        --config "$E2_RUN/containerd.toml" </dev/null >>"$STRATA_LOG/$NAME-containerd.log" 2>&1 8>&- 9>&- &
    echo $! >"$CTRD_PID"
    local _
    for _ in $(seq 1 60); do
        "$STRATA_PREFIX/usr/bin/ctr" --address "$CTRD_SOCK" version >/dev/null 2>&1 && return
        strata_pid_alive "$CTRD_PID" containerd "$E2_RUN/containerd.toml" || break
        sleep 0.5
    done
    tail -n 40 "$STRATA_LOG/$NAME-containerd.log" >&2
    die "$NAME containerd did not come up"
}

start_dockerd() {
    if ! strata_pid_alive "$DOCKERD_PID" dockerd "$E2_JSON"; then
        rm -f "$DOCKERD_PID" "$E2_SOCK"
        printf '\n==== dockerd start %s ====\n' "$(date -Is)" >>"$STRATA_LOG/$NAME-dockerd.log"
        PATH=$STRATA_PREFIX/usr/bin:$STRATA_PREFIX/usr/sbin:$PATH setsid "$STRATA_PREFIX/usr/sbin/dockerd" \
            --config-file "$E2_JSON" </dev/null >>"$STRATA_LOG/$NAME-dockerd.log" 2>&1 8>&- 9>&- &
    fi
    local _
    for _ in $(seq 1 90); do
        answers && return
        sleep 1
    done
    tail -n 60 "$STRATA_LOG/$NAME-dockerd.log" >&2
    die "$NAME dockerd did not answer on $E2_SOCK within 90 s"
}

cmd_up() {
    setup_network
    answers && return
    [[ -x $STRATA_PREFIX/usr/sbin/dockerd ]] || bash "$here/engine.sh" up
    mount_disk
    write_configs
    start_containerd
    start_dockerd
    log "$NAME ($STORE store): running on unix://$E2_SOCK"
}

kill9() {
    local f
    for f in "$DOCKERD_PID" "$CTRD_PID"; do
        [[ -s $f ]] && kill -9 "$(<"$f")" 2>/dev/null || true
    done
    sleep 1
}

cmd_down() {
    strata_stop_pid "$DOCKERD_PID" dockerd "$NAME dockerd" "$E2_JSON"
    strata_stop_pid "$CTRD_PID" containerd "$NAME containerd" "$E2_RUN/containerd.toml"
}

case ${1:-up} in
    up) strata_lock "$E2_RUN"; cmd_up ;;
    down) strata_lock "$E2_RUN"; cmd_down ;;
    restart) strata_lock "$E2_RUN"; kill9; cmd_up ;;
    wipe)
        strata_lock "$E2_RUN"
        cmd_down
        # containers' mounts live below the data root
        { grep " $E2_LIB/" /proc/mounts || true; } | awk '{print $2}' | sort -r | xargs -r umount -l
        ! mountpoint -q "$E2_LIB" || umount -l "$E2_LIB"
        rm -f "$E2_IMG"
        log "$NAME: wiped"
        ;;
    env)
        echo "export DOCKER_HOST=unix://$E2_SOCK"
        echo "export PATH=$STRATA_PREFIX/usr/bin:\$PATH"
        ;;
    *) die "usage: $0 [up|down|restart|wipe|env]" ;;
esac
