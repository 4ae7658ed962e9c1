# Two commands matter: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] < (3,14)))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | cksum | cut -d' ' -f1)

.PHONY: demo test browser test-pg15 faults load lint typecheck bench up stop schemas compose-check image-check kube-check lock clean

## The development environment: exactly requirements-dev.lock (every hash checked), then
## Charter itself, editable, without resolving anything again.
$(STAMP): pyproject.toml requirements-dev.lock
	@test -n "$(PYTHON)" || { echo "Charter needs Python 3.11, 3.12 or 3.13 on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

## Re-resolve both lock files from pyproject.toml (pip-tools, in a throwaway venv): the image's
## (runtime dependencies) and the development one (embedded servers, plots, tests).
LOCK_VENV ?= /tmp/charter-lock-venv
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	--allow-unsafe --no-emit-index-url --no-emit-find-links
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/pip install -q pip-tools; }
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra embedded --extra plots --extra test --output-file requirements-dev.lock pyproject.toml
	sed -i '/^# WARNING: pip install will require/,/^    # via charter (pyproject.toml)/d' requirements-dev.lock

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

## Validate docker-compose.yml with Debian's docker-compose (`.ci/run` installs it; this
## target installs nothing); no Docker engine is needed. The secret files it names are made
## in a scratch directory. Each service's command is run outside Docker by
## tests/production/test_compose_services.py.
compose-check:
	@command -v docker-compose >/dev/null || { echo "docker-compose is missing: apt-get install docker-compose"; exit 1; }
	@tmp=$$(mktemp -d) && cp docker-compose.yml $$tmp/ && mkdir -p $$tmp/deploy/secrets && \
		for s in $$(sed -n 's/^  \([a-z_]*\): {file: .\/deploy\/secrets\/.*/\1/p' docker-compose.yml); do \
			touch $$tmp/deploy/secrets/$$s; done && \
		docker-compose --env-file deploy/compose.env.example -f $$tmp/docker-compose.yml config -q; \
		status=$$?; rm -rf $$tmp; exit $$status
	@echo "docker-compose.yml is valid"

## Render every Kubernetes overlay (Debian's kubectl kustomize) and validate each object
## against the Kubernetes schemas shipped in kubernetes-validate (offline), installed in a
## throwaway venv; `.ci/run` installs kubectl.
KUBE_VENV ?= /tmp/charter-kube-venv
KUBE_VERSION ?= 1.32.0
kube-check:
	@command -v kubectl >/dev/null || { echo "kubectl is missing: apt-get install kubernetes-client"; exit 1; }
	@test -x $(KUBE_VENV)/bin/kubernetes-validate || { $(PYTHON) -m venv $(KUBE_VENV) && \
		$(KUBE_VENV)/bin/pip install -q kubernetes-validate; }
	@for overlay in deploy/kubernetes/overlays/*/; do \
		kubectl kustomize $$overlay > /tmp/charter-kube-rendered.yaml || exit 1; \
		$(KUBE_VENV)/bin/kubernetes-validate --quiet --strict --kubernetes-version $(KUBE_VERSION) \
			/tmp/charter-kube-rendered.yaml || exit 1; \
		echo "$$overlay: $$(grep -c '^kind:' /tmp/charter-kube-rendered.yaml) objects valid"; \
	done

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
