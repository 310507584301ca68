#!/usr/bin/env bash
# Fan-out benchmark only: Herald (all-in-one and roles) beside nchan. The older in-tree bench
# this ran is replaced by crates/loadgen; see docs/benchmarks.md.
#   scripts/bench-fanout.sh                        # 1k and 10k clients, 3 repeats
#   BENCH_CLIENTS=2000 BENCH_REPEATS=1 scripts/bench-fanout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_ONLY=fanout exec scripts/bench.sh
