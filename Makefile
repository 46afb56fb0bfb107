# SketchCAM: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
MODEL ?= models/best_model.h5
LABELS ?= data/label_mapping.json
DEMO_OUTPUT ?= demo_results

# Bytecode is compiled on first import instead of at install (--no-compile): pip would compile
# every module of TensorFlow, JAX, Ray and Playwright, most of which no run imports. A shell that
# sets this variable would then recompile them at every start, so make's commands run without it.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-fast serve fuzz bench lint train evaluate samples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e .
	touch $(STAMP)

# One pip run for the dev install (not the plain one first): one resolve, one editable build.
$(DEV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e ".[dev,ray]"
	# tf-keras (the tests write real Keras 2 files with it) depends on the full tensorflow wheel,
	# which probes for a GPU and logs at every start; it runs on tensorflow-cpu of its version.
	$(BIN)/pip install --quiet --no-compile --no-deps "tf-keras==$$($(BIN)/python -c 'import importlib.metadata as m; print(".".join(m.version("tensorflow-cpu").split(".")[:2]))').*"
	touch $(STAMP) $(DEV_STAMP)

## demo: docs/usage_guide.md's single analysis on a shipped sample, then a batch over samples/
demo: $(STAMP)
	$(BIN)/python scripts/gradcam_analysis.py --model $(MODEL) --labels $(LABELS) \
		--output $(DEMO_OUTPUT)/single single --image samples/smiley_face.png
	$(BIN)/python scripts/gradcam_analysis.py --model $(MODEL) --labels $(LABELS) \
		--output $(DEMO_OUTPUT)/batch batch --images_dir samples
	@echo "Results: $(DEMO_OUTPUT)/single (gradcam_prediction.png, analysis_summary.json, top_predictions/)"
	@echo "         $(DEMO_OUTPUT)/batch (report.html, batch_summary.json, batch_summary.csv)"

## test: the whole suite in one run (fuzzers at CI size, browser tests included). It compares
## every map on TensorFlow with JAX (and PyTorch when the torch extra is installed) in one
## subprocess per backend, and checks JAX's maps against the engine's hand-written oracle too.
# Two workers: the suite is sized for a 2-core machine (TEST_WORKERS=0 runs it in one process).
TEST_WORKERS ?= 2
test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

## test-fast: the suite without the slow tests (subprocess runs, training, fuzzing, browser)
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

## serve: the web app with the shipped model on http://127.0.0.1:8000
serve: $(STAMP)
	$(BIN)/python -m src.web --model_path $(MODEL) --label_mapping $(LABELS) --host 127.0.0.1 --port 8000

## fuzz: longer property-based and schema fuzzing runs
fuzz: $(DEV_STAMP)
	SKETCH_FUZZ_EXAMPLES=2000 $(BIN)/python -m pytest -q tests/test_fuzz_decoders.py tests/test_fuzz_api.py

## bench: throughput benchmarks (ratios against baselines measured in the same run)
bench: $(DEV_STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench.model_throughput
	$(BIN)/python -m bench.gradcam_throughput
	$(BIN)/python -m bench.cli_batch
	$(BIN)/python -m bench.web_load
	$(BIN)/python -m bench.audit

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

## train: retrain the shipped model (DATA points at a Quick, Draw! folder like ../shared/data)
DATA ?= ../shared/data
train: $(STAMP)
	$(BIN)/python -m src.training.train --bitmap_dir $(DATA)/quickdraw_bitmap --strokes_dir $(DATA)/quickdraw

samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(DEMO_OUTPUT) .pytest_cache .ruff_cache
