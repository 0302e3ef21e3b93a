"""Watchdog, battery gauge, buzzer and firmware check on the hardware fakes in virtual time."""

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from sim import hw

hw.install()

import machine  # noqa: E402
import vclock  # noqa: E402

from pump.core import selftest as st  # noqa: E402
from pump.core.battery import LOW, BatteryMonitor  # noqa: E402
from pump.core.health import TaskMonitor, reset_cause_name  # noqa: E402
from pump.hal import buzzer as bz  # noqa: E402
from pump.hal.battery import BatteryGauge  # noqa: E402
from pump.hal.buzzer import Buzzer  # noqa: E402
from pump.hal.firmware_files import FirmwareReport, file_sha256, verify  # noqa: E402
from pump.hal.watchdog import WDT_MAX_TIMEOUT_MS, Watchdog  # noqa: E402

MS = vclock.NS_PER_MS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = (("basal", 60_000), ("pressure", 10_000), ("battery", 180_000))


@pytest.fixture
def clock():
    return hw.reset()


def now_ms(clock):
    return clock.now_ns // MS


# ----- watchdog -------------------------------------------------------------------


def run_main_loop(clock, monitor, watchdog, until_ms, hung=None, hang_at_ms=0):
    """A main loop waking every second: jobs report when due (``hung`` stops at hang_at_ms),
    then the watchdog is fed if the monitor says so. Returns the last time it fed."""
    last_feed = None
    while now_ms(clock) < until_ms:
        t = now_ms(clock)
        for name, period in JOBS:
            if t % period == 0 and not (name == hung and t >= hang_at_ms):
                monitor.report(name, t)
        if watchdog.feed_if(monitor.healthy(t)):
            last_feed = t
        clock.sleep_ms(1000)
    return last_feed


def started(clock, timeout_ms=8000):
    monitor = TaskMonitor(margin_ms=2000)
    for name, period in JOBS:
        monitor.register(name, period, 0)
    watchdog = Watchdog(machine.WDT, timeout_ms)
    watchdog.start()
    return monitor, watchdog


def test_watchdog_is_fed_while_every_job_reports(clock):
    monitor, watchdog = started(clock)
    run_main_loop(clock, monitor, watchdog, 30 * 60_000)
    assert machine.watchdog_resets() == []
    assert watchdog.withheld == 0
    assert watchdog.feeds == 30 * 60


def test_a_hung_job_stops_the_feeding_and_the_watchdog_resets_the_chip(clock):
    monitor, watchdog = started(clock)
    with pytest.raises(machine.WatchdogReset):
        run_main_loop(clock, monitor, watchdog, 10 * 60_000, hung="pressure", hang_at_ms=40_000)
    # pressure last reported at 30 s; late after 30 + 10 + 2 s; last feed at 42 s
    assert monitor.overdue(42_001) == ["pressure"]
    assert machine.watchdog_resets() == [(42_000 + 8_000) * MS]
    assert watchdog.feeds == 43  # 0..42 s
    assert reset_cause_name(machine.reset_cause()) == "watchdog"


def test_a_hung_main_loop_is_reset_a_timeout_after_its_last_feed(clock):
    monitor, watchdog = started(clock, timeout_ms=2000)
    run_main_loop(clock, monitor, watchdog, 5_000)
    with pytest.raises(machine.WatchdogReset):
        clock.sleep_ms(60_000)  # stuck in a loop that never comes back to feed
    assert machine.watchdog_resets() == [(4_000 + 2_000) * MS]


def test_watchdog_starts_only_when_told(clock):
    watchdog = Watchdog(machine.WDT, 1000)
    assert not watchdog.started
    assert not watchdog.feed_if(True)  # nothing to feed yet
    clock.sleep_ms(5_000)  # the self-test may take its time
    assert machine.WDT.lookup() is None
    watchdog.start()
    watchdog.start()  # once only (a second machine.WDT would raise)
    assert machine.WDT.lookup().timeout_ms == 1000
    assert watchdog.feed_interval_ms() == 500


def test_watchdog_takes_a_running_wdt_and_checks_the_timeout(clock):
    wdt = machine.WDT(timeout=3000)
    watchdog = Watchdog(wdt, 3000)
    assert watchdog.started
    assert watchdog.feed_if(True)
    assert not watchdog.feed_if(False)
    assert (watchdog.feeds, watchdog.withheld) == (1, 1)
    for bad in (0, WDT_MAX_TIMEOUT_MS + 1, 2500.0):
        with pytest.raises(ValueError):
            Watchdog(machine.WDT, bad)


