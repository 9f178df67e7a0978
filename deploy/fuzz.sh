#!/usr/bin/env bash
# The fuzz stage: schemathesis against a production-configured server (granian, the ingest fast
# path, DEBUG off) on its own test database, with a read key and with an ingest key, for
# FUZZ_SECONDS (default 60) each. Uses DATABASE_URL and REDIS_URL like `make test` (embedded
# PostgreSQL and broker when unset). FUZZ_SEED=<seed from a run's output> replays a run.
set -euo pipefail
cd "$(dirname "$0")/.."
export SECRET_KEY="${SECRET_KEY:-fuzz-only-secret-key}"
export COSTBOARD_FUZZ=1
start=$(date +%s)
.venv/bin/pytest tests/fuzz/test_schemathesis.py -q "$@"
echo "fuzz stage: $(($(date +%s) - start)) s"
