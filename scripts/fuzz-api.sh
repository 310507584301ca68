#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis: builds the all-in-one `herald` binary, starts it on a
# free port with a throw-away SQLite database, mints an admin token, and runs schemathesis over
# every operation of /api/openapi.json. Fails if any answer is a server error, or does not match
# the document (status, content type, headers, body schema), or if the server panicked.
#
# schemathesis comes from PyPI (scripts/fuzz-api.requirements.txt, all pinned) into a virtualenv
# under ${HERALD_TOOLS_DIR:-$HOME/.cache/herald/tools}/schemathesis, made on first use and reused
# after; it is rebuilt when the requirements file or the Python changes. Needs python3 and network
# access to PyPI the first time; nothing else. The server and its files are removed on any exit.
#
# Knobs: HERALD_FUZZ_MAX_EXAMPLES (test cases per operation and phase, default 60),
# HERALD_FUZZ_SEED (default fixed, so that CI is reproducible; set another to explore),
# HERALD_FUZZ_KEEP_LOG=1 (print the server's log even on success).
# Cases it must not send (known bugs in code it does not own) are in scripts/fuzz_api_hooks.py.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=scripts/fuzz-api.requirements.txt
python=${PYTHON:-python3}
max_examples=${HERALD_FUZZ_MAX_EXAMPLES:-60}
seed=${HERALD_FUZZ_SEED:-20261201}
# Every answer is checked for these (schemathesis names).
checks=not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance

fail() { echo "fuzz-api: FAILED: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/herald-fuzz.XXXXXX")
server_pid=
fuzzer_pid=
cleanup() {
  local status=$?
  if [[ -n $fuzzer_pid ]]; then
    kill "$fuzzer_pid" 2>/dev/null || true
    wait "$fuzzer_pid" 2>/dev/null || true
  fi
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    # A graceful stop takes a moment; past ten seconds the server is killed.
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Tools -----------------------------------------------------------------------------------

install_tools() {
  # shellcheck source=scripts/python-tools.sh
  source scripts/python-tools.sh
  python_tools schemathesis "$requirements" "schemathesis" || fail "the Python tools could not be installed"
}

# --- The server ------------------------------------------------------------------------------

# Prints the path of the freshly built `herald` binary. Built as `cargo test` builds it (every
# target, so dev-dependencies' features too): after the test suite this builds nothing, where a
# plain `cargo build -p herald` would rebuild much of the tree with other features.
build_herald() {
  cargo build --workspace --all-targets --locked --message-format=json-render-diagnostics \
    | "$python" -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and message["target"]["name"] == "herald" and "bin" in message["target"]["kind"] \
            and not message["profile"]["test"]:
        print(message["executable"])
'
}

# The environment `herald` runs with: only the settings this script chooses. Any HERALD_* variable
# of the caller (a config file, a real database, this script's own knobs) is left out, and so is
# RUST_LOG, which would hide the line that says where it listens. Used as `env "${herald_env[@]}"`
# in a simple command, so that a background server's pid is the server's own.
herald_env=(-u RUST_LOG)
set_herald_env() {
  local name
  for name in $(compgen -e); do
    [[ $name == HERALD_* ]] && herald_env+=(-u "$name")
  done
  herald_env+=(
    HERALD_HTTP_ADDR=127.0.0.1:0
    "HERALD_DATABASE_URL=sqlite://$work/herald.db?mode=rwc"
    "HERALD_JWT_SECRET=$secret"
    HERALD_LIMITS_SENDER_PER_SECOND=0
    HERALD_LIMITS_IP_PER_SECOND=0
    HERALD_LOG_FORMAT=json
    HERALD_LOG_LEVEL=info
    RUST_BACKTRACE=0
  )
}

print_server_log() {
  echo "---- herald's log (warnings, errors and panics) ----" >&2
  grep -v '"level":"INFO"\|"level":"DEBUG"' "$work/herald.log" | tail -n 60 >&2 || true
  echo "---- end of herald's log ----" >&2
}

# Starts the server (in this shell, so that `cleanup` knows its pid) and sets `base` to its URL
# once it is ready.
start_herald() {
  env "${herald_env[@]}" "$bin" >"$work/herald.log" 2>&1 &
  server_pid=$!
  local addr="" deadline=$((SECONDS + 60))
  while [[ -z $addr ]]; do
    kill -0 "$server_pid" 2>/dev/null || { print_server_log; fail "herald exited at start-up"; }
    (( SECONDS < deadline )) || { print_server_log; fail "herald did not say where it listens within 60 s"; }
    addr=$("$python" -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    if "listening" in entry.get("message", "") and entry.get("addr"):
        print(entry["addr"])
        break
' "$work/herald.log")
    [[ -n $addr ]] || sleep 0.2
  done
  until "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://$addr/readyz" 2>/dev/null; do
    kill -0 "$server_pid" 2>/dev/null || { print_server_log; fail "herald exited before it was ready"; }
    (( SECONDS < deadline )) || { print_server_log; fail "herald was not ready within 60 s"; }
    sleep 0.2
  done
  base="http://$addr"
}

# --- The run ---------------------------------------------------------------------------------

install_tools
echo "== building herald"
bin=$(build_herald)
[[ -x $bin ]] || fail "cargo built no herald binary"
secret=$("$python" -c 'import secrets; print(secrets.token_hex(32))')
set_herald_env
start_herald
token=$(env "${herald_env[@]}" "$bin" token --sub 1 --role admin --name fuzzer) \
  || fail "herald token did not mint a token"
echo "== schemathesis over every operation of $base/api/openapi.json"
echo "   checks: $checks; at most $max_examples cases per operation and phase; seed $seed"
started=$SECONDS
status=0
# In the background and waited for, so that a signal to this script stops the run at once; in the
# scratch directory, where schemathesis keeps its cache (a crash found by one run is not replayed
# by the next, and nothing is left in the work tree).
hooks_path="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
(
  cd "$work"
  exec env NO_COLOR=1 PYTHONPATH="$hooks_path" SCHEMATHESIS_HOOKS=fuzz_api_hooks \
    "$venv/bin/schemathesis" run "$base/api/openapi.json" \
      --header "Authorization: Bearer $token" \
      --checks "$checks" \
      --max-examples "$max_examples" \
      --seed "$seed" \
      --request-timeout 10
) &
fuzzer_pid=$!
wait "$fuzzer_pid" || status=$?
fuzzer_pid=
elapsed=$((SECONDS - started))

problems=()
if (( status != 0 )); then
  problems+=("schemathesis found problems in ${elapsed} s: each is listed above with a curl line that reproduces it (rerun with HERALD_FUZZ_SEED=$seed)")
fi
if grep -q "panicked at" "$work/herald.log"; then
  problems+=("herald panicked while being fuzzed (its log is above)")
fi
if (( ${#problems[@]} > 0 )); then
  print_server_log
  for problem in "${problems[@]}"; do echo "fuzz-api: FAILED: $problem" >&2; done
  exit 1
fi
if [[ ${HERALD_FUZZ_KEEP_LOG:-0} == 1 ]]; then print_server_log; fi
echo "fuzz-api: OK (${elapsed} s, seed $seed)"
