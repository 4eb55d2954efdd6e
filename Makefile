# nudge: `make demo` runs the whole job on embedded defaults; `make test` runs the suite.
# `make check` is the quick loop before a push: lint, then the fast tests (under two minutes
# on two cores; `make test`, which CI runs, adds the Prefect flows and the end-to-end tests).
# All of them create .venv and install exactly what requirements.lock pins, from nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9

# The rooms whose tests need no Prefect test server and no end-to-end stack (tests/flows,
# tests/e2e): seconds each, not minutes.
FAST_TESTS := tests/domain tests/models tests/adapters tests/contract tests/sandbox tests/cli

.PHONY: install demo test check lint format bench lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m nudge.demo

test: install
	$(BIN)/python -m pytest -q

check: lint
	$(BIN)/python -m pytest -q -m "not slow" $(FAST_TESTS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

# Re-pin after changing dependencies in pyproject.toml (needs network to PyPI).
lock: install
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
