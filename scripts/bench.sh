#!/usr/bin/env bash
# Herald beside nchan (nginx's push module), same load generator, runs interleaved, one command.
# Fan-out (burst and paced, at each client count), then ingestion (RabbitMQ's own ceiling,
# Herald's roles over RabbitMQ, the all-in-one), then the comparison table. Every server is
# started fresh for each run and stopped after it. See docs/benchmarks.md.
#   scripts/bench.sh
#   BENCH_REPEATS=1 BENCH_CLIENTS=1000 BENCH_BURST_NOTICES=20 BENCH_PACED_NOTICES=20 BENCH_INGEST_SECS=3 scripts/bench.sh
#   BENCH_ONLY="ingest broker" scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/herald/target}"
export CARGO_TERM_COLOR=never

REPEATS="${BENCH_REPEATS:-3}"
CLIENTS="${BENCH_CLIENTS:-1000 10000}"
BURST_NOTICES="${BENCH_BURST_NOTICES:-100}"
PACED_NOTICES="${BENCH_PACED_NOTICES:-100}"
INGEST_SECS="${BENCH_INGEST_SECS:-10}"
ONLY="${BENCH_ONLY:-fanout ingest broker}"
IDLE_BELOW="${BENCH_IDLE_BELOW:-15}"
IDLE_TIMEOUT="${BENCH_IDLE_TIMEOUT:-60}"
OUT="${BENCH_OUT:-target/bench/$(date +%Y%m%d-%H%M%S)}"

AMQP_URL="amqp://guest:guest@127.0.0.1:5672/%2f"
REDIS_URL="redis://127.0.0.1:6379"
DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
SECRET="herald-bench-secret-not-for-production-0123456789"
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
HERALD="$CARGO_TARGET_DIR/release/herald"
LOADGEN="$CARGO_TARGET_DIR/release/herald-loadgen"

# 10k clients take 10k descriptors in the load generator and 10k in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# Herald reads only what this script sets.
for var in $(compgen -e | grep '^HERALD_' || true); do unset "$var"; done

wants() { [[ " $ONLY " == *" $1 "* ]]; }
log() { echo "== $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
random_id() { od -An -N4 -tx1 /dev/urandom | tr -d ' \n'; }

# The servers' logs are kept beside the results, named after the run; only a count is printed.
RUN_NAME=run
keep_log() { # file name
    local file=$1 name=$2 kept count
    [[ -f "$file" ]] || return 0
    kept="$OUT/logs/$RUN_NAME-$name"
    mkdir -p "$OUT/logs"
    sed 's/\x1b\[[0-9;]*m//g' "$file" >"$kept"
    count=$(grep -cE 'ERROR|WARN|\[(warn|error|crit|alert|emerg)\]' "$kept" || true)
    if ((count > 0)); then echo "   ($name: $count warning or error lines, kept in $kept)" >&2; fi
}

# What is running, for the cleanup: at most one server set at a time.
NCHAN_DIR="" NCHAN_MASTER=""
AIO_DIR="" AIO_PID=""
ROLES_DIR="" ROLES_PIDS="" ROLES_ID=""

stop_pid() { # pid...: SIGTERM, then SIGKILL after 20 s
    local pid waited
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if ((waited >= 200)); then kill -KILL "$pid" 2>/dev/null || true; fi
            sleep 0.1
            waited=$((waited + 1))
        done
        wait "$pid" 2>/dev/null || true
    done
}

wait_ready() { # url pid logfile
    local url=$1 pid=$2 logfile=$3 i
    for i in $(seq 1 600); do
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)" == 200 ]]; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "the server behind $url exited before it was ready"
        fi
        sleep 0.1
    done
    tail -n 30 "$logfile" >&2 || true
    die "$url was not ready within 60 s"
}

