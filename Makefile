# zapgate — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench lock clean

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

# Re-resolve the pins from pyproject.toml (needs the package index).
lock:
	rm -rf /tmp/zapgate-lock && $(PYTHON) -m venv /tmp/zapgate-lock
	/tmp/zapgate-lock/bin/pip install -q . && /tmp/zapgate-lock/bin/pip freeze --exclude-editable | grep -v '^zapgate' > requirements.lock
	/tmp/zapgate-lock/bin/pip install -q '.[dev]' && /tmp/zapgate-lock/bin/pip freeze --exclude-editable | grep -v '^zapgate' > requirements-dev.lock

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache .mypy_cache .ruff_cache
