#!/usr/bin/env bash
# Profiles one system under the benchmark's load: the fast upstream, the bench mix, perf.
#
#   bench/profile.sh                          # Portcullis (allowlist), 64 connections
#   bench/profile.sh prom-label-proxy 64
#   PORTCULLIS_LOG=warn bench/profile.sh      # e.g. to see what the log layer costs
#
# Prints requests/s, CPU microseconds per request and peak RSS, then where the CPU went, by
# category (bench/perf-categories.py). The perf data stays in .work/bench-profile/. Needs what
# bench/run.sh installs, plus perf (Debian's linux-perf). Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
system=${1:-portcullis-allowlist}
conns=${2:-64}
seconds=${BENCH_PROFILE_SECONDS:-15}
work="$root/.work/bench-profile"
port_up=${BENCH_PORT_BASE:-19400}
port_up=$((port_up + 90))
port_sut=$((port_up + 1))
mkdir -p "$work"
command -v perf >/dev/null || { echo "perf is needed: apt-get install linux-perf" >&2; exit 1; }

nice -n 10 cargo build --release --locked -p portcullis >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
(cd bench && GOFLAGS=-buildvcs=false nice -n 10 go build -o "$work/fast-upstream" fast-upstream.go)
gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"

pin_sut=(); pin_load=()
if [ "$(nproc)" -ge 2 ]; then pin_sut=(taskset -c "$(( $(nproc) - 1 ))"); pin_load=(taskset -c 0); fi

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"${pin_load[@]}" "$work/fast-upstream" -listen "127.0.0.1:$port_up" -label namespace &
pids+=($!)
auth=""
callgraph=(--call-graph dwarf,16384)   # Rust release builds keep no frame pointers
case $system in
  portcullis-allowlist)
    token=bench-profile-token
    cat > "$work/portcullis.toml" <<EOF
[server]
listen = "127.0.0.1:$port_sut"
admin_listen = "127.0.0.1:$((port_sut + 1))"
[identity]
mode = "bearer"
[tenant]
source = "param"
name = "tenant"
multi = true
[upstreams.prometheus]
url = "http://127.0.0.1:$port_up"
[enforcers.namespace]
type = "promql"
label = "namespace"
[authorizers.bench]
type = "allowlist"
[authorizers.bench.subjects]
"$token" = ["acme"]
[[routes]]
api = "prometheus"
upstream = "prometheus"
authorizer = "bench"
enforcers = ["namespace"]
EOF
    "${pin_sut[@]}" "$target_dir/release/portcullis" --config "$work/portcullis.toml" 2> "$work/portcullis.log" &
    auth="Bearer $token" ;;
  prom-label-proxy)
    "${pin_sut[@]}" "$gobin/prom-label-proxy" -label namespace -query-param tenant -enable-label-apis \
      -upstream "http://127.0.0.1:$port_up" -insecure-listen-address "127.0.0.1:$port_sut" 2> "$work/plp.log" &
    callgraph=(-g) ;;   # Go keeps frame pointers
  *) echo "profile.sh: system is portcullis-allowlist or prom-label-proxy" >&2; exit 2 ;;
esac
pid=$!
pids+=("$pid")
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port_sut") 2>/dev/null && break; sleep 0.1; done

python3 bench/requests.py --mix bench/mix.txt --end "$(date +%s)" --tenant acme --label namespace \
  --tenant-param tenant > "$work/requests.tsv"
ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; awk '{print $12 + $13}' <<< "$s"; }
before=$(ticks "$pid")
( sleep 3; perf record -F 499 "${callgraph[@]}" -p "$pid" -o "$work/perf.data" -- sleep $((seconds - 5)) ) \
  > "$work/perf-record.log" 2>&1 &
perf_job=$!
BENCH_REQUESTS="$work/requests.tsv" BENCH_OUT="$work/wrk.json" BENCH_AUTHORIZATION="$auth" \
  timeout $((seconds + 60)) "${pin_load[@]}" wrk --threads 1 --connections "$conns" --duration "${seconds}s" \
  --timeout 10s --script bench/mix.lua "http://127.0.0.1:$port_sut" > /dev/null
after=$(ticks "$pid")
wait "$perf_job" || true
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
python3 - "$work/wrk.json" "$((after - before))" "$(getconf CLK_TCK)" "$hwm" "$system" "$conns" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
ticks, hz, hwm, system, conns = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
rps = w["requests"] / w["duration_us"] * 1e6
cpu_us = ticks / hz / w["requests"] * 1e6
print(f"{system}, {conns} connections: {rps:,.0f} req/s, {cpu_us:.0f} µs CPU per request, "
      f"p50 {w['p50_us'] / 1000:.2f} ms, p99 {w['p99_us'] / 1000:.2f} ms, non-2xx {w['non2xx']}, "
      f"peak RSS {hwm / 1024:.1f} MB")
PY
perf script -i "$work/perf.data" 2>/dev/null > "$work/perf.txt"
python3 bench/perf-categories.py "$work/perf.txt"
