# Set-up and everyday commands. Everything installs into ./.venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STORE  ?= dsexport-data
OUT    ?= out
ITEMS  ?= 40

.PHONY: run test test-scale install install-test clean serve

$(BIN)/dsexport: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

install: $(BIN)/dsexport

$(VENV)/.test-deps: $(BIN)/dsexport
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Datumaro, the peer whose importers read our COCO and Ultralytics exports in the tests,
# pins a Pillow older than ours: it gets an interpreter of its own.
READERS := .venv-readers
$(READERS)/datumaro/bin/python:
	$(PYTHON) -m venv $(READERS)/datumaro
	$(READERS)/datumaro/bin/python -m pip install --quiet datumaro==1.13.12

# Ultralytics' own dataset checker, for our Ultralytics exports: it imports torch and torchvision.
# torch 2.13.0 is the CPU build (other releases pull a CUDA build of several GB); torchvision, ultralytics
# and its thop go in without their pinned dependencies, which would pull another torch.
$(READERS)/ultralytics/bin/python:
	$(PYTHON) -m venv $(READERS)/ultralytics
	$(READERS)/ultralytics/bin/python -m pip install --quiet torch==2.13.0
	$(READERS)/ultralytics/bin/python -m pip install --quiet --no-deps torchvision==0.28.0 ultralytics==8.4.190 ultralytics-thop==2.2.3
	$(READERS)/ultralytics/bin/python -m pip install --quiet numpy matplotlib opencv-python-headless pillow polars psutil pyyaml requests scipy

install-test: $(VENV)/.test-deps $(READERS)/datumaro/bin/python $(READERS)/ultralytics/bin/python

## run: create a demo store and export every demo dataset into ./out
run: install
	rm -rf $(STORE) $(OUT)
	$(BIN)/dsexport demo --store $(STORE) --items $(ITEMS)
	$(BIN)/dsexport export-all --store $(STORE) --out $(OUT)

## serve: the SeeMe-compatible HTTP API on $(BIND) over $(STORE) (base URL http://$(BIND)/api/v1/)
BIND   ?= 127.0.0.1:8000
WORKER ?= trio
serve: install
	$(BIN)/dsexport serve --store $(STORE) --bind $(BIND) --worker $(WORKER)

## test: the default (fast) test suite, on TEST_WORKERS processes (each starts its own S3 and PostgreSQL servers)
TEST_WORKERS ?= 2
test: install-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

## test-scale: exports of hundreds of thousands of entries (slow)
test-scale: install-test
	$(BIN)/python -m pytest -m scale

clean:
	rm -rf $(VENV) $(READERS) $(STORE) $(OUT) .pytest_cache

.PHONY: bench bench-full

## bench: the quick benchmark: bench/results/latest.md, JSON and plots (Datumaro runs in its own interpreter)
bench: install $(READERS)/datumaro/bin/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --quick

## bench-full: the scale benchmark, up to 5 M items (about an hour), then the scale tests
bench-full: install-test
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --full
	$(BIN)/python -m pytest -m scale
