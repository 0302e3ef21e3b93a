"""First-run setup on the pump's own keys, walked by key presses on the simulated pump: a new
pump, damaged settings, and the clock lost after a power cut. Nothing is delivered before
the last screen's OK; every step is an event; afterwards basal runs with no alarm left."""

import pytest

from pump.core import alarms as al
from pump.core import events as ev
from pump.core.state import OK as LOADED
from pump.hal.storage import Storage
from sim.frames import find_big_text
from sim.hw.flashfs import FlashFS
from sim.pump import SimPump

MIN_MS = 60_000
STEP = "setup_step"


def new_pump():
    flash = FlashFS()
    flash.files["placeholder"] = b""  # not empty: the simulator does not set it up itself
    return booted(SimPump(flash=flash))


def booted(sim):
    sim.run_until(sim.now_ms() + 1000)  # the first frame drawn
    return sim


def codes(sim):
    return sorted(a.code for a in sim.app.alarms.alarms)


def top(sim):
    return sim.app.ui.top()


def shows(sim, words):
    return words in sim.screen_text()


def shows_big(sim, words):
    return bool(find_big_text(sim.screen_pixels(), words, 2))


def press(sim, key, times=1):
    for _ in range(times):
        sim.press(key)


def steps(sim):
    return [e[3]["step"] for e in sim.events if e[2] == STEP]


def basal_given(sim):
    return sum(d[3] for d in sim.deliveries if d[1] == "basal")


def set_date_time(sim, year, month, day, hour, minute):
    """Walk the date and time editor, field by field in its order, to the values given."""
    editor = top(sim)
    assert editor.name == "date time", sim.screen_text()
    want = (year, month, day, hour * 60 + minute)
    while top(sim) is editor:
        field = editor.field
        while editor.values[field] != want[field]:
            if field == 3:
                gap = (want[3] - editor.values[3]) % 1440
                press(sim, "UP" if gap <= 720 else "DOWN")
            else:
                press(sim, "UP" if editor.values[field] < want[field] else "DOWN")
        press(sim, "OK")


def test_a_new_pump_is_set_up_on_its_keys_and_only_then_delivers():
    sim = new_pump()
    assert codes(sim) == [al.SET_TIME, al.SET_UP]
    assert shows(sim, "Set up the pump") and shows(sim, "OK=set up"), sim.screen_text()
    press(sim, "OK")
    assert shows(sim, "Setup 1/6 date") and top(sim).field == 0, sim.screen_text()
    set_date_time(sim, 2026, 12, 4, 11, 58)
    assert shows(sim, "Setup 2/6 basal") and shows(sim, "Factory 0.80U/h"), sim.screen_text()
    press(sim, "OK")  # the factory profile
    assert shows_big(sim, "10.00 U") and shows(sim, "max bolus"), sim.screen_text()
    press(sim, "DOWN", 40)  # 8.00 U in 0.05 U steps
    press(sim, "OK")
    assert shows_big(sim, "3.00 U/h") and shows(sim, "max basal"), sim.screen_text()
    press(sim, "OK")
    assert shows_big(sim, "15.00 U") and shows(sim, "most in 1 hour"), sim.screen_text()
    press(sim, "OK")
    assert shows_big(sim, "80.00 U") and shows(sim, "most in 1 day"), sim.screen_text()
    press(sim, "OK")
    screen = sim.screen_text()
    assert "Start the pump?" in screen and "2026-12-04 11:5" in screen, screen
    assert "Standard" in screen and "00:00 0.80 U/h" in screen, screen
    assert sim.app.therapy.suspended_at is not None and basal_given(sim) == 0
    seen = screen
    while "Auto-off" not in sim.screen_text():
        press(sim, "DOWN")  # the rest of the summary scrolls into view
        seen += sim.screen_text()
    assert "Max bol   8.00 U" in seen and "Max bas  3.00U/h" in seen, seen
    assert "Max/day  80.00 U" in seen and "Auto-off    12 h" in seen, seen
    press(sim, "OK")
    assert codes(sim) == [] and sim.app.therapy.suspended_at is None, codes(sim)
    assert top(sim).name == "home"
    assert steps(sim) == ["clock", "basal", "max_bolus", "max_basal", "max_hour", "max_day",
                          "done"]
    s = sim.app.therapy.settings
    assert (s.max_bolus_mu, s.max_basal_mu_per_h, s.max_hour_mu, s.max_day_mu) == (
        8000, 3000, 15_000, 80_000)
    minutes = sim.app.therapy.ms_of_day(sim.app.now_ms()) // MIN_MS
    assert 11 * 60 + 58 <= minutes <= 12 * 60 + 1  # the time chosen, and the clock ran on
    assert sim.board.rtc.datetime()[:3] == (2026, 12, 4)
    assert Storage(sim.flash).settings.load().status == LOADED
    sim.run_until(sim.now_ms() + 30 * MIN_MS)
    assert basal_given(sim) > 300  # 0.80 U/h for half an hour
    assert codes(sim) == [] and shows(sim, "Delivering"), sim.screen_text()


