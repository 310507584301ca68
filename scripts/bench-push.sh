#!/usr/bin/env bash
# mobile-push-worker benchmark: sends/s through the worker to the mock provider, from a RabbitMQ
# backlog, logged in PostgreSQL, at each concurrency. Prints numbers; see
# services/mobile-push-worker/benches.
#   scripts/bench-push.sh
#   BENCH_SENDS=5000 BENCH_CONCURRENCY=8,32 BENCH_PROVIDER_MS=50 scripts/bench-push.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/start-local-servers.sh
exec cargo bench -p mobile-push-worker --bench throughput
