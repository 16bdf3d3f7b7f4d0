# Two entry points for a fresh clone; each creates .venv and installs what is missing.
#   make demo   run the whole pipeline on the embedded default (pocketgan run)
#   make test   run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pocketgan-installed
# LiteRT's converter (litert-torch) conflicts with executorch: its tests run in a venv of their own.
LITERT_VENV ?= .venv-litert
PYTEST_ARGS ?=

.PHONY: install demo test test-slow lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pocketgan run --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow and not litert" $(PYTEST_ARGS)
	bash .ci/litert-venv $(LITERT_VENV)
	$(LITERT_VENV)/bin/python -m pytest -n 2 -m litert $(PYTEST_ARGS) tests/test_tflite.py

lint: $(STAMP)
	$(BIN)/python -m pytest -q -p no:xdist tests/test_architecture.py

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/deploy.py

clean:
	rm -rf $(VENV) .venv-runtime $(LITERT_VENV) runs .pytest_cache
