#!/usr/bin/env bash
# docker compose v2: Debian unstable's docker-compose .deb, unpacked (as
# scripts/engine.sh unpacks the engine) under /opt/strata-compose and linked
# as the docker CLI plugin. Idempotent. Compose builds through bake, so
# `additional_contexts: { NAME: service:other }` reaches strata as bake's
# `target:` link does.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

PREFIX=/opt/strata-compose
PLUGIN=$PREFIX/usr/libexec/docker/cli-plugins/docker-compose
LINK=/usr/local/lib/docker/cli-plugins/docker-compose

if [[ ! -x $PLUGIN ]]; then
    strata_unpack_debs unstable unstable "$STRATA_CACHE/debs-compose" "$PREFIX" docker-compose
fi
[[ -x $PLUGIN ]] || die "docker-compose unpacked, but $PLUGIN is missing"
mkdir -p "$(dirname "$LINK")"
ln -sfn "$PLUGIN" "$LINK"
log "compose: $("$PLUGIN" version 2>&1 | head -1)"
