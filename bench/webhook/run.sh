#!/usr/bin/env bash
# Benchmark (not a test): WhatsApp webhooks end to end, `aoun serve` side by side with a bare
# Beast server that only checks the signature. Everything runs on 127.0.0.1, on this machine;
# the load generator shares the cores with the server, as it would on a 2-core box.
#
#   bench/webhook/run.sh            # build Release into build-rel, then run every phase
#   SKIP_BUILD=1 BUILD_DIR=/tmp/b bench/webhook/run.sh
#   PHASES="aoun-throughput bare-throughput" DURATION=10 bench/webhook/run.sh
#
# Phases (each with a fresh server and a fresh temporary database):
#   aoun-throughput  closed loop, CONNECTIONS connections over CONVERSATIONS conversations
#   aoun-latency     open loop at RATE webhooks/s (Poisson arrivals): webhook→reply p50/p99
#   aoun-memory      10,000 conversations, MEMORY_MESSAGES messages each, left mid-dialog: RSS
#   bare-throughput  closed loop against bench_bare_server (no replies)
#   bare-latency     open loop at RATE against bench_bare_server: webhook→200
# Server CPU per webhook is utime+stime from /proc/<pid>/stat over the measured window divided
# by the webhooks answered 200 in it; memory is VmRSS/VmHWM from /proc/<pid>/status.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-rel}"
PHASES="${PHASES:-aoun-throughput aoun-latency aoun-memory bare-throughput bare-latency}"
CONNECTIONS="${CONNECTIONS:-64}"
CONVERSATIONS="${CONVERSATIONS:-2000}"
WARMUP="${WARMUP:-3}"
DURATION="${DURATION:-15}"
RATE="${RATE:-200}"
MEMORY_CONVERSATIONS="${MEMORY_CONVERSATIONS:-10000}"
MEMORY_MESSAGES="${MEMORY_MESSAGES:-2}"
SERVER_THREADS="${SERVER_THREADS:-0}"          # 0 = the server's default (one per core)
LOAD_ARGS="${LOAD_ARGS:-}"                     # extra bench_webhook_load options

SECRET="bench-app-secret-$RANDOM"
TOKEN="bench-token-$RANDOM"
PHONE_ID="106540352242922"
FIXTURE="$ROOT/tests/fixtures/channels/whatsapp_text.json"

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "==> build (Release) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" --target aoun bench_bare_server bench_webhook_load
fi
AOUN="$BUILD_DIR/bot/aoun"
BARE="$BUILD_DIR/bench/bench_bare_server"
LOAD="$BUILD_DIR/bench/bench_webhook_load"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/aoun-bench.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# start_aoun PORT GRAPH_PORT: a fresh database; returns once /healthz answers (≤ 20 s).
start_aoun() {
  local port="$1" graph_port="$2" dir="$WORK/aoun-$port"
  mkdir -p "$dir"
  env AOUN_DB="$dir/aoun.db" AOUN_LISTEN="127.0.0.1:$port" AOUN_LOG_LEVEL=warn AOUN_THREADS="$SERVER_THREADS" \
    AOUN_PUBLIC_URL="http://127.0.0.1:$port" \
    AOUN_WHATSAPP_VERIFY_TOKEN=bench-verify AOUN_WHATSAPP_APP_SECRET="$SECRET" AOUN_WHATSAPP_TOKEN="$TOKEN" \
    AOUN_WHATSAPP_PHONE_NUMBER_ID="$PHONE_ID" AOUN_WHATSAPP_API_BASE="http://127.0.0.1:$graph_port" \
    AOUN_WHATSAPP_RATE=100000 AOUN_HOME="$ROOT" \
    "$AOUN" serve >"$dir/stdout.log" 2>"$dir/stderr.log" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "aoun serve did not come up; its stderr:" >&2
  tail -20 "$dir/stderr.log" >&2
  exit 1
}

start_bare() {
  local port="$1"
  "$BARE" --port "$port" --secret "$SECRET" --max-seconds 900 >"$WORK/bare-$port.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    grep -q '^listening on' "$WORK/bare-$port.log" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench_bare_server did not come up" >&2
  exit 1
}

