# shellcheck shell=bash
# Source this (`. scripts/env.sh`) to use the engine installed by scripts/engine.sh:
# puts the unpacked docker CLI (28.5.x, unstable) ahead of /usr/local/bin/docker
# (28.2.2 client) and dockerd/containerd/ctr on PATH.
#
# buildx needs no variable: engine.sh links it into /usr/local/lib/docker/cli-plugins,
# one of the CLI's built-in plugin dirs, so `docker buildx` works with any
# DOCKER_CONFIG (tests may point DOCKER_CONFIG at a temp dir).
# The daemon listens on the default unix:///var/run/docker.sock, so DOCKER_HOST
# is left alone.
case ":$PATH:" in
    *:/opt/strata-engine/root/usr/bin:*) ;;
    *) export PATH=/opt/strata-engine/root/usr/bin:/opt/strata-engine/root/usr/sbin:$PATH ;;
esac