# ---------------------------------------------------------------- servers this script needs
ensure_nchan() {
    if ! command -v nginx >/dev/null || [[ ! -f "$NCHAN_MODULE" ]]; then
        log "installing nginx-light and libnginx-mod-nchan"
        apt-get install -y --no-install-recommends nginx-light libnginx-mod-nchan ||
            { apt-get update && apt-get install -y --no-install-recommends nginx-light libnginx-mod-nchan; }
    fi
    nginx -V 2>&1 | sed -n 1p >&2
    [[ -f "$NCHAN_MODULE" ]] || die "no nchan module at $NCHAN_MODULE"
}

ensure_backends() {
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
        log "starting RabbitMQ"
        rabbitmq-server -detached
        rabbitmqctl -q await_startup --timeout 120
    fi
    if ! redis-cli ping 2>/dev/null | grep -q PONG; then
        log "starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
        for _ in $(seq 1 50); do redis-cli ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    fi
    if ! pg_isready -h 127.0.0.1 -q; then
        log "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
        for _ in $(seq 1 100); do pg_isready -h 127.0.0.1 -q && break; sleep 0.1; done
    fi
}

beam_pid() { { pgrep -u rabbitmq -x beam.smp || pgrep -x beam.smp; } | sed -n 1p; }

# ---------------------------------------------------------------- nchan
start_nchan() {
    NCHAN_DIR=$(mktemp -d /tmp/herald-bench-nchan.XXXXXX)
    NCHAN_PORT=$("$LOADGEN" free-port)
    cat >"$NCHAN_DIR/nginx.conf" <<EOF
load_module $NCHAN_MODULE;
worker_processes 2;
worker_rlimit_nofile $(ulimit -n);
pid $NCHAN_DIR/nginx.pid;
error_log $NCHAN_DIR/error.log warn;
events {
    worker_connections 30000;
    use epoll;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path $NCHAN_DIR/body;
    proxy_temp_path $NCHAN_DIR/proxy;
    fastcgi_temp_path $NCHAN_DIR/fastcgi;
    uwsgi_temp_path $NCHAN_DIR/uwsgi;
    scgi_temp_path $NCHAN_DIR/scgi;
    # Shared memory for channels, messages and the subscribers' bookkeeping across workers.
    nchan_max_reserved_memory 256M;
    server {
        listen 127.0.0.1:$NCHAN_PORT backlog=4096;
        location = /pub {
            nchan_publisher;
            nchan_channel_id all;
            # Enough buffered messages for a burst; live subscribers get each as it comes.
            nchan_message_buffer_length 1000;
            nchan_message_timeout 10m;
        }
        location = /sub {
            nchan_subscriber websocket;
            nchan_channel_id all;
            # Like Herald's target "all": a subscriber gets what is published after it joined.
            nchan_subscriber_first_message newest;
        }
    }
}
EOF
    nginx -p "$NCHAN_DIR" -e "$NCHAN_DIR/error.log" -c "$NCHAN_DIR/nginx.conf" ||
        { cat "$NCHAN_DIR/error.log" >&2; die "nginx did not start"; }
    local workers="" i
    for i in $(seq 1 100); do
        NCHAN_MASTER=$(cat "$NCHAN_DIR/nginx.pid" 2>/dev/null || true)
        if [[ -n "$NCHAN_MASTER" ]]; then
            workers=$(pgrep -P "$NCHAN_MASTER" | paste -sd, || true)
            if [[ $(tr ',' '\n' <<<"$workers" | grep -c .) -ge 2 ]] &&
                (exec 3<>"/dev/tcp/127.0.0.1/$NCHAN_PORT") 2>/dev/null; then
                break
            fi
        fi
        sleep 0.1
    done
    [[ -n "$workers" ]] || die "nginx's workers did not start"
    NCHAN_PIDS="$NCHAN_MASTER,$workers"
}

stop_nchan() {
    [[ -n "$NCHAN_DIR" ]] || return 0
    if [[ -n "$NCHAN_MASTER" ]]; then stop_pid "$NCHAN_MASTER"; fi
    keep_log "$NCHAN_DIR/error.log" nginx.log
    rm -rf "$NCHAN_DIR"
    NCHAN_DIR="" NCHAN_MASTER=""
}

