#!/usr/bin/env bash
# Portcullis against prom-label-proxy and prom-authzed-proxy, side by side in one run.
#
#   bench/run.sh                     # install what is missing, build, check, load, report
#   BENCH_ROUNDS=1 BENCH_DURATION=3 bench/run.sh     # a quicker, noisier run
#
# Every system sits in front of the same upstream: the real Prometheus with the quickstart's demo
# data, and a minimal fast upstream (bench/fast-upstream.go) that shows a proxy's own cost. wrk
# loads one system at a time with the mix of bench/mix.txt, systems interleaved in each round.
# Results: bench/results/<date>-<host>.md and bench/results/latest.md. See bench/README.md.
#
# All traffic stays on 127.0.0.1; every process started here is stopped on exit.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]  BENCH_DURATION [5] seconds per wrk run  BENCH_CONNECTIONS ["1 16 64 256"]
#   BENCH_UPSTREAMS ["fast prometheus"]  BENCH_SYSTEMS [all, see SYSTEMS below]
#   BENCH_PIN [1]: systems under test on the last CPU, everything else (wrk, upstreams, SpiceDB)
#                  on the others; 0 lets every process use every CPU
#   BENCH_CRITERION [0]: 1 also runs the crates' cargo benches (short settings) into the results
#   BENCH_PORT_BASE [19400]  BENCH_GO_WAIT [900] seconds to wait for a go install already running
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work="$root/.work/bench"
results_dir="$root/bench/results"

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64 256"}
UPSTREAMS=${BENCH_UPSTREAMS:-"fast prometheus"}
SYSTEMS=${BENCH_SYSTEMS:-"direct portcullis-allowlist portcullis-spicedb portcullis-spicedb-nocache prom-label-proxy prom-authzed-proxy"}
PIN=${BENCH_PIN:-1}
CRITERION=${BENCH_CRITERION:-0}
PORT_BASE=${BENCH_PORT_BASE:-19400}
GO_WAIT=${BENCH_GO_WAIT:-900}

PLP_MODULE=github.com/prometheus-community/prom-label-proxy
PLP_VERSION=v0.14.0
PAP_MODULE=github.com/authzed/prom-authzed-proxy/cmd/prom-authzed-proxy
PAP_VERSION=v0.2.0
LABEL=namespace
TENANT=acme
# The example relationships (examples/spicedb/relationships) let this token read acme and globex;
# the allowlist below grants the same. It is sent only in headers and never printed.
export BENCH_AUTH_TOKEN=alice-token

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for var in ROUNDS DURATION PORT_BASE GO_WAIT; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "BENCH_$var must be a whole number"
done
[ "$ROUNDS" -ge 1 ] && [ "$DURATION" -ge 1 ] || die "BENCH_ROUNDS and BENCH_DURATION must be ≥ 1"

# === install what is missing ===

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "Installing ${missing[*]} from Debian's packages"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

command -v go >/dev/null || die "Go is needed (fast upstream, prom-label-proxy, SpiceDB)"
command -v cargo >/dev/null || die "Rust (cargo) is needed"
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"

apt_install wrk prometheus curl python3 util-linux
[ -x "$gobin/spicedb" ] || { say "Installing SpiceDB (scripts/install-test-deps.sh)"; scripts/install-test-deps.sh; }

mkdir -p "$work"
declare -A unavailable=()

