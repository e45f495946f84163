#!/usr/bin/env bash
# A local registry on 127.0.0.1:5000 (Debian's docker-registry, no auth,
# plain HTTP), for pushes, registry caches and the deps image. Both engines
# list it as an insecure registry (localhost needs no entry; 127.0.0.1 does).
#
#   scripts/registry.sh [up]   install if needed and start (idempotent)
#   scripts/registry.sh down   stop it
#   scripts/registry.sh wipe   stop it and delete what it stores
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

REG_RUN=/run/strata-registry
REG_DATA=/var/lib/strata-registry
REG_PID=$REG_RUN/registry.pid
ADDR=127.0.0.1:5000

answers() { curl -fsS -o /dev/null "http://$ADDR/v2/" 2>/dev/null; }

cmd_up() {
    answers && return
    strata_apt_install_system docker-registry curl
    mkdir -p "$REG_RUN" "$REG_DATA" "$STRATA_LOG"
    cat >"$REG_RUN/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REG_DATA
  delete:
    enabled: true
http:
  addr: $ADDR
EOF
    # Debian's package starts a systemd unit on :5000 where systemd runs;
    # here it is ours alone.
    if ! strata_pid_alive "$REG_PID" docker-registry "$REG_RUN/config.yml"; then
        setsid /usr/bin/docker-registry serve "$REG_RUN/config.yml" </dev/null >>"$STRATA_LOG/registry.log" 2>&1 8>&- 9>&- &
        echo $! >"$REG_PID"
    fi
    local _
    for _ in $(seq 1 30); do
        answers && { log "registry: http://$ADDR"; return; }
        sleep 0.5
    done
    tail -n 20 "$STRATA_LOG/registry.log" >&2
    die "the registry did not answer on $ADDR"
}

case ${1:-up} in
    up) strata_lock "$REG_RUN"; cmd_up ;;
    down) strata_lock "$REG_RUN"; strata_stop_pid "$REG_PID" docker-registry registry "$REG_RUN/config.yml" ;;
    wipe) strata_lock "$REG_RUN"; strata_stop_pid "$REG_PID" docker-registry registry "$REG_RUN/config.yml"; rm -rf "$REG_DATA" ;;
    *) die "usage: $0 [up|down|wipe]" ;;
esac
