#!/usr/bin/env bash
# Tenant creation rate through the control socket. Run from the project root after
# `swift build -c release`.
source "$(dirname "$0")/../../shared/bench/lib.sh"
start_bulkhead 18490
"$BIN/bulkhead-bench-control" "$WORK/control.sock" "${1:-300}"
