#!/usr/bin/env bash
# The console's and the inbox demo's browser tests (services/ingest-api/console/test): Playwright
# (the npm package playwright-core, which downloads no browser) driving Debian's Chromium against
# the real all-in-one binary. Installs Chromium from Debian's packages when it is missing (as
# root, or with sudo), and playwright-core with `npm ci`. Screenshots of each page are written to
# ${HERALD_SCREENSHOTS:-<cargo target dir>/console-screenshots}.
set -euo pipefail
cd "$(dirname "$0")/.."
chromium=${HERALD_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "== installing Debian's chromium (browser tests)"
  sudo=""
  (( EUID == 0 )) || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
    || { echo "test-console: cannot install chromium; set HERALD_CHROMIUM to a Chromium binary" >&2; exit 1; }
fi
export HERALD_CHROMIUM=$chromium
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# scripts/test.sh passes the binary `cargo test` just built (HERALD_BIN); building it here with
# `cargo build` would rebuild half the workspace under other features.
if [[ -z ${HERALD_BIN:-} ]]; then
  cargo build --locked -p herald --bin herald
  export HERALD_BIN="$CARGO_TARGET_DIR/debug/herald"
fi
cd services/ingest-api/console/test
if [[ ! -d node_modules/playwright-core || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
exec node --test console.test.js
