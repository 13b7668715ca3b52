# The two commands a newcomer runs: `make demo` and `make test`.
# Both (re)build .venv from pyproject.toml first, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A simulated month (September 2026, whatever the date): a little over a minute here (see
# docs/simulation.md, bench/demo_month.py). DEMO_DAYS=7 for a week, DEMO_START=YYYY-MM-DD
# for another month.
DEMO_DAYS ?=
DEMO_START ?=

.PHONY: demo test test-fast lint bench schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/microhub demo $(if $(DEMO_DAYS),--days $(DEMO_DAYS)) $(if $(DEMO_START),--start $(DEMO_START))

# the static checks (fast) first: style, the layers' import rules, types
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# the inner loop: everything that needs neither a Kafka broker nor PostgreSQL (~1 min)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not kafka and not postgres and not packaging" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

# Regenerate the checked-in JSON Schemas and AsyncAPI document after a contract change.
schemas: $(STAMP)
	$(BIN)/microhub contracts export

clean:
	rm -rf $(VENV) .microhub .pytest_cache
