# Branchline developer commands. Every target creates .venv first when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTO_DIR := protos
PROTO_OUT := protos
PROTOS := $(wildcard protos/branchline/v1/*.proto)

.PHONY: demo test bench protos lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

protos: $(STAMP)
	$(PY) -m branchline.common.protogen

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m branchline.common.typecheck

# --dist loadfile: a module's tests share one stack of processes (module-scoped fixtures), so
# each module runs on one worker and its stack starts once. --no-loadscope-reorder: modules go
# out in collection order, which tests/conftest.py makes slowest first.
test: $(STAMP)
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --timeout=300

bench: $(STAMP)
	$(PY) -m bench.run

demo: $(STAMP)
	$(PY) -m branchline.sim.demo

clean:
	rm -rf var build *.egg-info
