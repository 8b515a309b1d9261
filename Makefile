# The two commands of the README. Each creates .venv when missing and installs the project into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -f demo.db demo.db-wal demo.db-shm
	$(BIN)/agentaudit demo --db demo.db
	@echo
	@echo "== the audit log (last 15 events) =="
	$(BIN)/agentaudit log --db demo.db --limit 15
	@echo
	@echo "== the refund incident =="
	$(BIN)/agentaudit trace --db demo.db refund-incident

# The suite runs in TEST_WORKERS processes (pytest-xdist), a whole test file per process so a
# file's servers and databases are set up once; `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25  # the slowest tests: the suite must stay under 15 minutes

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/sdk_overhead.py
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info demo.db demo.db-wal demo.db-shm