# go_tool NAME MODULE VERSION: $gobin/NAME at VERSION, reusing a binary already there and waiting
# (bounded) for a `go install` of it that is already running instead of starting a second one.
go_tool() {
  local name=$1 module=$2 version=$3 waited=0
  has_version() { [ -x "$gobin/$name" ] && go version -m "$gobin/$name" 2>/dev/null | grep -q "[[:space:]]$version[[:space:]]"; }
  has_version && return 0
  while pgrep -f -- "$module@$version" >/dev/null 2>&1 && [ "$waited" -lt "$GO_WAIT" ]; do
    [ "$waited" -eq 0 ] && log "waiting for the go install of $module@$version already running (at most ${GO_WAIT}s)"
    sleep 5; waited=$((waited + 5))
  done
  has_version && return 0
  # A refusal is remembered for a day, so repeated runs do not ask the module proxy again.
  local failed="$work/go-install-$name.failed"
  if [ -f "$failed" ] && [ "$(head -1 "$failed")" = "$module@$version" ] \
      && [ -n "$(find "$failed" -mmin -1440 2>/dev/null)" ]; then
    unavailable[$name]=$(tail -1 "$failed")
    log "not available: $name (remembered from an earlier run; delete $failed to retry)"
    return 1
  fi
  say "go install $module@$version"
  if GOFLAGS=-mod=mod timeout 1200 go install "$module@$version" > "$work/go-install-$name.log" 2>&1 && has_version; then
    return 0
  fi
  # One line of reason for the results (no registry address); the full log stays in .work/bench.
  local reason status message
  status=$(grep -oE '\b(401|403|404|410) [A-Za-z ]*[A-Za-z]' "$work/go-install-$name.log" | head -1 || true)
  message=$(grep -m1 'server response:' "$work/go-install-$name.log" | sed -E 's/.*server response: *//' || true)
  if [ -n "$status" ]; then
    reason="the Go module proxy refused it ($status${message:+: $message})"
  else
    reason=$(grep -v '^\s*$' "$work/go-install-$name.log" | tail -1 | sed -E 's#[a-z]+://[^ ]*#…#g; s/\s+/ /g' | cut -c1-200)
  fi
  unavailable[$name]="\`go install $module@$version\` failed here: ${reason:-see .work/bench/go-install-$name.log}"
  printf '%s\n%s\n' "$module@$version" "${unavailable[$name]}" > "$failed"
  log "not available: $name (${unavailable[$name]})"
  return 1
}

wanted() { [[ " $SYSTEMS " == *" $1 "* ]]; }
if wanted prom-label-proxy; then go_tool prom-label-proxy "$PLP_MODULE" "$PLP_VERSION" || true; fi
if wanted prom-authzed-proxy; then go_tool prom-authzed-proxy "$PAP_MODULE" "$PAP_VERSION" || true; fi

say "Building Portcullis (release) and the fast upstream"
nice -n 10 cargo build --release --locked -p portcullis
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
portcullis="$target_dir/release/portcullis"
mkdir -p "$work/bin"
(cd "$root/bench" && GOFLAGS=-buildvcs=false nice -n 10 go build -o "$work/bin/fast-upstream" fast-upstream.go)

# === processes ===

ncpu=$(nproc)
if [ "$PIN" = 1 ] && [ "$ncpu" -ge 2 ]; then
  sut_cpus=$((ncpu - 1))
  load_cpus=0; [ "$ncpu" -gt 2 ] && load_cpus="0-$((ncpu - 2))"
  pin_sut=(taskset -c "$sut_cpus")
  pin_load=(taskset -c "$load_cpus")
  pinning="Pinned: systems under test on CPU $sut_cpus, wrk, the upstreams and SpiceDB on CPU $load_cpus (taskset), so each proxy gets one core of its own."
else
  pin_sut=(); pin_load=()
  pinning="Not pinned: every process may use all $ncpu CPUs."
fi

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  die "$what is not listening on 127.0.0.1:$port (logs in $work)"
}
# start NAME PIN... -- COMMAND...: runs COMMAND in the background, logs to $work/NAME.log.
declare -A pid_of=()
start() {
  local name=$1; shift
  local pin=()
  while [ "$1" != "--" ]; do pin+=("$1"); shift; done
  shift
  "${pin[@]}" "$@" > "$work/$name.log" 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
}

port_prom=$PORT_BASE
port_fast=$((PORT_BASE + 1))
port_sdb_grpc=$((PORT_BASE + 2))
port_sdb_http=$((PORT_BASE + 3))
for port in $(seq "$PORT_BASE" $((PORT_BASE + 99))); do
  port_free "$port" || die "127.0.0.1:$port is in use; set BENCH_PORT_BASE to a free range of 100 ports"
done

