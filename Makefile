# picodaq: `make demo` and `make test` set everything up from nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Robot Framework HIL suites: parallel suites with pabot, reports in build/robot
ROBOT_OUT := build/robot
PABOT_ARGS ?= --processes 2
ROBOT_SELECT ?= --exclude soak
ROBOT_ARGS ?=
PABOT := cd $(ROBOT_OUT) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CURDIR)/$(VENV)/bin/pabot --no-pabotlib \
	--outputdir . --xunit xunit.xml --name "picodaq HIL" --variable PICODAQ_REPORT_DIR:$(CURDIR)/$(ROBOT_OUT)

.PHONY: demo test test-py robot hil soak bench codegen check-codegen clean

$(STAMP): pyproject.toml hil/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./hil
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p build
	$(VENV)/bin/picodaq record --seconds 5 --rate 1000 --channels 8 --out build/demo.tlv --out build/demo.npy --out build/demo.bdf --overwrite

test: $(STAMP)
	$(PY) tools/codegen.py --check
	$(PY) -m pytest -n auto $(PYTEST_ARGS)
	$(MAKE) --no-print-directory hil

# the Robot suites only (soak excluded): on the board in PICODAQ_PORT, else the one attached, else emulated
hil robot: $(STAMP)
	rm -rf $(ROBOT_OUT) && mkdir -p $(ROBOT_OUT)
	$(PABOT) $(PABOT_ARGS) $(ROBOT_SELECT) $(ROBOT_ARGS) $(CURDIR)/robot; rc=$$?; \
	cd $(CURDIR) && $(PY) -m picodaq_hil.report $(ROBOT_OUT)/output.xml; exit $$rc

# only the soak tests (10 minutes each), reports in build/robot-soak
soak: $(STAMP)
	$(MAKE) --no-print-directory hil ROBOT_OUT=build/robot-soak ROBOT_SELECT="--include soak"

codegen: $(STAMP)
	$(PY) tools/codegen.py

# every figure of `picodaq bench` (a few minutes): build/bench.json and the table in README.md
bench: $(STAMP)
	mkdir -p build
	$(VENV)/bin/picodaq bench --json build/bench.json --readme README.md

clean:
	rm -rf build .pytest_cache
