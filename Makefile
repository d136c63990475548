# Two commands do all set-up:  `make run` (open the app) and `make test` (pass the tests).
# Each creates .venv from requirements.txt on first use and re-installs when it changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
PORT ?= 8501

.PHONY: run dev test test-fast bench lint format clean-venv

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	cp requirements.txt $(STAMP)

run: $(STAMP)
	$(PY) -m streamlit run dashboard.py --server.port $(PORT)

# For developers: reload the app when a source file is saved (the class server does not
# watch files, see .streamlit/config.toml).
dev: $(STAMP)
	$(PY) -m streamlit run dashboard.py --server.port $(PORT) --server.fileWatcherType auto \
		--server.runOnSave true

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e and not slow"

bench: $(STAMP)
	$(PY) -m tests.benchmarks

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

clean-venv:
	rm -rf $(VENV)