say "Backfilling demo data (as examples/quickstart/run.sh does) and starting the upstreams"
rm -rf "$work/prometheus" && mkdir -p "$work/prometheus"
end=$(( $(date +%s) / 60 * 60 ))
python3 examples/quickstart/demo-data.py --end "$end" > "$work/prometheus/demo.om"
/usr/bin/promtool tsdb create-blocks-from openmetrics "$work/prometheus/demo.om" "$work/prometheus/data" >/dev/null
printf 'global:\n  scrape_interval: 1h\n' > "$work/prometheus/prometheus.yml"
start prometheus "${pin_load[@]}" -- /usr/bin/prometheus --config.file="$work/prometheus/prometheus.yml" \
  --storage.tsdb.path="$work/prometheus/data" --storage.tsdb.retention.time=100y \
  --web.listen-address="127.0.0.1:$port_prom"
start fast-upstream "${pin_load[@]}" -- "$work/bin/fast-upstream" -listen "127.0.0.1:$port_fast" -label "$LABEL"
declare -A upstream_url=([prometheus]="http://127.0.0.1:$port_prom" [fast]="http://127.0.0.1:$port_fast")
declare -A upstream_proc=([prometheus]=prometheus [fast]=fast-upstream)

needs_spicedb=0
for s in portcullis-spicedb portcullis-spicedb-nocache prom-authzed-proxy; do wanted "$s" && needs_spicedb=1; done
if [ "$needs_spicedb" = 1 ]; then
  say "Starting SpiceDB (in memory) and writing examples/spicedb/ through its HTTP API"
  PORTCULLIS_SPICEDB_KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export PORTCULLIS_SPICEDB_KEY
  start spicedb "${pin_load[@]}" -- "$gobin/spicedb" serve --grpc-preshared-key "$PORTCULLIS_SPICEDB_KEY" \
    --datastore-engine memory --grpc-addr "127.0.0.1:$port_sdb_grpc" \
    --http-enabled --http-addr "127.0.0.1:$port_sdb_http" --metrics-enabled=false \
    --dispatch-cluster-enabled=false --telemetry-endpoint= --skip-release-check --log-level=warn
  wait_port "$port_sdb_http" SpiceDB
  python3 - "$port_sdb_http" examples/spicedb/schema.zed examples/spicedb/relationships <<'PY'
import json, os, re, sys, time, urllib.request
port, schema_path, rels_path = sys.argv[1:]
key = os.environ["PORTCULLIS_SPICEDB_KEY"]
def post(path, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)
for attempt in range(50):
    try:
        post("/v1/schema/write", {"schema": open(schema_path).read()})
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("SpiceDB refused the schema")
updates = []
for line in open(rels_path):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    m = re.fullmatch(r"(\w+):([\w-]+)#(\w+)@(\w+):([\w-]+)(?:#(\w+))?", line)
    if not m:
        sys.exit(f"cannot read relationship {line!r}")
    rtype, rid, rel, stype, sid, srel = m.groups()
    subject = {"object": {"objectType": stype, "objectId": sid}}
    if srel:
        subject["optionalRelation"] = srel
    updates.append({"operation": "OPERATION_TOUCH", "relationship": {
        "resource": {"objectType": rtype, "objectId": rid}, "relation": rel, "subject": subject}})
post("/v1/relationships/write", {"updates": updates})
# Reads at `minimize_latency` (what the proxies use) see a write only once SpiceDB's revision
# quantization window (5 s by default) has passed: wait until the token's grant is visible.
check = {"consistency": {"minimizeLatency": True}, "permission": "read",
         "resource": {"objectType": "tenant", "objectId": "acme"},
         "subject": {"object": {"objectType": "token", "objectId": os.environ["BENCH_AUTH_TOKEN"]}}}
deadline = time.time() + 30
while post("/v1/permissions/check", check).get("permissionship") != "PERMISSIONSHIP_HAS_PERMISSION":
    if time.time() > deadline:
        sys.exit("SpiceDB does not show the example relationships after 30 s")
    time.sleep(0.25)
print(f"[bench] SpiceDB: schema and {len(updates)} relationships written and visible", file=sys.stderr)
PY
fi

