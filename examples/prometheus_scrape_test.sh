#!/usr/bin/env bash
# End to end: a real Prometheus server scrapes concurrent_coroutine_demo --metrics-port.
# Run by ctest (examples/CMakeLists.txt, label `prometheus`):
#
#   prometheus_scrape_test.sh <concurrent_coroutine_demo> [<prometheus binary>]
#
# 1. Starts the demo with --metrics-port 0 (the kernel picks a free port; the demo logs it).
# 2. Starts Prometheus (default /usr/bin/prometheus, Debian's `prometheus`) on a free loopback port
#    of its own, with a generated config scraping the demo every 1 s and its storage in a temp
#    directory, so that it collides neither with a system instance on :9090 nor with a parallel run.
# 3. Queries Prometheus's HTTP API until devcache_devices shows devices (at most 60 s).
# 4. Stops the demo (SIGTERM: it ends with its report, which must add up), then checks that the
#    largest device count Prometheus ever saw is positive and at most the demo's final count (the
#    demo never removes devices), and that the constant label arrived.
# Both processes are killed on every exit path (trap), and each runs under `timeout`, so neither
# outlives a test that is itself killed. Exits 77 (ctest SKIP_RETURN_CODE) if Prometheus or curl
# is not installed.
set -euo pipefail

skip=77
demo="${1:?usage: prometheus_scrape_test.sh <concurrent_coroutine_demo> [<prometheus>]}"
prometheus="${2:-/usr/bin/prometheus}"
query_timeout=60

if [[ ! -x "$prometheus" ]]; then
  echo "SKIPPED: $prometheus is not installed (Debian package 'prometheus'; scripts/deps.sh)"
  exit "$skip"
fi
if ! command -v curl >/dev/null 2>&1; then
  echo "SKIPPED: curl is not installed (Debian package 'curl'; scripts/deps.sh)"
  exit "$skip"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/devcache-prometheus-test.XXXXXX")"
demo_pid=""
prom_pid=""

# Stops a process started here: SIGTERM, up to 5 s, then SIGKILL.
stop_process() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  stop_process "$prom_pid"
  stop_process "$demo_pid"
  if ((status != 0 && status != skip)); then
    echo "---- demo output (last 40 lines)"
    tail -n 40 "$work/demo.log" 2>/dev/null || true
    echo "---- prometheus output (last 20 lines)"
    tail -n 20 "$work/prometheus.log" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# --- 1. the demo -----------------------------------------------------------------------------
# Long enough for any run of this test; stopped with SIGTERM once Prometheus has seen it.
timeout --kill-after=5 180 "$demo" --duration 240 --speed 10 --metrics-port 0 \
  >"$work/demo.log" 2>&1 &
demo_pid=$!
metrics_port=""
for _ in $(seq 200); do
  metrics_port="$(sed -n 's|.*serving Prometheus metrics at http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' \
    "$work/demo.log" | head -n 1)"
  [[ -n "$metrics_port" ]] && break
  kill -0 "$demo_pid" 2>/dev/null || fail "the demo exited before serving metrics"
  sleep 0.1
done
[[ -n "$metrics_port" && "$metrics_port" != 0 ]] || fail "the demo did not log its metrics port"
echo "demo (pid $demo_pid) serves metrics at http://127.0.0.1:$metrics_port/metrics"
curl -sf "http://127.0.0.1:$metrics_port/metrics" | grep -q '^# TYPE devcache_devices gauge$' ||
  fail "http://127.0.0.1:$metrics_port/metrics has no devcache_devices gauge"

# --- 2. Prometheus -----------------------------------------------------------------------------
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: devcache
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF

# Whether something already listens on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts Prometheus on a random free port; returns non-zero if it did not come up there.
start_prometheus() {
  web_port=$((20000 + RANDOM % 40000))
  port_in_use "$web_port" && return 1
  mkdir -p "$work/data"
  timeout --kill-after=5 180 "$prometheus" \
    --config.file="$work/prometheus.yml" \
    --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$web_port" \
    >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  for _ in $(seq 300); do
    if ! kill -0 "$prom_pid" 2>/dev/null; then
      wait "$prom_pid" 2>/dev/null || true
      prom_pid=""
      return 1  # it exited: most likely someone took the port first
    fi
    if curl -sf "http://127.0.0.1:$web_port/-/ready" >/dev/null 2>&1; then
      # Ours, not another server that happens to listen there: ask for its storage path.
      curl -sf "http://127.0.0.1:$web_port/api/v1/status/flags" | grep -qF "$work/data" && return 0
      stop_process "$prom_pid"
      prom_pid=""
      return 1
    fi
    sleep 0.1
  done
  stop_process "$prom_pid"
  prom_pid=""
  return 1
}

started=0
for _ in $(seq 5); do
  if start_prometheus; then
    started=1
    break
  fi
done
((started)) || fail "Prometheus did not start (5 tries; see its output below)"
echo "prometheus (pid $prom_pid) listens at http://127.0.0.1:$web_port"

# The value of the first sample of an instant query, or nothing (the JSON is small and regular:
# ..."value":[<time>,"<value>"]...).
query() {
  curl -sf --get --data-urlencode "query=$1" "http://127.0.0.1:$web_port/api/v1/query" |
    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}

# --- 3. wait until Prometheus has scraped devices ------------------------------------------------
seen=""
deadline=$((SECONDS + query_timeout))
while ((SECONDS < deadline)); do
  kill -0 "$demo_pid" 2>/dev/null || fail "the demo exited while Prometheus was scraping it"
  seen="$(query 'devcache_devices{job="devcache",demo="concurrent_coroutine_demo"}')"
  if [[ "$seen" =~ ^[0-9]+$ ]] && ((seen > 0)); then break; fi
  seen=""
  sleep 0.5
done
[[ -n "$seen" ]] || fail "Prometheus showed no devices within $query_timeout s"
echo "Prometheus sees devcache_devices = $seen"
up="$(query 'up{job="devcache"}')"
[[ "$up" == 1 ]] || fail "up{job=\"devcache\"} is '$up', expected 1"

# --- 4. stop the demo and compare ----------------------------------------------------------------
kill -TERM "$demo_pid"
demo_status=0
wait "$demo_pid" || demo_status=$?
demo_pid=""
grep -q 'check: numbers add up' "$work/demo.log" || fail "the demo's report does not add up"
if grep -Eq '(ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:)' "$work/demo.log"; then
  fail "a sanitizer reported a problem in the demo"
fi
((demo_status == 0)) || fail "the demo exited with status $demo_status"
final="$(sed -n 's/^cache stats *entries=\([0-9]*\)\/.*/\1/p' "$work/demo.log" | tail -n 1)"
[[ -n "$final" ]] || fail "the demo's report has no 'cache stats entries=N' line"

most="$(query 'max_over_time(devcache_devices{job="devcache"}[10m])')"
adds="$(query 'max_over_time(devcache_adds_total{job="devcache"}[10m])')"
echo "demo's final device count: $final; Prometheus's largest: devices $most, adds_total $adds"
[[ "$most" =~ ^[0-9]+$ ]] || fail "max_over_time(devcache_devices) is '$most'"
[[ "$adds" =~ ^[0-9]+$ ]] || fail "max_over_time(devcache_adds_total) is '$adds'"
((most >= seen)) || fail "Prometheus's largest device count $most is below the $seen it showed"
((most <= final)) || fail "Prometheus saw $most devices, more than the demo's final $final"
((adds <= final)) || fail "Prometheus saw $adds adds, more than the demo's final $final devices"
echo "prometheus_scrape_test: passed"
