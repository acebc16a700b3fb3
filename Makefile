# gpu-dask: offline set-up, checks and plans. No cloud account needed for any target here.
# The RAPIDS image's Python minor (3.12): cloudpickle does not cross minors, so clients, the
# rehearsal and the tests run the same one (pyenv's 3.12 first: its shim answers only where 3.12 is selected).
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) $(shell command -v python3.12 2>/dev/null) python3.12)
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: provider-schema setup lock test test-fast lint typecheck check plan rehearse rehearse-cluster upstream policy-check scan clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python  ## create .venv and install runtime + dev requirements, at the versions of constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements-dev.txt

# The lock: every package `make setup` installs (what CI tests and deploys), compiled under the
# venv's Python (3.12). Existing pins are kept; after editing requirements*.txt run it and commit both.
lock:  ## recompile constraints.txt from requirements-dev.txt (pip-tools)
	$(BIN)/pip-compile --quiet --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	  --output-file constraints.txt requirements-dev.txt

test:  ## the whole test suite (CI): every tier, then the 30 slowest tests (where CI's time goes)
	$(BIN)/python -m pytest --durations=30

test-fast:  ## the edit loop (< 30 s): tests marked `fast` (no processes, no control plane, no real Pulumi)
	$(BIN)/python -m pytest -m fast -q

upstream:  ## build the pinned upstream programs (upstream/versions.toml) into the user cache; cached after
	$(BIN)/python -m gpudask upstream build

lint:  ## ruff, and the import contracts of pyproject.toml (layers, no cycles; import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

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

.venv-checkov/bin/checkov: requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

# The plan writes the manifests the scanner reads; errors (exit 1) or bad config (exit 2) stop the
# scan (warnings do not fail a plan).
scan: .venv-checkov/bin/checkov  ## Checkov on every stack's manifests, operator-built Deployments and GKE plan
	@set -e; for stack in $$($(BIN)/python -m gpudask stacks | tr -d '[]",'); do \
	  $(BIN)/python -m gpudask plan $$stack > /dev/null; \
	  rm -rf build/$$stack/scan && mkdir -p build/$$stack/scan; \
	  for f in build/$$stack/manifests/*.yaml; do cp "$$f" build/$$stack/scan/stack-$$(basename "$$f"); done; \
	  for f in build/$$stack/operator-manifests/*.yaml; do cp "$$f" build/$$stack/scan/operator-$$(basename "$$f"); done; \
	  echo "checkov: $$stack"; \
	  .venv-checkov/bin/checkov --config-file .checkov.yaml -d build/$$stack/scan --framework kubernetes; \
	  .venv-checkov/bin/checkov --config-file .checkov.yaml -f build/$$stack/tfplan.json --framework terraform_plan; \
	done

check: lint typecheck policy-check scan upstream test  ## everything CI runs (tests last)

provider-schema:  ## regenerate tests/data/tpg-container-schema.json (ForceNew per GKE field) from the Terraform Google provider; Go, ~5 min cold
	cd upstream/tpgschema && CGO_ENABLED=0 GOFLAGS=-mod=mod nice go run -trimpath . > ../../tests/data/tpg-container-schema.json

plan:  ## offline plan of one stack: make plan STACK=prod
	$(BIN)/python -m gpudask plan $(STACK)

rehearse:  ## the stack's scheduler and workers as local processes + smoke workload: make rehearse STACK=dev
	$(BIN)/python -m gpudask rehearse $(STACK)

rehearse-cluster:  ## the stack applied to a real local control plane: make rehearse-cluster STACK=prod
	$(BIN)/python -m gpudask rehearse $(STACK) --cluster

clean:
	rm -rf build .pytest_cache .ruff_cache .import_linter_cache
