"""The simulator: the pump's hardware and physics on the host, in virtual time.

- ``sim.hw``: the hardware models the firmware sees (clock, pins, timers, PIO, I2C, flash,
  the load cell, the display, the USB serial port) and the plant (syringe, line, force).
  Each is a top-level module in ``sim/hw/`` so that the same files import as ``machine``,
  ``rp2``, ... under real MicroPython with that folder on ``sys.path``.
- ``sim.pump``: ``SimPump``, the real firmware and a board file on those models.
- ``sim.frames``: screen frames as pixels, text art and PNG snapshots.
"""
