#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a bounded time each.
#
#   scripts/fuzz.sh            60 s per target
#   scripts/fuzz.sh 300        300 s per target
#   scripts/fuzz.sh --smoke    a fixed seed and a fixed number of runs per target (CI): the
#                              same inputs on every machine, so a red run is a real finding
#                              that replays, not the luck of the clock
#   scripts/fuzz.sh 30 promql  only the targets named
#
# Each target starts from the committed seeds (fuzz/seeds/<target>, from the shared edge cases
# and dashboard queries) plus what earlier runs kept (fuzz/corpus/<target>, not committed), with
# the language's tokens as a dictionary where there is one (fuzz/dicts/<target>.dict). A
# target that fails a property leaves the input in fuzz/artifacts/<target>/ and makes the script
# exit 1; replay it with `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>`.
#
# cargo-fuzz passes rustc flags that only nightly accepts; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. The sanitizer is off by default (FUZZ_SANITIZER=address turns ASan
# on): the code under test forbids `unsafe`, the properties checked are about what the
# enforcers and parsers accept, and without ASan the build is quicker and each run about twice
# as fast.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(promql logql params headers)

seconds=60
smoke=0
case "${1:-}" in
  --smoke) smoke=1; shift ;;
  ''|*[!0-9]*) ;;
  *) seconds=$1; shift ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

log() { printf '[fuzz] %s\n' "$*" >&2; }

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}
cd fuzz
log "building the fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer" >&2

failed=()
mkdir -p target/logs
for target in "${targets[@]}"; do
  if [ "$smoke" = 1 ]; then
    # From the committed seeds alone, as on a fresh checkout, and the same inputs every time.
    corpus="target/smoke-corpus/$target"
    rm -rf "$corpus"
    budget=(-seed=20261203 -runs=60000)
    log "$target: 60000 runs from seed 20261203"
  else
    corpus="corpus/$target"
    budget=(-max_total_time="$seconds")
    log "$target: ${seconds}s"
  fi
  mkdir -p "$corpus"
  dict=()
  [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
  # A PromQL run parses and prints each input several times: shorter inputs, many more runs.
  max_len=4096
  [ "$target" = promql ] && max_len=1024
  status=0
  cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" "seeds/$target" -- \
    "${budget[@]}" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -print_final_stats=1 "${dict[@]}" >"target/logs/$target.log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "target/logs/$target.log" | tail -1)
  if [ "$status" -ne 0 ]; then
    log "$target: FAILED after ${runs:-?} runs; the end of its log:"
    tail -40 "target/logs/$target.log" >&2
    failed+=("$target")
  else
    log "$target: ${runs:-?} runs, corpus of $(ls "$corpus" | wc -l) inputs, no failure"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
log "all ${#targets[@]} targets passed"
