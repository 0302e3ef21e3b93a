"""The force drivers read without allocating: proved on a real MicroPython with the heap locked."""

import pytest

from mpy.wasm import GUEST_PATHS, run_micropython

# One guest run (about 2 s) serves every test below.
pytestmark = [pytest.mark.micropython, pytest.mark.slow]

# Runs inside MicroPython on the fake pins. irq.run_hard() locks the heap around the
# call (as a hard interrupt would be) and records a MemoryError in irq.allocation_faults;
# the fakes' own bookkeeping on a pin edge runs with the heap unlocked, the driver not.
RIG = """
import irq
import machine
import micropython
import sensors
import vclock

vclock.reset()
irq.reset()
machine.reset_fakes()

from pump.hal.fsr import ForceResistor
from pump.hal.hx711 import HX711

clock = vclock.current()
dout = machine.Pin(6, machine.Pin.IN, machine.Pin.PULL_UP)
sck = machine.Pin(7, machine.Pin.OUT, value=0)
dout.record = False
sck.record = False
force = [1.0]
device = sensors.HX711Device(dout, sck, lambda: force[0], 43797, 120000, 80)
out = [0]


def wait_conversion():
    clock.run_for_ns(12_500_000)


def report(name, value):
    print("%s=%r" % (name, value))
"""


GUEST = """
def read_hx(_arg):
    out[0] = hx.read_raw()


def read_boxed(_arg):
    out[0] = (hx.read_raw(), 1)


def read_fsr(_arg):
    out[0] = fsr.read_raw()


class SteadyAdc:
    # Integer-only ADC stand-in: the fake ADC computes in floats, which allocate.
    def __init__(self):
        self.n = 0

    def read_u16(self):
        self.n += 1
        return 30000 + (self.n & 7) * 16


try:
    hx = HX711(dout, sck)
    values = []
    for f in (1.0, -2.0, 300.0):
        force[0] = f
        wait_conversion()
        irq.run_hard(read_hx, None)
        values.append(out[0])
    irq.run_hard(read_hx, None)  # not ready: the None path too
    values.append(out[0])
    report("faults_128", irq.allocation_faults)
    report("values_128", values)
    report("reads", device.reads)
    report("power_downs", device.power_downs)

    force[0] = 1.0
    hx = HX711(dout, sck, gain=64)
    wait_conversion()
    irq.run_hard(read_hx, None)
    clock.run_for_ns(4 * 12_500_000)  # settling after the gain change
    irq.run_hard(read_hx, None)
    report("faults_64", irq.allocation_faults)
    report("value_64", out[0])
    report("gain", device.gain)

    fsr = ForceResistor(SteadyAdc(), samples=16)
    irq.run_hard(read_fsr, None)
    report("faults_fsr", irq.allocation_faults)
    report("value_fsr", out[0])

    wait_conversion()
    irq.run_hard(read_boxed, None)
    report("faults_boxed", irq.allocation_faults)
except Exception as exc:
    report("error", exc)
"""


@pytest.fixture(scope="module")
def guest():
    stdout, stderr = run_micropython(RIG + GUEST, ("/input/sim/hw",) + GUEST_PATHS)
    result = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    assert "error" not in result, stdout + stderr
    return result, stdout + stderr


def test_hx711_read_allocates_nothing_with_the_heap_locked(guest):
    result, out = guest
    assert result["faults_128"] == "[]", out
    # 1 N, -2 N (below the 120 000-count offset) and 300 N (saturated), then not ready.
    assert result["values_128"] == "[163797, 32406, 8388607, None]", out
    assert result["reads"] == "3" and result["power_downs"] == "0", out


def test_hx711_gain_64_read_allocates_nothing(guest):
    result, out = guest
    assert result["faults_64"] == "[]", out
    assert result["value_64"] == "81899" and result["gain"] == "64", out  # 163797 / 2


def test_fsr_read_allocates_nothing_with_the_heap_locked(guest):
    result, out = guest
    assert result["faults_fsr"] == "[]", out
    # 16 readings of 30000 + 16 * (n & 7) for n = 1..16: a mean of 30056.
    assert result["value_fsr"] == "30056", out


def test_an_allocating_read_is_caught(guest):
    """The check can fail: the same read that also builds a tuple is reported."""
    result, out = guest
    assert result["faults_boxed"] == "['read_boxed']", out
