"""The MicroPython runner for tests: by default the guest also finds the test folders."""

from sim.mpy import wasm as _wasm
from sim.mpy.wasm import FUEL, ROOT, MicroPythonWasmError

GUEST_PATHS = _wasm.GUEST_PATHS + (
    "/input/host_tests",
    "/input/host_tests/core",
    "/input/host_tests/mpy",
)

__all__ = ["FUEL", "GUEST_PATHS", "ROOT", "MicroPythonWasmError", "run_micropython"]


def run_micropython(code, paths=GUEST_PATHS, timeout_s=120):
    """sim.mpy.wasm.run_micropython with the test folders on the guest's path by default."""
    return _wasm.run_micropython(code, paths, timeout_s)
