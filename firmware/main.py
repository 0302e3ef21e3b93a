"""Boot: keep room for interrupt tracebacks, build the board, lock the console, run the pump."""

import micropython

micropython.alloc_emergency_exception_buf(200)

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import machine  # noqa: E402

import board  # noqa: E402  (the board file, copied to the Pico as board.py)
from pump.app import App  # noqa: E402
from pump.hal.storage import OsFs, Storage  # noqa: E402
from pump.link import lock_console  # noqa: E402


def main():
    hardware = board.build()
    locked = lock_console(hardware.buttons, micropython, time)
    try:
        # Settings, therapy checkpoint and event log on the littlefs partition.
        storage = Storage(OsFs(os, open, "/"))
        # The self-test checks the image against the manifest.json `make flash` wrote.
        App(hardware, time, storage=storage, firmware_root="/").run()
    except Exception as exc:
        if not locked:
            raise  # development mode: the traceback, then the REPL
        # Locked mode never falls through to the REPL: start again instead.
        print_exception = getattr(sys, "print_exception", None)
        if print_exception is not None:
            print_exception(exc)
        machine.reset()


main()