# ---------------------------------------------------------------- Herald all-in-one
start_herald_aio() {
    AIO_DIR=$(mktemp -d /tmp/herald-bench-aio.XXXXXX)
    AIO_PORT=$("$LOADGEN" free-port)
    # The working directory is fresh: herald.db (SQLite) is created there.
    (cd "$AIO_DIR" && exec env HERALD_HTTP_ADDR="127.0.0.1:$AIO_PORT" HERALD_JWT_SECRET="$SECRET" \
        HERALD_LOG_LEVEL=warn HERALD_LIMITS_SENDER_PER_SECOND=0 HERALD_LIMITS_IP_PER_SECOND=0 \
        "$HERALD" >"$AIO_DIR/herald.log" 2>&1) &
    AIO_PID=$!
    wait_ready "http://127.0.0.1:$AIO_PORT/readyz" "$AIO_PID" "$AIO_DIR/herald.log"
}

stop_herald_aio() {
    [[ -n "$AIO_DIR" ]] || return 0
    if [[ -n "$AIO_PID" ]]; then stop_pid "$AIO_PID"; fi
    keep_log "$AIO_DIR/herald.log" herald.log
    rm -rf "$AIO_DIR"
    AIO_DIR="" AIO_PID=""
}

# ---------------------------------------------------------------- Herald roles
start_herald_roles() {
    ROLES_ID=$(random_id)
    ROLES_DIR=$(mktemp -d /tmp/herald-bench-roles.XXXXXX)
    ROLES_PIDS=""
    local role port pid
    for role in ingest-api record-writer ws-gateway; do
        port=$("$LOADGEN" free-port)
        (cd "$ROLES_DIR" && exec env HERALD_HTTP_ADDR="127.0.0.1:$port" HERALD_JWT_SECRET="$SECRET" \
            HERALD_LOG_LEVEL=warn HERALD_LIMITS_SENDER_PER_SECOND=0 HERALD_LIMITS_IP_PER_SECOND=0 \
            HERALD_BUS_URL="$AMQP_URL" HERALD_BUS_PREFIX="bench-$ROLES_ID" \
            HERALD_REDIS_URL="$REDIS_URL" HERALD_REDIS_KEY_PREFIX="bench-$ROLES_ID:" \
            HERALD_DATABASE_URL="$DATABASE_URL" HERALD_DATABASE_SCHEMA="bench_$ROLES_ID" \
            "$HERALD" run "$role" >"$ROLES_DIR/$role.log" 2>&1) &
        pid=$!
        ROLES_PIDS="${ROLES_PIDS:+$ROLES_PIDS,}$pid"
        wait_ready "http://127.0.0.1:$port/readyz" "$pid" "$ROLES_DIR/$role.log"
        case $role in
        ingest-api) ROLES_API_PORT=$port ;;
        ws-gateway) ROLES_WS_PORT=$port ;;
        esac
    done
}

