# shellcheck shell=bash
# Shared helpers for scripts/engine.sh and scripts/base-images.sh.
# Sourced, not executed. Everything here runs as root.
# shellcheck disable=SC2034 # the constants are used by the sourcing scripts

STRATA_PREFIX=/opt/strata-engine/root         # unpacked .debs (dockerd, containerd, CLI, buildx)
STRATA_CACHE=/var/cache/strata-engine         # private apt state, downloaded .debs, rootfs tarballs
STRATA_RUN=/run/strata-engine                 # pid files, generated containerd config
STRATA_LOG=/var/log/strata-engine             # containerd.log, dockerd.log
STRATA_DOCKER_SOCK=/var/run/docker.sock

log() { printf '[strata] %s\n' "$*" >&2; }
die() { printf '[strata] ERROR: %s\n' "$*" >&2; exit 1; }

# Debian mirror URI and keyring, taken from the machine's deb822 sources so the
# private apt configs use the same mirror and trust anchor as the system.
strata_debian_uri() {
    local f=/etc/apt/sources.list.d/debian.sources uri=""
    [[ -r $f ]] && uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$f")
    echo "${uri:-http://deb.debian.org/debian}"
}
strata_debian_keyring() {
    local f=/etc/apt/sources.list.d/debian.sources key=""
    [[ -r $f ]] && key=$(awk '/^Signed-By:/ {print $2; exit}' "$f")
    echo "${key:-/usr/share/keyrings/debian-archive-keyring.gpg}"
}

# strata_apt_config NAME SUITE ARCHS  -> prints the path to use as APT_CONFIG.
# Sets up a private apt configuration under
# $STRATA_CACHE/apt-NAME: its own sources, lists and cache, so the machine's
# apt setup (sources, architectures, lists) is never touched. The lists are
# fetched once (and again with STRATA_APT_REFRESH=1).
strata_apt_config() {
    local name=$1 suite=$2 archs=$3
    local d=$STRATA_CACHE/apt-$name
    mkdir -p "$d/sources.d" "$d/parts.d" "$d/prefs.d" "$d/lists/partial" "$d/cache/archives/partial"
    cat >"$d/sources.d/debian.sources" <<EOF
Types: deb
URIs: $(strata_debian_uri)
Suites: $suite
Components: main
Signed-By: $(strata_debian_keyring)
EOF
    local arch_list="" a
    for a in ${archs//,/ }; do arch_list+="\"$a\"; "; done
    cat >"$d/apt.conf" <<EOF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$d/sources.d";
Dir::Etc::Parts "$d/parts.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$d/prefs.d";
Dir::State::Lists "$d/lists";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$d/cache";
APT::Architecture "amd64";
APT::Architectures { $arch_list};
// Debian mirrors used here may serve a frozen snapshot whose Release file is past Valid-Until.
Acquire::Check-Valid-Until "false";
// .debs are downloaded into root-only directories; avoid the _apt sandbox warning.
APT::Sandbox::User "root";
Acquire::Retries "3";
EOF
    if [[ ${STRATA_APT_REFRESH:-0} == 1 ]] || ! compgen -G "$d/lists/*_Packages*" >/dev/null; then
        log "apt-$name: fetching package lists ($suite, $archs)"
        APT_CONFIG=$d/apt.conf apt-get -qq update >&2 || die "apt-get update failed for private config $d"
    fi
    echo "$d/apt.conf"
}

# Install packages from the machine's own (bookworm) sources if missing.
strata_apt_install_system() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing from system apt: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no lists yet; install may also fail on stale lists.
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# strata_unpack_debs APTNAME SUITE DEBS_DIR PREFIX PKG...
# Downloads PKG... with the private apt config APTNAME/SUITE (refreshing its
# lists once if a download fails: mirrors move on) into DEBS_DIR and unpacks
# them into a fresh PREFIX with dpkg-deb -x (nothing registered with dpkg).
# PREFIX/.installed lists the unpacked .debs.
strata_unpack_debs() {
    local name=$1 suite=$2 debs=$3 prefix=$4 conf d
    shift 4
    mkdir -p "$debs"
    conf=$(strata_apt_config "$name" "$suite" amd64)
    log "downloading from Debian $suite: $*"
    rm -f "$debs"/*.deb
    # apt-get download writes into the current directory.
    (cd "$debs" && APT_CONFIG=$conf apt-get -qq download "$@" >&2) || {
        log "download failed; refreshing lists and retrying"
        conf=$(STRATA_APT_REFRESH=1 strata_apt_config "$name" "$suite" amd64)
        (cd "$debs" && APT_CONFIG=$conf apt-get -qq download "$@" >&2)
    }
    rm -rf "$prefix"
    mkdir -p "$prefix"
    for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$prefix"; done
    (cd "$debs" && ls -1 ./*.deb) >"$prefix/.installed"
    log "unpacked into $prefix: $(tr '\n' ' ' <"$prefix/.installed")"
}

# True if the pid in file $1 is a live (not zombie) process named $2.
strata_pid_alive() {
    local f=$1 comm=$2 part=${3:-} pid stat cmd
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # /proc/PID/stat: "PID (comm) STATE ..."
    [[ $stat == "$pid ($comm) "* && $stat != "$pid ($comm) Z"* ]] || return 1
    # A stale pid file whose pid now belongs to another instance's daemon
    # (same comm): its command line names another config.
    [[ -n $part ]] || return 0
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *"$part"* ]]
}

# Send SIGTERM to the process in pid file $1 (if it is a live $2 whose
# command line has $4) and wait; SIGKILL after 30 s. $3: how to name it in
# the log ("containerd", "old dockerd").
strata_stop_pid() {
    local f=$1 comm=$2 label=${3:-$2} part=${4:-} pid _
    strata_pid_alive "$f" "$comm" "$part" || { rm -f "$f"; return 0; }
    pid=$(<"$f")
    log "stopping $label (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        strata_pid_alive "$f" "$comm" "$part" || { rm -f "$f"; return 0; }
        sleep 0.5
    done
    log "$label did not exit after 30 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
}

# The MTU of the default route's device (1500 if unknown). The daemons'
# bridges use it: this VM's eth0 has 1400, and a 1500 bridge stalls large
# downloads in containers.
strata_host_mtu() {
    local dev
    dev=$(ip route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
    [[ -n $dev && -r /sys/class/net/$dev/mtu ]] && cat "/sys/class/net/$dev/mtu" || echo 1500
}

# One up/down at a time per engine (parallel test jobs), so a second engine
# is never started: lock fd 9 on DIR/lock (daemons are started with 9>&-).
strata_lock() {
    mkdir -p "$1"
    exec 9>"$1/lock"
    flock -w 120 9 || die "timed out waiting for $1/lock"
}
