# Billing back office. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell sha1sum requirements.txt | cut -c1-12)
# Everything (runtime, tests, tooling), and the runtime part alone (what `make run` needs:
# requirements.txt above its "# Tests and tooling" line).
STAMP := $(VENV)/.installed-$(REQ_HASH)
RUN_STAMP := $(VENV)/.installed-run-$(REQ_HASH)
RUNTIME := $(if $(wildcard $(STAMP)),$(STAMP),$(RUN_STAMP))
DEV_ENV := DEBUG=1
PYTEST_WORKERS ?= 2

.PHONY: help install run migrate seed serve test test-fast lint mypy format clean

help: ## List the targets
	@grep -E '^[a-z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing every pinned requirement into $(VENV), tests and tooling included..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*; touch $(STAMP) $(RUN_STAMP)

$(RUN_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the runtime requirements into $(VENV) (about 20 s with pip's cache warm)..."
	$(PY) -m pip install --quiet --upgrade pip
	sed '/^# Tests and tooling/,$$d' requirements.txt > $(VENV)/requirements-runtime.txt
	$(PY) -m pip install --quiet -r $(VENV)/requirements-runtime.txt
	rm -f $(VENV)/.installed-run-*; touch $(RUN_STAMP)

install: $(STAMP) ## Create the virtualenv and install the pinned requirements (tests and tooling too)

migrate: $(RUNTIME) ## Apply migrations (SQLite file db.sqlite3 unless DATABASE_URL is set)
	$(DEV_ENV) $(PY) manage.py migrate --noinput

seed: migrate ## Load demo data and print an admin login and an API key
	$(DEV_ENV) $(PY) manage.py seed_demo

serve: $(RUNTIME) ## Serve on http://127.0.0.1:8000 (development server)
	$(DEV_ENV) $(PY) manage.py runserver 127.0.0.1:8000

run: seed serve ## Set up everything on SQLite, load demo data and serve on 127.0.0.1:8000

test: lint ## Lint, check migrations and run every test (DATABASE_URL picks the database)
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n $(PYTEST_WORKERS)

test-fast: install ## The tests without the slow ones (servers, workers, Chromium, benchmarks)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not slow"

lint: install ## ruff check, format check and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

mypy: install ## Type-check with mypy (django-stubs, djangorestframework-stubs)
	$(VENV)/bin/mypy

format: install ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: schema
schema: install ## Regenerate docs/openapi.yaml (the test suite fails when it is out of date)
	$(DEV_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

clean: ## Remove the SQLite database and generated files
	rm -rf db.sqlite3 var test-artifacts .pytest_cache .mypy_cache

# Benchmarks use their own databases, never DATABASE_URL: loading the data empties them.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench
BENCH_SMOKE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_smoke
.PHONY: bench bench-smoke

bench: install ## Benchmarks at full scale on PostgreSQL with wrk (loads the data once); docs/benchmarks.md
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/run.py

# 100,000,000 usage records in a database of their own (emptied first): 34.4 GB of disk
# and 13 minutes on 2 quiet cores (measured); BENCH_SCALE_RECORDS=10000000 for a tenth.
# docs/benchmarks.md
BENCH_SCALE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_scale
BENCH_SCALE_RECORDS ?= 100000000
.PHONY: bench-scale
bench-scale: install ## Usage at 100,000,000 records: load time, disk, ingestion, report, billing run
	DATABASE_URL=$(BENCH_SCALE_DATABASE_URL) $(PY) bench/usage_scale.py scale \
		--records $(BENCH_SCALE_RECORDS)

bench-smoke: install ## The benchmarks at the smallest scale, to check that they run
	DATABASE_URL=$(BENCH_SMOKE_DATABASE_URL) $(PY) bench/run.py --scale 0.001 --duration 1 \
		--output bench-results/smoke/results.json

# Reliability (docs/reliability.md). The suite fuzzes every operation a little;
# `make fuzz` many more examples. `make outage` stops and restarts a PostgreSQL
# instance it creates itself (another port, a temporary directory), never the shared one.
FUZZ_EXAMPLES ?= 300
OUTAGE_DOWN_SECONDS ?= 4
.PHONY: fuzz outage

fuzz: install ## Schema fuzzing of both APIs with FUZZ_EXAMPLES examples per operation (default 300)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/billing/test_fuzz.py -n $(PYTEST_WORKERS) -q

outage: install ## Stop and restart a private PostgreSQL under load: 503s, then recovery, nothing partial
	OUTAGE_TEST=1 OUTAGE_DOWN_SECONDS=$(OUTAGE_DOWN_SECONDS) $(PY) -m pytest tests/billing/test_outage.py -q
