#!/usr/bin/env bash
# Installs what tests and demos need on a fresh Debian 12 machine (CI runs it as root):
#   1. PostgreSQL server binaries   (paykit.devstack.postgres starts a private cluster)
#   2. uv                           (workspace/package manager)
#   3. Kafka broker jars            (paykit.devstack.kafka runs the broker from them)
#   4. the Python workspace         (uv sync)
# Idempotent: each step checks first and is skipped when already satisfied.
# Works from any clone location: paths are derived from this script's own path.
set -Eeuo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
KAFKA_POM="$REPO_ROOT/deploy/kafka/pom.xml"
KAFKA_DEPS="$REPO_ROOT/deploy/kafka/target/dependency"

log() { printf '[install-deps] %s\n' "$*"; }
die() {
    printf '[install-deps] ERROR: %s\n' "$*" >&2
    exit 1
}
# Any unexpected failure still names the command that failed.
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        die "root (or sudo) needed to run: $*"
    fi
}

APT_UPDATED=0
apt_install() {
    have apt-get || die "apt-get not found; install these yourself: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
}

step_postgres() {
    if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        log "postgresql: present ($(basename -a /usr/lib/postgresql/*/ | paste -sd " "))"
        return
    fi
    # Debian's package may create and start its own "main" cluster; harmless, we
    # never use it (the devstack runs a private cluster on a free port).
    apt_install postgresql
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
        || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
}

# Prints the command to run uv with (uv itself, or `python3 -m uv` when pip put
# the binary somewhere not on PATH).
uv_command() {
    if have uv; then
        echo uv
    elif [ -x "$HOME/.local/bin/uv" ]; then
        echo "$HOME/.local/bin/uv"
    elif python3 -m uv --version >/dev/null 2>&1; then
        echo "python3 -m uv"
    else
        return 1
    fi
}

step_uv() {
    if have uv; then
        log "uv: present ($(uv --version))"
        return
    fi
    have python3 || apt_install python3
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    local pip_args=(install --quiet uv)
    # Debian 12 marks its Python as externally managed (PEP 668); pip refuses to
    # install into it unless told to. uv is a self-contained binary, so that is safe.
    if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
        pip_args+=(--break-system-packages)
    fi
    log "pip ${pip_args[*]}"
    python3 -m pip "${pip_args[@]}" || die "pip install uv failed"
    uv_command >/dev/null || die "uv installed but not runnable"
}

step_kafka_jars() {
    # The broker itself needs a JVM, whether or not the jars are already there.
    have java || apt_install default-jre-headless
    if compgen -G "$KAFKA_DEPS/kafka_2.13-*.jar" >/dev/null; then
        log "kafka jars: present"
        return
    fi
    have mvn || apt_install maven
    log "mvn: resolving Kafka broker jars into deploy/kafka/target/dependency"
    mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
        || die "mvn dependency:copy-dependencies failed"
    compgen -G "$KAFKA_DEPS/kafka_2.13-*.jar" >/dev/null \
        || die "mvn succeeded but no kafka_2.13-*.jar in $KAFKA_DEPS"
}

step_sync() {
    local uv
    uv="$(uv_command)" || die "uv not found"
    cd "$REPO_ROOT"
    # $uv is unquoted on purpose: it may be the two words "python3 -m uv".
    # shellcheck disable=SC2086
    if [ -f uv.lock ]; then
        log "uv sync --frozen"
        $uv sync --frozen || die "uv sync --frozen failed (is uv.lock out of date?)"
    else
        log "uv sync"
        $uv sync || die "uv sync failed"
    fi
}

log "repo: $REPO_ROOT"
step_postgres
step_uv
step_kafka_jars
step_sync
log "done"
