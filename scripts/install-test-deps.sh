#!/usr/bin/env bash
# Installs what the tests need, reusing whatever is already installed:
#   - Prometheus and promtool 2.42, and Alertmanager, from Debian's packages (the real upstreams);
#   - SpiceDB, a current promtool (a real client that can send a bearer token) and Jaeger, built
#     from the Go module proxy at pinned versions into $(go env GOPATH)/bin.
set -euo pipefail

SPICEDB_VERSION=v1.56.2
PROMTOOL_VERSION=v0.316.0
JAEGER_VERSION=v1.75.0

log() { printf '[deps] %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# go_install BINARY MODULE VERSION: builds MODULE@VERSION unless BINARY is already that version.
go_install() {
  local binary=$1 module=$2 version=$3
  local gobin
  gobin=$(go env GOBIN)
  [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
  local stamp="$gobin/.$binary.version"
  if [ -x "$gobin/$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module@$version" ]; then
    return 0
  fi
  if [ -x "$gobin/$binary" ] && go version -m "$gobin/$binary" 2>/dev/null | grep -q "mod.*$version"; then
    echo "$module@$version" > "$stamp"
    return 0
  fi
  log "go install $module@$version (several minutes on a fresh machine)"
  GOFLAGS=-mod=mod go install "$module@$version"
  echo "$module@$version" > "$stamp"
}

# Jaeger's go.mod has replace directives, which `go install module@version` refuses: build it
# inside its own module, downloaded from the Go module proxy at the pinned version.
jaeger_install() {
  local gobin
  gobin=$(go env GOBIN)
  [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
  local stamp="$gobin/.jaeger.version"
  if [ -x "$gobin/jaeger" ] && [ "$(cat "$stamp" 2>/dev/null)" = "jaeger@$JAEGER_VERSION" ]; then
    return 0
  fi
  log "building Jaeger $JAEGER_VERSION from the Go module proxy (several minutes on a fresh machine)"
  local dir
  dir=$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$gobin"
  (cd "$dir" && GOFLAGS=-mod=mod go build -o "$gobin/jaeger" ./cmd/jaeger)
  echo "jaeger@$JAEGER_VERSION" > "$stamp"
}

apt_install prometheus prometheus-alertmanager python3 curl wrk
command -v go >/dev/null || { log "Go is required to build SpiceDB, promtool and Jaeger"; exit 1; }
go_install spicedb github.com/authzed/spicedb/cmd/spicedb "$SPICEDB_VERSION"
go_install promtool github.com/prometheus/prometheus/cmd/promtool "$PROMTOOL_VERSION"
go_install prom-label-proxy github.com/prometheus-community/prom-label-proxy v0.14.0
jaeger_install
log "ready"
