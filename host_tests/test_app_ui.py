"""The whole firmware on the fakes: keys on the real pins, the keypad, the screens, the display."""

import pytest

from pump.core import alarms as al
from pump.core import events as ev
from pump.core.therapy import BOLUS
from sim.frames import find_big_text
from sim.pump import SimPump

SEC = 1000
MIN = 60_000


def of(sim, etype):
    return [fields for _seq, _t, e, fields in sim.events if e == etype]


def test_a_normal_bolus_by_key_presses_goes_from_the_buttons_to_the_motor():
    sim = SimPump(start_ms_of_day=8 * 3_600_000)
    sim.run_until(2 * SEC)
    assert "Delivering" in sim.screen_text()
    sim.press("OK")  # the menu, 'Bolus' first
    assert "Bolus" in sim.screen_text()
    sim.press("OK")  # the amount
    for _ in range(49):  # 0.05 U + 49 x 0.05 U
        sim.press("UP", gap_ms=40)
    assert find_big_text(sim.screen_pixels(), "2.50 U", 2), sim.screen_text()
    sim.press("OK")  # the confirm screen
    assert "Bolus 2.50 U" in sim.screen_text()
    assert of(sim, ev.BOLUS_STARTED) == []
    sim.press("OK")
    (started,) = of(sim, ev.BOLUS_STARTED)
    assert started["bolus"] == "normal" and started["requested_mu"] == 2500
    sim.run_until(sim.now_ms() + 3 * MIN)
    (finished,) = of(sim, ev.BOLUS_FINISHED)
    assert finished["requested_mu"] == 2500
    bolus_mu = sum(mu for _t, kind, _s, mu in sim.deliveries if kind == BOLUS)
    assert abs(bolus_mu - 2500) <= 2
    sim.run_until(sim.now_ms() + MIN)  # the home screen redraws each minute
    screen = sim.screen_text()
    assert "IOB    2." in screen and "Bolus" not in screen, screen


@pytest.mark.slow
def test_a_key_held_for_a_minute_raises_the_stuck_key_alarm_and_its_release_clears_it():
    sim = SimPump()
    sim.run_until(10 * SEC)
    sim.hold_key("DOWN")
    sim.run_until(69 * SEC)
    assert sim.app.alarms.find(al.STUCK_KEY) is None
    sim.run_until(71 * SEC)
    alarm = sim.app.alarms.find(al.STUCK_KEY)
    assert alarm is not None and alarm.cause_present
    sim.hold_key("DOWN", False)
    sim.run_until(72 * SEC)
    assert not alarm.cause_present
    assert sim.deliveries  # a stuck key alerts; delivery goes on


def test_an_unplugged_display_raises_its_alarm_while_delivery_goes_on_then_recovers():
    sim = SimPump()
    sim.run_until(MIN + SEC)
    sim.display.unresponsive = True
    sim.run_until(3 * MIN)
    alarm = sim.app.alarms.find(al.DISPLAY)
    assert alarm is not None and alarm.priority == al.MEDIUM
    assert of(sim, ev.DISPLAY_LOST)
    before = len(sim.deliveries)
    sim.run_until(6 * MIN)
    assert len(sim.deliveries) > before  # delivering all along
    sim.display.unresponsive = False
    sim.display.power_on_reset()  # plugged back in: the panel starts dark
    sim.run_until(7 * MIN)
    assert of(sim, ev.DISPLAY_BACK) and not alarm.cause_present
    assert sim.display.lit
    assert "Display not" in sim.screen_text()  # its alarm, shown now that it is back