# Portcullis configuration: the quickstart's, with the authorizer under test.
portcullis_config() { # FILE LISTEN ADMIN UPSTREAM_URL AUTHORIZER
  local file=$1 listen=$2 admin=$3 url=$4 authorizer=$5
  {
    printf '[server]\nlisten = "%s"\nadmin_listen = "%s"\n\n' "$listen" "$admin"
    printf '[identity]\nmode = "bearer"\n\n'
    printf '[tenant]\nsource = "param"\nname = "tenant"\nmulti = true\n\n'
    printf '[upstreams.prometheus]\nurl = "%s"\n\n' "$url"
    printf '[enforcers.namespace]\ntype = "promql"\nlabel = "%s"\n\n' "$LABEL"
    case $authorizer in
      allowlist)
        printf '[authorizers.bench]\ntype = "allowlist"\n\n[authorizers.bench.subjects]\n'
        printf '"%s" = ["acme", "globex"]\n\n' "$BENCH_AUTH_TOKEN" ;;
      spicedb|spicedb-nocache)
        printf '[authorizers.bench]\ntype = "spicedb"\nendpoint = "http://127.0.0.1:%s"\n' "$port_sdb_grpc"
        printf 'preshared_key_env = "PORTCULLIS_SPICEDB_KEY"\nresource_type = "tenant"\nsubject_type = "token"\n\n'
        if [ "$authorizer" = spicedb-nocache ]; then
          printf '[authorizers.bench.cache]\nmax_entries = 0\n\n'
        fi ;;
    esac
    printf '[[routes]]\napi = "prometheus"\nupstream = "prometheus"\nauthorizer = "bench"\nenforcers = ["namespace"]\n'
  } > "$file"
  chmod 600 "$file"
}

say "Starting the systems under test"
active=()      # systems that will be loaded
declare -A url_of=() proc_of=() auth_of=()
upstream_index=0
for upstream in $UPSTREAMS; do
  [ -n "${upstream_url[$upstream]:-}" ] || die "unknown upstream $upstream (fast, prometheus)"
  system_index=0
  for system in $SYSTEMS; do
    port=$((PORT_BASE + 10 + upstream_index * 40 + system_index * 2))
    system_index=$((system_index + 1))
    key="$upstream/$system"
    name="$system-$upstream"
    auth_of[$key]=0
    case $system in
      direct)
        url_of[$key]=${upstream_url[$upstream]}
        proc_of[$key]=${upstream_proc[$upstream]}
        ;;
      portcullis-*)
        portcullis_config "$work/$name.toml" "127.0.0.1:$port" "127.0.0.1:$((port + 1))" \
          "${upstream_url[$upstream]}" "${system#portcullis-}"
        start "$name" "${pin_sut[@]}" -- "$portcullis" --config "$work/$name.toml"
        url_of[$key]="http://127.0.0.1:$port"; proc_of[$key]=$name; auth_of[$key]=1
        ;;
      prom-label-proxy)
        [ -z "${unavailable[$system]:-}" ] || continue
        start "$name" "${pin_sut[@]}" -- "$gobin/prom-label-proxy" -label "$LABEL" -query-param tenant \
          -enable-label-apis -upstream "${upstream_url[$upstream]}" -insecure-listen-address "127.0.0.1:$port"
        url_of[$key]="http://127.0.0.1:$port"; proc_of[$key]=$name
        ;;
      prom-authzed-proxy)
        [ -z "${unavailable[$system]:-}" ] || continue
        # Its SpiceDB token through the environment (viper), not the command line.
        start "$name" "${pin_sut[@]}" -- env PROM_AUTHZED_PROXY_PROXY_SPICEDB_TOKEN="$PORTCULLIS_SPICEDB_KEY" \
          "$gobin/prom-authzed-proxy" --proxy-addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$((port + 1))" \
          --proxy-upstream-prometheus-addr "${upstream_url[$upstream]}" \
          --proxy-spicedb-endpoint "127.0.0.1:$port_sdb_grpc" --proxy-spicedb-insecure \
          --proxy-check-resource-type tenant --proxy-check-resource-id-query-param tenant \
          --proxy-check-permission read --proxy-check-subject-type token --log-level warn
        url_of[$key]="http://127.0.0.1:$port"; proc_of[$key]=$name; auth_of[$key]=1
        ;;
      *) die "unknown system $system" ;;
    esac
    active+=("$key")
  done
  upstream_index=$((upstream_index + 1))
