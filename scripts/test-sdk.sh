#!/usr/bin/env bash
# The JavaScript SDK's tests (sdk/js, node's test runner) against the real all-in-one binary,
# which they start on a free port with a database of their own. Needs Node.js 20 or newer and
# the debug build of herald (scripts/test.sh builds it first); installs the SDK's test
# dependencies (ws, typescript) from npm with `npm ci` when they are missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null 2>&1 || { echo "test-sdk: Node.js 20+ is needed (https://nodejs.org)" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
(( major >= 20 )) || { echo "test-sdk: Node.js 20+ is needed, found $(node --version)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# scripts/test.sh passes the binary `cargo test` just built (HERALD_BIN); building it here with
# `cargo build` would rebuild half the workspace under other features.
if [[ -z ${HERALD_BIN:-} ]]; then
  cargo build --locked -p herald --bin herald
  export HERALD_BIN="$CARGO_TARGET_DIR/debug/herald"
fi
cd sdk/js
if [[ ! -d node_modules/ws || ! -d node_modules/typescript || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
echo "== tsc --noEmit (the SDK's TypeScript types)"
npx --no-install tsc -p tsconfig.json
exec node --test test/client.test.js
