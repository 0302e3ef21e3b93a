"""First-run setup on the keys alone, on MicroPython's rp2 port in an emulated RP2040.

A pump of its own, from an erased flash: `make flash`, then setup with the four keys and
nothing else (no pumpctl), read off the OLED; then a power cut, whose "set the time"
alarm leads to the time screen; then damaged settings, which lead back to the same setup.
Each path ends with basal at the STEP pin and no alarm left over.
"""

import io
import os
import sys

import devicekit
import pytest

from sim.frames import read_lines

pytestmark = pytest.mark.device

TOOLS = os.path.join(devicekit.ROOT, "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

PRESS_MS = 150  # a person's short press
# A press made while the pump writes its flash (an erase is 45 ms, typically) can be
# shorter than the debounce sees: the pump drops it rather than guess, and the person
# presses again. press_to() does the same after this long without the screen it expects.
SEEN_MS = 4000


@pytest.fixture(scope="module")
def rig():
    rig = devicekit.emu_rig.Rig()
    try:
        pump = devicekit.Pump(rig)
        code = pump.make_flash()
        assert code == 0, pump.flash_output[-2000:]
        yield rig
    finally:
        rig.close()


def screen(rig):
    return "\n".join(read_lines(rig.oled_pixels()))


def wait_screen(rig, words, emulated_ms=20_000):
    """Let emulated time pass until the OLED shows ``words``; the screen's text."""
    waited = 0
    text = screen(rig)
    while words not in text and waited < emulated_ms:
        rig.wait_ms(500)
        waited += 500
        text = screen(rig)
    if words not in text:
        serial = rig.read_serial()[-600:].decode(errors="replace")
        raise AssertionError(
            "the OLED never showed %r; it shows:\n%s\nthe serial port's last words:\n%s"
            % (words, text, serial)
        )
    return text


def press_to(rig, key, words):
    """Press ``key``, as a person would: again only when the screen did not change at all
    (three presses at most); then the OLED must show ``words``. Returns the screen."""
    before = screen(rig)
    for _ in range(3):
        rig.press(key, PRESS_MS)
        waited = 0
        while waited < SEEN_MS:
            rig.wait_ms(250)
            waited += 250
            if screen(rig) != before:
                return wait_screen(rig, words, 3000)
    return wait_screen(rig, words, 0)


def delivery_steps_over(rig, emulated_ms):
    """Delivering steps at the STEP pin over a stretch (line tests' pull and push apart),
    and the stretch in hours: it starts and ends with no line test half done."""
    pump = devicekit.Pump(rig)
    t0, _ = pump.quiet_ns()
    rig.wait_ms(emulated_ms)
    t1, log = pump.quiet_ns()
    delivery, _ = devicekit.split_steps([e for e in log if t0 <= e[0] <= t1])
    return len(delivery), (t1 - t0) / 3.6e12


def factory_basal_steps(hours):
    """The factory profile's 0.80 U/h over ``hours``, in steps of the board's mechanics."""
    return 800 * 1_000_000 / devicekit.mechanics().nu_per_step * hours


def walk_setup(rig, home="Delivering"):
    """Setup 1/6 to the start screen, taking what each step offers; OK starts the pump
    and the home screen shows ``home``. Returns the start screen's text."""
    press_to(rig, "ok", "Setup 1/6 date")  # the alarm's OK: setup
    for field in ("month:", "day:", "time:", "Setup 2/6 basal"):  # the date as it is
        press_to(rig, "ok", field)
    for offered in ("max bolus", "max basal", "most in 1 hour", "most in 1 day"):
        press_to(rig, "ok", offered)  # the factory profile, then each limit as offered
    press_to(rig, "ok", "Start the pump?")
    summary = wait_screen(rig, "00:00 0.80 U/h", 3000)  # the profile, under the date
    press_to(rig, "ok", home)
    return summary


def test_a_new_pump_is_set_up_on_its_keys_alone_and_then_delivers_basal(rig):
    """From an erased flash and `make flash`: "Set up the pump", six steps and a start
    screen on the keys; no insulin before its OK, basal after it, no alarm left, and
    every step in the event log."""
    pump = devicekit.Pump(rig)
    wait_screen(rig, "OK=set up")
    before, _ = delivery_steps_over(rig, 20_000)
    assert before == 0, "a pump that is not set up delivered %d steps" % before
    assert {"set_up", "set_time"} <= pump.alarms()
    summary = walk_setup(rig)
    assert "Standard" in summary, summary
    status = pump.status()
    assert status["suspended"] == 0 and pump.alarms() == set(), status
    given, hours = delivery_steps_over(rig, 120_000)
    assert abs(given - factory_basal_steps(hours)) <= 2, (given, hours)
    steps = [e["step"] for e in pump.history(60) if e.get("type") == "setup_step"]
    assert steps[-7:] == [
        "clock", "basal", "max_bolus", "max_basal", "max_hour", "max_day", "done"
    ], steps


def test_after_a_power_cut_the_clock_alarm_leads_to_the_time_screen_and_basal_resumes(rig):
    """The Pico keeps no time through a power cut: "set the time" stops basal; its OK
    opens the time screen, and the time set there (and confirmed) starts basal again."""
    pump = devicekit.Pump(rig)
    rig.power_cycle(off_ms=2000)
    wait_screen(rig, "OK=set time")
    assert delivery_steps_over(rig, 10_000)[0] == 0, "basal ran without the time"
    press_to(rig, "ok", "time: UP/DN")
    for _ in range(3):
        rig.press("up", PRESS_MS)
        rig.wait_ms(500)
    for field in ("day:", "month:", "year:", "Set the clock"):  # the date as it is
        press_to(rig, "ok", field)
    press_to(rig, "ok", "Delivering")
    status = pump.status()
    assert status["suspended"] == 0 and pump.alarms() == set(), status
    given, hours = delivery_steps_over(rig, 120_000)
    assert abs(given - factory_basal_steps(hours)) <= 2, (given, hours)
    assert any(e.get("type") == "clock_set" for e in pump.history(30))


def test_damaged_settings_lead_back_to_the_same_setup_on_the_keys(rig):
    """A byte of the settings file flipped on the Pico's flash (from the REPL, after
    `pumpctl maintenance` and OK): the pump trusts nothing of it, stops delivery with
    "check settings", and its OK leads into the same setup."""
    import flash

    pump = devicekit.Pump(rig)
    code, out = pump.pumpctl("maintenance", confirm=True)  # one start with Ctrl-C on
    assert code == 0, out
    pico = flash.Pico(rig.port, io.StringIO())
    pico.open(soft_reset=False)
    try:
        pico.stop_watchdog()
        pico.exec(
            "f = open('/settings.rec', 'rb')\nd = bytearray(f.read())\nf.close()\n"
            "d[len(d) // 2] ^= 0x10\nf = open('/settings.rec', 'wb')\nf.write(d)\nf.close()"
        )
    finally:
        pico.close()
    rig.power_cycle(off_ms=500)  # locked mode, as always after a power-up
    wait_screen(rig, "OK=set up")
    assert "check_settings" in pump.alarms()
    assert delivery_steps_over(rig, 10_000)[0] == 0, "delivery went on with damaged settings"
    # The suspend made for the maintenance restart stays through setup: the person ends it.
    walk_setup(rig, home="SUSPENDED")
    code, out = pump.pumpctl("resume", confirm=True)
    assert code == 0, out
    status = pump.status()
    assert status["suspended"] == 0 and pump.alarms() == set(), status
    given, hours = delivery_steps_over(rig, 120_000)
    assert abs(given - factory_basal_steps(hours)) <= 2, (given, hours)
