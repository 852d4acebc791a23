#!/usr/bin/env bash
# Fairness: one tenant flooding far past its limit against another tenant's latency.
# "calm" sends as fast as 4 connections go, alone, then again while "flood" sends about
# 10,000 requests a second (32 connections, 3 ms apart each: 100 times its limit of
# 100/s); the flood's excess gets 429s. Prints calm's p50/p99 both times and the factor.
# FLOOD_DELAY_MS=0 floods as fast as wrk can instead.
# Run from the project root after `swift build -c release`. Usage: fairness.sh [SECONDS]
source "$(dirname "$0")/../../shared/bench/lib.sh"
SECS=${1:-5}
need wrk wrk
start_bulkhead 18290
CALM=$(create_tenant calm)
FLOOD=$(create_tenant flood)
"$BIN/bulkheadctl" --socket "$WORK/control.sock" limits set flood --rate 100/second --burst 100 >/dev/null

script() { # script KEY FILE
  cat >"$2" <<LUA
wrk.method = "POST"
wrk.body = '{"task":"echo","data":"hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $1"
LUA
}
script "$CALM" "$WORK/calm.lua"
script "$FLOOD" "$WORK/flood.lua"
echo "function delay() return ${FLOOD_DELAY_MS:-3} end" >>"$WORK/flood.lua"
url=http://127.0.0.1:18290/v1/process

calm() { # -> "rps p50 p99"
  wrk -t1 -c4 -d"${SECS}s" --latency -s "$WORK/calm.lua" "$url" >"$WORK/calm.out"
  echo "$(awk '/Requests\/sec/ {print $2}' "$WORK/calm.out") $(awk '$1=="50%" {print $2}' "$WORK/calm.out") $(awk '$1=="99%" {print $2}' "$WORK/calm.out")"
}
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else { sub(/s$/, "", v); print v * 1000 } }'; }

calm >/dev/null  # warm-up: workers started
read -r a_rps a50 a99 < <(calm)
wrk -t1 -c32 -d"$((SECS + 2))s" -s "$WORK/flood.lua" "$url" >"$WORK/flood.out" &
FLOODER=$!
sleep 1
read -r b_rps b50 b99 < <(calm)
wait "$FLOODER"
f_rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/flood.out")
f_refused=$(awk '/Non-2xx/ {print $NF}' "$WORK/flood.out")
echo "calm alone:        $a_rps req/s, p50 $a50, p99 $a99"
echo "calm under flood:  $b_rps req/s, p50 $b50, p99 $b99"
echo "flood:             $f_rps req/s against a limit of 100/s (${f_refused:-0} refused with 429)"
echo "calm p99 factor under flood: $(awk -v a="$(ms "$a99")" -v b="$(ms "$b99")" 'BEGIN {printf "%.2f", b / a}')"
