# `make run` and `make test` work on a fresh machine with Python 3.11 and make:
# the virtualenv is created when missing and re-installed only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/paramadapt run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy core storage

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/bench_backtest.py
	$(BIN)/python bench/bench_optimizer.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_slack_ack.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
