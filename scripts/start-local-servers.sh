#!/usr/bin/env bash
# Makes sure the servers the tests need are up: RabbitMQ, PostgreSQL, MariaDB and Redis.
# A server that is down is started with the machine's own command (ARCHITECTURE-BRIEF section 8);
# where that command does not exist, it says how to start the servers with the compose file.
set -uo pipefail

reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port seconds
  local deadline=$((SECONDS + $3))
  while ! reachable "$2"; do
    if (( SECONDS >= deadline )); then echo "start-local-servers: $1 did not come up on port $2" >&2; return 1; fi
    sleep 1
  done
}

ensure() { # name port binary start-command...
  local name=$1 port=$2 binary=$3; shift 3
  if reachable "$port"; then return 0; fi
  if ! command -v "$binary" >/dev/null 2>&1; then
    echo "start-local-servers: $name is not running on 127.0.0.1:$port and '$binary' is not installed." >&2
    echo "  Start the servers with: docker compose -f deploy/compose.yaml up -d rabbitmq postgres mariadb redis" >&2
    return 1
  fi
  echo "start-local-servers: starting $name"
  "$@" >/dev/null 2>&1 || true
  wait_for "$name" "$port" 90
}

status=0
ensure RabbitMQ 5672 rabbitmq-server rabbitmq-server -detached || status=1
ensure PostgreSQL 5432 pg_ctlcluster bash -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start' || status=1
ensure MariaDB 3306 mariadbd start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || status=1
ensure Redis 6379 redis-server redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
exit $status
