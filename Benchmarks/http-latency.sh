#!/usr/bin/env bash
# Latency of the full request path at -c1 and -c64, and the daemon's resident memory with
# 1,000 idle keep-alive connections. Run from the project root after `swift build -c release`.
source "$(dirname "$0")/../../shared/bench/lib.sh"
need wrk wrk
start_bulkhead 18390
KEY=$(create_tenant bench-tenant)
cat >"$WORK/post.lua" <<EOT
wrk.method = "POST"
wrk.body = '{"task":"echo","data":"hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
EOT
PID=$(pgrep -f "bulkheadd --config $WORK/bench.conf" | head -1)
wrk -t1 -c1 -d2s -s "$WORK/post.lua" http://127.0.0.1:18390/v1/process >/dev/null  # warm up
for c in 1 64; do
  t=$([[ $c == 1 ]] && echo 1 || echo 2)
  wrk -t$t -c$c -d5s --latency -s "$WORK/post.lua" http://127.0.0.1:18390/v1/process >"$WORK/wrk.out"
  echo "-c$c: $(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out") req/s, p50 $(awk '$1=="50%" {print $2}' "$WORK/wrk.out"), p99 $(awk '$1=="99%" {print $2}' "$WORK/wrk.out")"
done
python3 - "$PID" <<'PY'
import socket, sys
pid = sys.argv[1]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss()
conns = []
for i in range(1000):
    s = socket.create_connection(("127.0.0.1", 18390))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    s.recv(4096)  # answered; the connection stays open, idle, keep-alive
after = rss()
print(f"RSS: {before} KiB before, {after} KiB with 1000 idle keep-alive connections ({(after - before) / 1000:.1f} KiB each)")
PY
