# siemgate: `make demo [PORT=8080]` runs a demo server (runtime dependencies only), `make test` runs the
# tests (with the dev toolchain, root for apt, PostgreSQL and Redis: see README). Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUNTIME_STAMP := $(VENV)/.runtime-stamp
PORT ?= 8080

.PHONY: venv demo test soak bench lint format clean

# The runtime only (what `make demo` needs); the dev stamp adds the test and lint toolchain.
$(RUNTIME_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(RUNTIME_STAMP)
	$(BIN)/siemgate demo --port $(PORT)

test: $(STAMP)
	.ci/system-packages
	$(BIN)/python -m pytest -q -n auto

# The tests marked soak at their large sizes, then randomized adversarial histories for
# SOAK_MINUTES (default 15); summary in test-artifacts/soak/.
soak: $(STAMP)
	.ci/system-packages
	SIEMGATE_SOAK=1 $(BIN)/python -m pytest -q -n auto -m soak
	PYTHONPATH=tests $(BIN)/python -m history.soak

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/forward.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/alerts_ingest.py
	$(BIN)/python bench/alerts_precision.py
	$(BIN)/python bench/tlog.py
	$(BIN)/python bench/tlog_store.py
	$(BIN)/python bench/proofs.py
	$(BIN)/python bench/proofs_store.py
	$(BIN)/python bench/witness.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) siemgate-demo .pytest_cache .mypy_cache .ruff_cache test-artifacts
