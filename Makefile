# picodaq: `make demo` and `make test` set everything up from nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-py robot hil bench codegen check-codegen clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p build
	$(VENV)/bin/picodaq record --seconds 5 --rate 1000 --channels 8 --out build/demo.tlv --out build/demo.npy --out build/demo.bdf

test: $(STAMP)
	$(PY) tools/codegen.py --check
	$(PY) -m pytest -n auto $(PYTEST_ARGS)

codegen: $(STAMP)
	$(PY) tools/codegen.py

bench: $(STAMP)
	$(VENV)/bin/picodaq bench --json build/bench.json

clean:
	rm -rf build .pytest_cache