declare -A RESULT
# run_load NAME PORT GRAPH_PORT ARGS...: runs the generator and keeps its RESULT line.
run_load() {
  local name="$1" port="$2" graph_port="$3"; shift 3
  echo
  echo "==> $name"
  # shellcheck disable=SC2086
  "$LOAD" --target "127.0.0.1:$port" --secret "$SECRET" --token "$TOKEN" --phone-number-id "$PHONE_ID" \
    --fixture "$FIXTURE" --graph-port "$graph_port" --server-pid "$SERVER_PID" "$@" $LOAD_ARGS \
    | tee "$WORK/$name.out"
  RESULT[$name]="$(grep '^RESULT ' "$WORK/$name.out" || true)"
  if [ -n "$SERVER_PID" ] && [ -f "$WORK/aoun-$port/stderr.log" ] && [ -s "$WORK/aoun-$port/stderr.log" ]; then
    echo "-- server stderr (last 5 lines):"
    tail -5 "$WORK/aoun-$port/stderr.log"
  fi
}

field() {  # field NAME KEY
  local line="${RESULT[$1]:-}"
  [ -n "$line" ] || { echo "-"; return; }
  tr ' ' '\n' <<<"$line" | sed -n "s/^$2=//p"
}

echo "==> machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

for phase in $PHASES; do
  port="$(free_port)"
  graph_port="$(free_port)"
  case "$phase" in
    aoun-throughput)
      start_aoun "$port" "$graph_port"
      run_load "$phase" "$port" "$graph_port" --mode closed --connections "$CONNECTIONS" \
        --conversations "$CONVERSATIONS" --warmup "$WARMUP" --duration "$DURATION" --drain 10
      ;;
    aoun-latency)
      start_aoun "$port" "$graph_port"
      run_load "$phase" "$port" "$graph_port" --mode open --rate "$RATE" --connections 16 \
        --conversations "$CONVERSATIONS" --warmup "$WARMUP" --duration "$DURATION" --drain 10
      ;;
    aoun-memory)
      start_aoun "$port" "$graph_port"
      run_load "$phase" "$port" "$graph_port" --mode closed --connections "$CONNECTIONS" \
        --conversations "$MEMORY_CONVERSATIONS" --max-per-conversation "$MEMORY_MESSAGES" --warmup 0 \
        --duration 120 --drain 10
      ;;
    bare-throughput)
      start_bare "$port"
      run_load "$phase" "$port" "$graph_port" --no-replies --quiet-ms 0 --mode closed \
        --connections "$CONNECTIONS" --conversations "$CONVERSATIONS" --warmup "$WARMUP" --duration "$DURATION"
      ;;
    bare-latency)
      start_bare "$port"
      run_load "$phase" "$port" "$graph_port" --no-replies --quiet-ms 0 --mode open --rate "$RATE" \
        --connections 16 --conversations "$CONVERSATIONS" --warmup "$WARMUP" --duration "$DURATION"
      ;;
    *) echo "unknown phase $phase" >&2; exit 1 ;;
  esac
  stop_server
done

echo
echo "==> summary ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
printf '%-16s %10s %10s %9s %9s %9s %9s %10s %8s %8s %7s %7s\n' phase "200/s" "e2e/s" "ack p50" "ack p99" \
  "reply p50" "reply p99" "cpu us/wh" "RSS MiB" "HWM MiB" "errors" "other"
for phase in $PHASES; do
  errors="-"
  if [ -n "${RESULT[$phase]:-}" ]; then
    errors=$(( $(field "$phase" non200) + $(field "$phase" io_errors) + $(field "$phase" missing) ))
  fi
  reply50="$(field "$phase" reply_p50_ms)"; reply99="$(field "$phase" reply_p99_ms)"
  case "$phase" in bare-*) reply50="-"; reply99="-" ;; esac
  printf '%-16s %10s %10s %9s %9s %9s %9s %10s %8s %8s %7s %7s\n' "$phase" \
    "$(field "$phase" acked_per_s)" "$(field "$phase" e2e_per_s)" "$(field "$phase" ack_p50_ms)" \
    "$(field "$phase" ack_p99_ms)" "$reply50" "$reply99" \
    "$(field "$phase" server_cpu_us)" "$(field "$phase" rss_drain_mib)" "$(field "$phase" hwm_mib)" "$errors" \
    "$(field "$phase" other_cores)"
done
echo "(200/s = webhooks answered 200 per second; e2e/s = webhooks whose first reply reached the fake Graph"
echo " API per second; latencies in ms; errors = non-200 + i/o errors + replies not there 5 s after the"
echo " webhook; RSS after the run and its drain; other = cores other processes took during the window)"
