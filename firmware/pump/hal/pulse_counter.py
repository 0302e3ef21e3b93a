"""An independent count of the step pulses on the STEP line, for the delivery monitor.

The stepper's PIO program counts its own steps; this counter does not trust it. A
second PIO state machine reads the same pad as input (the RP2040 reads a pad's level
whatever drives it) and counts its rising edges in its X register. No interrupt runs
per edge: a CPU interrupt would latch only one pending edge per pin, and flash erase
and program hold interrupts off for up to 400 ms, so edges would be lost in a bolus.
The count is read from the main loop by forcing two instructions into the machine.
"""

import rp2

TYPE_CHECKING = False  # no `typing` on the device
if TYPE_CHECKING:
    from rp2.asm_pio import *  # the PIO assembler's names, for linters and mypy

_MASK = 0xFFFFFFFF


# X counts down from 0 by one per rising edge on the input pin (in_base): 3 instructions
# a pulse, so any pulse longer than 2 cycles of the state machine's clock is seen.
@rp2.asm_pio()
def count_rising():
    wrap_target()
    label("edge")
    wait(0, pin, 0)  # the line low
    wait(1, pin, 0)  # then high: one rising edge
    jmp(x_dec, "edge")  # x -= 1; back to the start whether x was zero or not
    wrap()


class PioPulseCounter:
    """Rising edges seen on the STEP pad, counted by a PIO state machine.

    ``sm`` is an ``rp2.StateMachine`` already built with ``count_rising`` and its
    ``in_base`` on the STEP pin (the board file builds it).
    """

    def __init__(self, sm):
        self._sm = sm
        self._taken = 0  # the count at the last take()
        # Assembled once: exec() of a string assembles it on every call, and that
        # allocates (on a fragmented heap, a MemoryError in the main loop).
        self._copy_x = rp2.asm_pio_encode("mov(isr, x)", 0)
        self._push = rp2.asm_pio_encode("push(noblock)", 0)
        sm.restart()  # x = 0
        sm.active(1)

    def total(self):
        """Edges counted since the counter started (wraps at 2**32). Main loop only:
        the read allocates (32-bit values are big ints on the Pico)."""
        sm = self._sm
        sm.exec(self._copy_x)
        sm.exec(self._push)
        return (-sm.get()) & _MASK

    def take(self):
        """The edges counted since the last call."""
        total = self.total()
        count = (total - self._taken) & _MASK
        self._taken = total
        return count

    def deinit(self):
        self._sm.active(0)
