"""First thing at power-up: lock the console before anything can interrupt the firmware."""

import micropython

# Ctrl-C is an ordinary byte from here on; main.py unlocks it only when UP and BACK are
# held at power-up (development mode, pump/link.py lock_console).
micropython.kbd_intr(-1)
