"""CPython stand-in for MicroPython's `micropython` module (real MicroPython uses its builtin)."""

_SCHEDULE_DEPTH = 8


class _State:
    def __init__(self):
        self.heap_lock_depth = 0
        self.scheduled = 0
        self.kbd_intr_char = 3
        self.emergency_buf_size = 0


state = _State()


def const(x):
    return x


def schedule(fn, arg):
    """Queue fn(arg) as a clock event at the current time, like the real scheduler."""
    if state.scheduled >= _SCHEDULE_DEPTH:
        raise RuntimeError("schedule queue full")
    import vclock

    state.scheduled += 1

    def run():
        state.scheduled -= 1
        fn(arg)

    vclock.current().call_at(vclock.current().now_ns, run)


def heap_lock():
    state.heap_lock_depth += 1
    return state.heap_lock_depth


def heap_unlock():
    if state.heap_lock_depth:
        state.heap_lock_depth -= 1
    return state.heap_lock_depth


def heap_locked():
    """Test helper: True while heap_lock() is in force (CPython cannot detect allocation)."""
    return state.heap_lock_depth > 0


def kbd_intr(c):
    state.kbd_intr_char = c


def alloc_emergency_exception_buf(size):
    state.emergency_buf_size = size


def mem_info(verbose=None):
    print("mem: simulated (CPython)")


def qstr_info(verbose=None):
    print("qstr: simulated (CPython)")


def stack_use():
    return 0


def opt_level(level=None):
    if level is None:
        return 0
    return None


def native(fn):
    return fn


def viper(fn):
    return fn


def reset():
    """Test helper: forget locks, pending schedules and recorded settings."""
    state.__init__()
