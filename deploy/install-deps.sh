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

# helm, built from source with the Go toolchain into a repo-local directory
# (no system-wide install, no download of release tarballs). Only the copy in
# $TOOLS_BIN counts: `make helm-check` uses that one, whatever is on PATH.
step_helm() {
    local helm="$TOOLS_BIN/helm" built
    if ! have go && [ -x /usr/local/go/bin/go ]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
        # `helm version` of a go-installed helm says only "v3.22"; the module version is exact.
        built="$(have go && go version -m "$helm" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" {print $3}')" || true
        if [ -z "$built" ] || [ "$built" = "$HELM_VERSION" ]; then
            log "helm: present (${built:-$("$helm" version --short)} in .run/tools/bin)"
            return
        fi
        log "helm: .run/tools/bin has $built, want $HELM_VERSION"
    fi
    have go || die "go not found (needed to build helm); install Go >= 1.24 or put it on PATH"
    mkdir -p "$TOOLS_BIN"
    log "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION ($(go version | cut -d' ' -f3); takes a few minutes)"
    GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
        || die "go install helm@$HELM_VERSION failed"
    "$helm" version --short >/dev/null 2>&1 || die "helm built but not runnable: $helm"
    log "helm: installed ($HELM_VERSION in .run/tools/bin)"
}

# promtool (checks and unit-tests the Prometheus alert rules), built like helm.
step_promtool() {
    local promtool="$TOOLS_BIN/promtool" built
    if ! have go && [ -x /usr/local/go/bin/go ]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    if [ -x "$promtool" ] && "$promtool" --version >/dev/null 2>&1; then
        # A go-installed promtool reports no release version; the module version is exact.
        built="$(have go && go version -m "$promtool" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/prometheus/prometheus" {print $3}')" || true
        if [ -z "$built" ] || [ "$built" = "$PROMTOOL_VERSION" ]; then
            log "promtool: present (${built:-unknown version} in .run/tools/bin)"
            return
        fi
        log "promtool: .run/tools/bin has $built, want $PROMTOOL_VERSION"
    fi
    have go || die "go not found (needed to build promtool); install Go >= 1.24 or put it on PATH"
    mkdir -p "$TOOLS_BIN"
    log "go install github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION ($(go version | cut -d' ' -f3); takes a few minutes)"
    GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION" \
        || die "go install promtool@$PROMTOOL_VERSION failed"
    "$promtool" --version >/dev/null 2>&1 || die "promtool built but not runnable: $promtool"
    log "promtool: installed ($PROMTOOL_VERSION in .run/tools/bin)"
}

# buf (protobuf breaking-change check against protos/baseline), built like helm.
step_buf() {
    local buf="$TOOLS_BIN/buf" built
    if ! have go && [ -x /usr/local/go/bin/go ]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    if [ -x "$buf" ] && "$buf" --version >/dev/null 2>&1; then
        # `buf --version` says "1.75.0"; the module version of the binary is exact either way.
        built="$(have go && go version -m "$buf" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/bufbuild/buf" {print $3}')" || true
        if [ -z "$built" ] || [ "$built" = "$BUF_VERSION" ]; then
            log "buf: present (${built:-v$("$buf" --version)} in .run/tools/bin)"
            return
        fi
        log "buf: .run/tools/bin has $built, want $BUF_VERSION"
    fi
    have go || die "go not found (needed to build buf); install Go >= 1.24 or put it on PATH"
    mkdir -p "$TOOLS_BIN"
    log "go install github.com/bufbuild/buf/cmd/buf@$BUF_VERSION ($(go version | cut -d' ' -f3); takes a few minutes)"
    GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION" \
        || die "go install buf@$BUF_VERSION failed"
    "$buf" --version >/dev/null 2>&1 || die "buf built but not runnable: $buf"
    log "buf: installed ($BUF_VERSION in .run/tools/bin)"
}

# stripe-mock (Stripe's API mock, for the card connector's tests), built like helm.
step_stripe_mock() {
    local stripe_mock="$TOOLS_BIN/stripe-mock" built
    if ! have go && [ -x /usr/local/go/bin/go ]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    if [ -x "$stripe_mock" ] && "$stripe_mock" -version >/dev/null 2>&1; then
        # A go-installed stripe-mock reports version "master"; the module version is exact.
        built="$(have go && go version -m "$stripe_mock" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/stripe/stripe-mock" {print $3}')" || true
        if [ -z "$built" ] || [ "$built" = "$STRIPE_MOCK_VERSION" ]; then
            log "stripe-mock: present (${built:-unknown version} in .run/tools/bin)"
            return
        fi
        log "stripe-mock: .run/tools/bin has $built, want $STRIPE_MOCK_VERSION"
    fi
    have go || die "go not found (needed to build stripe-mock); install Go >= 1.22 or put it on PATH"
    mkdir -p "$TOOLS_BIN"
    log "go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION ($(go version | cut -d' ' -f3))"
    GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" \
        || die "go install stripe-mock@$STRIPE_MOCK_VERSION failed"
    "$stripe_mock" -version >/dev/null 2>&1 || die "stripe-mock built but not runnable: $stripe_mock"
    log "stripe-mock: installed ($STRIPE_MOCK_VERSION in .run/tools/bin)"
}

log "repo: $REPO_ROOT"
if [ "${1:-}" = helm ]; then
    # `install-deps.sh helm`: only the helm step (tests/deploy/test_helm.py uses it).
    step_helm
    log "done"
    exit 0
fi
if [ "${1:-}" = promtool ]; then
    # `install-deps.sh promtool`: only the promtool step (tests/deploy/test_alerts.py uses it).
    step_promtool
    log "done"
    exit 0
fi
if [ "${1:-}" = buf ]; then
    # `install-deps.sh buf`: only the buf step (tests/contracts/test_breaking_changes.py uses it).
    step_buf
    log "done"
    exit 0
fi
if [ "${1:-}" = stripe-mock ]; then
    # `install-deps.sh stripe-mock`: only the stripe-mock step
    # (services/channel_gateway/tests/integration/test_card_stripe_mock.py uses it).
    step_stripe_mock
    log "done"
    exit 0
fi
step_postgres
step_uv
step_kafka_jars
step_sync
step_helm
step_promtool
step_buf
step_stripe_mock
log "done"
