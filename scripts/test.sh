#!/usr/bin/env bash
# Runs every test of Portcullis: formatting, lints, unit and property tests, the integration
# tests that start a real Prometheus, Alertmanager, SpiceDB, Jaeger and prom-label-proxy on
# loopback, and a short run of every fuzz target. Installs what they need first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/fuzz.sh --smoke
cargo test --workspace --locked
