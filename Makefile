# Two commands for a fresh machine with Python 3.11: `make up` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install up test lint format bench clean lock browser

install: $(STAMP)

# Pinned by requirements.lock (constraints), so every machine gets the same versions.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Lineagehouse needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable '.[dev]'
	@touch $(STAMP)

up: install  ## run the whole product on this machine (Ctrl-C stops it)
	$(BIN)/lineagehouse up

test: install browser  ## run every test against a real broker and ClickHouse
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# System packages the tests use, from Debian when missing: Chromium for the web UI's
# browser tests (tests/ui, driven by playwright), PostgreSQL for the Airflow emitter test's
# throw-away database.
browser:
	@missing=""; test -x /usr/bin/chromium || missing="chromium"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  if [ -n "$$missing" ]; then SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$missing; fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install  ## throughput figures; see BENCHMARKS.md
	$(BIN)/python bench/bench_clickhouse_server.py
	$(BIN)/python bench/bench_validate.py
	$(BIN)/python bench/bench_encode.py
	$(BIN)/python bench/bench_processor.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_clickhouse_tables.py
	$(BIN)/python bench/bench_lineage.py
	$(BIN)/python bench/bench_issues.py
	$(BIN)/python bench/bench_broker.py

lock:  ## refresh requirements.lock from the current venv
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v -e '^lineagehouse' -e '^pip==' > requirements.lock

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find processors -name '*.so' -delete
