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

.PHONY: install demo test test-unit test-distributed check-readme browser lint licences airflow backfill dev-corpus benchmark clean

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set, every process (CLI call, Airflow
# task, pool worker) would otherwise compile its imports from source, seconds each time.
$(BIN)/musicrec: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q include dags plugins
	touch $@

install: $(BIN)/musicrec

demo: install
	$(BIN)/musicrec demo-library demo-library
	$(BIN)/musicrec run --library demo-library --metadata demo-library/metadata.csv --files-per-shard 8
	$(BIN)/musicrec recommend "Drones no. 1" --k 5
	$(BIN)/musicrec recommend "chip_arps/Chip Arps 02.ogg" --k 5

# Unit and integration tests (DAG runs, servers, the page in a browser, the README's own commands on a copy of
# the checkout); `make test-unit` runs the fast tier alone.
test: install browser
	env -u MUSICREC_LIBRARY -u MUSICREC_METADATA -u MUSICREC_DATA_DIR $(BIN)/python -m pytest -m "not distributed" $(PYTEST_ARGS)

# The DAG on the CeleryExecutor: two workers, the machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379).
test-distributed: install
	env -u MUSICREC_LIBRARY -u MUSICREC_METADATA -u MUSICREC_DATA_DIR $(BIN)/python -m pytest -m distributed $(PYTEST_ARGS)

test-unit: install
	env -u MUSICREC_LIBRARY -u MUSICREC_METADATA -u MUSICREC_DATA_DIR $(BIN)/python -m pytest $(PYTEST_ARGS)

# The shell commands of the README and docs/ name make targets, musicrec commands and scripts that exist.
check-readme: install
	$(BIN)/python -m pytest -q tests/unit/test_readme.py

# The browser test drives Debian's chromium (Playwright's own browser download does not work everywhere).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	  else sudo apt-get install -y --no-install-recommends chromium; fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every runtime dependency's licence (and the model's); fails on one that would not allow the project's use.
licences: install
	$(BIN)/python tools/licences.py

# `airflow standalone` on loopback (unless AIRFLOW__API__HOST says otherwise), with a parallelism sized for
# the machine; Ctrl-C stops every process it started (musicrec.airflow.standalone says how).
airflow: install
	$(BIN)/airflow db migrate
	$(BIN)/python -m musicrec.airflow.standalone

# With `make airflow` running: one run per date from FROM to TO (YYYY-MM-DD, both included), one after the
# other. Dates that already ran are left as they are unless REPROCESS=completed (or failed) runs them again.
# FOLDER_TEMPLATE (e.g. 'incoming/{{ ds }}') names the folder each date ingests. musicrec.airflow.backfill
# says what it adds to `airflow backfill create`.
REPROCESS ?= none
FOLDER_TEMPLATE ?=
backfill: install
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [FOLDER_TEMPLATE='incoming/{{ ds }}'] [REPROCESS=completed]" >&2; exit 2; }
	$(BIN)/python -m musicrec.airflow.backfill --from $(FROM) --to $(TO) --reprocess $(REPROCESS) \
	    $(if $(FOLDER_TEMPLATE),--folder-template '$(FOLDER_TEMPLATE)')

dev-corpus:
	bash ../shared/datasets/fetch_dev_corpus.sh dev-corpus

benchmark: install
	$(BIN)/python benchmarks/extract.py $(BENCH_ARGS)

clean:
	rm -rf data demo-library .airflow .cache
