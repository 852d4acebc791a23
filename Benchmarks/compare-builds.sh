#!/usr/bin/env bash
# Two builds of bulkheadd side by side in one run: the same configuration and request
# as ../shared/bench/vs-nginx.sh, wrk alternating between them, the ratio NEW/OLD per
# round, and NEW's usage flush lag sampled during its rounds. For measuring what a
# change costs (metering's budget was 5%). Build OLD first, e.g.:
#   git worktree add /tmp/old REV && (cd /tmp/old && swift build -c release)
# Usage: Benchmarks/compare-builds.sh OLD_BIN_DIR [NEW_BIN_DIR] [ROUNDS]
# OLD_CONF / NEW_CONF: lines added to that side's configuration (e.g. what a setting
# costs: NEW_CONF=$'[log]\nrequests = off' with the same build on both sides).
set -euo pipefail
OLD=${1:?usage: compare-builds.sh OLD_BIN_DIR [NEW_BIN_DIR] [ROUNDS]}
NEW=${2:-$(pwd)/.build/release}
ROUNDS=${3:-4}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
W=$(mktemp -d /tmp/bulkhead-compare.XXXXXX)
DAEMONS=()
trap 'kill "${DAEMONS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT

start() { # start NAME BIN_DIR PORT [EXTRA_CONF]
  mkdir -p "$W/$1"
  cat >"$W/$1/c.conf" <<CONF
[server]
listen = 127.0.0.1:$3
state_dir = $W/$1/state
control_socket = $W/$1/control.sock
[ratelimit]
rate = 100000000/second
burst = 100000000
[quota]
max_compute_minutes_per_day = 100000000
${4:-}
CONF
  "$2/bulkheadd" --config "$W/$1/c.conf" >"$W/$1/log" 2>&1 &
  DAEMONS+=($!)
  for _ in $(seq 1 100); do [[ -S $W/$1/control.sock ]] && break; sleep 0.1; done
  local key
  key=$("$2/bulkheadctl" --socket "$W/$1/control.sock" tenant create bench | sed -n 's/^API Key: //p')
  cat >"$W/$1/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"task":"echo","data":"hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
}
run() { wrk -t2 -c64 -d5s -s "$W/$1/post.lua" "http://127.0.0.1:$2/v1/process" | awk '/Requests\/sec/ {print $2}'; }

start old "$OLD" 18601 "${OLD_CONF:-}"
start new "$NEW" 18602 "${NEW_CONF:-}"
run old 18601 >/dev/null; run new 18602 >/dev/null  # warm-up: workers started
for i in $(seq 1 "$ROUNDS"); do
  a=$(run old 18601)
  (for _ in 1 2 3 4 5 6 7 8; do sleep 0.5
     curl -s --max-time 1 http://127.0.0.1:18602/metrics | awk '/^bulkhead_usage_flush_lag/ {print $2}'; done >"$W/lag") &
  sampler=$!
  b=$(run new 18602)
  wait "$sampler"
  echo "round $i: old $a req/s | new $b req/s | ratio $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}') | new flush lag ms: $(tr '\n' ' ' <"$W/lag")"
done