def test_the_basal_profile_can_be_edited_during_setup():
    sim = new_pump()
    press(sim, "OK")
    set_date_time(sim, 2026, 12, 4, 12, 0)
    press(sim, "DOWN")  # 'Edit profile'
    press(sim, "OK")
    assert shows(sim, "00:00 0.80U/h"), sim.screen_text()
    press(sim, "OK")  # the first segment's rate
    press(sim, "UP", 20)  # 0.80 -> 1.00 U/h
    press(sim, "OK")
    press(sim, "DOWN", 2)  # 'Save'
    press(sim, "OK")
    assert shows(sim, "24.00 U/day"), sim.screen_text()
    press(sim, "OK")
    assert shows(sim, "max bolus"), sim.screen_text()
    press(sim, "OK", 4)  # the limits as offered
    press(sim, "OK")  # start
    assert codes(sim) == []
    assert sim.app.therapy.settings.profiles[0].segments == [(0, 1000)]
    basal = [e[3] for e in sim.events if e[2] == STEP and e[3]["step"] == "basal"]
    assert basal == [{"step": "basal", "how": "edited", "segments": 1, "daily_mu": 24_000}]


def test_back_on_the_first_step_leaves_nothing_changed_and_the_alarm_comes_back():
    sim = new_pump()
    press(sim, "OK")
    press(sim, "BACK")
    assert top(sim).name == "home" and al.SET_UP in codes(sim)
    sim.run_until(sim.now_ms() + 3 * MIN_MS)
    assert shows(sim, "OK=set up") and basal_given(sim) == 0, sim.screen_text()
    press(sim, "OK")
    assert shows(sim, "Setup 1/6 date")


def test_the_setup_screens_stay_through_the_idle_timeout():
    sim = new_pump()
    press(sim, "OK")
    sim.run_until(sim.now_ms() + 5 * MIN_MS)
    assert shows(sim, "Setup 1/6 date"), sim.screen_text()


