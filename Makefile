# tether: `make demo` runs the main job, `make test` runs every check.
# Both create the virtual environment on first use; nothing else is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench emulate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,interop,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tether demo

emulate: $(STAMP)
	$(BIN)/tether emulate

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m tether.bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
