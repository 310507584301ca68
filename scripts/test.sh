#!/usr/bin/env bash
# The whole test suite: makes sure the local servers are up, then runs every crate's tests.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p bus`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/start-local-servers.sh
exec cargo test --workspace --locked "$@"
