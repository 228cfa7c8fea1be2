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
# The venv first on PATH, so `python` in dvc.yaml commands and tools run by targets are the pinned ones.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup test demo lint api-docs

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv with the pinned requirements (quick when already done)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned requirements into $(VENV) (first time: a few minutes)..."
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $@

test: setup lint ## Run every test (lint, unit, pipeline, real TorchServe, manifests, API contract)
	$(BIN)/pytest

lint: setup ## ruff (pinned in requirements.txt; rules in pyproject.toml) over the whole tree
	$(BIN)/ruff check .

api-docs: setup ## Render docs/openapi.yaml as docs/api.md and the README's route table
	$(PY) -m serving.openapi

demo: setup ## The main job end to end, offline: pipeline -> TorchServe -> predictions -> monitoring -> stop
	scripts/demo.sh

.PHONY: data
data: setup ## Download the Kaggle Cats and Dogs photos to data/raw (N=500: a balanced subset only)
	$(PY) -m training.download --out-dir data/raw $(if $(N),--limit $(N))

# --- Packaging: models/model.pt -> models/catsdogs.mar (the DVC `package` stage, version from params.yaml) ---
.PHONY: package
package: setup ## Package the trained, evaluated model as models/catsdogs.mar (needs `make train` first)
	@test -f models/model.pt || { echo "models/model.pt not found: train a model first (make train)" >&2; exit 1; }
	@test -f metrics.json || { echo "metrics.json not found: evaluate the model first (make train runs it)" >&2; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro --single-item package

# --- Release: the gated, versioned bundle a model ships in (README "From training to the cluster") ---
.PHONY: release
release: setup ## Gate the packaged model (real data, params.yaml release:) and write dist/catsdogs-<version>/ + .zip
	$(PY) -m serving.release build --out-dir dist

# --- Serving: a local TorchServe under run/torchserve/ (see README "Packaging and serving") ---
.PHONY: serve stop predict smoke versions promote rollback bench-serve
# Ports live in serving/ports.py only; override with SERVE_URL=http://host:port.
SERVE_URL ?= $$($(PY) -m serving.ports inference)

serve: setup ## Start TorchServe on models/catsdogs.mar in the background; returns when the model is READY
	$(PY) -m serving.serve start

stop: setup ## Stop the TorchServe started by `make serve` (safe to re-run)
	$(PY) -m serving.serve stop

predict: setup ## Classify one image with the running server: make predict IMG=path/to/photo.jpg
	@test -n "$(IMG)" || { echo "usage: make predict IMG=path/to/photo.jpg" >&2; exit 1; }
	$(PY) -m serving.predict "$(IMG)" --url $(SERVE_URL)

smoke: setup ## Smoke-test a server through its inference URL: make smoke [SERVE_URL=http://host:port]
	$(PY) scripts/smoke_test.py $(SERVE_URL)

versions: setup ## List the model versions on the running server
	$(PY) -m serving.versions list

promote: setup ## Make VERSION the default (registered from models/ first if needed): make promote VERSION=2.0
	@test -n "$(VERSION)" || { echo "usage: make promote VERSION=2.0" >&2; exit 1; }
	$(PY) -m serving.versions promote "$(VERSION)" --register

rollback: setup ## Make the highest registered version below the current default the default
	$(PY) -m serving.versions rollback

bench-serve: setup ## Runtimes in-process vs TorchServe on 127.0.0.1 (~4 min; Markdown table; CHECK=1 fails on a missed target)
	$(PY) -m serving.bench $(if $(CHECK),--check)

# --- Monitoring: a labelled batch against a live endpoint, drift, load and faults (README "Monitoring") ---
.PHONY: collect drift loadtest
# SOURCE: a prepared split or a photo folder; default the test split (serving/paths.py).
SOURCE ?=
PROTOCOL ?= native
REFERENCE ?= plots/reference_predictions.json

collect: setup ## Send the test split to SERVE_URL, report accuracy/latency (+ drift): [N=200 PROTOCOL=v1|v2 MLFLOW=1]
	$(PY) scripts/collect_predictions.py $(SERVE_URL) $(if $(SOURCE),--source $(SOURCE)) --protocol $(PROTOCOL) \
		$(if $(N),--sample $(N)) $(if $(wildcard $(REFERENCE)),--reference $(REFERENCE)) $(if $(MLFLOW),--mlflow)

drift: setup ## Drift report of the last `make collect` batch vs the evaluate-stage reference (p < 0.01)
	$(PY) -m monitoring.drift --reference $(REFERENCE)

loadtest: setup ## Load, worker-kill and version-switch scenarios on a throw-away local TorchServe (~1 min)
	$(PY) -m monitoring.loadtest

.PHONY: train unseen-kinds bench-train mlflow-ui
# DVC runs each stage's `python` from PATH: put the venv first so stages use the pinned packages.
DVC := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc
# DATA=folder: data/source links to it and `dvc exp run` points prepare.raw_dir there, so params.yaml
# names a repo path, never a machine's path. NEITHER=folder (non-pet photos) does the same with
# data/neither_source and prepare.neither_dir; DATA without NEITHER makes data/neither_source an empty
# folder (DVC needs an existing path): your photos train without the synthetic non-pets.
train: setup ## Run the pipeline up to evaluate (dvc repro); DATA=folder trains on your photos, NEITHER=folder of non-pets
ifdef DATA
	@test -d "$(DATA)" || { echo "DATA=$(DATA) is not a folder of cat and dog photos"; exit 2; }
	@mkdir -p data && ln -sfn "$(abspath $(DATA))" data/source
endif
ifdef NEITHER
	@test -d "$(NEITHER)" || { echo "NEITHER=$(NEITHER) is not a folder of non-pet photos"; exit 2; }
endif
ifneq ($(DATA)$(NEITHER),)
	@mkdir -p data && { [ ! -L data/neither_source ] || rm data/neither_source; } \
		&& { [ ! -d data/neither_source ] || rmdir data/neither_source; }
	@$(if $(NEITHER),ln -sfn "$(abspath $(NEITHER))" data/neither_source,mkdir data/neither_source)
	$(DVC) exp run $(if $(DATA),-S prepare.raw_dir=data/source) -S prepare.neither_dir=data/neither_source evaluate
else
	$(DVC) repro evaluate
endif
	@$(DVC) metrics show

unseen-kinds: setup ## Retrain without the non-pet kinds HOLD=a,b and score them: "neither" on kinds never trained on
	@test -n "$(HOLD)" || { echo "HOLD=kind,kind names the non-pet kinds to hold out (folders of NEITHER=...)"; exit 2; }
	$(PY) -m training.unseen_kinds --hold "$(HOLD)"

bench-train: setup ## Training images/s (float32 vs bfloat16), projected train time, peak memory (CHECK=1 fails on a miss)
	$(PY) -m training.bench $(if $(CHECK),--check)

mlflow-ui: setup ## Browse the MLflow runs (mlflow.db, mlruns/) at http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

# --- Container, Kubernetes and CI/CD (README "Container, Kubernetes and CI/CD") ---
.PHONY: image image-test kind-up deploy kind-down
# Pinned, never :latest. CD deploys ghcr.io/<owner>/<repo>:sha-<commit>; locally a dev tag.
IMAGE ?= catsdogs:dev
MAR ?= models/catsdogs.mar
# RELEASE=dist/catsdogs-<version>: bake that release's checksum-verified archive and label the image
# with its model version, data version and test accuracy (what CI does; REQUIRE_RELEASE=1 insists).
RELEASE ?=
KIND_CLUSTER ?= catsdogs
# The smoke client needs requests and PyYAML only: the project venv when there is one, else the small
# pinned environment of `make smoke-env` (CD and the CI image job use that).
SMOKE_VENV ?= .venv-smoke
SMOKE_PY ?= $(firstword $(wildcard $(PY) $(SMOKE_VENV)/bin/python) python3)

image: ## Build the serving image IMAGE (catsdogs:dev) with MAR or RELEASE=dist/catsdogs-<v>; needs an engine
	IMAGE=$(IMAGE) MAR=$(MAR) RELEASE=$(RELEASE) scripts/image.sh build

image-test: ## Build the image, run it like the Deployment (read-only, non-root), smoke-test it, clean up
	IMAGE=$(IMAGE) MAR=$(MAR) RELEASE=$(RELEASE) PY=$(SMOKE_PY) scripts/image.sh test

.PHONY: smoke-env
smoke-env: $(SMOKE_VENV)/.installed ## A small venv with just the smoke client's pins (requirements-smoke.txt)

$(SMOKE_VENV)/.installed: requirements-smoke.txt
	@test -x $(SMOKE_VENV)/bin/python || $(PYTHON) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-smoke.txt
	@touch $@

kind-up: ## Create the kind cluster KIND_CLUSTER from kind-config.yaml (skipped when it exists)
	KIND_CLUSTER=$(KIND_CLUSTER) scripts/kind.sh up

deploy: setup ## Load IMAGE into kind, apply k8s/overlays/kind, wait for the rollout, smoke-test (NodePort 30080)
	KIND_CLUSTER=$(KIND_CLUSTER) PY=$(PY) scripts/kind.sh deploy $(IMAGE)

kind-down: ## Delete the kind cluster KIND_CLUSTER (if present)
	KIND_CLUSTER=$(KIND_CLUSTER) scripts/kind.sh down

# --- One machine like production: compose.yaml, Prometheus + Grafana, the Deployment under podman ---
.PHONY: tools up down compose-test kube-play
PROFILES ?=

tools: ## Install Debian's prometheus/promtool, docker-compose and podman where missing (root)
	scripts/install_tools.sh all

up: ## Run IMAGE with compose.yaml on 127.0.0.1:8080 (PROFILES=monitoring: + Prometheus :9090, Grafana :3000)
	IMAGE=$(IMAGE) scripts/compose.sh up $(PROFILES)

down: ## Stop and remove the compose services (data volumes kept; `scripts/compose.sh down -v` drops them)
	scripts/compose.sh down

compose-test: setup ## Run the catsdogs service of compose.yaml on free ports, smoke-test and check it, tear down
	IMAGE=$(IMAGE) PY=$(PY) scripts/compose.sh test

kube-play: setup ## Run the kind overlay's rendered Deployment with podman kube play on IMAGE; smoke-test, check the pod spec
	IMAGE=$(IMAGE) $(PY) scripts/kube_play.py --image $(IMAGE)
