# The pump package for a MicroPython build of your own (a manifest in micropython-lib's
# form): its modules are frozen into the firmware and run from flash like ROMFS ones.
# In a manifest of your own, after the port's:
#     include("$(PORT_DIR)/boards/manifest.py")
#     include("/path/to/this/repository/firmware/manifest.py")
# then in ports/rp2: make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/that/manifest.py
# boot.py, main.py, bootcheck.py and the board file (board.py or board.mpy) stay on the
# filesystem.
# The version is pump.VERSION, read from firmware/pump/__init__.py (the reader runs this
# file from its own folder).
# ruff: noqa: F821  (metadata and package are defined by MicroPython's manifest reader)

with open("pump/__init__.py") as _init:
    _VERSION = [line.split('"')[1] for line in _init if line.startswith("VERSION = ")][0]

metadata(
    description="Firmware of a bench insulin pump on a Raspberry Pi Pico (RP2040)",
    version=_VERSION,
)

package("pump")
