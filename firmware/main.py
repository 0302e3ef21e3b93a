"""Boot: check the image against manifest.json, build the board, lock the console, run the pump.

Nothing of the pump package is imported before the image is known to be whole: a flash
cut short (make flash writes /flashing first and removes it after manifest.json, which
it writes last) or a file that differs from manifest.json (bootcheck.py) stops here, in
a plain "firmware incomplete" state that says why on the console (and on the OLED when
its own files are whole), delivers nothing and leaves Ctrl-C working for the next flash.
"""

import micropython

micropython.alloc_emergency_exception_buf(200)
# Every script starts with Ctrl-C enabled (MicroPython re-enables it for each file it
# runs), so lock again until lock_console decides between locked and development mode.
micropython.kbd_intr(-1)

import gc  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import machine  # noqa: E402

FLASHING = "/flashing"  # make flash: written first, removed last
_WATCHDOG_CTRL = 0x40058000  # RP2040 WATCHDOG CTRL; bit 30 enables the watchdog
_WATCHDOG_ENABLE = 1 << 30
_REPEAT_MS = 10000  # the incomplete state says it again this often
# The collector runs after every this many bytes allocated, not only once the heap is
# full: what the pump keeps then stays low in the heap and the free RAM stays in one piece.
_GC_EVERY = 8192


def boot_check():
    """(problem, planned): why the image cannot run (None when it is whole), and whether
    make flash marked the reset that started this boot. bootcheck is imported for this
    and let go, so its bytecode does not stay in RAM."""
    try:
        os.stat(FLASHING)
        return "a flash did not finish", False  # nothing else of the image is read
    except OSError:
        pass
    try:
        import bootcheck
    except Exception:  # it is part of the image: missing or cut short
        return "bootcheck.py is missing or damaged", False
    try:
        problem, good = bootcheck.check_image()
        if problem is not None:
            bootcheck.show(problem, good)
            return problem, False
        return None, bootcheck.take_reset_mark()
    finally:
        del sys.modules["bootcheck"]


def incomplete(problem):
    """No therapy: say why, keep saying it, and let Ctrl-C reach the REPL for the next flash."""
    machine.mem32[_WATCHDOG_CTRL] &= ~_WATCHDOG_ENABLE  # a watchdog left running would reset
    micropython.kbd_intr(3)
    line = "firmware incomplete: %s; no delivery. Run make flash again." % problem
    print(line)
    while True:
        time.sleep_ms(_REPEAT_MS)
        print(line)


def main():
    problem, planned = boot_check()
    if problem is not None:
        incomplete(problem)
    gc.collect()
    if hasattr(gc, "threshold"):  # MicroPython's collector (CPython's has no such call)
        gc.threshold(_GC_EVERY)

    import board  # the board file (board.mpy, in /rom or on littlefs)
    from pump.app import App
    from pump.hal.storage import OsFs, Storage
    from pump.link import lock_console

    hardware = board.build()
    del board, sys.modules["board"]  # the board file's tables and build(): boot only
    fs = OsFs(os, open, "/")  # littlefs: a confirmed maintenance leaves its one-shot mark here
    locked = lock_console(hardware.buttons, micropython, time, fs)
    # make flash restarted the chip: not the "pump restarted" alarm of a real watchdog reset.
    App.reset_planned = planned
    storage = None
    try:
        # Settings, therapy checkpoint and event log on the littlefs partition.
        storage = Storage(fs)
        # The self-test checks the image against the manifest.json `make flash` wrote.
        App(hardware, time, storage=storage, firmware_root="/").run()
    except Exception as exc:
        if not locked:
            raise  # development mode: the traceback, then the REPL
        # Locked mode never falls through to the REPL: start again instead.
        print_exception = getattr(sys, "print_exception", None)
        if print_exception is not None:
            print_exception(exc)
        if storage is not None:
            try:  # the error on flash, and a mark the next boot reads, before the reset
                from pump.resets import record_crash

                record_crash(storage, exc)
            except Exception:  # the flash itself may be what failed
                pass
        machine.reset()


if __name__ == "__main__":
    main()
