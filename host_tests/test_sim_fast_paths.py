"""The simulator's fast paths against its exact models, piece by piece: the HX711's PD_SCK
handling, the idle CPU that sleeps through quiet events, the PIO pulse counter that runs at
the pin change. (test_sim_golden.py holds the whole firmware to the same.)"""

import machine
import pytest
import rp2
import sensors

from pump.hal.hx711 import HX711
from pump.hal.pulse_counter import PioPulseCounter, count_rising
from sim import hw

MS = 1_000_000


@pytest.fixture(autouse=True)
def _fast_afterwards():
    yield
    hw.set_exact(False)


def _hx711_session(exact):
    """Reads at both gains, a power-down and up, an unplugged DOUT, a stray pulse, a
    read interrupted by time: what the driver returns and what the chip counted."""
    hw.set_exact(exact)
    clock = hw.reset()
    dout = machine.Pin(6, machine.Pin.IN, machine.Pin.PULL_UP)
    sck = machine.Pin(7, machine.Pin.OUT, value=0)
    dout.record = False
    sck.record = False
    force = [1.5]
    device = sensors.HX711Device(dout, sck, lambda: force[0], 43_797, 120_000, 80,
                                 noise_counts=40, seed=7)
    hx = HX711(dout, sck)
    seen = []

    def read(n=1, wait_ms=13):
        for _ in range(n):
            clock.run_for_ns(wait_ms * MS)
            seen.append((clock.now_ns, hx.read_raw()))

    read(5)
    read(3, wait_ms=2)  # faster than conversions: some not ready
    force[0] = -3.0
    read(4)
    hx = HX711(dout, sck, gain=64)  # 26 pulses: the next conversion at gain 64, settling
    read(8)
    hx.power_down()
    clock.run_for_ns(5 * MS)  # PD_SCK held high: the chip sleeps
    seen.append(("down", device.powered, dout.value()))
    hx.power_up()
    read(6)
    device.unplug()
    read(2)
    device.restore()
    read(3)
    sck.value(1)  # one pulse more after a whole read: nothing is waiting
    sck.value(0)
    read(2)
    # A read cut short: three data pulses, then time moves on with PD_SCK low, then more.
    clock.run_for_ns(13 * MS)
    for _ in range(3):
        sck.value(1)
        seen.append(("bit", dout.value()))
        sck.value(0)
    clock.run_for_ns(1 * MS)
    for _ in range(22):
        sck.value(1)
        seen.append(("bit", dout.value()))
        sck.value(0)
    read(3)
    counters = {name: getattr(device, name) for name in (
        "reads", "power_downs", "power_ups", "comm_errors", "stray_pulses", "gain",
        "last_raw", "powered")}
    counters["violations"] = list(device.violations)
    return seen, counters, clock.now_ns


def test_the_hx711_fast_path_answers_every_read_as_the_exact_model_does():
    exact = _hx711_session(True)
    fast = _hx711_session(False)
    assert fast == exact
    seen, counters, _ = fast
    values = [entry[1] for entry in seen if isinstance(entry[0], int)]
    assert sum(v is None for v in values) >= 2 and sum(v is not None for v in values) >= 20
    assert counters["power_downs"] == 1 and counters["power_ups"] == 1
    assert counters["violations"] and counters["comm_errors"]  # the odd cases happened


def test_the_fast_path_gives_way_to_a_listener_it_does_not_know():
    hw.set_exact(False)
    clock = hw.reset()
    dout = machine.Pin(6, machine.Pin.IN, machine.Pin.PULL_UP)
    sck = machine.Pin(7, machine.Pin.OUT, value=0)
    device = sensors.HX711Device(dout, sck, lambda: 1.0, 43_797, 0, 80)
    edges = []
    sck.add_listener(lambda pin, level, t_ns: edges.append(level))
    hx = HX711(dout, sck)
    clock.run_for_ns(13 * MS)
    assert hx.read_raw() == 43_797
    assert edges == [1, 0] * 25  # every pulse seen by the other listener too
    assert device.reads == 1


def _idle_session(exact):
    """Quiet events (a PIO step, a converter) and a timer: where machine.idle() returns."""
    hw.set_exact(exact)
    clock = hw.reset()
    quiet_runs = []
    for k in range(1, 4):
        clock.call_at(k * MS, lambda k=k: quiet_runs.append(k), True)
    timer = machine.Timer(-1)
    fired = []
    timer.init(mode=machine.Timer.ONE_SHOT, period=5, callback=lambda t: fired.append(1),
               hard=True)
    wakes = []
    while not fired:
        machine.idle()
        wakes.append(clock.now_ns // MS)
    return wakes, quiet_runs


def test_an_idle_cpu_sleeps_through_quiet_events_until_an_interrupt():
    wakes, quiet = _idle_session(False)
    assert wakes == [5] and quiet == [1, 2, 3]
    wakes, quiet = _idle_session(True)  # exact: every event ends the wait
    assert wakes == [1, 2, 3, 5] and quiet == [1, 2, 3]


def _counter_session(exact):
    hw.set_exact(exact)
    clock = hw.reset()
    step = machine.Pin(2, machine.Pin.OUT, value=0)
    sm = rp2.StateMachine(4, count_rising, in_base=step)
    counter = PioPulseCounter(sm)
    clock.run_for_ns(1 * MS)  # the state machine reaches its first wait
    totals = []
    for n in (1, 5, 40):
        for _ in range(n):
            step.value(1)
            clock.run_for_ns(3_000)
            step.value(0)
            clock.run_for_ns(4_000)
        clock.run_for_ns(1 * MS)
        totals.append(counter.take())
    step.value(1)  # an edge with no time after it
    totals.append(counter.total())
    return totals, clock.events_run


def test_the_pulse_counter_counts_at_the_pin_change_as_the_exact_emulation_does():
    fast_totals, fast_events = _counter_session(False)
    exact_totals, exact_events = _counter_session(True)
    # The last edge has had no time to be seen (a cycle of the state machine): not yet counted.
    assert fast_totals == exact_totals == [1, 5, 40, 46]
    assert fast_events < exact_events  # the point of it


def _reads_of_a_quiet_counter(exact):
    hw.set_exact(exact)
    clock = hw.reset()
    step = machine.Pin(2, machine.Pin.OUT, value=0)
    counter = PioPulseCounter(rp2.StateMachine(4, count_rising, in_base=step))
    clock.run_for_ns(1 * MS)
    for _ in range(3):
        step.value(1)
        clock.run_for_ns(3_000)
        step.value(0)
        clock.run_for_ns(4_000)
    clock.run_for_ns(1 * MS)
    before = clock.events_run
    counts = []
    for _ in range(4):
        counts.append(counter.take())
        clock.run_for_ns(1 * MS)
    events = clock.events_run - before
    step.value(1)  # still counting afterwards
    clock.run_for_ns(3_000)
    step.value(0)
    clock.run_for_ns(1 * MS)
    counts.append(counter.take())
    return counts, events


def test_reading_a_counter_stalled_on_its_pin_costs_no_clock_event():
    # mov isr, x; push; get: none of them can move a wait on a pin's level on, so the
    # fast model does not look again; the exact one does (one event a read), same counts.
    fast_counts, fast_events = _reads_of_a_quiet_counter(False)
    exact_counts, exact_events = _reads_of_a_quiet_counter(True)
    assert fast_counts == exact_counts == [3, 0, 0, 0, 1]
    assert fast_events == 0 and exact_events >= 4
