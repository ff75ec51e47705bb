# Everything runs from the project's own virtual environment (.venv), created on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
# The DAG's defaults: the demo library until a deployment sets its own.
export MUSICREC_LIBRARY ?= $(CURDIR)/demo-library
export MUSICREC_METADATA ?= $(CURDIR)/demo-library/metadata.csv
export MUSICREC_DATA_DIR ?= $(CURDIR)/data

.PHONY: install demo test test-unit test-distributed browser lint airflow dev-corpus benchmark clean

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set, every process (CLI call, Airflow
# task, pool worker) would otherwise compile its imports from source, seconds each time.
$(BIN)/musicrec: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q include dags plugins
	touch $@

install: $(BIN)/musicrec

demo: install
	$(BIN)/musicrec demo-library demo-library
	$(BIN)/musicrec run --library demo-library --metadata demo-library/metadata.csv --files-per-shard 8
	$(BIN)/musicrec recommend "Drones no. 1" --k 5
	$(BIN)/musicrec recommend "chip_arps/Chip Arps 02.ogg" --k 5

# Unit and integration tests (DAG runs, servers, the page in a browser); `make test-unit` runs the fast tier alone.
test: install browser
	env -u MUSICREC_LIBRARY -u MUSICREC_METADATA -u MUSICREC_DATA_DIR $(BIN)/python -m pytest -m "not distributed" $(PYTEST_ARGS)

# The DAG on the CeleryExecutor: two workers, the machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379).
test-distributed: install
	env -u MUSICREC_LIBRARY -u MUSICREC_METADATA -u MUSICREC_DATA_DIR $(BIN)/python -m pytest -m distributed $(PYTEST_ARGS)

test-unit: install
	env -u MUSICREC_LIBRARY -u MUSICREC_METADATA -u MUSICREC_DATA_DIR $(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser test drives Debian's chromium (Playwright's own browser download does not work everywhere).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	  else sudo apt-get install -y --no-install-recommends chromium; fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# On loopback unless AIRFLOW__API__HOST says otherwise: the UI and the plugin's API show the library.
airflow: install
	$(BIN)/airflow db migrate
	PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW__API__HOST=$${AIRFLOW__API__HOST:-127.0.0.1} airflow standalone  # it starts its components as `airflow ...` commands

dev-corpus:
	bash ../shared/datasets/fetch_dev_corpus.sh dev-corpus

benchmark: install
	$(BIN)/python benchmarks/extract.py $(BENCH_ARGS)

clean:
	rm -rf data demo-library .airflow .cache
