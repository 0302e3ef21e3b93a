"""The device tier: the built firmware on MicroPython's rp2 port in an emulated RP2040.

Runs only when selected (`-m device`, `make test-device`), with Node, the npm packages
of tools/emu and a MicroPython .uf2 (PICO_UF2, else ../shared/rig/firmware.uf2); any of
them missing skips the tier with the reason.
"""

import devicekit
import pytest


def pytest_collection_modifyitems(config, items):
    selected = "device" in (config.getoption("-m") or "")
    why = None if selected else "device tier: run it with make test-device (or -m device)"
    if why is None:
        why = devicekit.why_not_ready()
    if why is None:
        return
    skip = pytest.mark.skip(reason=why)
    for item in items:
        if "device" in item.keywords:
            item.add_marker(skip)
