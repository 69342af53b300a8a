#!/usr/bin/env bash
# Benchmark helper (not a test): instructions per webhook, counted by valgrind's callgrind, for
# A/B comparisons that the timing benchmark cannot settle on a noisy machine. Instruction
# counts do not depend on what else the machine runs; they do not see the kernel, cache misses
# or lock waits, so a change is confirmed with run.sh as well.
#
#   bench/webhook/callgrind.sh OUT [BUILD_DIR]     # BUILD_DIR: a Release build with -g is best
#   N=1500 bench/webhook/callgrind.sh /tmp/a.cg build-prof
#   callgrind_annotate --inclusive=yes OUT.1 | less
#
# Runs `aoun serve` (one I/O thread) under callgrind with a fresh database, sends 300 webhooks to
# warm it up (one per conversation: the welcome), zeroes the counters, sends N more over 8
# connections to the same 300 conversations (the dialog goes on: consent, menu, ...), dumps the
# counters to OUT.1 and prints Ir per acknowledged webhook.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:?usage: callgrind.sh OUT [BUILD_DIR]}"
BUILD_DIR="${2:-$ROOT/build-rel}"
N="${N:-1500}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
WORK="$(mktemp -d "${TMPDIR:-/tmp}/aoun-callgrind.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(free_port)"
GRAPH_PORT="$(free_port)"
PHONE_ID="106540352242922"
env AOUN_DB="$WORK/aoun.db" AOUN_LISTEN="127.0.0.1:$PORT" AOUN_LOG_LEVEL=warn AOUN_THREADS=1 \
  AOUN_PUBLIC_URL="http://127.0.0.1:$PORT" AOUN_WHATSAPP_VERIFY_TOKEN=v AOUN_WHATSAPP_APP_SECRET=bench-secret \
  AOUN_WHATSAPP_TOKEN=bench-token AOUN_WHATSAPP_PHONE_NUMBER_ID="$PHONE_ID" \
  AOUN_WHATSAPP_API_BASE="http://127.0.0.1:$GRAPH_PORT" AOUN_WHATSAPP_RATE=100000 AOUN_HOME="$ROOT" \
  valgrind --tool=callgrind --callgrind-out-file="$OUT" --dump-instr=no "$BUILD_DIR/bot/aoun" serve \
  >"$WORK/stdout.log" 2>"$WORK/stderr.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/stderr.log" >&2; exit 1; }
  sleep 0.2
done
load() {
  "$BUILD_DIR/bench/bench_webhook_load" --target "127.0.0.1:$PORT" --secret bench-secret --token bench-token \
    --phone-number-id "$PHONE_ID" --fixture "$ROOT/tests/fixtures/channels/whatsapp_text.json" \
    --graph-port "$GRAPH_PORT" --mode closed --connections 8 --conversations 300 --quiet-ms 0 \
    --reply-timeout-ms 20000 --warmup 0 --duration 600 "$@"
}
load --count 300 --drain 20 >"$WORK/warmup.log" 2>&1
callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
load --count "$N" --drain 30 >"$WORK/run.log" 2>&1
callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
result="$(grep '^RESULT ' "$WORK/run.log")"
acked="$(tr ' ' '\n' <<<"$result" | sed -n 's/^acked=//p')"
missing="$(tr ' ' '\n' <<<"$result" | sed -n 's/^missing=//p')"
ir="$(grep -m1 '^summary:\|^totals:' "$OUT.1" | awk '{print $2}')"
echo "webhooks acked: $acked (replies missing: $missing)"
echo "instructions: $ir, per webhook: $(( ir / acked ))"
