"""Runs test modules inside MicroPython: every test_* function, one result line each."""

import sys


def run(module_name, only=None):
    module = __import__(module_name)
    names = sorted(n for n in dir(module) if n.startswith("test_"))
    if only is not None:
        names = [n for n in names if n in only]
    failed = 0
    for name in names:
        try:
            getattr(module, name)()
        except Exception as exc:  # report every failure, keep going
            failed += 1
            print("FAIL %s.%s: %s: %s" % (module_name, name, type(exc).__name__, exc))
            sys.print_exception(exc)
        else:
            print("PASS %s.%s" % (module_name, name))
    print("DONE %d %d" % (len(names), failed))
