# django_migrator — build, test and demo. Every target installs what it needs first
# (scripts/ensure-deps.sh), and is quick when everything is already there.

SHELL := /bin/bash
.DEFAULT_GOAL := help
PG_CONFIG := /usr/lib/postgresql/15/bin/pg_config
PYTHON := .venv/bin/python
# `cargo pgrx test` runs PostgreSQL as `postgres` (it refuses root) in a data directory that
# user can create.
PGTEST_DIR := /var/tmp/django-migrator-pgtest
export USER ?= root

.PHONY: help deps build test demo lint unit pgtest pytest e2e accuracy bench wheel-test fuzz

help:
	@echo "make demo   install what is missing, build, and run django-migrator on the example project"
	@echo "make test   install what is missing and run every test layer"
	@echo "make build  build target/release/django-migrator and install the extension into PostgreSQL 15"
	@echo "make bench  benchmarks; writes docs/bench.md"
	@echo "make fuzz   the long fuzz campaign against load_manifest()"

deps:
	@bash scripts/ensure-deps.sh

# The release CLI, and the extension installed into the local PostgreSQL 15.
build: deps
	cargo build --release --locked -p django-migrator-cli
	cargo pgrx install --release -p django_migrator --pg-config $(PG_CONFIG) >/dev/null
	install -m 644 sql/archive/django_migrator--*.sql $$($(PG_CONFIG) --sharedir)/extension/

lint: deps
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

unit: deps
	cargo test --locked -p django-migrator-core -p django-migrator-cli

pgtest: deps
	install -d -o postgres -g postgres $(PGTEST_DIR)
	CARGO_PGRX_TEST_RUNAS=postgres CARGO_PGRX_TEST_PGDATA=$(PGTEST_DIR)/data \
		cargo pgrx test -p django_migrator pg15

# The exporter, the Django app and the Python API on every Django version this machine can
# install (4.2, 5.2, and 6.x where a Python 3.12 exists). The Django app's tests run the real
# binary against a cluster, so they need `build`.
pytest: build
	bash scripts/test-django-versions.sh

e2e: build
	$(PYTHON) -m pytest tests/e2e -q

# Detection accuracy on contrib and third-party apps; rewrites docs/accuracy.md.
accuracy: build
	$(PYTHON) -m pytest tests/accuracy -q

# pgtest installs a test build of the extension; `accuracy` and `e2e` depend on `build`, which
# installs the release build again before they use it.
test: lint unit pgtest pytest accuracy e2e

# Speed and memory against the catalog read and plain Django loops; rewrites docs/bench.md.
bench: build
	bash bench/run.sh

# The long fuzz campaign against load_manifest() in a real backend (make e2e runs a short one);
# the figures are in docs/fuzz.md.
FUZZ_CASES ?= 50000
fuzz: build
	DJANGO_MIGRATOR_FUZZ_CASES=$(FUZZ_CASES) $(PYTHON) -m pytest tests/e2e/test_fuzz_manifest.py -q -s

# Builds the wheel (with the binary) and installs it into a fresh virtualenv; slow (it
# compiles the CLI again), so not part of `make test`.
wheel-test: build
	DJANGO_MIGRATOR_WHEEL_TEST=1 $(PYTHON) -m pytest tests/wheel -q -rs

demo: build
	@bash scripts/demo.sh
