#!/usr/bin/env bash
# Rate-limit decisions per second, in-process and through a private redis-server on a
# Unix socket (started and stopped here). Run from the project root after
# `swift build -c release`.
set -euo pipefail
WORK=$(mktemp -d /tmp/bulkhead-bench-ratelimit.XXXXXX)
trap 'kill "$REDIS" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
redis-server --port 0 --unixsocket "$WORK/redis.sock" --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
REDIS=$!
for _ in $(seq 1 50); do redis-cli -s "$WORK/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
.build/release/bulkhead-bench-ratelimit "${1:-2000000}" --redis "unix:$WORK/redis.sock"
