# Two commands do everything:  `make train` (set up, then train the seed recipe on the built-in
# data) and `make test` (set up, then lint, type-check and run the whole test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup train test lint bench clean

setup: $(VENV)/.installed

# torch is pinned first: 2.13.0 is a CPU build here; a bare `torch` would pull CUDA wheels.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $@

train: setup
	$(BIN)/catembed train --overwrite

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