# ----- battery ----------------------------------------------------------------------


def test_gauge_reads_vsys_through_the_divider(clock):
    adc = machine.ADC(machine.Pin(29))
    gauge = BatteryGauge(adc)
    for volts, mv in ((4.5, 4500), (3.6, 3600), (3.3, 3300), (0.0, 0)):
        machine.ADC.lookup(29).set_voltage(volts / 3)
        assert abs(gauge.read_mv() - mv) <= 3, volts  # 1 LSB = 2.4 mV at VSYS
    machine.ADC.lookup(29).set_voltage(3.3)
    assert gauge.read_mv() == gauge.full_scale_mv == 9900
    assert isinstance(gauge.last_mv, int)


def test_gauge_averages_its_samples(clock):
    readings = iter([1.20, 1.30] * 4)  # volts at the pin: 3.6 V and 3.9 V at VSYS
    machine.ADC.lookup(29).set_source(lambda: next(readings))
    gauge = BatteryGauge(machine.ADC(29), samples=8)
    assert abs(gauge.read_mv() - 3750) <= 3


def test_gauge_refuses_settings_that_would_leave_small_ints(clock):
    with pytest.raises(ValueError):
        BatteryGauge(machine.ADC(29), samples=64)
    with pytest.raises(ValueError):
        BatteryGauge(machine.ADC(29), divider_den=0)


def test_discharging_battery_raises_low_once_confirmed(clock):
    # 4.5 V falling 0.5 mV/s: below 3.6 V after 1800 s, still above 3.3 V at 2200 s.
    machine.ADC.lookup(29).set_source(lambda: (4.5 - clock.now_ns / 2e12) / 3)
    gauge = BatteryGauge(machine.ADC(29))
    monitor = BatteryMonitor(3600, 3300, 100)
    changes = []
    longest = 0
    last = None
    while now_ms(clock) < 2_200_000:
        t = now_ms(clock)
        change = monitor.update(t, gauge.read_mv())
        if change is not None:
            changes.append((t, change))
        if last is not None:
            longest = max(longest, t - last)
        last = t
        clock.sleep_ms(monitor.ms_until_due(t))
    assert [c for _t, c in changes] == [LOW]
    # first reading below 3600 mV at 1800 s (a minute boundary), confirmed 10 s later
    assert 1_800_000 <= changes[0][0] <= 1_800_000 + 60_000 + 10_000
    assert longest <= 60_000


# ----- buzzer -----------------------------------------------------------------------


def play_for(clock, buzzer, ms):
    """Call update() when it asks, as the main loop would, for ``ms`` of virtual time."""
    end = now_ms(clock) + ms
    while True:
        wait = buzzer.update(now_ms(clock))
        if wait is None or now_ms(clock) + wait > end:
            break
        clock.sleep_ms(wait)
    clock.run_until(end * MS)


