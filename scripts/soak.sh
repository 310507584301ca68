#!/usr/bin/env bash
# A bounded soak of Herald, one command: the all-in-one, then the five roles over RabbitMQ, Redis
# and PostgreSQL, each under steady notices to online and offline users with reconnecting
# clients and receipts (`herald-loadgen soak`), sampling the processes' RSS and descriptors, the
# queues' depths and Redis's memory, and ending with the accounting of every accepted notice and
# a verdict (RSS growth under 5% after the warm-up, no descriptor growth, nothing lost).
#   scripts/soak.sh                              # 30 minutes each, release build
#   SOAK_SECS=300 SOAK_WARMUP_SECS=60 scripts/soak.sh
#   SOAK_ONLY=roles SOAK_PROFILE=debug scripts/soak.sh
#   SOAK_PARALLEL=1 scripts/soak.sh              # both at once (they share the machine)
# Knobs: SOAK_RATE (notices/s, 20), SOAK_ONLINE (100), SOAK_OFFLINE (100); SOAK_ENV, settings
# for every Herald process (`SOAK_ENV="HERALD_DATABASE_MAX_CONNECTIONS=2"`). Output and the
# servers' logs go to target/soak/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald/target}"
export CARGO_TERM_COLOR=never

SECS="${SOAK_SECS:-1800}"
WARMUP="${SOAK_WARMUP_SECS:-120}"
RATE="${SOAK_RATE:-20}"
ONLINE="${SOAK_ONLINE:-100}"
OFFLINE="${SOAK_OFFLINE:-100}"
ONLY="${SOAK_ONLY:-all-in-one roles}"
PROFILE="${SOAK_PROFILE:-release}"
OUT="${SOAK_OUT:-target/soak/$(date +%Y%m%d-%H%M%S)}"
AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
REDIS_URL="redis://127.0.0.1:6379"
DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
SECRET="herald-soak-secret-not-for-production-0123456789"
ROLES="ingest-api ws-gateway record-writer mobile-push-worker janitor"

case $PROFILE in
release) BIN_DIR="$CARGO_TARGET_DIR/release" BUILD=(--release) ;;
debug) BIN_DIR="$CARGO_TARGET_DIR/debug" BUILD=() ;;
*) echo "soak: SOAK_PROFILE is release or debug" >&2; exit 2 ;;
esac
HERALD="$BIN_DIR/herald"
LOADGEN="$BIN_DIR/herald-loadgen"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# Herald reads only what this script sets.
for var in $(compgen -e | grep '^HERALD_' || true); do unset "$var"; done
log() { echo "== $*" >&2; }
die() { echo "soak: $*" >&2; exit 1; }
mkdir -p "$OUT"
# Absolute: the all-in-one runs in a directory of its own and writes its log here.
OUT=$(cd "$OUT" && pwd)

log "building herald and herald-loadgen ($PROFILE)"
cargo build "${BUILD[@]}" --locked -p herald -p loadgen
scripts/start-local-servers.sh >/dev/null

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_ready() { # url pid logfile
    local i
    for i in $(seq 1 600); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]] && return 0
        kill -0 "$2" 2>/dev/null || { tail -n 30 "$3" >&2; die "the server behind $1 exited"; }
        sleep 0.1
    done
    die "$1 was not ready within 60 s"
}

# Herald env shared by every process: no rate limits (the soak posts faster than one sender may),
# warnings only.
herald_env=(HERALD_JWT_SECRET="$SECRET" HERALD_LOG_LEVEL=warn HERALD_LIMITS_SENDER_PER_SECOND=0
    HERALD_LIMITS_IP_PER_SECOND=0)
read -r -a extra_env <<<"${SOAK_ENV:-}"
herald_env+=("${extra_env[@]}")

