# The two commands of the README: `make demo` and `make test`. Everything else is a step of theirs.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTS := daemons/pyproject.toml policy/pyproject.toml probes/pyproject.toml constraints.txt
PYTEST_ARGS ?=

.PHONY: setup system venv ca demo test test-unit lint typecheck clean

setup: system venv ca  ## idempotent: Debian packages, the venv with the three components, the grid CA

system:
	@bash scripts/setup-system.sh

# The venv is made from Debian's Python 3.11 so that Debian's gfal2 binding fits it.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python $(DISTS)
	$(BIN)/pip install -q -c constraints.txt -e "daemons[grid,dev]" -e policy -e probes
	touch $(STAMP)

venv: $(STAMP)

ca: venv
	@$(BIN)/juno-dcs init-ca

demo: setup
	$(BIN)/python -m juno_dcs.demo

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	-$(BIN)/juno-dcs down 2>/dev/null
	rm -rf $(VENV) var