def pulses(pwm):
    """(start_ms, on_ms, off_ms_after) of each tone in the PWM history."""
    edges = []
    level = 0
    for t_ns, _hz, duty in pwm.history:
        on = 1 if duty else 0
        if on != level:
            edges.append((t_ns // MS, on))
            level = on
    out = []
    for i in range(0, len(edges) - 1, 2):
        start, stop = edges[i][0], edges[i + 1][0]
        after = edges[i + 2][0] - stop if i + 2 < len(edges) else None
        out.append((start, stop - start, after))
    return out


def make_buzzer():
    pwm = machine.PWM(machine.Pin(15), freq=1000, duty_u16=0)
    return pwm, Buzzer(pwm)


def test_high_priority_is_ten_pulses_3_2_pause_3_2_then_repeats(clock):
    pwm, buzzer = make_buzzer()
    buzzer.play(bz.HIGH)
    play_for(clock, buzzer, 2 * 6_800 + 100)  # two bursts
    p = pulses(pwm)
    assert len(p) == 20
    assert all(on == 150 for _s, on, _off in p)
    gaps = [off for _s, _on, off in p[:10]]
    assert gaps == [100, 100, 350, 100, 1000, 100, 100, 350, 100, 3000]
    assert p[10][0] == 6_800  # 10 x 150 ms of tone, 2300 ms of gaps, 3000 ms before the next
    assert pwm.freq() == buzzer.alarm_hz
    assert 150 <= pwm.freq() <= 1000  # the fundamental IEC 60601-1-8 asks for


def test_medium_and_low_priority_patterns(clock):
    pwm, buzzer = make_buzzer()
    buzzer.play(bz.MEDIUM)
    play_for(clock, buzzer, 6_300)
    assert [(on, off) for _s, on, off in pulses(pwm)] == [
        (200, 200), (200, 200), (200, 5000), (200, None),
    ]
    buzzer.stop()
    start = len(pwm.history)
    buzzer.play(bz.LOW)
    play_for(clock, buzzer, 20_900)
    pwm.history[:] = pwm.history[start:]
    assert [(on, off) for _s, on, off in pulses(pwm)] == [(200, 200), (200, 20000), (200, None)]


def test_the_three_priorities_sound_different(clock):
    shapes = {}
    for priority in (bz.LOW, bz.MEDIUM, bz.HIGH):
        clock = hw.reset()
        pwm, buzzer = make_buzzer()
        buzzer.play(priority)
        play_for(clock, buzzer, 4_000)
        shapes[priority] = [(on, off) for _s, on, off in pulses(pwm)]
    assert len({tuple(s) for s in shapes.values()}) == 3
    assert [len(shapes[p]) for p in (bz.LOW, bz.MEDIUM, bz.HIGH)] == [2, 3, 10]


def test_update_says_how_long_the_main_loop_may_sleep(clock):
    pwm, buzzer = make_buzzer()
    assert buzzer.update(0) is None  # silent: no wake-up needed
    buzzer.play(bz.MEDIUM)
    assert buzzer.update(0) == 200  # tone on for 200 ms
    assert pwm.duty_u16() > 0
    assert buzzer.update(50) == 150  # early call: nothing changes
    assert buzzer.update(200) == 200  # now silence for 200 ms
    assert pwm.duty_u16() == 0
    buzzer.play(bz.MEDIUM)  # the same priority again does not restart it
    assert buzzer.update(300) == 100
    buzzer.stop()
    assert pwm.duty_u16() == 0
    assert buzzer.update(400) is None
    assert buzzer.playing() is None


def test_a_late_update_lengthens_one_phase_only(clock):
    pwm, buzzer = make_buzzer()
    buzzer.play(bz.MEDIUM)
    buzzer.update(0)
    assert buzzer.update(500) == 200  # 300 ms late switching off: the gap keeps its 200 ms
    assert buzzer.update(700) == 200  # and the next tone its 200 ms


def test_higher_priority_takes_over_at_once(clock):
    pwm, buzzer = make_buzzer()
    buzzer.play(bz.LOW)
    buzzer.update(0)
    buzzer.play(bz.HIGH)
    assert pwm.duty_u16() == 0
    assert buzzer.update(10) == 150
    assert buzzer.playing() == bz.HIGH
    with pytest.raises(ValueError):
        buzzer.play(7)


def test_buzzer_follows_the_alarm_managers_level(clock):
    pwm, buzzer = make_buzzer()
    buzzer.follow(bz.MEDIUM)
    assert buzzer.playing() == bz.MEDIUM
    buzzer.follow(0)
    assert buzzer.playing() is None and pwm.duty_u16() == 0
    buzzer.beep()
    buzzer.follow(0)  # no alarm: the click still plays
    assert buzzer.update(0) == 30


def test_key_beep_is_short_and_never_covers_an_alarm(clock):
    pwm, buzzer = make_buzzer()
    assert buzzer.beep()
    assert buzzer.update(0) == 30
    assert pwm.freq() == buzzer.beep_hz
    assert buzzer.update(30) is None  # once only
    assert pwm.duty_u16() == 0
    buzzer.play(bz.MEDIUM)
    assert not buzzer.beep()
    assert buzzer.playing() == bz.MEDIUM


def test_self_test_tone_is_driven_then_ends(clock):
    pwm, buzzer = make_buzzer()
    buzzer.self_test_tone()
    assert not buzzer.driven()  # not sounding until the main loop updates it
    assert buzzer.update(0) == 300
    assert buzzer.driven()
    assert buzzer.update(300) is None
    assert not buzzer.driven()
    assert not buzzer.busy()


def test_a_dead_pwm_is_not_driven(clock):
    pwm, buzzer = make_buzzer()
    buzzer.self_test_tone()
    buzzer.update(0)
    pwm.deinit()  # the slice stopped: it reads back duty 0
    assert not buzzer.driven()


# ----- firmware files ---------------------------------------------------------------


def write_manifest(root, board="pico_default", arch="armv6m"):
    """Run the manifest writer of the Makefile itself on ``root``."""
    with open(os.path.join(REPO, "Makefile")) as f:
        text = f.read()
    code = re.search(r"define WRITE_MANIFEST\n(.*?)\nendef", text, re.S).group(1)
    subprocess.run([sys.executable, "-c", code, str(root), board, arch], check=True,
                   capture_output=True)


@pytest.fixture
def image(tmp_path):
    files = {
        "main.py": b"import board\n",
        "board.mpy": b"M\x06" + bytes(range(256)) * 3,
        "pump/__init__.mpy": b"M\x06",
        "pump/app.mpy": b"M\x06" + b"app" * 700,  # 2102 bytes: several 512-byte chunks
        "pump/core/units.mpy": b"M\x06" + b"\x00" * 1024,  # exactly 2 chunks after 2 bytes
        "pump/hal/buzzer.mpy": b"M\x06buzz",
    }
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    write_manifest(tmp_path)
    return tmp_path


def test_a_good_image_verifies(image):
    calls = []
    report = verify(str(image), on_file=lambda: calls.append(1))
    assert report.ok()
    assert report.checked == 6 == len(calls)
    assert (report.board, report.mpy_arch) == ("pico_default", "armv6m")
    assert st.check_firmware(report, True) == []


def test_chunked_hash_matches_hashlib(image):
    for rel in ("pump/app.mpy", "pump/core/units.mpy", "main.py"):
        data = (image / rel).read_bytes()
        assert file_sha256(str(image / rel), bytearray(512)) == hashlib.sha256(data).hexdigest()
        assert file_sha256(str(image / rel), bytearray(7)) == hashlib.sha256(data).hexdigest()


def test_one_changed_byte_is_found(image):
    path = image / "pump" / "app.mpy"
    data = bytearray(path.read_bytes())
    data[1500] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(str(image))
    assert report.changed == ["pump/app.mpy"]
    assert not report.ok()
    assert st.codes(st.check_firmware(report, True)) == [st.FIRMWARE_CHANGED]


def test_missing_and_stray_files_are_found(image):
    (image / "pump" / "hal" / "buzzer.mpy").unlink()
    (image / "pump" / "app.py").write_text("# an old source file that would shadow app.mpy\n")
    (image / "settings.json").write_text("{}")  # data the pump writes is not code
    report = verify(str(image))
    assert report.missing == ["pump/hal/buzzer.mpy"]
    assert report.unexpected == ["pump/app.py"]
    assert report.checked == 5
    assert st.codes(st.check_firmware(report, True)) == [
        st.FIRMWARE_MISSING,
        st.FIRMWARE_UNEXPECTED,
    ]


def test_no_manifest_fails_a_release_and_is_not_applicable_from_source(tmp_path):
    report = verify(str(tmp_path))
    assert isinstance(report, FirmwareReport)
    assert not report.manifest_found and not report.ok()
    assert st.codes(st.check_firmware(report, True)) == [st.FIRMWARE_NO_MANIFEST]
    assert st.check_firmware(report, False) == []
    assert st.firmware_status(report, False) == st.FIRMWARE_NOT_APPLICABLE


def test_a_broken_manifest_is_reported(image):
    (image / "manifest.json").write_text("{not json")
    assert verify(str(image)).error == "manifest.json is not valid JSON"
    (image / "manifest.json").write_text(json.dumps({"format": 2, "files": {"a": "b"}}))
    assert verify(str(image)).error == "manifest.json has an unknown format"
    (image / "manifest.json").write_text(json.dumps({"format": 1, "files": {}}))
    report = verify(str(image))
    assert report.error == "manifest.json lists no files"
    assert st.codes(st.check_firmware(report, True)) == [st.FIRMWARE_BAD_MANIFEST]
