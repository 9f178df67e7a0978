#!/usr/bin/env bash
# Debian's PgBouncer in transaction pooling mode in front of a PostgreSQL, for CI and for a
# local try of several nodes: `deploy/pgbouncer.sh start` writes var/pgbouncer/pgbouncer.ini,
# starts it in the background and waits until it answers; `deploy/pgbouncer.sh stop` stops it.
# Every database of the upstream server is reachable under its own name (a `*` entry), so a
# test database made directly on PostgreSQL is also served. Point Costboard at it with
#   DATABASE_URL=postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/costboard DATABASE_POOLED=1
# Settings (environment): PGBOUNCER_PORT (6432), PGBOUNCER_UPSTREAM_HOST (127.0.0.1),
# PGBOUNCER_UPSTREAM_PORT (5432), PGBOUNCER_USER (postgres), PGBOUNCER_POOL_SIZE (20).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PGBOUNCER_PORT:-6432}
UPSTREAM_HOST=${PGBOUNCER_UPSTREAM_HOST:-127.0.0.1}
UPSTREAM_PORT=${PGBOUNCER_UPSTREAM_PORT:-5432}
DB_USER=${PGBOUNCER_USER:-postgres}
POOL_SIZE=${PGBOUNCER_POOL_SIZE:-20}
VAR=${COSTBOARD_VAR_DIR:-var}
[[ "$VAR" = /* ]] || VAR="$(pwd)/$VAR"
DIR="$VAR/pgbouncer"
INI="$DIR/pgbouncer.ini"
PIDFILE="$DIR/pgbouncer.pid"

# PgBouncer refuses to run as root: as root, run it as the database's system user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$DB_USER" -- "$@"; else "$@"; fi
}

start() {
  mkdir -p "$DIR"
  # The local server trusts 127.0.0.1 (CI, a developer's machine): trust here too, for the
  # users listed in the auth file. A production PgBouncer uses scram-sha-256 and a real file.
  printf '"%s" ""\n' "$DB_USER" >"$DIR/userlist.txt"
  cat >"$INI" <<INI
[databases]
* = host=$UPSTREAM_HOST port=$UPSTREAM_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = $DB_USER
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 1000
; Debian 12's PgBouncer (1.18) cannot track prepared statements: Costboard prepares none
; when DATABASE_POOLED=1 (psycopg's prepare_threshold=None).
ignore_startup_parameters = extra_float_digits,options
logfile = $DIR/pgbouncer.log
pidfile = $PIDFILE
INI
  if [ "$(id -u)" = 0 ]; then
    chown -R "$DB_USER" "$DIR"
    # The database's user must traverse to its directory: a parent closed to other users
    # (`mktemp -d` makes them so) gets the traverse bit only, as for the embedded server.
    local path="$DIR"
    while [ "$path" != / ]; do
      path=$(dirname "$path")
      if ! runuser -u "$DB_USER" -- test -x "$path"; then
        chmod o+x "$path"
        echo "pgbouncer: chmod o+x $path, for $DB_USER to reach" >&2
      fi
    done
  fi
  as_owner pgbouncer -d "$INI"
  for _ in $(seq 50); do
    pg_isready -h 127.0.0.1 -p "$PORT" -q && { echo "pgbouncer: transaction pooling on 127.0.0.1:$PORT -> $UPSTREAM_HOST:$UPSTREAM_PORT"; return; }
    sleep 0.2
  done
  echo "pgbouncer did not start; see $DIR/pgbouncer.log" >&2
  exit 1
}

stop() {
  [ -f "$PIDFILE" ] || return 0
  kill "$(cat "$PIDFILE")" 2>/dev/null || true
  for _ in $(seq 50); do [ -f "$PIDFILE" ] || return 0; sleep 0.1; done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
