"""Runs hard interrupt handlers as the RP2040 port does: with the heap locked on MicroPython."""

import sys

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    import micropython as _mp
else:
    _mp = None


class _IrqState:
    def __init__(self):
        self.in_hard_irq = 0
        # heap_lock() calls made by run_hard that are still in force.
        self.locks = 0
        # Hard handlers run so far (an interrupt ends machine.idle()).
        self.runs = 0


state = _IrqState()

# Names of hard handlers that tried to allocate (only detectable on MicroPython).
allocation_faults = []


def _handler_name(fn):
    try:
        return fn.__name__
    except AttributeError:
        return repr(fn)


def run_hard(fn, arg):
    """Call fn(arg) as a hard interrupt handler."""
    state.in_hard_irq += 1
    state.runs += 1
    if not MICROPYTHON:
        try:
            fn(arg)
        finally:
            state.in_hard_irq -= 1
        return
    fault = False
    _mp.heap_lock()
    state.locks += 1
    try:
        fn(arg)
    except MemoryError:
        # Escaping while the heap is locked would kill the interpreter.
        fault = True
    finally:
        if state.locks:
            state.locks -= 1
            _mp.heap_unlock()
        state.in_hard_irq -= 1
    if fault:
        allocation_faults.append(_handler_name(fn))


def in_hard_irq():
    return state.in_hard_irq > 0


def pause_heap_lock():
    """Let a fake do its own bookkeeping from inside a hard handler; returns a token."""
    n = state.locks
    i = 0
    while i < n:
        _mp.heap_unlock()
        i += 1
    state.locks = 0
    return n


def resume_heap_lock(token):
    i = 0
    while i < token:
        _mp.heap_lock()
        i += 1
    state.locks = token


def reset():
    del allocation_faults[:]
    state.in_hard_irq = 0
