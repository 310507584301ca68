#!/usr/bin/env bash
# The whole test suite: makes sure the local servers are up, runs every crate's tests, the
# JavaScript SDK's tests against the binary (scripts/test-sdk.sh), the console's browser tests
# (scripts/test-console.sh), then fuzzes the HTTP API against its OpenAPI document
# (scripts/fuzz-api.sh).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p bus`), and then only those tests
# run, without the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/start-local-servers.sh
if (( $# > 0 )); then
  exec cargo test --workspace --locked "$@"
fi
cargo test --workspace --locked
# The binary the integration tests just ran: what the SDK and the console are tested against.
HERALD_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/herald"
export HERALD_BIN
echo "== the JavaScript SDK against the binary (scripts/test-sdk.sh)"
scripts/test-sdk.sh
echo "== the console in a browser (scripts/test-console.sh)"
scripts/test-console.sh
echo "== fuzzing the HTTP API (scripts/fuzz-api.sh)"
scripts/fuzz-api.sh