def test_damaged_settings_lead_to_the_same_setup():
    sim = SimPump(flash=FlashFS())  # provisioned: set up and delivering
    sim.clock_backup = True
    sim.run_until(2 * MIN_MS)
    name = [n for n in sim.flash.files if n.startswith("settings")][0]
    data = bytearray(sim.flash.files[name])
    data[len(data) // 2] ^= 0x10
    sim.flash.files[name] = bytes(data)
    sim.power_loss(1_000)
    booted(sim)
    assert al.CHECK_SETTINGS in codes(sim) and sim.app.therapy.suspended_at is not None
    assert shows(sim, "OK=set up"), sim.screen_text()
    press(sim, "OK")
    editor = top(sim)
    assert editor.name == "date time" and editor.values[:3] == [2025, 1, 6]  # the RTC's date
    press(sim, "OK", 4)  # the date and time as they are
    press(sim, "OK")  # factory basal
    press(sim, "OK", 4)
    press(sim, "OK")
    assert codes(sim) == [] and sim.app.therapy.suspended_at is None, codes(sim)


def test_after_a_power_cut_the_clock_alarm_leads_straight_to_the_time_screen():
    sim = SimPump(flash=FlashFS(), start_ms_of_day=8 * 3_600_000)
    sim.run_until(10 * MIN_MS)
    sim.power_loss(30 * MIN_MS)  # the RTC loses the time
    booted(sim)
    assert al.SET_TIME in codes(sim) and sim.app.therapy.suspended_at is not None
    assert shows(sim, "OK=set time"), sim.screen_text()
    press(sim, "OK")
    editor = top(sim)
    assert editor.name == "date time" and editor.field == 3  # the time, lit first
    assert shows(sim, "time: UP/DN") and shows(sim, "OK=next BACK=out"), sim.screen_text()
    set_date_time(sim, 2025, 1, 6, 8, 41)
    assert shows(sim, "Set the clock") and shows(sim, "Time 08:41"), sim.screen_text()
    press(sim, "OK")
    assert codes(sim) == [] and sim.app.therapy.suspended_at is None, codes(sim)
    assert sim.app.therapy.ms_of_day(sim.app.now_ms()) // MIN_MS == 8 * 60 + 41
    assert [e[3]["step"] for e in sim.events if e[2] == STEP] == ["clock"]
    assert any(e[2] == ev.CLOCK_SET for e in sim.events)


@pytest.mark.parametrize("held_s, least, most", [(1.5, 3, 12), (5.5, 60, 400)])
def test_holding_a_key_on_the_time_speeds_up_by_ten_then_a_hundred(held_s, least, most):
    sim = SimPump(flash=FlashFS())
    sim.app.ui.open("clock", "set_time")
    editor = top(sim)
    before = editor.values[3]
    sim.hold_key("UP")
    sim.run_until(sim.now_ms() + int(held_s * 1000))
    sim.hold_key("UP", False)
    sim.run_until(sim.now_ms() + 200)
    moved = (editor.values[3] - before) % 1440
    assert least <= moved <= most, moved


def test_holding_past_eight_seconds_moves_a_hundred_minutes_a_step():
    sim = SimPump(flash=FlashFS())
    sim.app.ui.open("clock", "set_time")
    editor = top(sim)
    sim.hold_key("DOWN")
    sim.run_until(sim.now_ms() + 8_200)
    at_8s = editor.values[3]
    sim.run_until(sim.now_ms() + 300)  # three repeats at the fast rate
    sim.hold_key("DOWN", False)
    assert (at_8s - editor.values[3]) % 1440 in (200, 300, 400)


def test_the_menu_offers_setup_while_the_pump_is_not_set_up():
    sim = new_pump()
    press(sim, "OK")
    press(sim, "BACK")  # the alarm acknowledged, the setup left
    press(sim, "OK")  # the main menu
    assert shows(sim, "Set up pump"), sim.screen_text()
    press(sim, "OK")
    assert shows(sim, "Setup 1/6 date")



def test_the_settings_time_of_day_uses_the_same_date_and_time_screen():
    sim = booted(SimPump(flash=FlashFS(), start_ms_of_day=8 * 3_600_000))
    press(sim, "OK")  # the menu
    press(sim, "DOWN", 7)  # 'Settings'
    press(sim, "OK")
    press(sim, "OK")  # 'Time of day'
    editor = top(sim)
    assert editor.name == "date time" and editor.field == 3, sim.screen_text()
    assert editor.values == [2025, 1, 6, 8 * 60], editor.values  # the pump's own clock
    press(sim, "UP", 5)
    press(sim, "OK", 4)  # the time, then the day, month and year as they are
    assert shows(sim, "Date 2025-01-06") and shows(sim, "Time 08:05"), sim.screen_text()
    press(sim, "OK")
    assert top(sim).name == "settings"
    assert sim.app.therapy.ms_of_day(sim.app.now_ms()) // MIN_MS == 8 * 60 + 5


def test_back_on_the_time_leaves_and_back_on_a_later_field_goes_back_one():
    sim = booted(SimPump(flash=FlashFS(), start_ms_of_day=8 * 3_600_000))
    sim.app.ui.open("settings", "settings_menu")
    press(sim, "OK")  # 'Time of day'
    editor = top(sim)
    press(sim, "OK")  # on to the day
    assert editor.field == 2 and shows(sim, "OK=next BACK=<"), sim.screen_text()
    press(sim, "BACK")
    assert editor.field == 3
    press(sim, "BACK")
    assert top(sim).name == "settings"
