"""First thing at power-up: lock the console before anything can interrupt the firmware.

MicroPython enables Ctrl-C again for each script it runs, so main.py locks once more
first thing; it unlocks only when UP and BACK are held at power-up (development mode,
pump/link.py lock_console) or when the image is incomplete (so make flash can reach the
REPL). boot.py also runs after a soft reset in the raw REPL (mpremote), where the lock
changes nothing: the raw REPL enables Ctrl-C for each command it runs.
"""

import micropython

micropython.kbd_intr(-1)
