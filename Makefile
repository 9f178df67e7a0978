# Costboard: `make demo` and `make test` do all set-up on a fresh machine with Python 3.11.
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .uv/bin/uv
export UV_PYTHON := $(shell command -v $(PYTHON) || command -v python3)

.PHONY: install demo test lint check bench stop clean

$(UV):
	$(UV_PYTHON) -m venv .uv
	.uv/bin/pip install --quiet uv==$(UV_VERSION)

install: $(UV) node_modules/.package-lock.json
	$(UV) sync --frozen --quiet

# axe-core, pinned by package-lock.json, for the accessibility check of every page
# (tests/pages/test_fit_browser.py); without node and npm that check skips and says why.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null && command -v node >/dev/null; then npm ci --no-audit --no-fund --silent; \
	else echo "node/npm not found: tests/pages/test_fit_browser.py (axe-core) will skip"; fi

demo: install
	bash deploy/demo.sh

test: export SECRET_KEY ?= test-only-secret-key
test: install
	.venv/bin/pytest $(PYTEST_ARGS)

lint: export SECRET_KEY ?= lint-only-secret-key
lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .

# The embedded PostgreSQL server of var/ (started by make demo, make test or manage.py) keeps
# running between commands; this stops it.
stop:
	@[ ! -x .venv/bin/python ] || .venv/bin/python -m costboard.embedded_postgres stop

clean: stop
	rm -rf var .venv .uv
