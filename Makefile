# One-command set-up: every target creates .venv and installs the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.eco2-installed
TEST_TIMEOUT ?= 300
PYTEST_ARGS ?=

.PHONY: up services test test-unit lint clean clean-data distclean browser-deps

up: $(STAMP)
	$(BIN)/eco2 up

services: $(STAMP)
	$(BIN)/eco2 services

test: $(STAMP)
	$(BIN)/pytest -q --timeout=$(TEST_TIMEOUT) $(PYTEST_ARGS)

# Only the tests that need no server (handlers, the chat graph and projection folds run on the
# in-memory event store): no Redis or PostgreSQL is looked for or started.
test-unit: $(STAMP)
	$(BIN)/pytest -q --timeout=$(TEST_TIMEOUT) -m "not redis and not postgres and not e2e and not browser" $(PYTEST_ARGS)

# The browser tests (tests/browser, marker `browser`) need Debian's Chromium and Korean fonts;
# without /usr/bin/chromium they are skipped. Needs root (CI runs as root).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
		apt-get update && apt-get install -y chromium fonts-noto-cjk; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependencies change; constraints.txt pins the releases last tested.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	touch $@

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

# Deletes the embedded Redis log and Postgres data: everything `eco2 up` stored.
clean-data:
	rm -rf .eco2

distclean: clean clean-data
	rm -rf $(VENV)
