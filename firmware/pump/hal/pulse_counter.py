"""An independent count of the step pulses on the STEP line, for the delivery monitor.

The stepper's PIO program counts its own steps; this counter does not trust it. A
GPIO interrupt on the rising edge of the same pad (the RP2040 reads a pad's input
whatever drives it) adds one per pulse. At the board's top step rate of a few
thousand steps per second the handler's cost is a small share of the CPU.
"""

import machine


class PulseCounter:
    """Rising edges seen on a Pin since the last ``take()``."""

    def __init__(self, pin):
        self._pin = pin
        self._count = 0
        self._on_edge_cb = self._on_edge  # bound once: the interrupt must not allocate
        pin.irq(self._on_edge_cb, machine.Pin.IRQ_RISING, hard=True)

    def _on_edge(self, _pin):
        # Hard interrupt handler: allocation-free, one small-int add.
        self._count += 1

    def take(self):
        """The pulses counted since the last call (interrupts held off while read)."""
        state = machine.disable_irq()
        count = self._count
        self._count = 0
        machine.enable_irq(state)
        return count

    def deinit(self):
        self._pin.irq(None)
