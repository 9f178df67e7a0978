#!/usr/bin/env bash
# Smoke test of the embedded defaults: the embedded PostgreSQL server + the embedded broker with a
# real worker. migrate, seed, one ingest through the production server, the worker rolls it up,
# a tenant's /metrics scrape, one page; then the embedded server of the fresh var directory is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
unset DATABASE_URL REDIS_URL
export COSTBOARD_VAR_DIR="$(mktemp -d)"
export SECRET_KEY="${SECRET_KEY:-smoke-test-secret}" ROLLUP_DEBOUNCE_SECONDS=1
export COSTBOARD_PLAIN_HTTP=1  # its server speaks plain http on 127.0.0.1
PY=.venv/bin/python
PORT=$($PY -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
pids=()
cleanup() {
  kill ${pids[@]+"${pids[@]}"} 2>/dev/null || true
  wait 2>/dev/null || true
  $PY -m costboard.embedded_postgres stop || true
  rm -rf "$COSTBOARD_VAR_DIR"
}
trap cleanup EXIT

echo "smoke: embedded PostgreSQL in $COSTBOARD_VAR_DIR"
$PY -m costboard.embedded_postgres start
echo "smoke: migrate and seed"
$PY manage.py migrate --no-input -v 0
$PY manage.py seed_demo --events 3000
KEY=$($PY manage.py create_api_key acme --scope ingest --name smoke | tail -n 1)
READ=$($PY manage.py create_api_key acme --scope read --name smoke-read | tail -n 1)

.venv/bin/celery -A costboard worker --loglevel=WARNING --concurrency=1 --pool=solo &
pids+=($!)
$PY -m costboard.serve --bind "127.0.0.1:$PORT" --workers 1 --log-level warning &
pids+=($!)

$PY - "$PORT" "$KEY" "$READ" <<'PYEOF'
import sys, time, datetime as dt
import httpx

port, key, read = sys.argv[1:4]
base = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        httpx.get(f"{base}/healthz", timeout=1)
        break
    except httpx.HTTPError:
        time.sleep(0.2)

def smoke_cost() -> str | None:
    usage = httpx.get(f"{base}/api/v1/usage?group_by=feature", headers={"Authorization": f"Bearer {read}"})
    usage.raise_for_status()
    rows = [r for r in usage.json()["rows"] if r["feature"] == "smoke-test"]
    return rows[0]["cost_usd"] if rows else None

event = {"event_id": "smoke-1", "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1000,
         "output_tokens": 100, "feature": "smoke-test", "timestamp": dt.datetime.now(dt.UTC).isoformat()}
answer = httpx.post(f"{base}/api/v1/events", json=event, headers={"Authorization": f"Bearer {key}"})
assert answer.status_code == 202 and answer.json()["accepted"] == 1, answer.text
deadline = time.monotonic() + 60
while (cost := smoke_cost()) is None:
    assert time.monotonic() < deadline, "the worker never rolled the event up"
    time.sleep(0.5)
print(f"smoke: ingest rolled up by the worker, cost {cost}")

# /metrics is closed to anonymous scrapes (no METRICS_PUBLIC here); the tenant's read key
# gets that tenant's series only.
assert httpx.get(f"{base}/metrics").status_code == 401
scrape = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {read}"})
assert scrape.status_code == 200 and 'costboard_cost_usd_total{' in scrape.text, scrape.text[:500]
tenants = {part.split('"')[1] for part in scrape.text.split("tenant=")[1:]}
assert tenants == {"acme"}, tenants
print("smoke: /metrics refused anonymously, the read key scraped its own tenant")

with httpx.Client(base_url=base, follow_redirects=True) as client:
    login = client.get("/accounts/login/")
    token = client.cookies["csrftoken"]
    page = client.post("/accounts/login/", data={"username": "viewer", "password": "costboard-demo", "csrfmiddlewaretoken": token})
    assert page.status_code == 200 and "Month to date" in page.text, page.text[:500]
print("smoke: overview page served to the viewer")
PYEOF
echo "smoke: ok"
