#!/usr/bin/env bash
# The Portcullis quickstart: a real Prometheus with three tenants' demo data, Portcullis in front
# of it with the allowlist authorizer, and example requests with their answers.
#
#   examples/quickstart/run.sh          # run the demo, then keep serving until Ctrl-C
#   examples/quickstart/run.sh --once   # run the demo and stop
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work="$root/.work/quickstart"
once=${1:-}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
  say "Installing Prometheus from Debian's packages"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus curl python3 >/dev/null
fi

for port in 19090 9095 9096; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is already in use: stop what listens there (an earlier run?)" >&2
    exit 1
  fi
done

say "Building Portcullis (release)"
cargo build --release --locked -p portcullis
portcullis="$root/target/release/portcullis"

say "Backfilling demo data for tenants acme, globex and initech"
rm -rf "$work" && mkdir -p "$work"
# Two hours back and two ahead: a query at "now" keeps finding samples while the demo runs.
end=$(( $(date +%s) / 60 * 60 + 7200 ))
python3 examples/quickstart/demo-data.py --end "$end" --minutes 240 > "$work/demo.om"
/usr/bin/promtool tsdb create-blocks-from openmetrics "$work/demo.om" "$work/data" >/dev/null
printf 'global:\n  scrape_interval: 1h\n' > "$work/prometheus.yml"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

/usr/bin/prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --storage.tsdb.retention.time=100y --web.listen-address=127.0.0.1:19090 \
  > "$work/prometheus.log" 2>&1 &
pids+=($!)
"$portcullis" --config examples/quickstart/portcullis.toml > "$work/portcullis.log" 2>&1 &
pids+=($!)

wait_for() {
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "not ready: $1 (logs in $work)" >&2; exit 1
}
wait_for http://127.0.0.1:19090/-/ready
wait_for http://127.0.0.1:9096/readyz
echo "Prometheus on 127.0.0.1:19090, Portcullis on 127.0.0.1:9095 (admin 127.0.0.1:9096)"

show() {
  local title=$1; shift
  printf '\n\033[1m$ %s\033[0m\n' "$title"
  curl -sS -w '\n-> HTTP %{http_code}\n' "$@" | python3 -c '
import json, sys
text = sys.stdin.read()
body, _, status = text.rpartition("\n-> ")
try:
    data = json.loads(body)
    if data.get("status") == "success" and isinstance(data["data"], dict):
        for r in data["data"]["result"]:
            print("  ", r["metric"], r.get("value", ["", ""])[1])
    else:
        print("  ", json.dumps(data)[:300])
except ValueError:
    print("  ", body[:300])
print("  ->", status.strip())'
}
q='sum by (namespace) (rate(http_requests_total[5m]))'

say "Allowed: acme-token reads tenant acme"
show "curl -G -H 'Authorization: Bearer acme-token' --data-urlencode 'query=$q' 'localhost:9095/api/v1/query?tenant=acme'" \
  -H 'Authorization: Bearer acme-token' --data-urlencode "query=$q" -G 'http://127.0.0.1:9095/api/v1/query?tenant=acme'

say "Allowed: ops-token reads acme and globex at once (never initech)"
show "curl -G -H 'Authorization: Bearer ops-token' --data-urlencode 'query=$q' 'localhost:9095/api/v1/query?tenant=acme&tenant=globex'" \
  -H 'Authorization: Bearer ops-token' --data-urlencode "query=$q" -G 'http://127.0.0.1:9095/api/v1/query?tenant=acme&tenant=globex'

say "Denied: acme-token asks for tenant globex"
show "curl -H 'Authorization: Bearer acme-token' 'localhost:9095/api/v1/query?tenant=globex&query=up'" \
  -H 'Authorization: Bearer acme-token' 'http://127.0.0.1:9095/api/v1/query?tenant=globex&query=up'

say "Unauthenticated: no token"
show "curl 'localhost:9095/api/v1/query?tenant=acme&query=up'" 'http://127.0.0.1:9095/api/v1/query?tenant=acme&query=up'

say "Bad PromQL is refused before it reaches Prometheus"
show "curl -G -H 'Authorization: Bearer acme-token' --data-urlencode 'query=up +' 'localhost:9095/api/v1/query?tenant=acme'" \
  -H 'Authorization: Bearer acme-token' --data-urlencode 'query=up +' -G 'http://127.0.0.1:9095/api/v1/query?tenant=acme'

say "The rewritten query: what Prometheus receives for ops-token"
echo "\$ portcullis enforce promql --label namespace --value acme --value globex '$q or up{namespace=\"initech\"}'"
"$portcullis" enforce promql --label namespace --value acme --value globex "$q or up{namespace=\"initech\"}"

if [ "$once" = "--once" ]; then
  say "Done (--once): stopping"
  exit 0
fi
say "Portcullis is serving on http://127.0.0.1:9095 — try the requests above. Ctrl-C stops everything."
wait
