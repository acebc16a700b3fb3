# gpu-dask: offline set-up, checks and plans. No cloud account needed for any target here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: setup test lint typecheck check plan rehearse policy-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python  ## create .venv and install runtime + dev requirements
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt

test:  ## the test suite
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/pyright

# The policy pack's own venv (the one `pulumi preview --policy-pack policies` uses):
# pulumi-policy pins an older protobuf than google-cloud-container.
policies/venv/bin/python: policies/requirements.txt
	$(PYTHON) -m venv policies/venv
	policies/venv/bin/python -m pip install --quiet --upgrade pip
	policies/venv/bin/python -m pip install --quiet -r policies/requirements.txt
	touch $@

policy-check: policies/venv/bin/python  ## the pack's callbacks through the real pulumi-policy, and its types
	cd policies && venv/bin/python selfcheck.py
	$(BIN)/pyright -p policies

check: lint typecheck test policy-check  ## everything CI runs

plan:  ## offline plan of one stack: make plan STACK=prod
	$(BIN)/python -m gpudask plan $(STACK)

rehearse:  ## the stack's scheduler and workers as local processes + smoke workload: make rehearse STACK=dev
	$(BIN)/python -m gpudask rehearse $(STACK)

clean:
	rm -rf build .pytest_cache .ruff_cache
