# zapgate — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench lock clean wppconnect

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

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check zapgate tests bench
	$(BIN)/ruff format --check zapgate tests bench
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix zapgate tests bench
	$(BIN)/ruff format zapgate tests bench

bench: $(VENV)/.dev
	$(BIN)/python -m bench

# The WPPConnect engine: the bridge's npm packages (no bundled browser) and Debian's Chromium.
wppconnect:
	@command -v node >/dev/null || { echo "Node.js 20 is required: https://nodejs.org or apt-get install -y nodejs npm"; exit 1; }
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  else echo "Chromium is required at $(CHROMIUM): sudo apt-get install -y chromium"; exit 1; fi; }
	cd $(BRIDGE) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund
	@echo "wppconnect engine ready: node $$(node --version), $$($(CHROMIUM) --version 2>/dev/null)"

# Re-resolve the pins from pyproject.toml (needs the package index).
lock:
	rm -rf /tmp/zapgate-lock && $(PYTHON) -m venv /tmp/zapgate-lock
	/tmp/zapgate-lock/bin/pip install -q . && /tmp/zapgate-lock/bin/pip freeze --exclude-editable | grep -v '^zapgate' > requirements.lock
	/tmp/zapgate-lock/bin/pip install -q '.[dev]' && /tmp/zapgate-lock/bin/pip freeze --exclude-editable | grep -v '^zapgate' > requirements-dev.lock

clean:
	rm -rf $(VENV) tests/js/node_modules $(BRIDGE)/node_modules .pytest_cache .mypy_cache .ruff_cache
