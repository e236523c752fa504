# Step Sync ChatBot — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
PG_URL ?= postgres://postgres@127.0.0.1:5432/stepsync
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run test install install-dev system-deps keys migrate lint test-sqlcipher test-postgres bench bench-load clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

keys: $(VENV)/.runtime
	$(BIN)/python -m stepsync.secrets init

migrate: keys
	$(BIN)/python manage.py migrate --noinput -v0

run: migrate
	$(BIN)/python manage.py collectstatic --noinput -v0
	SECURE_COOKIES=$${SECURE_COOKIES:-false} LOG_DIR=$${LOG_DIR:-var/log} \
	  $(BIN)/python -m stepsync.serve \
	  --host $(HOST) --port $(PORT) --workers $(WORKERS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy stepsync chat compliance ops accounts

test-sqlcipher: $(VENV)/.dev
	$(BIN)/pytest $(PYTEST_ARGS)

# The browser, chaos and scale-out suites start servers on databases of their own
# (scale-out always on PostgreSQL); they ran in the first pass and are not repeated.
PG_SKIP := --ignore=tests/e2e --ignore=tests/chaos --ignore=tests/scaleout
test-postgres: $(VENV)/.dev
	@if $(BIN)/python -m stepsync.probe postgres "$(PG_URL)"; then \
	  echo "== PostgreSQL pass ($(PG_URL)) =="; \
	  DATABASE_URL="$(PG_URL)" $(BIN)/pytest $(PG_SKIP) $(PYTEST_ARGS); \
	elif [ "$$REQUIRE_POSTGRES" = 1 ]; then \
	  echo "PostgreSQL is required (REQUIRE_POSTGRES=1) but not reachable at $(PG_URL)"; exit 1; \
	else \
	  echo "PostgreSQL pass SKIPPED: no server reachable at $(PG_URL)"; \
	fi

test: $(VENV)/.dev system-deps lint
	@echo "== SQLCipher pass =="
	$(MAKE) --no-print-directory test-sqlcipher
	$(MAKE) --no-print-directory test-postgres

bench: $(VENV)/.dev
	$(BIN)/python -m bench

# HTTP load against the production server: the four scenarios, medians of 3 runs each.
# The memory soak: make bench-load BENCH_LOAD_ARGS="--scenario soak" (one: --runs 1).
BENCH_LOAD_ARGS ?= --scenario all
bench-load: $(VENV)/.dev
	$(BIN)/python bench/bench_load.py $(BENCH_LOAD_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .mypy_cache
