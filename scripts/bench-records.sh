#!/usr/bin/env bash
# record-writer benchmark: events/s and notices/s written to PostgreSQL from a RabbitMQ backlog.
# Prints numbers; see services/record-writer/benches.
#   scripts/bench-records.sh
#   BENCH_NOTICES=10000 BENCH_BATCH=500 scripts/bench-records.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/start-local-servers.sh
exec cargo bench -p record-writer --bench throughput
