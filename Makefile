# zapgate — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench lock clean wppconnect node-packages check-test-services

BRIDGE := zapgate/engines/wppconnect/bridge
CHROMIUM ?= /usr/bin/chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime dependencies, pinned by requirements.lock.
$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# Runtime + test/lint tools, pinned by requirements-dev.lock.
$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/zapgate serve

# Everything the suite needs that installs without root: Python packages, the socket.io-client
# harness and the WPPConnect bridge's npm packages. What cannot be installed here (Node.js,
# Chromium, PostgreSQL) is named with the command that installs it; those tests then skip, or
# fail under CI=true.
test: $(VENV)/.dev node-packages
	@$(MAKE) --no-print-directory check-test-services
	$(BIN)/python -m pytest -q

JS_HARNESS := tests/js

node-packages:
	@if command -v npm >/dev/null; then \
	  $(MAKE) --no-print-directory $(JS_HARNESS)/node_modules/.package-lock.json \
	    $(BRIDGE)/node_modules/.package-lock.json; \
	else echo "!! npm is missing: the socket.io-client and WPPConnect tests need Node.js 20 with npm (apt-get install -y nodejs npm)"; fi

$(JS_HARNESS)/node_modules/.package-lock.json: $(JS_HARNESS)/package-lock.json
	cd $(JS_HARNESS) && npm ci --no-audit --no-fund --loglevel=error

$(BRIDGE)/node_modules/.package-lock.json: $(BRIDGE)/package-lock.json
	cd $(BRIDGE) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

check-test-services:
	@test -x $(CHROMIUM) || echo "!! Chromium is missing at $(CHROMIUM): the WPPConnect tests need it (sudo apt-get install -y chromium)"
	@command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 || echo "!! PostgreSQL is not answering at 127.0.0.1:5432: the PostgreSQL tests need it (database test, trust auth)"

lint: $(VENV)/.dev
	$(BIN)/ruff check zapgate tests bench
	$(BIN)/ruff format --check zapgate tests bench
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix zapgate tests bench
	$(BIN)/ruff format zapgate tests bench

# The original Node backend (bench/node), measured beside zapgate on the same core.
BENCH_NODE := bench/node

$(BENCH_NODE)/node_modules/.package-lock.json: $(BENCH_NODE)/package-lock.json
	cd $(BENCH_NODE) && npm ci --no-audit --no-fund --loglevel=error

bench: $(VENV)/.dev $(BENCH_NODE)/node_modules/.package-lock.json
	$(BIN)/python -m bench

# The WPPConnect engine: the bridge's npm packages (no bundled browser) and Debian's Chromium.
wppconnect:
	@command -v node >/dev/null || { echo "Node.js 20 is required: https://nodejs.org or apt-get install -y nodejs npm"; exit 1; }
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  else echo "Chromium is required at $(CHROMIUM): sudo apt-get install -y chromium"; exit 1; fi; }
	$(MAKE) --no-print-directory $(BRIDGE)/node_modules/.package-lock.json
	@echo "wppconnect engine ready: node $$(node --version), $$($(CHROMIUM) --version 2>/dev/null)"

# Re-resolve the pins from pyproject.toml (needs the package index).
lock:
	rm -rf /tmp/zapgate-lock && $(PYTHON) -m venv /tmp/zapgate-lock
	/tmp/zapgate-lock/bin/pip install -q . && /tmp/zapgate-lock/bin/pip freeze --exclude-editable | grep -v '^zapgate' > requirements.lock
	/tmp/zapgate-lock/bin/pip install -q '.[dev]' && /tmp/zapgate-lock/bin/pip freeze --exclude-editable | grep -v '^zapgate' > requirements-dev.lock

clean:
	rm -rf $(VENV) tests/js/node_modules $(BRIDGE)/node_modules $(BENCH_NODE)/node_modules .pytest_cache .mypy_cache .ruff_cache
