#!/usr/bin/env bash
# Run the whole stack locally: migrate, seed the demo tenant, then web + worker + beat.
# With DATABASE_URL unset it runs on the embedded PostgreSQL server of the var directory
# ($COSTBOARD_VAR_DIR, default var/), with REDIS_URL unset on the embedded broker.
# PORT (default 8000) and DEMO_EVENTS (default: seed_demo's) change the port and the data.
set -euo pipefail
cd "$(dirname "$0")/.."
export COSTBOARD_VAR_DIR="${COSTBOARD_VAR_DIR:-$PWD/var}"
VAR_DIR="$COSTBOARD_VAR_DIR"
mkdir -p "$VAR_DIR"
[ -s "$VAR_DIR/secret_key" ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > "$VAR_DIR/secret_key"
export SECRET_KEY="${SECRET_KEY:-$(cat "$VAR_DIR/secret_key")}"
export DJANGO_SETTINGS_MODULE=costboard.settings
# The demo serves plain http on 127.0.0.1: the one switch that turns the HTTPS defaults off.
export COSTBOARD_PLAIN_HTTP=1
# Access and worker logs as they happen, not when a buffer fills.
export PYTHONUNBUFFERED=1
PORT="${PORT:-8000}"

pids=()
stop_database=""
cleanup() {
  kill ${pids[@]+"${pids[@]}"} 2>/dev/null || true
  wait 2>/dev/null || true
  # The embedded server stops with the demo that started it; one that was already running
  # (make test, another shell's manage.py) is left to whoever started it (make stop).
  if [ -n "$stop_database" ]; then
    .venv/bin/python -m costboard.embedded_postgres stop || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -z "${DATABASE_URL:-}" ]; then
  .venv/bin/python -m costboard.embedded_postgres status >/dev/null || stop_database=1
  .venv/bin/python -m costboard.embedded_postgres start
fi

.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py collectstatic --no-input -v 0
.venv/bin/python manage.py seed_demo ${DEMO_EVENTS:+--events "$DEMO_EVENTS"}

.venv/bin/celery -A costboard worker --loglevel=WARNING --concurrency=2 &
pids+=($!)
.venv/bin/celery -A costboard beat --loglevel=WARNING &
pids+=($!)
.venv/bin/python -m costboard.serve --bind "127.0.0.1:${PORT}" --workers 2 --access-log &
pids+=($!)
sleep 2
cat <<MSG

  Costboard is running on http://127.0.0.1:${PORT}
  Sign in as  admin / costboard-demo   (also: finance / costboard-demo, viewer / costboard-demo)
  Stop with Ctrl-C.

MSG
wait -n "${pids[@]}"
