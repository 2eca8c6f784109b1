# Everything installs itself into .venv; only Python 3.11+ is needed beforehand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# parallel test workers (most tests wait on real time: rate limits, servers, a scheduler)
WORKERS ?= 6
# one Airflow version of the matrix (make compat AIRFLOW=3.0.6); empty: all of them
AIRFLOW ?=

.PHONY: test test-fast lint demo airflow bench sandbox install clean compat compat-floors compat-freeze

$(STAMP): pyproject.toml airflow_provider_outreach/__init__.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

# the tests that measure pacing to the millisecond run apart from the Airflow deployments of the e2e tests
test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(WORKERS) -m "not timing" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -n $(WORKERS) -m "timing" $(PYTEST_ARGS)

# everything but the end-to-end, multi-process and slow tests (markers: see tests/conftest.py)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) -m "not e2e and not multiprocess and not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python demo/run.py

airflow: $(STAMP)
	$(BIN)/python demo/airflow.py

bench: $(STAMP)
	$(BIN)/python bench/parse_cost.py
	$(BIN)/python bench/bulk_throughput.py
	$(BIN)/python bench/shared_budget.py
	$(BIN)/python bench/bulk_suppression.py

# the Airflow version matrix (compat/run.py): an environment per version under .compat/
compat: $(STAMP)
	$(BIN)/python -m compat.run $(if $(AIRFLOW),--airflow $(AIRFLOW))

# the matrix with each direct dependency at its floor in pyproject.toml (are the floors honest?)
compat-floors: $(STAMP)
	$(BIN)/python -m compat.run --floors $(if $(AIRFLOW),--airflow $(AIRFLOW))

# resolve the matrix's pinned environments again (after a dependency change in pyproject.toml)
compat-freeze: $(STAMP)
	$(BIN)/python -m compat.freeze $(if $(AIRFLOW),--airflow $(AIRFLOW))

sandbox: $(STAMP)
	$(BIN)/outreach-sandbox --port 8750

clean:
	rm -rf $(VENV) .compat .pytest_cache .hypothesis
