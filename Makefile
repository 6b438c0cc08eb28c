# Foresight: `make run` installs and starts the embedded default; `make test` installs and runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench-ingest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the CPU build is on disk; an unpinned torch pulls gigabytes of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/foresight serve --host 127.0.0.1 --port 8000

test: install
	bash scripts/test.sh $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/mypy service replay forecasting policies

bench-ingest: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache
