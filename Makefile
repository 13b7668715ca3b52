# The two commands a newcomer runs: `make demo` and `make test`.
# Both (re)build .venv from pyproject.toml first, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A simulated month: a little over a minute here (see docs/simulation.md, bench/demo_month.py).
DEMO_DAYS ?= 30

.PHONY: demo test lint bench schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/microhub demo --days $(DEMO_DAYS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench

# Regenerate the checked-in JSON Schemas and AsyncAPI document after a contract change.
schemas: $(STAMP)
	$(BIN)/microhub contracts export

clean:
	rm -rf $(VENV) .microhub .pytest_cache
