# carotidkit — documented entry points (see README.md).
#   make setup                      create .venv and install the pinned stack (idempotent)
#   make report [PROFILE=workshop] [ONLY=02] [PARAMS="epochs=2 batch_size=8"] [FORCE=1]
#   make test                       unit tests + every notebook under profile=smoke + report site in Chromium
#   make test-fast                  unit tests only (no notebooks, no browser)
#   make lint                       ruff check + ruff format --check
#   make validate                   simulate 100 cohorts: CI coverage of planted hazard ratios (Cox, Fine-Gray)
#   make bench                      benchmarks (ratios against references measured in the same run)
#   make gpu-check                  torchrun scaling of the video model on this machine's GPUs (gloo on CPU)
#   make crosscheck                 recompute the survival reference values with R (where installed) and test against them
#   make clean                      remove generated outputs (runs/, reports/, caches); never raw data

SHELL   := /bin/bash
PYTHON  ?= python3.11
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.carotidkit-setup
PROFILE ?= workshop
ONLY    ?=
PARAMS  ?=
FORCE   ?=

export PYTHONUNBUFFERED := 1
export KERAS_BACKEND ?= torch
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup report test test-fast lint validate bench crosscheck gpu-check clean help

help:
	@sed -n '1,13p' Makefile

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; carotidkit needs Python 3.11 (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "carotidkit (.venv)" >/dev/null
	touch $(STAMP)

report: setup
	$(PY) -m carotidkit report --profile $(PROFILE) $(if $(ONLY),--only $(ONLY)) \
		$(foreach kv,$(PARAMS),-p $(subst =, ,$(kv))) $(if $(FORCE),--force)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not notebook and not browser and not slow"

lint: setup
	$(VENV)/bin/ruff check carotidkit tests tools
	$(VENV)/bin/ruff format --check carotidkit tests tools

validate: setup
	$(PY) -m carotidkit.survival.validate --reps 100

bench: setup
	$(PY) -m carotidkit bench

gpu-check: setup
	$(PY) -m carotidkit.vd.gpucheck

crosscheck: setup
	@command -v Rscript >/dev/null || { echo "crosscheck needs R: apt-get install r-base-core r-cran-survival r-cran-cmprsk"; exit 1; }
	Rscript tools/survival_reference.R tests/data/r_reference
	$(PY) -m pytest -q tests/test_survival_vs_r.py
	@git diff --stat -- tests/data/r_reference || true

clean:
	rm -rf runs .cache bench/results .pytest_cache
	find reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
