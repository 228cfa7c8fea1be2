# The front door: every step of the lifecycle is one target; CI and CD call the same targets a
# person does. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Telemetry off everywhere; the repo root is importable for every tool.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export PYTHONPATH := $(CURDIR)

.PHONY: help setup test demo

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv with the pinned requirements (quick when already done)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned requirements into $(VENV) (first time: a few minutes)..."
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $@

test: setup ## Run every test (unit, pipeline, real TorchServe, manifests)
	$(BIN)/pytest
