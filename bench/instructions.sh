#!/usr/bin/env bash
# Counts the instructions Portcullis spends per request, under valgrind's callgrind: the same
# count for the same binary and requests whatever else the machine is doing, so two builds can
# be compared without the noise of a timed run.
#
#   bench/instructions.sh                 # the release build of this checkout, 3000 requests
#   bench/instructions.sh BINARY [N]      # another build (say, one copied before a change)
#
# The gateway runs with the allowlist authorizer and the PromQL enforcer in front of the fast
# upstream (bench/fast-upstream.go); one keep-alive client sends N instant queries cycling over
# three texts (so the rewrite cache answers most), then the gateway stops. Prints instructions per
# request, with the instructions of starting and stopping an idle gateway subtracted. Needs
# valgrind (Debian's package) and Go. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work="$root/.work/bench-instructions"
mkdir -p "$work"
requests=${2:-3000}
port_up=${BENCH_PORT_BASE:-19400}
port_up=$((port_up + 95))
port_gw=$((port_up + 1))
port_admin=$((port_up + 2))
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }

binary=${1:-}
if [ -z "$binary" ]; then
  cargo build --release --locked -p portcullis >&2
  target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  binary="$target_dir/release/portcullis"
fi
(cd bench && GOFLAGS=-buildvcs=false go build -o "$work/fast-upstream" fast-upstream.go)

cat >"$work/portcullis.toml" <<EOF
[server]
listen = "127.0.0.1:$port_gw"
admin_listen = "127.0.0.1:$port_admin"
[identity]
mode = "bearer"
[tenant]
source = "param"
name = "tenant"
[upstreams.fast]
url = "http://127.0.0.1:$port_up"
[authorizers.demo]
type = "allowlist"
[authorizers.demo.subjects]
"acme-token" = ["acme"]
[enforcers.namespace]
type = "promql"
label = "namespace"
[[routes]]
api = "prometheus"
upstream = "fast"
authorizer = "demo"
enforcers = ["namespace"]
EOF

"$work/fast-upstream" -listen "127.0.0.1:$port_up" -label namespace &
upstream=$!
trap 'kill "$upstream" 2>/dev/null || true' EXIT

# count N: the instructions of a gateway that serves N requests, from start to stop.
count() {
  local n=$1 out="$work/callgrind.$1.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" --config "$work/portcullis.toml" \
    2>"$work/valgrind.$n.log" &
  local gateway=$!
  for _ in $(seq 1 120); do
    curl -sf -o /dev/null "http://127.0.0.1:$port_admin/healthz" && break
    sleep 0.5
  done
  python3 - "$port_gw" "$n" <<'EOF'
import http.client, sys, urllib.parse
port, n = int(sys.argv[1]), int(sys.argv[2])
queries = ['sum by (pod) (rate(http_requests_total{job="api",code=~"5.."}[5m]))', 'up', 'rate(x[5m])']
conn = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    path = "/api/v1/query?tenant=acme&query=" + urllib.parse.quote(queries[i % len(queries)])
    conn.request("GET", path, headers={"Authorization": "Bearer acme-token"})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"request {i}: HTTP {answer.status}")
EOF
  kill -INT "$gateway"
  wait "$gateway" || true
  sed -n 's/.*Collected : //p' "$work/valgrind.$n.log"
}

idle=$(count 0)
busy=$(count "$requests")
echo "binary: $binary"
echo "instructions: $busy for $requests requests, $idle idle"
echo "per request: $(( (busy - idle) / requests ))"