soak_all_in_one() {
    local dir port pid
    dir=$(mktemp -d /tmp/herald-soak-aio.XXXXXX)
    port=$("$LOADGEN" free-port)
    (cd "$dir" && exec env "${herald_env[@]}" HERALD_HTTP_ADDR="127.0.0.1:$port" "$HERALD" >"$OUT/all-in-one.log" 2>&1) &
    pid=$!
    PIDS+=("$pid")
    wait_ready "http://127.0.0.1:$port/readyz" "$pid" "$OUT/all-in-one.log"
    log "soaking the all-in-one (pid $pid) for $SECS s"
    local status=0
    "$LOADGEN" soak --label "all-in-one" --api "http://127.0.0.1:$port" --ws "ws://127.0.0.1:$port/ws" \
        --token-secret "$SECRET" --duration-secs "$SECS" --warmup-secs "$WARMUP" --rate "$RATE" \
        --online "$ONLINE" --offline "$OFFLINE" --process "herald=$pid" | tee "$OUT/all-in-one.txt" || status=$?
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    return "$status"
}

soak_roles() {
    local id dir prefix role port pid processes="" api="" ws=""
    id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    prefix="soak-$id"
    dir=$(mktemp -d /tmp/herald-soak-roles.XXXXXX)
    for role in $ROLES; do
        port=$("$LOADGEN" free-port)
        (cd "$dir" && exec env "${herald_env[@]}" HERALD_HTTP_ADDR="127.0.0.1:$port" \
            HERALD_BUS_URL="$AMQP_URL" HERALD_BUS_PREFIX="$prefix" \
            HERALD_REDIS_URL="$REDIS_URL" HERALD_REDIS_KEY_PREFIX="$prefix:" \
            HERALD_DATABASE_URL="$DATABASE_URL" HERALD_DATABASE_SCHEMA="soak_$id" \
            "$HERALD" run "$role" >"$OUT/$role.log" 2>&1) &
        pid=$!
        PIDS+=("$pid")
        wait_ready "http://127.0.0.1:$port/readyz" "$pid" "$OUT/$role.log"
        processes="${processes:+$processes,}$role=$pid"
        case $role in
        ingest-api) api="http://127.0.0.1:$port" ;;
        ws-gateway) ws="ws://127.0.0.1:$port/ws" ;;
        esac
    done
    log "soaking the roles ($processes) for $SECS s"
    local status=0
    "$LOADGEN" soak --label "roles over RabbitMQ, Redis, PostgreSQL" --api "$api" --ws "$ws" \
        --token-secret "$SECRET" --duration-secs "$SECS" --warmup-secs "$WARMUP" --rate "$RATE" \
        --online "$ONLINE" --offline "$OFFLINE" --process "$processes" --amqp-url "$AMQP_URL" \
        --queue "$prefix.ingress,$prefix.records,$prefix.records-events,$prefix.mobile-push-notices" \
        --redis-url "$REDIS_URL" | tee "$OUT/roles.txt" || status=$?
    for pid in $(tr ',' '\n' <<<"$processes" | cut -d= -f2); do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $(tr ',' '\n' <<<"$processes" | cut -d= -f2); do wait "$pid" 2>/dev/null || true; done
    # What the run left: its queues and exchanges, its schema, its Redis keys.
    "$LOADGEN" cleanup-amqp --amqp-url "$AMQP_URL" --prefix "$prefix" >/dev/null ||
        echo "soak: could not remove the RabbitMQ topology of $prefix" >&2
    PGOPTIONS=--client-min-messages=warning psql -q -h 127.0.0.1 -U postgres -d test \
        -c "DROP SCHEMA IF EXISTS soak_$id CASCADE" >/dev/null || echo "soak: could not drop schema soak_$id" >&2
    redis-cli --scan --pattern "$prefix:*" | xargs -r redis-cli del >/dev/null || true
    rm -rf "$dir"
    return "$status"
}

failed=0
wants() { [[ " $ONLY " == *" $1 "* ]]; }
if [[ -n "${SOAK_PARALLEL:-}" ]]; then
    jobs=()
    if wants all-in-one; then soak_all_in_one & jobs+=($!); fi
    if wants roles; then soak_roles & jobs+=($!); fi
    for job in "${jobs[@]}"; do wait "$job" || failed=1; done
else
    if wants all-in-one; then soak_all_in_one || failed=1; fi
    if wants roles; then soak_roles || failed=1; fi
fi
log "results in $OUT"
exit "$failed"
