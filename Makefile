# gpu-dask: offline set-up, checks and plans. No cloud account needed for any target here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: setup test lint typecheck check plan rehearse clean

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

check: lint typecheck test  ## everything CI runs

plan:  ## offline plan of one stack: make plan STACK=prod
	$(BIN)/python -m gpudask plan $(STACK)

rehearse:  ## the stack's scheduler and workers as local processes + smoke workload: make rehearse STACK=dev
	$(BIN)/python -m gpudask rehearse $(STACK)

clean:
	rm -rf build .pytest_cache .ruff_cache