done

wait_port "$port_prom" Prometheus
wait_port "$port_fast" "the fast upstream"
for _ in $(seq 1 150); do curl -fsS -o /dev/null "http://127.0.0.1:$port_prom/-/ready" 2>/dev/null && break; sleep 0.2; done
for key in "${active[@]}"; do
  wait_port "${url_of[$key]##*:}" "${proc_of[$key]}"
done
for key in "${active[@]}"; do
  case ${key#*/} in
    portcullis-*)
      admin=$(( ${url_of[$key]##*:} + 1 ))
      for _ in $(seq 1 150); do curl -fsS -o /dev/null "http://127.0.0.1:$admin/readyz" 2>/dev/null && break; sleep 0.2; done ;;
  esac
done

say "Request files and checks: every system answers 200 with tenant $TENANT's data only"
for upstream in $UPSTREAMS; do
  manifest="$work/systems-$upstream.json"
  entries=()
  for key in "${active[@]}"; do
    [ "${key%%/*}" = "$upstream" ] || continue
    system=${key#*/}
    file="$work/requests-$system.tsv"
    if [ ! -f "$file" ]; then
      if [ "$system" = direct ]; then
        python3 bench/requests.py --mix bench/mix.txt --end "$end" --tenant "$TENANT" --label "$LABEL" \
          --enforce-with "$portcullis" > "$file"
      else
        python3 bench/requests.py --mix bench/mix.txt --end "$end" --tenant "$TENANT" --label "$LABEL" \
          --tenant-param tenant > "$file"
      fi
    fi
    auth=false; [ "${auth_of[$key]}" = 1 ] && auth=true
    entries+=("{\"name\":\"$system\",\"url\":\"${url_of[$key]}\",\"requests\":\"$file\",\"auth\":$auth}")
  done
  (IFS=,; echo "[${entries[*]}]") > "$manifest"
  python3 bench/check.py --manifest "$manifest" --mode "$upstream" --label "$LABEL" --tenant "$TENANT" \
    --out "$work/check-$upstream.json"
done

# Drop what failed its check; the direct upstream failing is fatal.
python3 - "$work" $UPSTREAMS > "$work/failed.txt" <<'PY'
import json, sys
work, upstreams = sys.argv[1], sys.argv[2:]
for upstream in upstreams:
    for system, problem in json.load(open(f"{work}/check-{upstream}.json")).items():
        if problem is not None:
            print(f"{upstream}/{system}")
PY
if grep -q '/direct$' "$work/failed.txt"; then die "the direct upstream failed its check"; fi
loaded=()
for key in "${active[@]}"; do grep -qx "$key" "$work/failed.txt" || loaded+=("$key"); done

# === load ===

clk_tck=$(getconf CLK_TCK)
ticks() { # utime + stime of a process, all its threads
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }
  awk '{print $12 + $13}' <<< "$stat"
}

tcp_opens() { # TCP connections opened (connect) on the machine so far
  awk '$1 == "Tcp:" && $6 ~ /^[0-9]+$/ {print $6}' /proc/net/snmp
}

# measure ROUND UPSTREAM SYSTEM CONNS SECONDS [record]
measure() {
  local round=$1 upstream=$2 system=$3 conns=$4 seconds=$5 record=${6:-record}
  local key="$upstream/$system"
  local pid=${pid_of[${proc_of[$key]}]}
  local sdb_pid=${pid_of[spicedb]:-}
  local threads=1
  [ ${#pin_load[@]} -eq 0 ] && [ "$conns" -ge 2 ] && threads=2
  local out="$work/wrk.json"
  rm -f "$out"
  local before sdb_before=0 opens_first="" opens_last=""
  before=$(ticks "$pid")
  [ -n "$sdb_pid" ] && sdb_before=$(ticks "$sdb_pid")
  local auth=""
  [ "${auth_of[$key]}" = 1 ] && auth="Bearer $BENCH_AUTH_TOKEN"
  BENCH_REQUESTS="$work/requests-$system.tsv" BENCH_OUT="$out" BENCH_AUTHORIZATION="$auth" \
    timeout $((seconds + 60)) "${pin_load[@]}" wrk --threads "$threads" --connections "$conns" \
    --duration "${seconds}s" --timeout 10s --script bench/mix.lua "${url_of[$key]}" > "$work/wrk.log" 2>&1 &
  local wrk_pid=$!
  # Connections opened in the steady state (from 1 s in to 0.5 s before the end): a proxy that
  # dials its upstream anew per request shows here; the start and the end of a run (wrk opening
  # its connections, in-flight requests cancelled when it stops) do not.
  if [ "$seconds" -ge 3 ]; then
    sleep 1; opens_first=$(tcp_opens)
    sleep "$(python3 -c "print($seconds - 1.5)")"; opens_last=$(tcp_opens)
  fi
  if ! wait "$wrk_pid"; then
    cp "$work/wrk.log" "$work/wrk-failed-$system-$upstream.log"
    log "wrk failed for $key at $conns connections (see $work/wrk-failed-$system-$upstream.log)"
    return 0
  fi
  local after sdb_after=0
  after=$(ticks "$pid")
  [ -n "$sdb_pid" ] && sdb_after=$(ticks "$sdb_pid")
  [ "$record" = record ] || return 0
  [ -s "$out" ] || { log "no wrk summary for $key at $conns connections"; return 0; }
  local sdb_field=null
  case $system in *spicedb*|prom-authzed-proxy) sdb_field=$((sdb_after - sdb_before)) ;; esac
  # Steady-state opens per 1k requests, from the window's share of the run's requests.
  local opens=null
  if [ -n "$opens_first" ]; then
    opens=$(python3 -c "
import json, sys
w = json.load(open(sys.argv[1]))
window = $seconds - 1.5
rate = w['requests'] / (w['duration_us'] / 1e6)
print(round(($opens_last - $opens_first) / max(rate * window, 1) * 1000, 2))" "$out")
  fi
  printf '{"round":%d,"upstream":"%s","system":"%s","conns":%d,"cpu_ticks":%d,"spicedb_ticks":%s,"tcp_opens_per_1k":%s,"wrk":%s}\n' \
    "$round" "$upstream" "$system" "$conns" $((after - before)) "$sdb_field" "$opens" "$(cat "$out")" >> "$work/raw.jsonl"
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
w = r["wrk"]
rps = w["requests"] / w["duration_us"] * 1e6
print("[bench] round %d %-10s %-27s c=%-3d %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  non-2xx %d" % (
    r["round"], r["upstream"], r["system"], r["conns"], rps, w["p50_us"] / 1000, w["p99_us"] / 1000,
    w["non2xx"]), file=sys.stderr)' "$(tail -1 "$work/raw.jsonl")"
}

runs=$(( ${#loaded[@]} * $(wc -w <<< "$CONNECTIONS") * ROUNDS ))
say "Load: ${#loaded[@]} system/upstream pairs × connections ($CONNECTIONS) × $ROUNDS rounds × ${DURATION}s = $runs runs (about $(( runs * (DURATION + 1) / 60 + 1 )) min)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rm -f "$work/raw.jsonl"
log "warm-up: 2 s per system at 16 connections"
for key in "${loaded[@]}"; do measure 0 "${key%%/*}" "${key#*/}" 16 2 warmup; done

for round in $(seq 1 "$ROUNDS"); do
  for upstream in $UPSTREAMS; do
    order=()
    for key in "${loaded[@]}"; do [ "${key%%/*}" = "$upstream" ] && order+=("${key#*/}"); done
    # Rotate the order every round, so no system always follows the same one.
    shift_by=$(( (round - 1) % ${#order[@]} ))
    order=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
    for conns in $CONNECTIONS; do
      for system in "${order[@]}"; do
        measure "$round" "$upstream" "$system" "$conns" "$DURATION"
        sleep 0.5
      done
    done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Peak RSS of every process, sampled now (VmHWM is the high-water mark since it started).
rss_json="{"
first_up=1
for upstream in $UPSTREAMS; do
  [ $first_up = 1 ] || rss_json+=","
  first_up=0
  rss_json+="\"$upstream\":{"
  first=1
  for key in "${loaded[@]}"; do
    [ "${key%%/*}" = "$upstream" ] || continue
    pid=${pid_of[${proc_of[$key]}]}
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ $first = 1 ] || rss_json+=","
    first=0
    rss_json+="\"${key#*/}\":{\"hwm_kb\":${hwm:-0},\"rss_kb\":${rss:-0}}"
  done
  rss_json+="}"
done
rss_json+="}"

say "Stopping the systems"
cleanup
pids=()

# === microbenchmarks (optional) ===

criterion_args="--warm-up-time 1 --measurement-time 3"
if [ "$CRITERION" = 1 ]; then
  say "cargo bench (short settings: $criterion_args)"
  : > "$work/criterion.jsonl"
  for spec in "portcullis-enforcer-promql:enforce" "portcullis-enforcer-logql:enforce" "portcullis-authorizer-spicedb:decisions"; do
    crate=${spec%%:*}; bench=${spec#*:}
    args=(-p "$crate"); [ -n "$bench" ] && args+=(--bench "$bench")
    nice -n 10 cargo bench --locked "${args[@]}" --no-run > "$work/criterion-build.log" 2>&1 \
      || { log "cargo bench --no-run ${args[*]} failed (see $work/criterion-build.log)"; continue; }
    marker="$work/criterion-$crate.marker"; touch "$marker"; sleep 1
    timeout 900 cargo bench --locked "${args[@]}" -- $criterion_args > "$work/criterion-$crate.log" 2>&1 \
      || { log "cargo bench ${args[*]} failed (see $work/criterion-$crate.log)"; continue; }
    python3 - "$target_dir/criterion" "$marker" "$crate${bench:+ --bench $bench}" >> "$work/criterion.jsonl" <<'PY'
import json, os, sys
base, marker, bench = sys.argv[1:]
since = os.path.getmtime(marker)
def human(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"
for directory, _, files in sorted(os.walk(base)):
    if not directory.endswith(os.sep + "new") or "benchmark.json" not in files:
        continue
    if os.path.getmtime(os.path.join(directory, "estimates.json")) < since:
        continue
    meta = json.load(open(os.path.join(directory, "benchmark.json")))
    est = json.load(open(os.path.join(directory, "estimates.json")))
    ns = est["median"]["point_estimate"]
    thrpt = "–"
    if meta.get("throughput") and "Elements" in meta["throughput"]:
        thrpt = f"{meta['throughput']['Elements'] / (ns / 1e9):,.0f} elem/s"
    elif meta.get("throughput") and "Bytes" in meta["throughput"]:
        thrpt = f"{meta['throughput']['Bytes'] / (ns / 1e9) / 1e6:,.1f} MB/s"
    print(json.dumps({"bench": bench, "id": meta["full_id"], "time": human(ns), "thrpt": thrpt}))
PY
  done
fi

# === report ===

say "Writing the results"
first_line() { "$@" 2>&1 | head -1 | sed -E 's/\s+/ /g' | cut -c1-120; }
go_mod_version() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" {print $3; exit}'; }
echo "$rss_json" > "$work/rss.json"
for name in "${!unavailable[@]}"; do printf '%s\t%s\n' "$name" "${unavailable[$name]}"; done > "$work/unavailable.tsv"
notes=()
if [ "$ROUNDS" -lt 3 ] || [ "$DURATION" -lt 5 ]; then
  notes+=("Reduced run: $ROUNDS round(s) of ${DURATION} s (defaults: 3 of 5 s); figures are noisier than a full run.")
fi
notes+=("Shared machine: load average ${load_start} before the load and ${load_end} after (1, 5, 15 min); other work on the machine shows up as noise, which interleaving spreads over all systems alike.")
printf '%s\n' "${notes[@]}" > "$work/notes.txt"

date_utc=$(date -u +%Y-%m-%d)
host=$(hostname -s 2>/dev/null || hostname)
export M_DATE=$date_utc M_HOST=$host M_CLK_TCK=$clk_tck M_ROUNDS=$ROUNDS M_DURATION=$DURATION \
  M_CONNS=$CONNECTIONS M_UPSTREAMS=$UPSTREAMS M_SYSTEMS=$SYSTEMS M_PIN=$pinning \
  M_LOAD="$load_start / $load_end" M_CRITERION=$CRITERION M_CRITERION_ARGS=$criterion_args \
  M_V_PORTCULLIS="${BENCH_PORTCULLIS_REV:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo "unknown (not a git checkout)")} (release build)" \
  M_V_PLP="$( [ -x "$gobin/prom-label-proxy" ] && go_mod_version "$gobin/prom-label-proxy" || echo –)" \
  M_V_PAP="$( [ -x "$gobin/prom-authzed-proxy" ] && go_mod_version "$gobin/prom-authzed-proxy" || echo 'not available')" \
  M_V_PROMETHEUS="$(first_line /usr/bin/prometheus --version)" \
  M_V_SPICEDB="$(first_line "$gobin/spicedb" version)" \
  M_V_WRK="$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" \
  M_V_RUSTC="$(first_line rustc --version)" M_V_GO="$(first_line go version)"
python3 - "$work" <<'PY'
import json, os, platform, sys
work = sys.argv[1]
e = os.environ
def mem():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
def lines(name):
    with open(os.path.join(work, name), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]
upstreams = e["M_UPSTREAMS"].split()
criterion = None
if e["M_CRITERION"] == "1" and os.path.exists(os.path.join(work, "criterion.jsonl")):
    criterion = [json.loads(line) for line in lines("criterion.jsonl")]
meta = {
    "date": e["M_DATE"], "host": e["M_HOST"], "command": "bench/run.sh",
    "clk_tck": int(e["M_CLK_TCK"]),
    "config": {
        "rounds": int(e["M_ROUNDS"]), "duration_s": int(e["M_DURATION"]),
        "connections": [int(c) for c in e["M_CONNS"].split()],
        "upstreams": upstreams, "systems": e["M_SYSTEMS"].split(), "pinning": e["M_PIN"],
    },
    "machine": {
        "nproc": os.cpu_count(), "CPU": cpu(), "memory": mem(), "kernel": platform.release(),
        "load average before / after": e["M_LOAD"],
    },
    "versions": {
        "Portcullis": e["M_V_PORTCULLIS"], "prom-label-proxy": e["M_V_PLP"],
        "prom-authzed-proxy": e["M_V_PAP"], "Prometheus": e["M_V_PROMETHEUS"],
        "SpiceDB": e["M_V_SPICEDB"], "wrk": e["M_V_WRK"], "rustc": e["M_V_RUSTC"],
        "go": e["M_V_GO"], "fast upstream": "bench/fast-upstream.go, built with the go above",
    },
    "rss": json.load(open(os.path.join(work, "rss.json"))),
    "checks": {u: json.load(open(os.path.join(work, f"check-{u}.json"))) for u in upstreams},
    "unavailable": dict(line.split("\t", 1) for line in lines("unavailable.tsv")),
    "criterion": criterion,
    "criterion_args": "cargo bench -p <crate> [--bench <name>] -- " + e["M_CRITERION_ARGS"],
    "notes": lines("notes.txt"),
}
with open(os.path.join(work, "meta.json"), "w", encoding="utf-8") as f:
    json.dump(meta, f, indent=1)
PY

mkdir -p "$results_dir"
python3 bench/report.py "$work/raw.jsonl" "$work/meta.json" > "$results_dir/$date_utc-$host.md"
cp "$work/raw.jsonl" "$results_dir/$date_utc-$host.raw.jsonl"
cp "$results_dir/$date_utc-$host.md" "$results_dir/latest.md"
say "Results: bench/results/$date_utc-$host.md (and latest.md)"
