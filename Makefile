# `make run` and `make test` work on a fresh machine with Python 3.11 and make:
# the virtualenv is created when missing and re-installed only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean demo simulate

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/paramadapt run

# The first-run demo: `make demo` (the bot in console mode with examples/demo.toml and its own
# database) in one terminal, `make simulate` (the simulated engine) in another. They share an
# engine token generated once into var/demo-token; @ keeps it off the terminal.
DEMO_TOKEN = $(shell test -s var/demo-token || (mkdir -p var && umask 077 && \
	$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))' > var/demo-token); cat var/demo-token)

demo: $(STAMP)
	@echo "$(BIN)/paramadapt run  (PARAMADAPT_CONFIG=examples/demo.toml, DATABASE_URL=var/demo.db)"
	@ENGINE_API_TOKEN=$(DEMO_TOKEN) PARAMADAPT_CONFIG=examples/demo.toml \
		DATABASE_URL=sqlite+aiosqlite:///./var/demo.db BACKUP_DIR=./var/demo-backups \
		$(BIN)/paramadapt run

simulate: $(STAMP)
	@echo "$(BIN)/paramadapt simulate $(SIMULATE_ARGS)"
	@ENGINE_API_TOKEN=$(DEMO_TOKEN) $(BIN)/paramadapt simulate $(SIMULATE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy core storage bot

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
