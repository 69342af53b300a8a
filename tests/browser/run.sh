#!/usr/bin/env bash
# Browser tests: Playwright (playwright-core from npm, pinned) driving Debian's chromium,
# against the real aoun binary.  Usage: tests/browser/run.sh <path-to-aoun-binary>
# Installs what it needs on a fresh Debian 12 machine (chromium, Arabic fonts, node/npm,
# node_modules from package-lock.json). Every process it starts is stopped by the tests
# themselves (aoun, the fake Graph API, chromium) or by the trap below.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${1:-$HERE/../../build/bot/aoun}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
[ -x "$BIN" ] || { echo "run.sh: no aoun binary at $BIN" >&2; exit 2; }

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
dpkg-query -W -f='${Status}' fonts-noto-core 2>/dev/null | grep -q "install ok installed" || need+=(fonts-noto-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

cd "$HERE"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

export AOUN_BIN="$BIN"
echo "==> node --test (chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), $(node --version))"
node --test --test-concurrency=1 --test-timeout=180000 tests/*.test.mjs &
pids+=($!)
wait "${pids[0]}"
