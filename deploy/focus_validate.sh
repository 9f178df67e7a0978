#!/usr/bin/env bash
# The FOCUS stage: the FinOps Foundation's focus-validator (pinned in deploy/focus/requirements.txt,
# with hashes) checks the demo tenant's FOCUS exports against FOCUS 1.2: last month (plain usage)
# and this month (with correction rows for late usage of last month). Fails on any failed rule
# not listed, with its reason, in deploy/focus/allowed-failures.txt.
#
# The validator needs Python >= 3.12 and pyarrow < 18, so it lives in its own virtual environment,
# var/focus-venv, made from a python3.12 on the machine (FOCUS_PYTHON=/path/to/python3.12 to pick
# one). It runs with --block-download: the rules come from the FOCUS 1.2 model shipped inside the
# package, and a version it does not ship is an error instead of a download from GitHub.
#
# Data: a fresh database seeded with the demo (DATABASE_URL's server, database
# costboard_focus_validate, dropped first), or a fresh embedded server when DATABASE_URL is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
export SECRET_KEY="${SECRET_KEY:-focus-only-secret-key}"
REQUIREMENTS=deploy/focus/requirements.txt
ALLOWED=deploy/focus/allowed-failures.txt
VENV=var/focus-venv
# What Costboard supports, in the validator's terms; the rules that depend on anything else
# (regions, commitment discounts, published unit prices, ...) do not apply and are skipped.
CRITERIA=ACCOUNT_NAMING_SUPPORTED,USAGE_MEASUREMENT_SUPPORTED,SUB_ACCOUNT_SUPPORTED,TAGGING_SUPPORTED
PY=.venv/bin/python
start=$(date +%s)

python312() {
  # The first that really runs 3.12 (a pyenv shim exists even where pyenv has no 3.12 active).
  local candidate
  for candidate in ${FOCUS_PYTHON:-} python3.12 /root/.pyenv/versions/3.12.*/bin/python3.12; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

make_venv() {
  local want have=""
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  [ -f "$VENV/requirements.sha256" ] && have=$(cat "$VENV/requirements.sha256")
  [ "$want" = "$have" ] && [ -x "$VENV/bin/focus-validator" ] && return
  local python
  python=$(python312)
  [ -n "$python" ] || { echo "focus: no python3.12 found (set FOCUS_PYTHON)" >&2; exit 1; }
  echo "focus: making $VENV from $python"
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --no-deps --require-hashes -r "$REQUIREMENTS" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  [ -x "$VENV/bin/focus-validator" ] || { echo "focus: install failed" >&2; exit 1; }
  echo "$want" >"$VENV/requirements.sha256"
}

fresh_database() {
  if [ -n "${DATABASE_URL:-}" ]; then
    local server="${DATABASE_URL%/*}"
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS costboard_focus_validate" \
      -c "CREATE DATABASE costboard_focus_validate"
    export DATABASE_URL="$server/costboard_focus_validate"
  else
    COSTBOARD_VAR_DIR="$(mktemp -d)"
    export COSTBOARD_VAR_DIR
    trap '$PY -m costboard.embedded_postgres stop >/dev/null 2>&1 || true; rm -rf "$COSTBOARD_VAR_DIR"' EXIT
  fi
}

# One validator run: prints its totals and every failure; returns 1 on a failure not allowed.
validate() {
  local file="$1" report="$1.report" failed unexpected
  # The validator reads its currency code list by a path relative to its site-packages.
  (cd "$($VENV/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && "$OLDPWD/$VENV/bin/focus-validator" --data-file "$file" --validate-version 1.2 \
      --block-download --applicability-criteria "$CRITERIA" --show-violations) >"$report" 2>&1 || true
  if ! grep -q '^Total: ' "$report"; then
    echo "focus: the validator did not finish on $file:" >&2
    tail -n 20 "$report" >&2
    return 1
  fi
  echo "focus: $(basename "$file"): $(grep '^Total: ' "$report")"
  failed=$(grep -oE '^❌ [A-Za-z]+-[A-Z]-[0-9]+-[A-Z]+: FAIL' "$report" | cut -d' ' -f2 | tr -d ':' || true)
  unexpected=""
  for rule in $failed; do
    if grep -q "^$rule " "$ALLOWED"; then
      echo "  allowed (validator defect): $rule"
    else
      unexpected="$unexpected $rule"
    fi
  done
  if [ -n "$unexpected" ]; then
    echo "focus: $(basename "$file") fails FOCUS 1.2 rules:$unexpected" >&2
    for rule in $unexpected; do grep -A4 -- "^- $rule:" "$report" >&2 || true; done
    return 1
  fi
}

make_venv
fresh_database
$PY manage.py migrate --no-input -v 0
$PY manage.py seed_demo --reset --events "${FOCUS_EVENTS:-3000}"
out="$(mktemp -d)"
$PY manage.py focus_exports "$out"
status=0
for file in "$out"/*.csv; do validate "$file" || status=1; done
echo "focus stage: $(($(date +%s) - start)) s"
exit $status
