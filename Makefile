# The README's two commands: `make run` (the demo) and `make test` (what CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --editable '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Check the settings, then start the Dagster UI with `dg dev` (and the bundled simulator
## when no credentials are set).
run: $(STAMP)
	./scripts/run-demo

# One worker more than cores: part of the suite waits on Dagster's daemons, subprocess boots
# and slowed-down servers, not CPU (measured on 2 cores: 2 workers 433-447 s, 3 workers
# 340 s, 4 workers 349 s; docs/testing.md).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$((n + 1)))
# The longest tests start first (cg_assets_tests/conftest.py) and each worker is handed one
# test at a time as it frees up (longest first, then the rest: no worker is left with a tail
# of slow tests). xdist's default hands out chunks of a quarter of the suite, which put every
# slow test in the first worker's chunk.
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist load --maxschedchunk 1

## Lint, then the whole test suite in parallel. `dg check defs` runs inside it, stricter than
## here (test_definitions: it must also print no warning), so it is not run twice.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	./scripts/ensure-postgres
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=20

## The inner loop: client, lake, sync (one day of each mode), privacy, settings and definitions
## tests, without the ones that start Dagster, its CLI or the simulator as subprocesses
## (marker `stack`). The rest (assets, sensors, reliability, simulator) runs in `make test`.
FAST_TESTS := cg_assets_tests/test_client cg_assets_tests/test_lake cg_assets_tests/test_privacy \
	cg_assets_tests/test_definitions cg_assets_tests/test_settings \
	cg_assets_tests/test_assets/test_non_responses.py
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not stack and not lifetime and not e2e" $(FAST_TESTS)

## ruff, and the import layers (import-linter, contracts in setup.cfg).
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/delta_vs_parquet.py
	$(BIN)/python benchmarks/window_cost.py
	$(BIN)/python benchmarks/hostile_memory.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
