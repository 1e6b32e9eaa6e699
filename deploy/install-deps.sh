#!/usr/bin/env bash
# Installs what tests and demos need on a fresh Debian 12 machine (CI runs it as root):
#   1. PostgreSQL server binaries   (paykit.devstack.postgres starts a private cluster)
#   2. uv                           (workspace/package manager)
#   3. Kafka broker jars            (paykit.devstack.kafka runs the broker from them)
#   4. the Python workspace         (uv sync)
#   5. helm                         (go install into .run/tools/bin; `make helm-check`)
#   6. promtool                     (go install into .run/tools/bin; tests/deploy/test_alerts.py)
#   7. buf                          (go install into .run/tools/bin; `make proto-breaking`)
#   8. stripe-mock                  (go install into .run/tools/bin; card connector integration tests)
# Idempotent: each step checks first and is skipped when already satisfied.
# `install-deps.sh helm` runs step 5 alone, `install-deps.sh promtool` step 6,
# `install-deps.sh buf` step 7, `install-deps.sh stripe-mock` step 8.
# Works from any clone location: paths are derived from this script's own path.
set -Eeuo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
KAFKA_POM="$REPO_ROOT/deploy/kafka/pom.xml"
KAFKA_DEPS="$REPO_ROOT/deploy/kafka/target/dependency"
HELM_VERSION="v3.22.0"
# Prometheus 3.x is published as Go module v0.3xx (v0.316.0 is Prometheus 3.16).
PROMTOOL_VERSION="v0.316.0"
BUF_VERSION="v1.75.0"
STRIPE_MOCK_VERSION="v0.203.0"
TOOLS_BIN="$REPO_ROOT/.run/tools/bin"

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

# Go tools the tests use, each built from source with the Go toolchain into a repo-local
# directory (no system-wide install, no release tarball). Only the copies in $TOOLS_BIN
# count: the tests use those, whatever is on PATH. A binary's module version (go version -m)
# says exactly what was built; a go-installed tool's own --version often does not.
#   go_tool NAME MODULE PACKAGE VERSION VERSION_FLAG
go_tool() {
    local name="$1" module="$2" package="$3" version="$4" version_flag="$5"
    local binary="$TOOLS_BIN/$name" built
    if ! have go && [ -x /usr/local/go/bin/go ]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    if [ -x "$binary" ] && "$binary" "$version_flag" >/dev/null 2>&1; then
        built="$(have go && go version -m "$binary" 2>/dev/null | awk -v m="$module" '$1 == "mod" && $2 == m {print $3}')" || true
        if [ -z "$built" ] || [ "$built" = "$version" ]; then
            log "$name: present (${built:-unknown version} in .run/tools/bin)"
            return
        fi
        log "$name: .run/tools/bin has $built, want $version"
    fi
    have go || die "go not found (needed to build $name); install Go >= 1.24 or put it on PATH"
    mkdir -p "$TOOLS_BIN"
    log "go install $package@$version ($(go version | cut -d' ' -f3); a few minutes on a cold build cache)"
    GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "$package@$version" || die "go install $package@$version failed"
    "$binary" "$version_flag" >/dev/null 2>&1 || die "$name built but not runnable: $binary"
    log "$name: installed ($version in .run/tools/bin)"
}

# helm: helm lint / template of charts/ (tests/deploy/test_helm.py).
step_helm() { go_tool helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$HELM_VERSION" version; }
# promtool: checks and unit-tests the Prometheus alert rules (tests/deploy/test_alerts.py).
step_promtool() {
    go_tool promtool github.com/prometheus/prometheus github.com/prometheus/prometheus/cmd/promtool \
        "$PROMTOOL_VERSION" --version
}
# buf: the protobuf breaking-change check (tests/contracts/test_breaking_changes.py).
step_buf() { go_tool buf github.com/bufbuild/buf github.com/bufbuild/buf/cmd/buf "$BUF_VERSION" --version; }
# stripe-mock: Stripe's API mock for the card connector (test_card_stripe_mock.py).
step_stripe_mock() {
    go_tool stripe-mock github.com/stripe/stripe-mock github.com/stripe/stripe-mock "$STRIPE_MOCK_VERSION" -version
}

log "repo: $REPO_ROOT"
case "${1:-}" in
    # `install-deps.sh <tool>`: only that tool's step (the tests that need it call this).
    helm | promtool | buf | stripe-mock)
        "step_${1//-/_}"
        log "done"
        exit 0
        ;;
esac
step_postgres
step_uv
step_kafka_jars
step_sync
step_helm
step_promtool
step_buf
step_stripe_mock
log "done"
