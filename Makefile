# Two commands: `make run` serves the demo, `make test` runs lint and the whole suite.
# Both create the virtualenv on first use and refresh it when pyproject.toml changes.
# The embedded PostgreSQL (.pgdata/) keeps running after Ctrl-C: `make stop` stops it.

SHELL := /bin/bash
VENV ?= .venv
# The newest supported interpreter on PATH (or under pyenv), unless PYTHON is given.
PYTHON ?= $(shell for v in 3.12 3.13 3.11; do \
	for c in python$$v $$HOME/.pyenv/versions/$$v*/bin/python$$v; do \
	$$c -c '' 2>/dev/null && { echo $$c; exit 0; }; done; done; echo python3)
# Extra pip requirement, e.g. DJANGO='Django>=5.2,<6' for the LTS leg of CI.
DJANGO ?=
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: run test lint pytest bench stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]' $(if $(DJANGO),'$(DJANGO)')
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo,test]' $(if $(DJANGO),'$(DJANGO)')
	touch $@ $(VENV)/.installed-run

# DEBUG for the development server only (config/settings.py refuses DEBUG off without a real key).
run: export DJANGO_DEBUG ?= 1
run: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo --if-empty
	$(BIN)/python manage.py runserver $(HOST)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy realtime

# Two pytest runs, one per settings module (see tests/conftest.py): the reusable app's tests on
# their own minimal settings, then the demo's. Both run under coverage (servers in subprocesses
# included) and the report fails below the gate (fail_under in pyproject.toml). Tests run in a
# random order: pytest-randomly prints the seed, `PYTEST_ARGS=--randomly-seed=N` replays it and
# `PYTEST_ARGS='-p no:randomly'` turns it off.
pytest: $(VENV)/.installed-test
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest --ds tests.realtime.settings tests/realtime $(PYTEST_ARGS)
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m coverage combine --quiet
	$(BIN)/python -m coverage report

test: lint pytest

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

# Stops the embedded PostgreSQL of .pgdata/ (its data stays; `make run` starts it again).
stop:
	@if [ -x $(BIN)/python ] && [ -e .pgdata/postmaster.pid ]; then \
		$(BIN)/python -m realtime.embedded stop .pgdata; \
	else echo "No embedded PostgreSQL is running in .pgdata."; fi

clean: stop
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build .coverage .coverage.*
