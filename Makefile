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

# Two workers even on one core: half the suite waits on subprocesses and servers, not CPU.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -lt 2 ] && n=2; echo $$n)
# The longest tests start first (cg_assets_tests/conftest.py) and each worker is handed one
# test at a time as it frees up (longest first, then the rest: no worker is left with a tail
# of slow tests). xdist's default hands out chunks of a quarter of the suite, which put every
# slow test in the first worker's chunk.
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist load --maxschedchunk 1

## Lint, validate the definitions (dg check defs), run the whole test suite in parallel.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs
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
