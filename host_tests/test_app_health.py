"""The whole firmware on the fakes: watchdog, reset cause, battery, buzzer, power-on self-test."""

import hashlib
import json

import machine
import pytest

from pump.app import App
from pump.core import alarms as al
from pump.core import events as ev
from pump.core.events import EventLog
from pump.core.selftest import (
    DISPLAY_MISSING,
    FIRMWARE_CHANGED,
    LOAD_CELL_NO_DATA,
    STUCK_KEY,
)
from sim.pump import SimPump

SEC = 1000
MIN = 60_000
HOUR = 3_600_000


def of(sim, etype):
    return [fields for _seq, _t, e, fields in sim.events if e == etype]


def on_pulses(pwm, since_ns, until_ns):
    """The tones the PWM played from ``since_ns``: (start ms, length ms, freq), duty > 0."""
    pulses = []
    start = None
    freq = 0
    for t_ns, hz, duty in pwm.history:
        if duty and start is None:
            start, freq = t_ns, hz
        elif not duty and start is not None:
            if since_ns <= start < until_ns and t_ns > start:  # a 0 ms blip is no sound
                pulses.append(((start - since_ns) // 1_000_000, (t_ns - start) // 1_000_000, freq))
            start = None
    return pulses


# ----- watchdog and reset cause -----


def test_a_job_that_stops_reporting_lets_the_watchdog_reset_and_the_next_boot_records_it():
    sim = SimPump()
    sim.run_until(5 * MIN)
    app = sim.app
    assert machine.WDT.lookup() is not None and app.watchdog.feeds > 0
    assert app.health.healthy(sim.now_ms())
    # The battery job stops: it is never run again (the main loop itself still runs).
    monitor = app.battery_monitor
    last_read = monitor.last_read_ms
    monitor.due = lambda now: False
    monitor.ms_until_due = lambda now: 60 * SEC
    with pytest.raises(machine.WatchdogReset):
        sim.run_until(30 * MIN)
    reset_at = app.now_ms()
    # Late after its 3 min period plus the margin; the chip resets within the 8 s timeout.
    assert last_read + 3 * MIN < reset_at <= last_read + 3 * MIN + 2 * SEC + 8 * SEC
    assert app.watchdog.withheld > 0
    assert machine.reset_cause() == machine.WDT_RESET

    # The next boot, on the same hardware.
    events = []
    again = App(sim.board, sim.clock, ms_of_day=0, events=EventLog(listener=events.append))
    again.start()
    boot = [f for _s, _t, e, f in events if e == ev.BOOT]
    assert boot[0]["reset_cause"] == "watchdog"
    causes = [f for _s, _t, e, f in events if e == ev.RESET_CAUSE]
    assert causes == [{"code": machine.WDT_RESET, "cause": "watchdog"}]
    alarm = again.alarms.find(al.RESET)
    assert alarm is not None and alarm.priority == al.MEDIUM
    assert again.therapy.suspended_at is None  # a reset alerts; delivery goes on


def test_a_power_on_boot_raises_no_reset_alarm_and_the_loop_never_sleeps_past_the_watchdog():
    sim = SimPump()
    assert of(sim, ev.RESET_CAUSE) == [{"code": machine.PWRON_RESET, "cause": "power_on"}]
    assert sim.app.alarms.find(al.RESET) is None
    sim.run_until(20 * MIN)  # a WatchdogReset would fail the test
    assert machine.watchdog_resets() == []
    assert sim.app.watchdog.feeds >= 20 * MIN // sim.app.watchdog.feed_interval_ms()


# ----- battery -----


@pytest.mark.slow
def test_a_draining_battery_alerts_then_stops_delivery():
    sim = SimPump()
    start_ns = sim.clock.now_ns

    def vsys():  # 4.2 V falling to 3.0 V over 4 hours
        hours = (sim.clock.now_ns - start_ns) / 3.6e12
        return (4.2 - 0.3 * hours) / 3

    sim.battery_adc.set_source(vsys)
    sim.run_until(4 * HOUR)
    states = of(sim, ev.BATTERY)
    assert [s["state"] for s in states] == ["low", "depleted"]
    low_at = [t for _s, t, e, f in sim.events if e == ev.BATTERY and f["state"] == "low"][0]
    depleted_at = [
        t for _s, t, e, f in sim.events if e == ev.BATTERY and f["state"] == "depleted"
    ][0]
    # 3.6 V at 2 h and 3.3 V at 3 h; each confirmed within a minute and 3 readings.
    assert 2 * HOUR <= low_at <= 2 * HOUR + 2 * MIN
    assert 3 * HOUR <= depleted_at <= 3 * HOUR + 2 * MIN
    assert sim.app.alarms.find(al.BATTERY_LOW) is not None
    assert any(low_at < t < depleted_at for t, _k, _s, _m in sim.deliveries)
    assert sim.app.therapy.suspended_at is not None
    assert sim.app.alarms.find(al.BATTERY_DEPLETED).priority == al.HIGH
    assert [t for t, _k, _s, _m in sim.deliveries if t > depleted_at + SEC] == []
    assert sim.app.resume() is not None  # no restart on a drained battery


# ----- buzzer -----


def test_each_priority_sounds_its_own_pattern_silenced_by_acknowledge_for_two_minutes():
    sim = SimPump()
    sim.run_until(MIN)
    pwm = machine.PWM.lookup(15)

    def sound(code, seconds):
        t0 = sim.clock.now_ns
        sim.app.post(lambda a: a.alarms.raise_alarm(a.now_ms(), code))
        sim.run_until(sim.now_ms() + seconds * SEC)
        return on_pulses(pwm, t0, sim.clock.now_ns)

    # Low: the reminder 15 min into a suspension.
    sim.app.suspend()
    t0 = sim.clock.now_ns
    sim.run_until(sim.now_ms() + 15 * MIN + 25 * SEC)
    low = on_pulses(pwm, t0, sim.clock.now_ns)
    assert [p[1] for p in low[:2]] == [200, 200] and low[2][0] - low[0][0] > 15 * SEC
    assert 15 * MIN <= low[0][0] <= 15 * MIN + 5 * SEC
    sim.app.resume()
    medium = sound(al.BATTERY_LOW, 7)
    assert [p[1] for p in medium[:3]] == [200, 200, 200]
    assert medium[3][0] - medium[0][0] >= 5 * SEC
    high = sound(al.SELF_TEST, 5)
    assert [p[1] for p in high[:10]] == [150] * 10
    assert all(p[2] == 880 for p in low + medium + high)

    # Acknowledged: silent for 2 minutes while the causes remain, then sounds again.
    sim.app.acknowledge(al.SELF_TEST)
    sim.app.acknowledge(al.BATTERY_LOW)
    t0 = sim.clock.now_ns
    sim.run_until(sim.now_ms() + 110 * SEC)
    assert on_pulses(pwm, t0, sim.clock.now_ns) == []
    assert pwm.duty_u16() == 0
    sim.run_until(sim.now_ms() + 20 * SEC)
    again = on_pulses(pwm, t0, sim.clock.now_ns)
    assert again and 118 * SEC <= again[0][0] <= 121 * SEC
    assert [p[1] for p in again[:10]] == [150] * 10


# ----- power-on self-test -----


def boot(prepare=None, firmware_root=None):
    sim = SimPump(start=False)
    if prepare is not None:
        prepare(sim)
    sim.app.firmware_root = firmware_root
    sim.start()
    return sim


def test_self_test_passes_on_a_good_build_and_delivery_starts():
    sim = boot()
    (result,) = of(sim, ev.SELF_TEST)
    assert result["passed"] == 1 and result["codes"] == []
    assert result["firmware"] == "not applicable"
    assert machine.PWM.lookup(15).history[-1][2] > 0  # the power-on tone is sounding
    sim.run_until(10 * MIN)
    assert sim.deliveries and sim.app.alarms.find(al.SELF_TEST) is None


def _release(tmp_path):
    (tmp_path / "pump").mkdir()
    files = {"main.py": b"print('pump')\n", "pump/app.py": b"APP = 1\n"}
    for rel, data in files.items():
        (tmp_path / rel).write_bytes(data)
    manifest = {
        "format": 1,
        "board": "pico_default",
        "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return str(tmp_path)


def test_self_test_checks_a_release_image(tmp_path):
    sim = boot(firmware_root=_release(tmp_path))
    (result,) = of(sim, ev.SELF_TEST)
    assert result["passed"] == 1 and result["firmware"] == "ok"


def _changed_release(tmp_path):
    root = _release(tmp_path)
    (tmp_path / "pump" / "app.py").write_bytes(b"APP = 2\n")  # one byte changed
    return root


@pytest.mark.parametrize(
    "fault, code",
    [
        ("key held at boot", STUCK_KEY),
        ("display unresponsive", DISPLAY_MISSING),
        ("HX711 unplugged", LOAD_CELL_NO_DATA),
        ("firmware byte changed", FIRMWARE_CHANGED),
    ],
)
def test_a_failed_self_test_keeps_delivery_from_starting(fault, code, tmp_path):
    prepare = None
    root = None
    if fault == "key held at boot":
        prepare = lambda sim: sim.hold_key("OK")  # noqa: E731
    elif fault == "display unresponsive":
        prepare = lambda sim: setattr(sim.display, "unresponsive", True)  # noqa: E731
    elif fault == "HX711 unplugged":
        prepare = lambda sim: sim.load_cell.unplug()  # noqa: E731
    else:
        root = _changed_release(tmp_path)
    sim = boot(prepare, root)
    (result,) = of(sim, ev.SELF_TEST)
    assert result["passed"] == 0 and code in result["codes"]
    alarm = sim.app.alarms.find(al.SELF_TEST)
    assert alarm is not None and alarm.priority == al.HIGH
    sim.run_until(10 * MIN)
    assert sim.deliveries == []
    assert sim.app.resume() is not None  # the failure blocks a resume too
    assert sim.deliveries == []
