"""The core test modules pass on a real MicroPython interpreter too, not only on CPython."""

import ast
import os

import pytest

from mpy.wasm import run_micropython

CORE_TESTS = os.path.join(os.path.dirname(__file__), "core")
MODULES = sorted(
    f[:-3] for f in os.listdir(CORE_TESTS) if f.startswith("test_") and f.endswith(".py")
)

pytestmark = pytest.mark.micropython


def _test_functions(module):
    with open(os.path.join(CORE_TESTS, module + ".py")) as f:
        tree = ast.parse(f.read())
    return sorted(
        n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    )


# Modules whose tests run long simulated days get a fresh interpreter per test.
HEAVY = ("test_therapy",)


def _cases():
    for module in MODULES:
        if module in HEAVY:
            for name in _test_functions(module):
                yield module, (name,)
        else:
            yield module, None


@pytest.mark.parametrize("module,only", list(_cases()))
def test_core_tests_pass_on_micropython(module, only):
    code = "import mpy_runner\nmpy_runner.run(%r, %r)\n" % (module, only)
    stdout, stderr = run_micropython(code)
    lines = stdout.splitlines()
    failures = [line for line in lines if line.startswith("FAIL")]
    assert not failures, stdout + stderr
    passed = sorted(line.split(".", 1)[1] for line in lines if line.startswith("PASS"))
    assert passed == sorted(only or _test_functions(module)), stdout + stderr
    assert lines[-1] == "DONE %d 0" % len(passed)
