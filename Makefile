# The two commands: `make run` and `make test`. Both bootstrap .venv from this project's files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/chatops run

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/ingress.py
	$(BIN)/python bench/fanout.py

DEV_STAMP := $(VENV)/.installed-dev

$(DEV_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(DEV_STAMP)

lint: $(DEV_STAMP)
	$(BIN)/ruff check chatops_core ingress workers tests bench
	$(BIN)/ruff format --check chatops_core ingress workers tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
