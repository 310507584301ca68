#!/usr/bin/env bash
# Fan-out benchmark: deliveries/s, latency percentiles, server CPU per delivery and memory per
# connection, against the release herald binary. Prints numbers; see services/herald/benches.
#   scripts/bench-fanout.sh                       # 2000 connections, 200 broadcasts
#   BENCH_CONNECTIONS=10000 scripts/bench-fanout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Each connection takes a descriptor on both ends.
ulimit -n "$(( ${BENCH_CONNECTIONS:-2000} * 2 + 1024 ))" 2>/dev/null || true
exec cargo bench -p herald --bench fanout
