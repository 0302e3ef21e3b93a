"""The firmware's layers at a glance: no import cycles, small files, no reach into private state."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUMP = os.path.join(ROOT, "firmware", "pump")
# The application's parts, each the one owner of an invariant (README, code layout).
OWNERS = ("app", "delivery", "motions", "supervisor", "persistence", "gate", "panel",
          "selfcheck", "resets")
MAX_LINES = 430  # "about 400": a file past this is doing two jobs


def _modules():
    """{dotted name: path} of every module under firmware/pump."""
    found = {}
    for folder, _dirs, files in os.walk(PUMP):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(PUMP))[:-3].replace(os.sep, ".")
                found[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return found


def _load_time_nodes(tree):
    """The nodes that run when the module is imported (function bodies run later)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _imports(path, modules):
    """The pump modules a file imports when it is loaded (not the lazy ones in functions:
    they cannot make an import cycle)."""
    out = set()
    for node in _load_time_nodes(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [node.module + "." + a.name for a in node.names]
        else:
            continue
        out.update(n for n in names if n in modules)
    return out


def _owned_files():
    paths = [os.path.join(PUMP, name + ".py") for name in OWNERS]
    for sub in ("core", "hal"):
        folder = os.path.join(PUMP, sub)
        paths += [os.path.join(folder, f) for f in sorted(os.listdir(folder))
                  if f.endswith(".py") and f not in ("protocol.py", "ssd1306.py",
                                                     "firmware_files.py")]
    return paths


def test_the_pump_package_has_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    # A package imports nothing of its own by being a parent: drop parent links.
    state = {}
    cycles = []

    def visit(name, stack):
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph[name]):
            if name.startswith(dep + "."):
                continue
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_the_cycle_check_finds_a_cycle():
    """The check can fail: two modules importing each other are a cycle."""
    graph = {"a": {"b"}, "b": {"a"}}
    seen = []

    def visit(name, stack):
        stack.append(name)
        for dep in graph[name]:
            if dep in stack:
                seen.append(dep)
            else:
                visit(dep, stack)
        stack.pop()

    visit("a", [])
    assert seen == ["a"]


def test_no_firmware_file_of_the_application_core_or_hal_runs_long():
    long = []
    for path in _owned_files():
        n = len(open(path).read().splitlines())
        if n > MAX_LINES:
            long.append((os.path.relpath(path, ROOT), n))
    assert long == []


def test_no_part_reaches_into_another_parts_private_state():
    reach = []
    for path in _owned_files():
        for node in ast.walk(ast.parse(open(path).read())):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__"):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            reach.append("%s:%d %s" % (os.path.relpath(path, ROOT), node.lineno,
                                       ast.unparse(node)))
    assert reach == []