stop_herald_roles() {
    [[ -n "$ROLES_ID" ]] || return 0
    if [[ -n "$ROLES_PIDS" ]]; then
        # shellcheck disable=SC2046
        stop_pid $(tr ',' ' ' <<<"$ROLES_PIDS")
    fi
    if [[ -n "$ROLES_DIR" ]]; then
        local role
        for role in ingest-api record-writer ws-gateway; do keep_log "$ROLES_DIR/$role.log" "$role.log"; done
        rm -rf "$ROLES_DIR"
    fi
    # Queues and exchanges of the prefix (the gateway's are exclusive and are gone already),
    # the schema, the Redis keys.
    "$LOADGEN" cleanup-amqp --amqp-url "$AMQP_URL" --prefix "bench-$ROLES_ID" >/dev/null ||
        echo "bench: could not remove the RabbitMQ topology of bench-$ROLES_ID" >&2
    PGOPTIONS=--client-min-messages=warning psql -q -h 127.0.0.1 -U postgres -d test \
        -c "DROP SCHEMA IF EXISTS bench_$ROLES_ID CASCADE" >/dev/null ||
        echo "bench: could not drop schema bench_$ROLES_ID" >&2
    redis-cli --scan --pattern "bench-$ROLES_ID:*" | xargs -r redis-cli del >/dev/null ||
        echo "bench: could not delete the Redis keys bench-$ROLES_ID:*" >&2
    ROLES_ID="" ROLES_DIR="" ROLES_PIDS=""
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_nchan
    stop_herald_aio
    stop_herald_roles
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- runs
IDLE_GATE=unchecked
idle_gate() {
    IDLE_GATE=$("$LOADGEN" idle --below "$IDLE_BELOW" --timeout-secs "$IDLE_TIMEOUT") || IDLE_GATE=unchecked
}

# CPU seconds (user + system) each process has used so far: "name=seconds ..." for the given
# "name:pid[,pid...]" pairs (a name's pids summed; a pid that is gone counts 0).
cpu_seconds() {
    local pair name pids pid ticks total out="" hz
    hz=$(getconf CLK_TCK)
    for pair in "$@"; do
        name=${pair%%:*} pids=${pair#*:} total=0
        for pid in ${pids//,/ }; do
            ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
            total=$((total + ticks))
        done
        out+="$name=$(awk -v t="$total" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}') "
    done
    echo "$out"
}

# The processes an ingestion run of the roles keeps busy: the roles, RabbitMQ, Redis, PostgreSQL.
ingest_processes() {
    local roles=(${ROLES_PIDS//,/ })
    echo "ingest-api:${roles[0]} record-writer:${roles[1]} ws-gateway:${roles[2]}" \
        "rabbitmq:$(pgrep -d, -f beam.smp || true) redis:$(pgrep -d, -x redis-server || true)" \
        "postgres:$(pgrep -d, -x postgres || true)"
}

# Prints where the CPU of an ingestion run went: each process's seconds between two readings.
print_cpu_split() { # before after
    local before=$1 after=$2 line="" item name secs was
    for item in $after; do
        name=${item%%=*} secs=${item#*=}
        was=$(tr ' ' '\n' <<<"$before" | awk -F= -v n="$name" '$1 == n {print $2}')
        line+="$name $(awk -v a="$secs" -v b="${was:-0}" 'BEGIN {printf "%.2f", a - b}') s, "
    done
    echo "   CPU of the run (its warm-up and the record-writer's drain included): ${line%, }" >&2
}

fanout_run() { # system mode clients notices repeat
    local system=$1 mode=$2 clients=$3 notices=$4 repeat=$5
    local file="$OUT/fanout-$mode-$clients-$system-r$repeat.json"
    local common=(--mode "$mode" --clients "$clients" --notices "$notices" --repeat "$repeat" --json "$file")
    idle_gate
    common+=(--idle-gate "$IDLE_GATE")
    RUN_NAME="fanout-$mode-$clients-$system-r$repeat"
    log "fanout $mode $clients clients, $system, repeat $repeat"
    case $system in
    nchan)
        start_nchan
        "$LOADGEN" fanout --target nchan --system nchan "${common[@]}" \
            --ws-url "ws://127.0.0.1:$NCHAN_PORT/sub" --publish-url "http://127.0.0.1:$NCHAN_PORT/pub" \
            --server-pids "$NCHAN_PIDS" || echo "bench: the run failed" >&2
        stop_nchan
        ;;
    herald-all-in-one)
        start_herald_aio
        "$LOADGEN" fanout --target herald --system herald-all-in-one "${common[@]}" --token-secret "$SECRET" \
            --ws-url "ws://127.0.0.1:$AIO_PORT/ws" \
            --publish-url "http://127.0.0.1:$AIO_PORT/api/admin/system/notice" \
            --server-pids "$AIO_PID" || echo "bench: the run failed" >&2
        stop_herald_aio
        ;;
    herald-roles)
        start_herald_roles
        local beam
        beam=$(beam_pid || true)
        if [[ -n "$beam" ]]; then common+=(--broker-pids "$beam"); fi
        "$LOADGEN" fanout --target herald --system herald-roles "${common[@]}" --token-secret "$SECRET" \
            --ws-url "ws://127.0.0.1:$ROLES_WS_PORT/ws" \
            --publish-url "http://127.0.0.1:$ROLES_API_PORT/api/admin/system/notice" \
            --server-pids "$ROLES_PIDS" || echo "bench: the run failed" >&2
        stop_herald_roles
        ;;
    esac
}

log "building (release)"
cargo build --release --locked -p herald -p loadgen
mkdir -p "$OUT"
if wants fanout || wants ingest || wants broker; then ensure_backends; fi
if wants fanout; then ensure_nchan; fi
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo '-dirty')"
"$LOADGEN" machine "$OUT" --commit "$commit" --note "BENCH_REPEATS=$REPEATS BENCH_CLIENTS='$CLIENTS' \
BENCH_BURST_NOTICES=$BURST_NOTICES BENCH_PACED_NOTICES=$PACED_NOTICES BENCH_INGEST_SECS=$INGEST_SECS \
BENCH_ONLY='$ONLY' ulimit -n $(ulimit -n)"
log "results in $OUT"

if wants fanout; then
    for mode in burst paced; do
        notices=$BURST_NOTICES
        [[ $mode == paced ]] && notices=$PACED_NOTICES
        for clients in $CLIENTS; do
            for repeat in $(seq 1 "$REPEATS"); do
                for system in nchan herald-all-in-one herald-roles; do
                    fanout_run "$system" "$mode" "$clients" "$notices" "$repeat"
                done
            done
        done
    done
fi

if wants ingest || wants broker; then
    for repeat in $(seq 1 "$REPEATS"); do
        if wants broker; then
            idle_gate
            log "broker ceiling, repeat $repeat"
            "$LOADGEN" broker --amqp-url "$AMQP_URL" --duration-secs "$INGEST_SECS" --repeat "$repeat" \
                --idle-gate "$IDLE_GATE" --json "$OUT/broker-r$repeat.json" || echo "bench: the run failed" >&2
        fi
        if wants ingest; then
            idle_gate
            RUN_NAME="ingest-herald-roles-r$repeat"
            log "ingest, Herald roles, repeat $repeat"
            start_herald_roles
            # shellcheck disable=SC2046
            cpu_before=$(cpu_seconds $(ingest_processes))
            "$LOADGEN" ingest --system herald-roles --url "http://127.0.0.1:$ROLES_API_PORT/api/admin/system/notice" \
                --token-secret "$SECRET" --duration-secs "$INGEST_SECS" --repeat "$repeat" --idle-gate "$IDLE_GATE" \
                --records-queue "bench-$ROLES_ID.records" --amqp-url "$AMQP_URL" \
                --json "$OUT/ingest-herald-roles-r$repeat.json" || echo "bench: the run failed" >&2
            # shellcheck disable=SC2046
            print_cpu_split "$cpu_before" "$(cpu_seconds $(ingest_processes))"
            stop_herald_roles
            idle_gate
            RUN_NAME="ingest-herald-all-in-one-r$repeat"
            log "ingest, Herald all-in-one, repeat $repeat"
            start_herald_aio
            "$LOADGEN" ingest --system herald-all-in-one \
                --url "http://127.0.0.1:$AIO_PORT/api/admin/system/notice" --token-secret "$SECRET" \
                --duration-secs "$INGEST_SECS" --repeat "$repeat" --idle-gate "$IDLE_GATE" \
                --json "$OUT/ingest-herald-all-in-one-r$repeat.json" || echo "bench: the run failed" >&2
            stop_herald_aio
        fi
    done
fi

echo
"$LOADGEN" report "$OUT" | tee "$OUT/report.txt"
