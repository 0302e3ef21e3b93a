"""The hardware models (fakes) the firmware runs on in the simulator and the host tests.

``install()`` makes machine, rp2, micropython, ... these fakes; ``reset()`` starts afresh.

The firmware's `time` module is not replaced: the firmware receives a clock
object by injection, and `vclock.current()` (a VirtualClock) provides
ticks_ms/ticks_us/ticks_diff/ticks_add/sleep_ms/time/localtime for it.

Each fake is a top-level module in this directory (`vclock`, `irq`,
`machine`, `rp2`, `micropython`, `devices`) so the same files import under
real MicroPython with the directory on sys.path. After install() they are
also reachable as `sim.hw.vclock`, `sim.hw.machine`, ... (the same objects).
`framebuf` is a CPython stand-in only: under MicroPython the builtin one is used.
"""

import os
import sys

DIR = os.path.dirname(os.path.abspath(__file__))
MODULES = ("vclock", "irq", "micropython", "machine", "rp2", "devices", "framebuf")


def _is_fake(module):
    path = getattr(module, "__file__", None)
    return path is not None and os.path.dirname(os.path.abspath(path)) == DIR


def install():
    """Put the fakes first on sys.path and import them; fail if others were imported."""
    if sys.path[:1] != [DIR]:
        while DIR in sys.path:
            sys.path.remove(DIR)
        sys.path.insert(0, DIR)
    for name in MODULES:
        module = sys.modules.get(name)
        if module is not None and not _is_fake(module):
            # e.g. a namespace package made by the PyPI MicroPython stubs.
            raise ImportError(
                "module {!r} was imported from {!r} before sim.hw.install()".format(
                    name, getattr(module, "__file__", None) or getattr(module, "__path__", None)
                )
            )
    package = sys.modules[__name__]
    for name in MODULES:
        module = __import__(name)
        if not _is_fake(module):
            raise ImportError("{!r} does not resolve to the fake in {}".format(name, DIR))
        sys.modules[__name__ + "." + name] = module
        setattr(package, name, module)


def reset(**clock_kw):
    """Fresh clock (VirtualClock(**clock_kw)) and empty registries; returns the clock."""
    install()
    vclock = sys.modules["vclock"]
    clock = vclock.reset(**clock_kw)
    sys.modules["irq"].reset()
    sys.modules["micropython"].reset()
    machine = sys.modules["machine"]
    machine.reset_fakes()
    machine.Timer.clear_latency()
    sys.modules["rp2"].reset_fakes()
    return clock


def set_exact(exact=True):
    """True: the models take no shortcut (every PD_SCK edge through the generic pins, every
    PIO state machine step as a clock event, every event ending machine.idle()), the
    reference the fast paths are checked against. Applies to models built afterwards."""
    install()
    sys.modules["vclock"].EXACT = bool(exact)
