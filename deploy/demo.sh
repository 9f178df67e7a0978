#!/usr/bin/env bash
# Run the whole stack locally: migrate, seed the demo tenant, then web + worker + beat.
# With DATABASE_URL / REDIS_URL unset it uses SQLite and the embedded broker.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
[ -s var/secret_key ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
export SECRET_KEY="${SECRET_KEY:-$(cat var/secret_key)}"
export DJANGO_SETTINGS_MODULE=costboard.settings
# The demo serves plain http on 127.0.0.1: the one switch that turns the HTTPS defaults off.
export COSTBOARD_PLAIN_HTTP=1
# Access and worker logs as they happen, not when a buffer fills.
export PYTHONUNBUFFERED=1
PORT="${PORT:-8000}"

.venv/bin/python manage.py migrate --no-input -v 0
.venv/bin/python manage.py collectstatic --no-input -v 0
.venv/bin/python manage.py seed_demo

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
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
