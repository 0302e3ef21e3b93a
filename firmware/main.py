"""Boot: keep room for interrupt tracebacks, build the board, run the pump."""

import micropython

micropython.alloc_emergency_exception_buf(200)

import time  # noqa: E402

import board  # noqa: E402  (the board file, copied to the Pico as board.py)
from pump.app import App  # noqa: E402


def main():
    App(board.build(), time).run()


main()
