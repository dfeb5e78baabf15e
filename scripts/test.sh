#!/usr/bin/env bash
# Runs every test of Portcullis: formatting, lints, unit and property tests, the integration
# tests that start a real Prometheus, Alertmanager, SpiceDB, Jaeger and prom-label-proxy on
# loopback, and a short run of every fuzz target. Installs what they need first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"

log() { printf '[test] %s\n' "$*" >&2; }

log "formatting: cargo fmt --all --check"
cargo fmt --all --check
log "lints: cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "fuzz smoke run: scripts/fuzz.sh --smoke"
scripts/fuzz.sh --smoke
log "unit, property and integration tests: cargo test --workspace"

# cargo's own last line is a doc-test summary that may count no test: close with the totals.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Every test binary runs, whatever fails before it, so the totals count every test.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
results=$(grep '^test result:' "$log" || true)
passed=$(grep -Eo '[0-9]+ passed' <<<"$results" | awk '{n += $1} END {print n + 0}')
failed=$(grep -Eo '[0-9]+ failed' <<<"$results" | awk '{n += $1} END {print n + 0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
