# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: demo test lint typecheck pytest unit integration chaos bench clean

# Re-install when the packaging or a package's __init__ changes (an editable install maps
# each package when it is made: a package gaining its __init__.py needs a new one).
$(PY_STAMP): pyproject.toml $(wildcard */__init__.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $@

# The Claude Code CLI pinned in package.json/package-lock.json, in ./node_modules.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	node_modules/.bin/claude --version
	touch $@

demo: $(PY_STAMP)
	@$(MAKE) --no-print-directory $(NPM_STAMP) || echo "make demo: the real Claude CLI could not be installed; the demo uses the fake one"
	$(BIN)/mmclaude demo

test: $(PY_STAMP) $(NPM_STAMP) lint typecheck pytest

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_STAMP)
	$(BIN)/mypy

# The browser tests need a system Chromium (Playwright cannot download its own offline).
CHROMIUM_CHECK = test -x "$${MMCLAUDE_CHROMIUM:-/usr/bin/chromium}" || command -v chromium >/dev/null \
	|| echo "*** make: NO CHROMIUM FOUND: the browser tests (tests/browser) will be SKIPPED; apt-get install chromium (or set MMCLAUDE_CHROMIUM) ***"

pytest: $(PY_STAMP) $(NPM_STAMP)
	@$(CHROMIUM_CHECK)
	$(BIN)/pytest

unit: $(PY_STAMP)
	$(BIN)/pytest tests/unit

integration: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/pytest tests/integration

chaos: $(PY_STAMP)
	$(BIN)/pytest tests/chaos

bench: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
