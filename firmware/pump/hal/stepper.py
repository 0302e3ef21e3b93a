"""Stepper motor on a STEP/DIR/EN driver: counted pulse trains from a PIO state machine.

The PIO program emits exactly the number of steps it is given, at a fixed rate, and
raises its interrupt when the train is done. The Python side only starts trains,
reads how many steps went out, and stops them; pulse timing never depends on the
Python VM or the garbage collector.
"""

import rp2
from micropython import const

TYPE_CHECKING = False  # no `typing` on the device
if TYPE_CHECKING:
    from rp2.asm_pio import *  # the PIO assembler's names, for linters and mypy

SM_FREQ = const(1_000_000)  # PIO clock: 1 cycle = 1 us (125 MHz / 125)
_CYCLES_PER_STEP_MIN = const(7)  # 2 * delay + 7 cycles per step, delay >= 0
_DELAY_MAX = const(0x3FFFFFFF)  # keep the delay word a small int


# The names below (pull, mov, jmp, label, x, y, osr, ...) are the PIO assembler's
# own; rp2.asm_pio provides them while it assembles the function.
# 2 * d + 7 cycles per step at 1 MHz: 142 857 steps/s at d = 0.
@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
def step_train():
    pull(block).side(0)  # x <- steps in this train (blocks while idle, STEP low)
    mov(x, osr)
    pull(block)  # osr <- delay d: each phase lasts d + 3 or d + 4 cycles
    jmp(not_x, "done")
    label("step")
    mov(y, osr)  # low phase: 1 + (d + 1) cycles
    label("low")
    jmp(y_dec, "low")
    jmp(x_dec, "high").side(1)  # rising edge = one step; x counts down with it
    label("high")
    mov(y, osr)  # high phase: 1 + 1 + (d + 1) cycles
    label("hold")
    jmp(y_dec, "hold")
    jmp(not_x, "done").side(0)  # falling edge
    jmp("step")  # 2 * d + 7 cycles per step in all
    label("done")
    irq(rel(0))  # tell the CPU the train is finished


def delay_for_rate(steps_per_s):
    """PIO delay word for a step rate; ValueError when the program cannot produce it."""
    if type(steps_per_s) is not int or steps_per_s <= 0:
        raise ValueError("step rate must be a positive number of steps/s, got %r" % (steps_per_s,))
    cycles = SM_FREQ // steps_per_s
    if cycles < _CYCLES_PER_STEP_MIN:
        raise ValueError(
            "step rate %d steps/s is beyond what the PIO step program can produce (max %d)"
            % (steps_per_s, SM_FREQ // _CYCLES_PER_STEP_MIN)
        )
    delay = (cycles - _CYCLES_PER_STEP_MIN) // 2
    if delay > _DELAY_MAX:
        raise ValueError("step rate %d steps/s is too slow for the PIO step program" % steps_per_s)
    return delay


class StepperPio:
    """Counted pulse trains on a STEP/DIR/EN driver; the driver is disabled when idle."""

    def __init__(self, sm, dir_pin, enable_pin, *, max_step_rate, enable_active_low=True,
                 dir_forward_level=1):
        self._sm = sm
        self._dir = dir_pin
        self._enable = enable_pin
        self._en_on = 0 if enable_active_low else 1
        self._forward = dir_forward_level
        self.max_step_rate = max_step_rate
        self._train_steps = 0
        self.trains_started = 0
        self.trains_done = 0  # counted by the PIO interrupt
        self._on_done_cb = self._on_done  # bound once: the interrupt must not allocate
        self._disable()
        sm.irq(self._on_done_cb, 1, True)
        sm.active(1)

    def _on_done(self, _sm):
        # Hard interrupt handler: allocation-free.
        self.trains_done += 1

    def _disable(self):
        self._enable.value(1 - self._en_on)

    def busy(self):
        """True while a train is being emitted."""
        return self.trains_started != self.trains_done

    def start(self, steps, steps_per_s, forward=True):
        """Emit ``steps`` steps at ``steps_per_s``. Raises ValueError for a rate the
        board or the PIO program cannot produce, RuntimeError if a train is running."""
        if self.busy():
            raise RuntimeError("a pulse train is already running")
        if type(steps) is not int or steps <= 0:
            raise ValueError("a pulse train has at least one step, got %r" % (steps,))
        if steps_per_s > self.max_step_rate:
            raise ValueError(
                "step rate %d steps/s is above this board's max_step_rate %d"
                % (steps_per_s, self.max_step_rate)
            )
        delay = delay_for_rate(steps_per_s)
        self._dir.value(self._forward if forward else 1 - self._forward)
        self._enable.value(self._en_on)
        self._train_steps = steps
        self.trains_started += 1
        self._sm.put(steps)
        self._sm.put(delay)

    def finish(self):
        """After a train completed: disable the driver; return the steps emitted."""
        self._disable()
        steps = self._train_steps
        self._train_steps = 0
        return steps

    def stop(self):
        """Stop at once, mid-train if need be; STEP low, driver disabled.

        Returns the steps of the current train that were emitted (0 when idle),
        whether it was cut short or had just finished; do not call ``finish`` after it.
        """
        sm = self._sm
        sm.active(0)
        if self._train_steps:
            # x holds the steps not yet emitted (0 if the train ran out just now).
            sm.exec("mov(isr, x)")
            sm.exec("push(noblock)")
            left = sm.get()
            emitted = self._train_steps - left
        else:
            emitted = 0
        while sm.tx_fifo():
            sm.exec("pull(noblock)")
        sm.restart()
        sm.exec("nop().side(0)")
        self._disable()
        self._train_steps = 0
        self.trains_done = self.trains_started
        sm.active(1)
        return emitted

    def deinit(self):
        self.stop()
        self._sm.active(0)
        self._sm.irq(None)
