"""Interrupt handlers allocate nothing: proved on a real MicroPython with the heap locked."""

import pytest

from mpy.wasm import GUEST_PATHS, run_micropython

pytestmark = pytest.mark.micropython

# Runs inside MicroPython: the real firmware and board file on the host fakes. The
# fakes run every hard interrupt handler under micropython.heap_lock() and record a
# handler that allocates in irq.allocation_faults.
PUMP = """
import irq
import machine
import micropython
from guest_pump import fresh_clock, run_for, without

clock = fresh_clock()

import pico_default
from pump.app import App
from pump.core.schedule import TEMP_ABSOLUTE
from pump.core.therapy import Settings

board = pico_default.build()
settings = Settings()
settings.max_basal_mu_per_h = 15_000
# This run drives the motor and timers only: no display, battery, watchdog or load cell
# devices are attached in the guest (they have their own tests).
without(board, ("display", "battery", "battery_monitor", "watchdog",
                "force_sensor", "pressure", "occlusion"))
app = App(board, clock, settings=settings, ms_of_day=0)
app.start()


def locked(fn, arg):
    # A MemoryError escaping while the heap is locked would end the guest: catch it here.
    micropython.heap_lock()
    try:
        fn(arg)
        ok = True
    except MemoryError:
        ok = False
    micropython.heap_unlock()
    return ok
"""


def run_pump(code):
    # The fakes' folder first, so `machine` and `rp2` are the fakes (the guest has
    # a builtin `machine` of its own; `micropython` stays the real one).
    stdout, stderr = run_micropython(PUMP + code, ("/input/sim/hw",) + GUEST_PATHS)
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line), stdout + stderr


def test_basal_timer_and_pio_handlers_never_allocate_during_delivery():
    result, out = run_pump(
        """
print("refused=%r" % app.temp_basal(TEMP_ABSOLUTE, 5000, 30 * 60_000))
machine.Pin.lookup(pico_default.PINS["step"]).record = False  # keep the 1 MB guest heap free
run_for(app, clock, 3 * 60_000)  # about 3.7 KB of guest heap per step, GC-free
print("faults=%r" % (irq.allocation_faults,))
print("basal_steps=%d" % app.therapy.basal.steps)
print("hard_calls=%d" % board.basal_timer.fired)
"""
    )
    assert result["refused"] == "None", out
    assert result["faults"] == "[]", out
    # 3 min at 5 U/h = 0.25 U = 169.8 steps of 1.4725 mU
    assert int(result["basal_steps"]) == 169, out
    assert int(result["hard_calls"]) >= 169, out


def test_basal_handler_catches_up_a_long_delay_without_allocating():
    result, out = run_pump(
        """
print("refused=%r" % app.temp_basal(TEMP_ABSOLUTE, 15000, 60 * 60_000))
clock.run_until(clock.now_ns + 1)  # let the start settle
ok_small = locked(app.delivery.on_basal_timer, None)
# Ten minutes with no interrupt (as if delayed), then one late call.
clock._set_now(clock.now_ns + 10 * 60_000 * 1_000_000)
ok_late = locked(app.delivery.on_basal_timer, None)
print("ok_small=%r" % ok_small)
print("ok_late=%r" % ok_late)
print("due=%d" % app.therapy.ticker.due)
"""
    )
    assert result["refused"] == "None", out
    assert result["ok_small"] == "True", out
    assert result["ok_late"] == "True", out
    # 10 min at 15 U/h = 2.5 U = 1697.8 steps, accrued in one late call
    assert int(result["due"]) in (1697, 1698), out


def test_an_allocating_handler_is_caught():
    """The check can fail: a handler that builds a list is reported."""
    result, out = run_pump(
        """
def bad(_arg):
    return [1, 2, 3]
print("ok_bad=%r" % locked(bad, None))
print("ok_done=%r" % locked(board.stepper._on_done, None))
"""
    )
    assert result["ok_bad"] == "False", out
    assert result["ok_done"] == "True", out


def test_the_main_loops_critical_sections_allocate_nothing_and_give_interrupts_back():
    """Interrupts are off only around the ticker, and that code allocates nothing; an
    error inside gives interrupts back (try/finally)."""
    result, out = run_pump(
        """
print("refused=%r" % app.temp_basal(TEMP_ABSOLUTE, 15000, 60 * 60_000))
clock.run_until(clock.now_ns + 2_000_000_000)
delivery = app.delivery
plan = app.therapy.rate_plan(app.now_ms())  # allocates: runs before, interrupts on
print("ok_take=%r" % locked(lambda _a: delivery._ticker_section(), None))
print("ok_arm=%r" % locked(lambda _a: delivery._arm_section(plan), None))
ticker = app.therapy.ticker
def broken():
    raise RuntimeError("broken accumulator")
ticker.take_due = broken
try:
    delivery._ticker_section()
except RuntimeError:
    pass
print("irq_off_after_error=%r" % clock.irq_disabled)
"""
    )
    assert result["refused"] == "None", out
    assert result["ok_take"] == "True", out
    assert result["ok_arm"] == "True", out
    assert result["irq_off_after_error"] == "False", out
