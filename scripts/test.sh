#!/usr/bin/env bash
# Runs every test of Portcullis: formatting, lints, unit tests, and the integration tests that
# start a real Prometheus, SpiceDB and Jaeger on loopback. Installs what they need first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
