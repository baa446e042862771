# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run PORT=8090` when 8080 is taken; DATA_DIR holds the demo database and exports.
PORT ?= 8080
DATA_DIR ?= var

.PHONY: run test venv clean bench

venv: $(STAMP)

# Re-install whenever the dependency list changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/dongxian demo --port $(PORT) --data-dir $(DATA_DIR)

# One pytest worker per core (pytest-xdist): every test makes its own database, directory and
# ports, so they run side by side; `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Benchmarks (about 16 minutes); set DONGXIAN_TEST_PG to include the PostgreSQL scale-out.
bench: $(STAMP)
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info
